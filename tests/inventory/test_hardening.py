"""Review findings on the ledger, one test each: witness sign-ins are throttled like the login
(and every failure is audited without the secret), no entry is dated in the future, a count
takes only lots kept at its location, absurd numbers get a field error (never a 500), and one
location has at most one open count."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from ketaclinic.accounts.models import Clinic, User
from ketaclinic.accounts.roles import Role
from ketaclinic.audit.context import Actor
from ketaclinic.audit.models import AuditEntry
from ketaclinic.inventory import services
from ketaclinic.inventory.models import (
    Container,
    Count,
    CountStatus,
    Inventory,
    LedgerEntry,
    Lot,
    Product,
    StorageLocation,
)
from tests.conftest import PASSWORD, signed_in
from tests.inventory.conftest import Stock, snapshot, verify_passes, witness
from tests.inventory.test_ledger_services import MG, refused
from tests.inventory.test_views import Ledger, a_draw, make_ledger

WRONG = "not-the-password-9"


@pytest.fixture
def vial(stock: Stock) -> Container:
    [container] = stock.receive(1)
    return container


@pytest.fixture
def drawn(stock: Stock, vial: Container) -> LedgerEntry:
    return services.draw(stock.nurse, patient=stock.patient, quantity_ug=35 * MG, container=vial)


def waste_with(stock: Stock, drawn: LedgerEntry, secret: str, username: str = "prescriber_a"):  # type: ignore[no-untyped-def]
    return services.waste(
        stock.nurse,
        quantity_ug=500,
        draw_entry=drawn,
        witness_username=username,
        witness_secret=secret,
    )


def witness_audit() -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(object_type="witness_authentication").order_by("pk"))


# --- 1. witness sign-in throttled and audited -------------------------------------------------


def test_repeated_wrong_witness_secrets_lock_the_witness_out(stock, drawn, settings):  # type: ignore[no-untyped-def]
    assert settings.AXES_FAILURE_LIMIT == 5  # the login's policy, reused
    for _ in range(5):
        refused(lambda: waste_with(stock, drawn, WRONG), field="witness", match="did not match")
    # The sixth try is refused even with the right password, and says why.
    error = refused(lambda: waste_with(stock, drawn, PASSWORD), field="witness")
    assert "Too many failed witness sign-ins" in " ".join(error.messages)
    assert "15 minutes" in " ".join(error.messages)
    # Another witness is not affected.
    waste_with(stock, drawn, PASSWORD, username=stock.world.staff_a[Role.CLINIC_ADMIN].username)
    verify_passes()


def test_every_failed_witness_sign_in_is_audited_without_the_secret(stock, drawn):  # type: ignore[no-untyped-def]
    refused(lambda: waste_with(stock, drawn, WRONG), field="witness")
    refused(lambda: waste_with(stock, drawn, WRONG, username="nobody"), field="witness")
    rows = witness_audit()
    assert [(r.detail["username"], r.detail["result"]) for r in rows] == [
        ("prescriber_a", "failed"),
        ("nobody", "failed"),
    ]
    assert rows[0].actor_id == stock.world.nurse.pk
    assert rows[0].object_id == str(stock.world.prescriber.pk)
    for row in AuditEntry.objects.all():
        stored = " ".join(str(v) for v in row.__dict__.values())
        assert WRONG not in stored and PASSWORD not in stored


def test_the_lockout_follows_the_login_settings_and_expires(stock, drawn, settings, monkeypatch):  # type: ignore[no-untyped-def]
    settings.AXES_FAILURE_LIMIT = 2
    settings.AXES_COOLOFF_TIME = timedelta(minutes=10)
    for _ in range(2):
        refused(lambda: waste_with(stock, drawn, WRONG), field="witness")
    refused(lambda: waste_with(stock, drawn, PASSWORD), match="10 minutes")
    later = timezone.now() + timedelta(minutes=11)
    monkeypatch.setattr(services.timezone, "now", lambda: later)
    entry = waste_with(stock, drawn, PASSWORD)
    assert entry.witness_id == stock.world.prescriber.pk


def test_a_success_resets_the_witness_failures(stock, drawn, settings):  # type: ignore[no-untyped-def]
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(2):
        refused(lambda: waste_with(stock, drawn, WRONG), field="witness")
    waste_with(stock, drawn, PASSWORD)
    for _ in range(2):
        refused(lambda: waste_with(stock, drawn, WRONG), field="witness")
    waste_with(stock, drawn, PASSWORD)  # 2 failures since the success: not locked


def test_destruction_witnesses_are_throttled_too(stock, vial, settings):  # type: ignore[no-untyped-def]
    settings.AXES_FAILURE_LIMIT = 1
    admin = stock.world.staff_a[Role.CLINIC_ADMIN]

    def destroy(secret: str):  # type: ignore[no-untyped-def]
        return services.destroy(
            stock.prescriber,
            vial,
            quantity_ug=VIAL_UG_SMALL,
            method="digestion",
            place="clinic",
            witnesses=((stock.world.nurse.username, secret), (admin.username, PASSWORD)),
            reason="expired",
        )

    refused(lambda: destroy(WRONG), field="witness")
    refused(lambda: destroy(PASSWORD), match="Too many failed witness sign-ins")


VIAL_UG_SMALL = 1_000


def test_the_waste_page_shows_the_lockout_at_the_witness(world, stock, drawn, settings):  # type: ignore[no-untyped-def]
    settings.AXES_FAILURE_LIMIT = 1
    client = signed_in(world.nurse)
    url = reverse("ledger:draw_waste", args=[drawn.pk])
    data = {"quantity": "0.5", "unit": "mg", "reason": "residue", **witness(world.prescriber)}
    r = client.post(url, {**data, "witness_secret": WRONG})
    assert r.status_code == 200
    r = client.post(url, data)
    assert r.status_code == 200
    assert any(
        "Too many failed witness sign-ins" in e
        for e in r.context["waste_form"].errors["witness_username"]
    )
    assert LedgerEntry.objects.filter(kind="waste").count() == 0


# --- 2. no entry dated in the future ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["draw", "administer", "waste"])
def test_a_time_in_the_future_is_refused(stock, vial, drawn, kind):  # type: ignore[no-untyped-def]
    future = timezone.now() + timedelta(minutes=30)
    calls = {
        "draw": lambda: services.draw(
            stock.nurse, patient=stock.patient, quantity_ug=MG, container=vial, at=future
        ),
        "administer": lambda: services.administer(stock.nurse, drawn, MG, at=future),
        "waste": lambda: services.waste(
            stock.nurse,
            quantity_ug=MG,
            draw_entry=drawn,
            at=future,
            **witness(stock.world.prescriber),
        ),
    }
    refused(calls[kind], field="at", match="cannot be in the future")


def test_a_small_clock_skew_and_past_times_are_accepted(stock, vial):  # type: ignore[no-untyped-def]
    soon = timezone.now() + timedelta(minutes=2)
    entry = services.draw(
        stock.nurse, patient=stock.patient, quantity_ug=MG, container=vial, at=soon
    )
    assert entry.at == soon
    earlier = timezone.now() - timedelta(hours=3)
    services.administer(stock.nurse, entry, MG, at=earlier)
    verify_passes()


# --- 3. a count takes only the lots kept at its location ---------------------------------------


def test_a_count_refuses_a_lot_not_kept_at_the_location(stock):  # type: ignore[no-untyped-def]
    [in_safe] = stock.receive(1, lot_number="SAFE1")
    [in_cart] = stock.receive(1, lot_number="CART9", location=stock.cart)
    count = services.start_count(stock.nurse, stock.safe)
    refused(
        lambda: services.submit_count(
            stock.nurse, count, {in_safe.lot_id: in_safe.balance_ug, in_cart.lot_id: 0}
        ),
        match="Lot CART9 is not kept in Safe",
    )
    assert not count.lines.exists()


def test_a_count_refuses_another_clinics_lot_without_naming_it(stock, world):  # type: ignore[no-untyped-def]
    [in_safe] = stock.receive(1, lot_number="SAFE1")
    other = make_ledger_b(world)
    count = services.start_count(stock.nurse, stock.safe)
    error = refused(
        lambda: services.submit_count(
            stock.nurse, count, {in_safe.lot_id: in_safe.balance_ug, other.pk: 5}
        )
    )
    assert other.lot_number not in " ".join(error.messages)
    assert f"lot #{other.pk}" in " ".join(error.messages)


def make_ledger_b(world) -> Lot:  # type: ignore[no-untyped-def]
    admin = Actor.system(world.clinic_b, user=world.admin_b, label="test")
    product = services.create_product(
        admin,
        drug="ketamine",
        name="Ketamine B",
        ndc="0409-2051-99",
        form="injection",
        concentration_mg_per_ml="50",
        container_volume_ml="10",
    )
    supplier = services.create_supplier(
        admin, name="B wholesale", address="x", dea_number="RS1234563"
    )
    location = services.create_location(admin, "B safe")
    services.receive(
        admin,
        product=product,
        lot_number="SECRETB",
        expiry=timezone.localdate() + timedelta(days=100),
        supplier=supplier,
        invoice_number="I",
        received_on=timezone.localdate(),
        containers=1,
        location=location,
    )
    return Lot.objects.get(lot_number="SECRETB")


# --- 5. one open count per location ---------------------------------------------------------------


def test_a_count_of_another_clinics_location_is_refused(stock, world):  # type: ignore[no-untyped-def]
    other = make_ledger_b(world).containers.first().location
    with pytest.raises(ValidationError) as failure:
        services.start_count(stock.nurse, other)
    assert "location" in failure.value.message_dict
    assert not Count.objects.exists()


@pytest.mark.postgres_only
@pytest.mark.skipif(connection.vendor != "postgresql", reason="needs PostgreSQL row locks")
def test_concurrent_starts_open_one_count_per_location(transactional_db, stock):  # type: ignore[no-untyped-def]
    clients = 8
    barrier = threading.Barrier(clients)
    started: list[int] = []
    refusals: list[str] = []
    errors: list[BaseException] = []

    def client(n: int) -> None:
        try:
            user = User.objects.get(pk=stock.world.nurse.pk)
            actor = Actor.system(Clinic.objects.get(pk=stock.clinic.pk), user=user, label="c")
            location = StorageLocation.objects.get(pk=stock.safe.pk)
            barrier.wait(timeout=30)
            try:
                started.append(services.start_count(actor, location).pk)
            except ValidationError as exc:
                refusals.extend(exc.messages)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert len(started) == 1
    assert len(refusals) == clients - 1
    assert all("A count of Safe is already under way" in m for m in refusals)
    assert Count.objects.filter(location=stock.safe, status=CountStatus.OPEN).count() == 1


# --- 4. absurd numbers: a field error, never a 500 ------------------------------------------------

BAD_NUMBERS = [
    "1e999999",
    "-1e999999",
    "1e-999999",
    "1E+9999999999",
    "NaN",
    "-NaN",
    "sNaN",
    "Infinity",
    "-inf",
    "99999999999999999999",
]


@pytest.fixture
def ledger(world) -> Ledger:  # type: ignore[no-untyped-def]
    return make_ledger(world)


def stored() -> dict:  # type: ignore[type-arg]
    return {
        **snapshot(),
        "products": Product.objects.count(),
        "counts": Count.objects.count(),
        "inventories": Inventory.objects.count(),
    }


def form_errors(response) -> dict:  # type: ignore[no-untyped-def,type-arg]
    errors = {}
    for key in response.context.keys():
        value = response.context[key]
        if hasattr(value, "errors") and hasattr(value, "fields") and value.is_bound:
            errors.update(value.errors)
    return errors


@pytest.mark.parametrize("bad", BAD_NUMBERS)
def test_absurd_numbers_get_a_field_error_on_every_ledger_form(world, ledger, bad):  # type: ignore[no-untyped-def]
    nurse = signed_in(world.nurse)
    admin = signed_in(world.staff_a[Role.CLINIC_ADMIN])
    draw = a_draw(ledger, world.nurse)
    vial = Container.objects.filter(lot=ledger.good, balance_ug__gt=0).first()
    count = services.start_count(
        Actor.system(ledger.clinic, user=world.prescriber, label="t"), ledger.safe
    )
    posts = [
        (
            nurse,
            reverse("ledger:draw"),
            {
                "patient_mrn": ledger.patient.mrn,
                "product": ledger.ketamine.pk,  # type: ignore[attr-defined]
                "location": ledger.safe.pk,
                "quantity": bad,
                "unit": "mg",
            },
            "quantity",
        ),
        (
            nurse,
            reverse("ledger:draw"),
            {
                "patient_mrn": ledger.patient.mrn,
                "product": ledger.ketamine.pk,  # type: ignore[attr-defined]
                "location": ledger.safe.pk,
                "quantity": bad,
                "unit": "ml",
            },
            "quantity",
        ),
        (
            nurse,
            reverse("ledger:draw_administer", args=[draw.pk]),
            {"quantity": bad, "unit": "mg"},
            "quantity",
        ),
        (
            nurse,
            reverse("ledger:draw_waste", args=[draw.pk]),
            {"quantity": bad, "unit": "ml", **witness(world.prescriber)},
            "quantity",
        ),
        (
            nurse,
            reverse("ledger:waste"),
            {
                "container": vial.pk,
                "quantity": bad,
                "unit": "mg",
                "reason": "r",
                **witness(world.prescriber),
            },
            "quantity",
        ),
        (
            admin,
            reverse("ledger:adjust"),
            {
                "container": vial.pk,
                "direction": "add",
                "quantity": bad,
                "unit": "mg",
                "reason": "r",
            },
            "quantity",
        ),
        (
            admin,
            reverse("ledger:destroy"),
            {
                "container": vial.pk,
                "quantity": bad,
                "unit": "mg",
                "reason": "r",
                "method": "m",
                "place": "p",
                **witness(world.prescriber),
                "second_witness_username": world.nurse.username,
                "second_witness_secret": PASSWORD,
            },
            "quantity",
        ),
        (
            admin,
            reverse("ledger:loss_new"),
            {
                "container": vial.pk,
                "quantity": bad,
                "unit": "mg",
                "kind": "loss",
                "discovered_at": "2026-01-01T09:00",
                "description": "d",
            },
            "quantity",
        ),
        (
            admin,
            reverse("ledger:product_create"),
            {
                "drug": "ketamine",
                "name": "K",
                "ndc": "1-2-3",
                "form": "injection",
                "concentration_mg_per_ml": bad,
                "container_volume_ml": "10",
            },
            "concentration_mg_per_ml",
        ),
        (
            admin,
            reverse("ledger:product_create"),
            {
                "drug": "ketamine",
                "name": "K",
                "ndc": "1-2-3",
                "form": "injection",
                "concentration_mg_per_ml": "50",
                "container_volume_ml": bad,
            },
            "container_volume_ml",
        ),
        (
            admin,
            reverse("ledger:product_create"),
            {
                "drug": "esketamine",
                "name": "S",
                "ndc": "1-2-4",
                "form": "nasal_spray",
                "device_mg": bad,
                "devices_per_container": "2",
            },
            "device_mg",
        ),
        (
            admin,
            reverse("ledger:receive"),
            {
                "product": ledger.ketamine.pk,
                "lot_number": "L",
                "expiry": "2099-01-01",
                "containers": bad,
                "location": ledger.safe.pk,
                "supplier": ledger.supplier.pk,
                "invoice_number": "I",
                "received_on": "2026-01-01",
            },
            "containers",
        ),
        (
            nurse,
            reverse("ledger:count_submit", args=[count.pk]),
            {f"lot_{lot.pk}": bad for lot in (ledger.good, ledger.soon, ledger.old)},
            f"lot_{ledger.good.pk}",
        ),
        (
            admin,
            reverse("ledger:inventory_new"),
            {
                "kind": "initial",
                "timing": "close",
                **{f"sealed_{lot.pk}": "1" for lot in Lot.objects.all()},
                **{f"opened_{lot.pk}": bad for lot in Lot.objects.all()},
            },
            f"opened_{ledger.good.pk}",
        ),
        (
            admin,
            reverse("ledger:inventory_new"),
            {
                "kind": "initial",
                "timing": "close",
                **{f"sealed_{lot.pk}": bad for lot in Lot.objects.all()},
            },
            f"sealed_{ledger.good.pk}",
        ),
    ]
    for client, url, data, field in posts:
        before = stored()
        response = client.post(url, data)
        assert response.status_code == 200, (url, field, response.status_code)
        errors = form_errors(response)
        assert errors.get(field), (url, field, errors)
        assert all(len(m) < 300 for m in errors[field]), errors[field]
        assert stored() == before, (url, field)


@pytest.mark.parametrize("bad", ["1e999999", "NaN", "Infinity", "1E+9999999999", "-0"])
def test_absurd_numbers_to_the_services_are_refused_at_the_field(stock, bad):  # type: ignore[no-untyped-def]
    admin = stock.actor(Role.CLINIC_ADMIN)
    refused(
        lambda: services.create_product(
            admin,
            drug="ketamine",
            name="K",
            ndc="1-1-1",
            form="injection",
            concentration_mg_per_ml=bad,
            container_volume_ml="10",
        ),
        field="concentration_mg_per_ml",
    )
    refused(
        lambda: services.create_product(
            admin,
            drug="ketamine",
            name="K",
            ndc="1-1-1",
            form="injection",
            concentration_mg_per_ml="50",
            container_volume_ml=bad,
        ),
        field="container_volume_ml",
    )
    assert Product.objects.count() == 2


def test_a_huge_integer_quantity_is_refused_by_the_services(stock, vial):  # type: ignore[no-untyped-def]
    refused(
        lambda: services.adjust(stock.prescriber, vial, delta_ug=10**30, reason="count"),
        field="quantity",
    )
    refused(
        lambda: services.draw(
            stock.nurse, patient=stock.patient, quantity_ug=10**30, container=vial
        ),
        field="quantity",
    )


def test_attempts_while_locked_out_do_not_unlock(stock, drawn, settings):  # type: ignore[no-untyped-def]
    settings.AXES_FAILURE_LIMIT = 2
    for _ in range(2):
        refused(lambda: waste_with(stock, drawn, WRONG), field="witness")
    for _ in range(4):
        refused(lambda: waste_with(stock, drawn, PASSWORD), match="Too many failed")
    results = [r.detail["result"] for r in witness_audit()]
    assert results == ["failed", "failed"] + ["locked_out"] * 4


def test_a_witness_signed_in_before_the_callers_transaction_stays_on_record(stock, drawn):  # type: ignore[no-untyped-def]
    """A caller whose write has its own transaction (a dosing session's stop) signs the
    witness in first: a failure is recorded even though that transaction is rolled back."""
    from django.db import transaction

    with pytest.raises(ValidationError):
        services.sign_in_witness(stock.nurse, "prescriber_a", WRONG)
        with transaction.atomic():  # never reached
            pytest.fail("the write ran after a failed witness sign-in")
    assert [r.detail["result"] for r in witness_audit()] == ["failed"]
    proof = services.sign_in_witness(stock.nurse, "prescriber_a", PASSWORD)
    with transaction.atomic():
        entry = services.waste(stock.nurse, quantity_ug=500, draw_entry=drawn, witness_proof=proof)
    assert (entry.witness_id, entry.witness_method) == (stock.world.prescriber.pk, "password")
    verify_passes()


def test_a_witness_proof_is_for_its_actor_only_and_short_lived(stock, drawn, monkeypatch):  # type: ignore[no-untyped-def]
    proof = services.sign_in_witness(stock.nurse, "prescriber_a", PASSWORD)
    admin = stock.actor(Role.CLINIC_ADMIN)
    refused(
        lambda: services.waste(admin, quantity_ug=500, draw_entry=drawn, witness_proof=proof),
        match="signed in for someone else",
    )
    later = timezone.now() + timedelta(minutes=6)
    monkeypatch.setattr(services.timezone, "now", lambda: later)
    refused(
        lambda: services.waste(stock.nurse, quantity_ug=500, draw_entry=drawn, witness_proof=proof),
        match="too long ago",
    )


@pytest.mark.parametrize("figure", [10**30, float("nan"), float("inf"), 2.5, True])
def test_a_count_refuses_figures_that_are_not_whole_sane_micrograms(stock, vial, figure):  # type: ignore[no-untyped-def]
    count = services.start_count(stock.nurse, stock.safe)
    refused(lambda: services.submit_count(stock.nurse, count, {vial.lot_id: figure}))
    assert not count.lines.exists()
