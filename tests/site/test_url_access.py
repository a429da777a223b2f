"""Every URL pattern, walked from the resolver: who may reach it and what leaks when they may not.

New URLs are covered automatically. A view must declare its access with `requires` or `public`
(ketaclinic.accounts.access); a URL keyword this file does not know how to fill fails the test
by name, so whoever adds it extends URL_KWARGS below.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from functools import cached_property
from typing import Any

import pytest
from django.conf import settings
from django.http import HttpResponse
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from ketaclinic.accounts.models import User
from ketaclinic.accounts.roles import Perm, Role, role_has
from ketaclinic.audit.context import Actor
from ketaclinic.audit.models import AuditEntry
from ketaclinic.patients import services as patient_services
from tests.conftest import make_staff, measure, signed_in


@dataclass(frozen=True)
class Route:
    name: str  # namespaced, e.g. "patients:chart"
    route: str
    view: Callable[..., Any]
    keywords: tuple[str, ...]

    @property
    def access(self) -> tuple[str, Perm | None, bool] | None:
        return getattr(self.view, "ketaclinic_access", None)


def walk(
    patterns: list[Any], prefix: str = "", namespace: str = "", outer: tuple[str, ...] = ()
) -> Iterator[Route]:
    for p in patterns:
        # Keywords may sit in an include()'s own prefix as well as in the final pattern.
        keywords = outer + tuple(p.pattern.regex.groupindex)
        if isinstance(p, URLResolver):
            ns = ":".join(x for x in (namespace, p.namespace or "") if x)
            yield from walk(p.url_patterns, prefix + str(p.pattern), ns, keywords)
        elif isinstance(p, URLPattern):
            name = ":".join(x for x in (namespace, p.name or "") if x) if p.name else ""
            yield Route(name, prefix + str(p.pattern), p.callback, keywords)


def is_static(route: Route) -> bool:
    return route.route.lstrip("^").startswith(settings.STATIC_URL.strip("/") + "/")


ALL_ROUTES = [r for r in walk(get_resolver().url_patterns) if not is_static(r)]
GUARDED = [r for r in ALL_ROUTES if r.access is None or r.access[0] != "public"]


# --- clinic A objects, and how to fill each URL keyword with one of them ---------------------


@dataclass
class Objects:
    world: Any
    patient_a: Any
    other_patient_a: Any
    patient_b: Any

    # Objects of other apps are made on first use, so only the URLs that need them depend on
    # how those apps create them.
    @cached_property
    def scale_response_a(self) -> Any:
        from ketaclinic.measures.services import record_response

        actor = Actor.system(self.world.clinic_a, user=self.world.nurse, label="test")
        # PHQ-9 with a positive suicide item: the response opens an alert too.
        return record_response(actor, self.patient_a, "phq9", [1, 1, 1, 1, 1, 1, 1, 1, 1])

    @cached_property
    def alert_a(self) -> Any:
        alert = self.scale_response_a.alerts.first()
        assert alert is not None, "the PHQ-9 response with item 9 > 0 should open an alert"
        return alert

    @cached_property
    def ledger_a(self) -> Any:
        """Clinic A's controlled-substance ledger: a draw for patient A, a finished count with
        a discrepancy, a loss report and an inventory."""
        from types import SimpleNamespace

        from django.utils import timezone

        from ketaclinic.inventory import services as ledger

        w = self.world
        admin = Actor.system(w.clinic_a, user=w.staff_a[Role.CLINIC_ADMIN], label="test")
        nurse = Actor.system(w.clinic_a, user=w.nurse, label="test")
        prescriber = Actor.system(w.clinic_a, user=w.prescriber, label="test")
        product = ledger.create_product(
            admin, drug="ketamine", name="Ketamine 50 mg/mL", ndc="0000-0000-01",
            form="injection", concentration_mg_per_ml="50", container_volume_ml="10",
        )
        supplier = ledger.create_supplier(
            admin, name="Supplier", address="1 Road", dea_number="RC0123454"
        )
        safe = ledger.create_location(admin, "Safe", "safe")
        today = timezone.localdate()
        ledger.receive(
            admin, product=product, lot_number="L1", expiry=today.replace(year=today.year + 1),
            supplier=supplier, invoice_number="I1", received_on=today, containers=2,
            location=safe,
        )
        draw = ledger.draw(
            nurse, patient=self.patient_a, quantity_ug=37_500, product=product, location=safe
        )
        count = ledger.start_count(nurse, safe)
        book = ledger.book_by_lot(safe)
        ledger.submit_count(nurse, count, book)
        discrepancy = ledger.submit_count(
            prescriber, count, {k: v - 50_000 for k, v in book.items()}
        ).discrepancies[0]
        loss = ledger.report_loss(
            admin, draw.container, quantity_ug=50_000, kind="loss",
            discovered_at=timezone.now(), description="Vial broken in the safe",
        )
        inventory = ledger.take_inventory(
            admin, kind="initial", timing="close",
            lines=[{"lot_id": draw.lot_id, "sealed": 1, "opened_estimate_ug": 0}],
        )
        return SimpleNamespace(
            draw=draw, count=count, discrepancy=discrepancy, loss=loss, inventory=inventory
        )

    @cached_property
    def course_a(self) -> Any:
        """An esketamine course of patient A (its signed assessment and 12 appointments)."""
        from tests.treatment.helpers import esketamine_course

        return esketamine_course(self.patient_a, self.world.prescriber)

    @cached_property
    def dosing_session_a(self) -> Any:
        """A dosing session of patient A, checked in today (the course's second appointment,
        so the first stays free for the appointment_id URLs)."""
        from django.utils import timezone

        from ketaclinic.dosing import services as dosing
        from ketaclinic.treatment import services as treatment
        from tests.treatment.helpers import chair

        nurse = Actor.system(self.world.clinic_a, user=self.world.nurse, label="test")
        appointment = self.course_a.appointments.order_by("number")[1]
        now = timezone.now()
        slot = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)
        treatment.book(
            nurse, appointment, starts_at=slot, chair=chair(self.world.clinic_a), reason="test"
        )
        appointment.refresh_from_db()
        return dosing.check_in(nurse, appointment, at=now)

    @cached_property
    def membership_a(self) -> Any:
        """A clinic A member who is none of the personas walking the URLs, so deactivating
        them or resetting their two-factor leaves the walk itself unchanged."""
        return make_staff(self.world.clinic_a, "extra_nurse_a", Role.NURSE).memberships.get()


# Keyword name -> the clinic A object id to put in the URL. Extend this when a URL gains a
# keyword; the value must belong to clinic A so clinic B users can be shown to get 404.
URL_KWARGS: dict[str, Callable[[Objects], Any]] = {
    "patient_id": lambda o: o.patient_a.pk,
    "response_id": lambda o: o.scale_response_a.pk,
    "alert_id": lambda o: o.alert_a.pk,
    # The controlled-substance ledger (a draw is also an entry, so entry_id names the draw).
    "entry_id": lambda o: o.ledger_a.draw.pk,
    "count_id": lambda o: o.ledger_a.count.pk,
    "discrepancy_id": lambda o: o.ledger_a.discrepancy.pk,
    "loss_id": lambda o: o.ledger_a.loss.pk,
    "inventory_id": lambda o: o.ledger_a.inventory.pk,
    # Eligibility, courses and scheduling.
    "assessment_id": lambda o: o.course_a.assessment_id,
    "course_id": lambda o: o.course_a.pk,
    "appointment_id": lambda o: o.course_a.appointments.order_by("number").first().pk,
    # Dosing sessions.
    "session_id": lambda o: o.dosing_session_a.pk,
    # Staff management: a clinic A membership.
    "membership_id": lambda o: o.membership_a.pk,
    # An instrument code names a definition every clinic shares (FHIR Questionnaire/<code>).
    "code": lambda o: "madrs",
}
# Keywords above that name something every clinic shares (not a clinic A object): clinic B
# staff may open those URLs, so they are not expected to get 404 there.
SHARED_KWARGS = {"code"}

# What clinic A's patients look like on a page in any form we render (names, MRN, birth date,
# contact details). None of it may reach anyone but clinic A's authorised staff.
A_PATIENT = {
    "given_name": "Quillon",
    "family_name": "Zarathustrova",
    "preferred_name": "Quilly",
    "date_of_birth": date(1971, 8, 23),
    "sex_at_birth": "male",
    "status": "active",
    "phone": "555-867-5309",
    "email": "quillon@example.test",
    "address_line1": "42 Wallaby Way",
}
A_MRN = "QX-771234"
A_OTHER = {
    "given_name": "Ysolde",
    "family_name": "Marchbanks",
    "date_of_birth": date(1988, 12, 4),
    "sex_at_birth": "female",
    "status": "screening",
}
A_OTHER_MRN = "QX-880017"
A_IDENTIFIERS = [
    "Quillon",
    "Zarathustrova",
    "Quilly",
    A_MRN,
    "1971-08-23",
    "08/23/1971",
    "Aug. 23, 1971",
    "555-867-5309",
    "quillon@example.test",
    "Wallaby",
    "Ysolde",
    "Marchbanks",
    A_OTHER_MRN,
    "1988-12-04",
]


@pytest.fixture
def objects(world) -> Objects:  # type: ignore[no-untyped-def]
    actor = Actor.system(world.clinic_a, user=world.nurse, label="test")
    patient_a = patient_services.register_patient(actor, A_PATIENT, mrn=A_MRN)
    other = patient_services.register_patient(actor, A_OTHER, mrn=A_OTHER_MRN)
    measure(patient_a, world.nurse, weight="77.7")
    b_actor = Actor.system(world.clinic_b, user=world.prescriber_b, label="test")
    patient_b = patient_services.register_patient(
        b_actor,
        {
            "given_name": "Bartholomew",
            "family_name": "Bee",
            "date_of_birth": date(1990, 1, 2),
            "sex_at_birth": "male",
        },
    )
    return Objects(world, patient_a, other, patient_b)


@pytest.fixture
def clinic_b_staff(world) -> dict[str, User]:  # type: ignore[no-untyped-def]
    """One user of clinic B in every role (the shared world has its admin and prescriber)."""
    staff = {Role.CLINIC_ADMIN: world.admin_b, Role.PRESCRIBER: world.prescriber_b}
    for role in Role:
        if role not in staff:
            staff[role] = make_staff(world.clinic_b, f"{role.value}_b", role)
    return staff


def body_of(response: HttpResponse) -> str:
    if getattr(response, "streaming", False):
        content = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    else:
        content = response.content
    return response.get("Location", "") + "\n" + content.decode(errors="replace")


def leaked(response: HttpResponse) -> list[str]:
    text = body_of(response)
    return [i for i in A_IDENTIFIERS if i in text]


def url_for(route: Route, objects: Objects) -> str:
    if not route.name:
        pytest.fail(f"URL pattern {route.route!r} has no name; name it so this test can reverse it")
    unknown = [k for k in route.keywords if k not in URL_KWARGS]
    if unknown:
        pytest.fail(
            f"URL pattern {route.name} ({route.route!r}) takes {', '.join(unknown)}, which "
            "tests/site/test_url_access.py does not know how to fill: add it to URL_KWARGS "
            "with a clinic A object's id."
        )
    return reverse(route.name, kwargs={k: URL_KWARGS[k](objects) for k in route.keywords})


def needed(route: Route) -> Perm | None:
    assert route.access is not None
    return route.access[1]


def allowed(role: str, perm: Perm | None) -> bool:
    return perm is None or role_has(role, perm)


METHODS = ("get", "post")


def call(client: Client, method: str, url: str) -> HttpResponse:
    return getattr(client, method)(url, {}) if method == "post" else client.get(url)


# --- the tests --------------------------------------------------------------------------------


def test_it_finds_the_urls_inside_includes():
    names = {r.name for r in ALL_ROUTES}
    assert {"home", "accounts:login", "patients:chart", "audit:export"} <= names


def test_it_requires_every_view_to_declare_who_may_reach_it():
    undeclared = [f"{r.name or r.route} -> {r.view!r}" for r in ALL_ROUTES if r.access is None]
    assert undeclared == [], (
        "These views declare neither @requires(...) nor @public "
        "(ketaclinic.accounts.access): " + "; ".join(undeclared)
    )


@pytest.mark.parametrize("route", [r for r in GUARDED if r.access], ids=lambda r: r.name or r.route)
def test_it_guards_the_url(route: Route, world, objects, clinic_b_staff):  # type: ignore[no-untyped-def]
    url = url_for(route, objects)
    perm = needed(route)
    carries_ids = any(k not in SHARED_KWARGS for k in route.keywords)
    problems: list[str] = []

    def expect(who: str, method: str, response: HttpResponse, ok: set[int]) -> None:
        if response.status_code not in ok:
            problems.append(f"{who} {method.upper()} {url}: {response.status_code}, wanted {ok}")

    def no_leak(who: str, method: str, response: HttpResponse) -> None:
        found = leaked(response)
        if found:
            problems.append(f"{who} {method.upper()} {url} shows clinic A's patient: {found}")

    def clinic_a_log() -> int:
        return AuditEntry.objects.filter(clinic=world.clinic_a).count()

    def nothing_logged(who: str, method: str, before: int) -> None:
        # A refused request reads nothing of clinic A's, so it adds nothing to clinic A's log.
        if clinic_a_log() != before:
            problems.append(f"{who} {method.upper()} {url} added to clinic A's audit log")

    # A view that takes only some methods may answer 405 to the others before anything else;
    # every refusal below must still come from the view's declaration for at least one method.
    login = reverse(settings.LOGIN_URL)
    to_login = []
    for method in METHODS:
        before = clinic_a_log()
        response = call(Client(), method, url)
        redirected = response.status_code == 302 and response["Location"].startswith(login)
        to_login.append(redirected)
        if not redirected and response.status_code != 405:
            problems.append(
                f"anonymous {method.upper()} {url}: {response.status_code} "
                f"{response.get('Location', '')}, wanted a redirect to {login}"
            )
        no_leak("anonymous", method, response)
        nothing_logged("anonymous", method, before)
    if not any(to_login):
        problems.append(f"anonymous users are never sent to {login} from {url}")

    for role, user in world.staff_a.items():
        client = signed_in(user)
        who = f"clinic A {role.value}"
        statuses = []
        for method in METHODS:
            before = clinic_a_log()
            response = call(client, method, url)
            statuses.append(response.status_code)
            if allowed(role, perm):
                # The registry's ids must be real clinic A objects: never 404 for clinic A's own
                # staff. A view may still refuse one method to some roles (403).
                expect(who, method, response, {200, 302, 400, 403, 405})
            else:
                expect(who, method, response, {403, 405})
                no_leak(who, method, response)
                nothing_logged(who, method, before)
        if allowed(role, perm) and not {200, 302, 400} & set(statuses):
            problems.append(f"{who} holds {perm} but got {statuses} from {url}")
        if not allowed(role, perm) and 403 not in statuses:
            problems.append(f"{who} lacks {perm} but never got 403 from {url}: {statuses}")

    for role, user in clinic_b_staff.items():
        client = signed_in(user)
        who = f"clinic B {role.value}"
        statuses = []
        for method in METHODS:
            before = clinic_a_log()
            response = call(client, method, url)
            statuses.append(response.status_code)
            nothing_logged(who, method, before)
            if not allowed(role, perm):
                expect(who, method, response, {403, 405})
            elif carries_ids:
                expect(who, method, response, {404, 405})
            else:
                # Their own clinic's page; a view may still refuse one method to some roles.
                expect(who, method, response, {200, 302, 403, 405})
            no_leak(who, method, response)
        if not allowed(role, perm) and 403 not in statuses:
            problems.append(f"{who} lacks {perm} but never got 403 from {url}: {statuses}")
        if allowed(role, perm) and carries_ids and 404 not in statuses:
            problems.append(f"{who} never got 404 for clinic A's ids at {url}: {statuses}")
        if allowed(role, perm) and not carries_ids and not {200, 302} & set(statuses):
            problems.append(f"{who} holds {perm} but got {statuses} from {url}")

    assert problems == [], "\n".join(problems)


PUBLIC = [r for r in ALL_ROUTES if r.access and r.access[0] == "public" and not r.keywords]


@pytest.mark.parametrize("route", PUBLIC, ids=lambda r: r.name or r.route)
def test_public_pages_show_anonymous_visitors_no_patient_data(route: Route, objects):  # type: ignore[no-untyped-def]
    url = url_for(route, objects)
    for method in METHODS:
        response = call(Client(), method, url)
        assert response.status_code < 500, (method, url, response.status_code)
        assert leaked(response) == [], (method, url)


def test_the_identifiers_do_show_for_clinic_a_staff(world, objects):  # type: ignore[no-untyped-def]
    """The leak check can fail: the same identifiers are on the chart for clinic A's nurse."""
    response = signed_in(world.nurse).get(reverse("patients:chart", args=[objects.patient_a.pk]))
    assert {"Quillon", "Zarathustrova", A_MRN, "1971-08-23"} <= set(leaked(response))
