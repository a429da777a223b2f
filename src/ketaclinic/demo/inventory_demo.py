"""The demo clinic's controlled-substance ledger: products, a supplier, a safe and a cart, lots
(one expiring within 60 days), and a month of entries made through the ledger services as the
clinic would have made them: receipts, morning transfers from the safe to the cart, IV ketamine
draws with the dose administered and the syringe residue wasted in front of a witness,
esketamine kits, end-of-day blind counts by two people, one discrepancy resolved and one still
open. `ketaclinic ledger verify` passes on the result.

The services stamp entries with the time they run, so each simulated day runs with the clock
set to that day (in the clinic's time zone): entry dates, counts and deadlines all fall where
they would have.
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Protocol
from unittest import mock
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone
from django.utils import timezone as django_timezone

from ketaclinic.accounts.models import Clinic, User
from ketaclinic.accounts.roles import Role
from ketaclinic.audit.context import Actor
from ketaclinic.inventory import services
from ketaclinic.inventory.models import (
    Container,
    Drug,
    Form,
    LedgerEntry,
    Lot,
    Product,
    StorageLocation,
)
from ketaclinic.patients.models import BodyMeasurement, Patient

SUPPLIER_DEA = "RC0123454"  # form and check digit valid; made up
RESIDUE_UG = 2_500  # 0.05 mL of 50 mg/mL left in the syringe and wasted (clinical.md §5.10)


class Visit(Protocol):
    """A completed dosing session (ketaclinic.demo.courses_demo.DosingVisit)."""

    @property
    def appointment_id(self) -> int: ...
    @property
    def patient(self) -> Patient: ...
    @property
    def drug(self) -> str: ...
    @property
    def starts_at(self) -> datetime: ...
    @property
    def dose_ug(self) -> int: ...
    @property
    def full(self) -> bool: ...


@dataclass
class InventoryDemo:
    products: dict[str, Product]
    safe: StorageLocation
    cart: StorageLocation
    lots: dict[str, Lot]
    entries: int = 0
    administrations: int = 0
    counts: int = 0
    notes: list[str] = field(default_factory=list)


@contextmanager
def _clock(moment: datetime) -> Iterator[None]:
    """Run the services as if it were `moment` (they stamp entries with timezone.now()).

    As timezone.now() gives it: in UTC (audit hashes the time as it is stored). A plain swap
    of django.utils.timezone.now, not mock.patch: the demo sets the clock a few thousand
    times."""
    fixed = moment.astimezone(UTC)
    real = django_timezone.now
    django_timezone.now = lambda: fixed
    try:
        yield
    finally:
        django_timezone.now = real


@contextmanager
def _password_checked_once() -> Iterator[None]:
    """Witnesses type their password for every waste, and each check costs an argon2 hash
    (~0.3 s). The demo's witness is the same person every time, so the first check of a
    password against a stored hash is remembered for the later ones: a month of witnessed
    wastes loads in a second instead of twenty."""
    from django.contrib.auth.hashers import check_password

    answers: dict[tuple[str, str], bool] = {}

    def remembered(password: str, encoded: str, *args: Any, **kwargs: Any) -> bool:
        key = (password, encoded)
        if key not in answers:
            answers[key] = check_password(password, encoded, *args, **kwargs)
        return answers[key]

    with mock.patch("ketaclinic.inventory.services.check_password", remembered):
        yield


def _demo_password() -> str:
    from ketaclinic.demo.loader import DEMO_PASSWORD  # the loader imports this module

    return DEMO_PASSWORD


def _pick(users: dict[str, User], *roles: str) -> User:
    for role in roles:
        if role in users:
            return users[role]
    raise ValueError(f"The inventory demo needs a user in one of these roles: {roles}")


def _patients(clinic: Clinic, actor: Actor, rng: random.Random, today: date) -> list[Patient]:
    found = list(
        Patient.objects.filter(clinic=clinic, status__in=["active", "screening"]).order_by("pk")[:6]
    )
    if found:
        return found
    from ketaclinic.demo.synthetic import person
    from ketaclinic.patients import services as patient_services

    made = []
    for _ in range(4):
        p = person(rng, today)
        data = {k: v for k, v in vars(p).items() if k not in {"height_cm", "weight_kg"}}
        data["status"] = "active"
        made.append(patient_services.register_patient(actor, data))
    return made


def _weight_kg(patient: Patient) -> Decimal:
    latest = BodyMeasurement.objects.filter(patient=patient).order_by("-measured_at", "-pk").first()
    return latest.weight_kg if latest else Decimal(70)


def _iv_dose_ug(weight_kg: Decimal) -> int:
    """0.5 mg/kg, rounded to the nearest 2.5 mg (0.05 mL of 50 mg/mL)."""
    mg = weight_kg * Decimal("0.5")
    steps = int((mg / Decimal("2.5")).to_integral_value())
    return max(steps, 8) * RESIDUE_UG


def _book(location: StorageLocation) -> dict[int, int]:
    return services.book_by_lot(location)


@transaction.atomic
def load_inventory_demo(
    clinic: Clinic,
    users: dict[str, User],
    *,
    password: str | None = None,
    days: int = 30,
    seed: int = 2026,
    visits: Sequence[Visit] | None = None,
    full_session: Callable[[int, Container], object] | None = None,
) -> InventoryDemo:
    """Set up and fill the ledger of `clinic` for the last `days` days.

    users: Role -> User, as ketaclinic.demo.loader makes them (a clinic admin, a prescriber and
    a nurse are used). password: the staff's password, typed by witnesses (the demo's own by
    default). visits: the clinic's completed dosing sessions (patient, start, drug, dose); each
    one in the period gets its draw, administration and waste at its time. Without them a few
    patients get made-up IV and esketamine sessions every business day. full_session: called
    with (appointment id, the cart's container) for each visit marked `full`, instead of the
    plain draw and administration: the dosing demo runs that session, which posts its own
    entries."""
    rng = random.Random(seed)
    tz = ZoneInfo(clinic.time_zone)
    with timezone.override(tz), _password_checked_once():
        return _load(
            clinic,
            users,
            password or _demo_password(),
            days,
            rng,
            tz,
            visits,
            full_session,
        )


def _load(
    clinic: Clinic,
    users: dict[str, User],
    password: str,
    days: int,
    rng: random.Random,
    tz: ZoneInfo,
    visits: Sequence[Visit] | None,
    full_session: Callable[[int, Container], object] | None = None,
) -> InventoryDemo:
    admin_user = _pick(users, Role.CLINIC_ADMIN, Role.PRESCRIBER)
    prescriber_user = _pick(users, Role.PRESCRIBER, Role.CLINIC_ADMIN)
    nurse_user = _pick(users, Role.NURSE, Role.PRESCRIBER)
    admin = Actor.system(clinic, user=admin_user, label="demo")
    prescriber = Actor.system(clinic, user=prescriber_user, label="demo")
    nurse = Actor.system(clinic, user=nurse_user, label="demo")
    real_today = timezone.localdate()
    first_day = real_today - timedelta(days=days)

    def at(day: date, hour: int, minute: int = 0) -> datetime:
        return datetime.combine(day, time(hour, minute), tzinfo=tz)

    with _clock(at(first_day, 8, 0)):
        ketamine = services.create_product(
            admin,
            drug=Drug.KETAMINE,
            name="Ketamine HCl 50 mg/mL, 10 mL vial",
            ndc="42023-0114-10",
            form=Form.INJECTION,
            concentration_mg_per_ml=Decimal("50"),
            container_volume_ml=Decimal("10"),
        )
        spravato_56 = services.create_product(
            admin,
            drug=Drug.ESKETAMINE,
            name="Spravato 56 mg kit (2 x 28 mg)",
            ndc="50458-0028-02",
            form=Form.NASAL_SPRAY,
            device_mg=28,
            devices_per_container=2,
        )
        spravato_84 = services.create_product(
            admin,
            drug=Drug.ESKETAMINE,
            name="Spravato 84 mg kit (3 x 28 mg)",
            ndc="50458-0028-03",
            form=Form.NASAL_SPRAY,
            device_mg=28,
            devices_per_container=3,
        )
        supplier = services.create_supplier(
            admin,
            name="Cardinal Health Specialty Distribution (demo)",
            address="7000 Cardinal Place\nDublin, OH 43017",
            dea_number=SUPPLIER_DEA,
        )
        safe = services.create_location(admin, "Main safe", "safe")
        cart = services.create_location(admin, "Treatment cart", "cart")
        patients = [] if visits is not None else _patients(clinic, nurse, rng, first_day)

    now = timezone.now()
    by_day: dict[date, list[Visit]] = defaultdict(list)
    for visit in sorted(visits or [], key=lambda v: v.starts_at):
        # Sessions of the period whose drug has been given by now.
        if (
            first_day < timezone.localtime(visit.starts_at).date()
            and visit.starts_at + timedelta(minutes=15) <= now
        ):
            by_day[timezone.localtime(visit.starts_at).date()].append(visit)
    kits = {56_000: 8, 84_000: 8}
    vials = (8, 2, 4)  # soon-expiring lot, later lot, the restock of the later lot
    if visits is not None:
        given = [v for day_visits in by_day.values() for v in day_visits]
        iv = [v for v in given if v.drug == Drug.KETAMINE]
        # Enough for the doses, with room for the opened vial wasted at the end of each day.
        total = math.ceil(sum(v.dose_ug + RESIDUE_UG for v in iv) * 1.5 / 500_000) + 4
        total += len({timezone.localtime(v.starts_at).date() for v in iv})
        first_lot = total // 2 + 2
        vials = (first_lot, 2, max(2, total - first_lot))
        for size in kits:
            kits[size] = sum(1 for v in given if v.drug != Drug.KETAMINE and v.dose_ug == size) + 2
    deliveries = [
        # product, lot, expiry, containers, invoice
        (ketamine, "KT24A117", real_today + timedelta(days=45), vials[0], "INV-88120"),
        (ketamine, "KT25B042", real_today + timedelta(days=540), vials[1], "INV-88120"),
        (spravato_56, "SP56-2410", real_today + timedelta(days=300), kits[56_000], "INV-88121"),
        (spravato_84, "SP84-2411", real_today + timedelta(days=300), kits[84_000], "INV-88121"),
    ]
    with _clock(at(first_day, 9, 15)):
        for product, lot_number, expiry, containers, invoice in deliveries:
            services.receive(
                admin,
                product=product,
                lot_number=lot_number,
                expiry=expiry,
                supplier=supplier,
                invoice_number=invoice,
                received_on=first_day,
                containers=containers,
                location=safe,
            )
    lots = {lot.lot_number: lot for lot in Lot.objects.filter(clinic=clinic)}
    lot_product = {lot.pk: lot.product_id for lot in lots.values()}
    with _clock(at(first_day, 17, 45)):
        services.take_inventory(
            admin,
            kind="initial",
            timing="close",
            lines=[
                {
                    "lot_id": lot.pk,
                    "sealed": Container.objects.filter(lot=lot, balance_ug__gt=0).count(),
                    "opened_estimate_ug": 0,
                }
                for lot in lots.values()
            ],
        )

    demo = InventoryDemo(
        {"ketamine": ketamine, "spravato_56": spravato_56, "spravato_84": spravato_84},
        safe,
        cart,
        lots,
    )
    business_days = sorted(
        {
            first_day + timedelta(days=n)
            for n in range(1, days)
            if (first_day + timedelta(days=n)).weekday() < 5
        }
        | set(by_day)
    )
    # The end of day (waste, counts) only for days whose evening is over.
    closed_days = [day for day in business_days if at(day, 19, 10) <= now]
    resolved_made = False
    restocked = False
    pending_discrepancy = None

    def stock_cart(moment: datetime, product: Product, needed_ug: int) -> None:
        """Bring a container to the cart from the safe when the cart has none that holds
        `needed_ug`."""
        day = moment.date()
        usable = services.available_containers(clinic.pk, product, cart, needed_ug, day)
        if usable:
            return
        from_safe = services.available_containers(clinic.pk, product, safe, needed_ug, day)
        if from_safe:
            with _clock(moment):
                services.transfer(nurse, from_safe[0], cart)

    def iv_session(patient: Patient, start: datetime, dose: int) -> None:
        """Draw the dose plus residue, administer the dose, waste the residue (witnessed)."""
        stock_cart(start - timedelta(minutes=10), ketamine, dose + RESIDUE_UG)
        with _clock(start + timedelta(minutes=5)):
            draw = services.draw(
                nurse,
                patient=patient,
                quantity_ug=dose + RESIDUE_UG,
                product=ketamine,
                location=cart,
            )
        with _clock(start + timedelta(minutes=10)):
            services.administer(nurse, draw, dose)
        with _clock(start + timedelta(minutes=50)):
            services.waste(
                nurse,
                quantity_ug=RESIDUE_UG,
                witness_username=prescriber_user.username,
                witness_secret=password,
                draw_entry=draw,
                reason="residue in syringe",
            )
        demo.administrations += 1

    def esketamine_session(patient: Patient, start: datetime, product: Product) -> None:
        """A whole kit, self-administered under observation."""
        stock_cart(start - timedelta(minutes=10), product, product.container_content_ug)
        with _clock(start + timedelta(minutes=5)):
            draw = services.draw(
                nurse,
                patient=patient,
                quantity_ug=product.container_content_ug,
                product=product,
                location=cart,
            )
        with _clock(start + timedelta(minutes=20)):
            services.administer(nurse, draw, product.container_content_ug)
        demo.administrations += 1

    kit_for = {
        spravato_56.container_content_ug: spravato_56,
        spravato_84.container_content_ug: spravato_84,
    }
    for index, day in enumerate(business_days):
        if not restocked and index >= len(business_days) // 2:
            with _clock(at(day, 7, 45)):
                services.receive(
                    admin,
                    product=ketamine,
                    lot_number="KT25B042",
                    expiry=lots["KT25B042"].expiry,
                    supplier=supplier,
                    invoice_number="INV-89544",
                    received_on=day,
                    containers=vials[2],
                    location=safe,
                )
            restocked = True
        if pending_discrepancy is not None:
            discrepancy, container = pending_discrepancy
            with _clock(at(day, 7, 50)):
                services.adjust(
                    admin,
                    container,
                    delta_ug=-RESIDUE_UG,
                    reason="Residue from the last draw of the day was wasted but not recorded "
                    "(confirmed with the nurse and the witness).",
                    discrepancy=discrepancy,
                )
            with _clock(at(day, 7, 55)):
                services.resolve_discrepancy(
                    admin,
                    discrepancy,
                    "Recounted: the cart vial held 0.05 mL less than the book. The last "
                    "patient's 2.5 mg syringe residue was wasted in front of a witness but not "
                    "entered. Book adjusted (count adjustment); staff reminded to enter waste "
                    "at the chair.",
                )
            pending_discrepancy = None

        if visits is not None:
            # The day's dosing sessions, as the course demo completed them.
            for visit in by_day.get(day, []):
                start = timezone.localtime(visit.starts_at)
                if full_session is not None and visit.full:
                    product = ketamine if visit.drug == Drug.KETAMINE else kit_for[visit.dose_ug]
                    needed = (
                        visit.dose_ug + RESIDUE_UG
                        if visit.drug == Drug.KETAMINE
                        else product.container_content_ug
                    )
                    stock_cart(start - timedelta(minutes=25), product, needed)
                    container = services.available_containers(
                        clinic.pk, product, cart, needed, day
                    )[0]
                    full_session(visit.appointment_id, container)
                    demo.administrations += 1
                elif visit.drug == Drug.KETAMINE:
                    iv_session(visit.patient, start, visit.dose_ug)
                else:
                    esketamine_session(visit.patient, start, kit_for[visit.dose_ug])
        else:
            for slot, patient in enumerate(
                rng.sample(patients, k=min(len(patients), rng.choice([2, 3, 3])))
            ):
                iv_session(patient, at(day, 9 + 2 * slot, 30), _iv_dose_ug(_weight_kg(patient)))
            if index % 2 == 0:  # esketamine every other day
                product = spravato_84 if index % 4 == 0 else spravato_56
                esketamine_session(patients[index % len(patients)], at(day, 13, 0), product)

        if day not in closed_days:
            continue
        # End of day: an opened vial with less than a dose left is wasted, witnessed.
        for container in Container.objects.filter(
            location=cart, lot__product=ketamine, balance_ug__gt=0, balance_ug__lt=40_000
        ).exclude(opened_at=None):
            with _clock(at(day, 18, 45)):
                services.waste(
                    nurse,
                    quantity_ug=container.balance_ug,
                    witness_username=prescriber_user.username,
                    witness_secret=password,
                    container=container,
                    reason="end of day: opened vial with less than a dose left",
                )
        # Then a blind count of the cart by two people (of the safe if the cart is empty).
        where = cart if _book(cart) else safe
        with _clock(at(day, 18, 50)):
            count = services.start_count(nurse, where)
        book = _book(where)
        first, second = dict(book), dict(book)
        opened_vial = (
            Container.objects.filter(
                location=where, lot__product=ketamine, balance_ug__gte=RESIDUE_UG
            )
            .exclude(opened_at=None)
            .order_by("pk")
            .first()
        )
        resolved_today = (
            not resolved_made and index >= len(business_days) // 3 and opened_vial is not None
        )
        if resolved_today and opened_vial is not None:
            # Both find 0.05 mL less than the book: a waste that was not entered.
            first[opened_vial.lot_id] -= RESIDUE_UG
            second[opened_vial.lot_id] -= RESIDUE_UG
        elif day == closed_days[-1] and book:
            # The two counts disagree with each other: still under review.
            lot_id = next(iter(book))
            product = ketamine if lot_product[lot_id] == ketamine.pk else None
            short = 5_000 if product else Lot.objects.get(pk=lot_id).product.device_ug or 0
            second[lot_id] -= min(short, second[lot_id])
        with _clock(at(day, 18, 55)):
            services.submit_count(nurse, count, first)
        with _clock(at(day, 19, 0)):
            result = services.submit_count(prescriber, count, second)
        demo.counts += 1
        if resolved_today and result.discrepancies:
            pending_discrepancy = (result.discrepancies[0], opened_vial)
            resolved_made = True
        # Fridays: the safe too.
        if day.weekday() == 4:
            with _clock(at(day, 19, 5)):
                safe_count = services.start_count(nurse, safe)
                services.submit_count(nurse, safe_count, _book(safe))
            with _clock(at(day, 19, 10)):
                services.submit_count(prescriber, safe_count, _book(safe))
            demo.counts += 1

    demo.entries = LedgerEntry.objects.filter(clinic=clinic).count()
    demo.notes.append(
        f"{demo.entries} ledger entries, {demo.administrations} administrations, "
        f"{demo.counts} blind counts; lot KT24A117 expires within 60 days."
    )
    return demo
