"""The ledger services one rule at a time: witnesses (who may sign and how they prove it), bad
input that must store nothing, reversals, and blind two-person counts."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from ketaclinic.accounts.roles import Role
from ketaclinic.audit.context import Actor
from ketaclinic.clinical import ledger as rules
from ketaclinic.inventory import services
from ketaclinic.inventory.models import (
    Container,
    Count,
    CountLine,
    Discrepancy,
    EntryKind,
    LedgerEntry,
    Lot,
    Supplier,
)
from tests.conftest import PASSWORD
from tests.inventory.conftest import SUPPLIER_DEA, VIAL_UG, Stock, snapshot, verify_passes, witness

MG = 1000


def refused(call, *, field: str | None = None, match: str | None = None) -> ValidationError:  # type: ignore[no-untyped-def]
    """`call` raises ValidationError and leaves every stored ledger row as it was."""
    before = snapshot()
    with pytest.raises(ValidationError) as failure:
        call()
    assert snapshot() == before, "a refused operation wrote something"
    error = failure.value
    if field is not None:
        assert field in error.message_dict, error
    if match is not None:
        assert match in " ".join(error.messages), error.messages
    return error


@pytest.fixture
def vial(stock: Stock) -> Container:
    [container] = stock.receive(1)
    return container


@pytest.fixture
def drawn(stock: Stock, vial: Container) -> LedgerEntry:
    """35 mg (0.70 mL) drawn for the patient by the nurse."""
    return services.draw(stock.nurse, patient=stock.patient, quantity_ug=35 * MG, container=vial)


def current_code(device: TOTPDevice) -> str:
    code = totp(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{code:0{device.digits}d}"


# --- the worked example (clinical.md §5.10) ----------------------------------------------------


def test_the_worked_example_reconciles_to_the_microgram(stock, vial):  # type: ignore[no-untyped-def]
    draw = services.draw(
        stock.nurse, patient=stock.patient, quantity_ug=rules.ml_to_ug("0.75", 50), container=vial
    )
    assert draw.container_balance_ug == 462_500
    services.administer(stock.nurse, draw, rules.ml_to_ug("0.70", 50))
    waste = services.waste(
        stock.nurse,
        quantity_ug=rules.ml_to_ug("0.05", 50),
        draw_entry=draw,
        **witness(stock.world.prescriber),
    )
    assert waste.delta_ug == 0 and waste.witness == stock.world.prescriber
    assert waste.witness_method == "password"
    assert services.undispensed_ug(draw) == 0
    vial.refresh_from_db()
    assert rules.format_mg(vial.balance_ug) == "462.5 mg"
    assert Lot.objects.get(pk=vial.lot_id).balance_ug == 462_500
    verify_passes()


# --- witnesses ---------------------------------------------------------------------------------


def test_waste_with_the_witness_password_is_recorded(stock, drawn):  # type: ignore[no-untyped-def]
    entry = services.waste(
        stock.nurse, quantity_ug=2_500, draw_entry=drawn, **witness(stock.world.prescriber)
    )
    assert (entry.kind, entry.witness_id, entry.witness_method) == (
        EntryKind.WASTE,
        stock.world.prescriber.pk,
        "password",
    )


@pytest.mark.parametrize(
    "username, secret",
    [
        ("prescriber_a", PASSWORD + "!"),  # wrong password
        ("prescriber_a", ""),  # no password
        ("nobody", PASSWORD),  # unknown user
        ("", PASSWORD),
    ],
    ids=["wrong-password", "blank-password", "unknown-user", "blank-user"],
)
def test_waste_without_a_valid_witness_authentication_is_refused(stock, drawn, username, secret):  # type: ignore[no-untyped-def]
    refused(
        lambda: services.waste(
            stock.nurse,
            quantity_ug=2_500,
            draw_entry=drawn,
            witness_username=username,
            witness_secret=secret,
        ),
        field="witness",
    )


def test_an_inactive_witness_is_refused(stock, drawn):  # type: ignore[no-untyped-def]
    stock.world.prescriber.is_active = False
    stock.world.prescriber.save(update_fields=["is_active"])
    refused(
        lambda: services.waste(
            stock.nurse, quantity_ug=2_500, draw_entry=drawn, **witness(stock.world.prescriber)
        ),
        field="witness",
    )


def test_a_correct_totp_code_witnesses(stock, drawn):  # type: ignore[no-untyped-def]
    device = TOTPDevice.objects.create(user=stock.world.prescriber, name="phone", confirmed=True)
    entry = services.waste(
        stock.nurse,
        quantity_ug=2_500,
        draw_entry=drawn,
        witness_username="prescriber_a",
        witness_secret=current_code(device),
    )
    assert (entry.witness_id, entry.witness_method) == (stock.world.prescriber.pk, "totp")
    verify_passes()


def test_a_totp_code_cannot_witness_twice(stock, drawn):  # type: ignore[no-untyped-def]
    device = TOTPDevice.objects.create(user=stock.world.prescriber, name="phone", confirmed=True)
    code = current_code(device)
    services.waste(
        stock.nurse,
        quantity_ug=1_000,
        draw_entry=drawn,
        witness_username="prescriber_a",
        witness_secret=code,
    )
    refused(
        lambda: services.waste(
            stock.nurse,
            quantity_ug=1_000,
            draw_entry=drawn,
            witness_username="prescriber_a",
            witness_secret=code,
        ),
        field="witness",
    )


def test_a_wrong_totp_code_is_refused(stock, drawn):  # type: ignore[no-untyped-def]
    device = TOTPDevice.objects.create(user=stock.world.prescriber, name="phone", confirmed=True)
    valid = {
        f"{totp(device.bin_key, device.step, device.t0, device.digits, drift):06d}"
        for drift in range(-3, 4)
    } | {current_code(device)}
    wrong = next(code for code in ("123456", "654321", "000000") if code not in valid)
    refused(
        lambda: services.waste(
            stock.nurse,
            quantity_ug=2_500,
            draw_entry=drawn,
            witness_username="prescriber_a",
            witness_secret=wrong,
        ),
        field="witness",
    )


def test_an_unconfirmed_device_code_is_refused(stock, drawn):  # type: ignore[no-untyped-def]
    device = TOTPDevice.objects.create(user=stock.world.prescriber, name="new", confirmed=False)
    refused(
        lambda: services.waste(
            stock.nurse,
            quantity_ug=2_500,
            draw_entry=drawn,
            witness_username="prescriber_a",
            witness_secret=current_code(device),
        ),
        field="witness",
    )


def test_the_actor_cannot_witness_their_own_waste(stock, drawn):  # type: ignore[no-untyped-def]
    refused(
        lambda: services.waste(
            stock.nurse, quantity_ug=2_500, draw_entry=drawn, **witness(stock.world.nurse)
        ),
        field="witness",
        match="someone other",
    )


@pytest.mark.parametrize("who", ["front_desk", "auditor", "admin_b", "prescriber_b"])
def test_a_witness_must_be_a_clinician_or_admin_of_this_clinic(stock, vial, who):  # type: ignore[no-untyped-def]
    user = {
        "admin_b": stock.world.admin_b,
        "prescriber_b": stock.world.prescriber_b,
    }.get(who) or stock.user(who)
    refused(
        lambda: services.waste(stock.nurse, quantity_ug=2_500, container=vial, **witness(user)),
        field="witness",
        match="of this clinic",
    )


@pytest.mark.parametrize("role", [Role.PRESCRIBER, Role.NURSE, Role.CLINIC_ADMIN])
def test_any_clinician_or_admin_other_than_the_actor_may_witness(stock, vial, role):  # type: ignore[no-untyped-def]
    actor = stock.prescriber if role == Role.NURSE else stock.nurse
    entry = services.waste(actor, quantity_ug=2_500, container=vial, **witness(stock.user(role)))
    assert entry.witness_id == stock.user(role).pk and entry.delta_ug == -2_500


def destroy(stock: Stock, container: Container, first, second):  # type: ignore[no-untyped-def]
    admin = stock.actor(Role.CLINIC_ADMIN)
    return services.destroy(
        admin,
        container,
        quantity_ug=container.balance_ug,
        method="reverse distributor",
        place="clinic",
        reason="expired",
        witnesses=(first, second),
    )


def test_destruction_needs_two_different_witnesses(stock, vial):  # type: ignore[no-untyped-def]
    nurse = (stock.world.nurse.username, PASSWORD)
    refused(lambda: destroy(stock, vial, nurse, nurse), field="witness", match="two different")
    refused(
        lambda: destroy(stock, vial, nurse, (stock.world.prescriber.username, "wrong")),
        field="witness",
    )
    refused(
        lambda: destroy(stock, vial, nurse, (stock.user(Role.FRONT_DESK).username, PASSWORD)),
        field="witness",
    )
    refused(  # the actor (the clinic admin) cannot be one of them
        lambda: destroy(stock, vial, nurse, (stock.user(Role.CLINIC_ADMIN).username, PASSWORD)),
        field="witness",
    )
    entry = destroy(stock, vial, nurse, (stock.world.prescriber.username, PASSWORD))
    assert (entry.witness_id, entry.second_witness_id) == (
        stock.world.nurse.pk,
        stock.world.prescriber.pk,
    )
    assert entry.detail["form_41"]["quantity_mg"] == "500"
    vial.refresh_from_db()
    assert vial.balance_ug == 0 and vial.closed_at is not None
    verify_passes()


# --- bad input stores nothing ------------------------------------------------------------------


def receive_args(stock: Stock, **changes):  # type: ignore[no-untyped-def]
    today = timezone.localdate()
    args = {
        "product": stock.ketamine,
        "lot_number": "K200",
        "expiry": today + timedelta(days=200),
        "supplier": stock.supplier,
        "invoice_number": "INV-2",
        "received_on": today,
        "containers": 3,
        "location": stock.safe,
    }
    return {**args, **changes}


def test_a_receipt_needs_the_suppliers_dea_number(stock):  # type: ignore[no-untyped-def]
    refused(
        lambda: services.receive(stock.nurse, **receive_args(stock, supplier=None)),
        field="supplier",
    )
    blank = Supplier.objects.create(clinic=stock.clinic, name="X", address="Y", dea_number="")
    refused(
        lambda: services.receive(stock.nurse, **receive_args(stock, supplier=blank)),
        field="supplier",
    )
    assert not Lot.objects.filter(lot_number="K200").exists()


def test_a_receipt_from_another_clinics_supplier_is_refused(stock):  # type: ignore[no-untyped-def]
    admin_b = Actor.system(stock.world.clinic_b, user=stock.world.admin_b, label="test")
    theirs = services.create_supplier(admin_b, name="B Supply", address="Z", dea_number="RS1234563")
    refused(
        lambda: services.receive(stock.nurse, **receive_args(stock, supplier=theirs)),
        field="supplier",
        match="Not part of this clinic",
    )


def test_a_supplier_is_not_created_without_a_valid_dea_number(stock):  # type: ignore[no-untyped-def]
    for number in ("", "   ", "RS1234567"):
        with pytest.raises(ValidationError):
            services.create_supplier(stock.nurse, name="X", address="Y", dea_number=number)
    assert Supplier.objects.count() == 1


@pytest.mark.parametrize("days", [0, -1, -400])
def test_a_lot_expired_on_arrival_is_refused(stock, days):  # type: ignore[no-untyped-def]
    today = timezone.localdate()
    refused(
        lambda: services.receive(
            stock.nurse, **receive_args(stock, expiry=today + timedelta(days=days))
        ),
        field="expiry",
    )


def test_a_receipt_dated_in_the_future_is_refused(stock):  # type: ignore[no-untyped-def]
    tomorrow = timezone.localdate() + timedelta(days=1)
    refused(
        lambda: services.receive(stock.nurse, **receive_args(stock, received_on=tomorrow)),
        field="received_on",
    )


def test_more_of_a_lot_with_another_expiry_is_refused(stock, vial):  # type: ignore[no-untyped-def]
    lot = vial.lot
    refused(
        lambda: services.receive(
            stock.nurse,
            **receive_args(stock, lot_number=lot.lot_number, expiry=lot.expiry + timedelta(days=1)),
        ),
        field="expiry",
    )


def test_a_back_dated_receipt_in_the_clinics_time_zone_verifies(stock):  # type: ignore[no-untyped-def]
    """During a request the clinic's time zone is active; the receipt's `at` (midnight of the
    receipt date there) must hash the same once read back in UTC."""
    with timezone.override(ZoneInfo("America/New_York")):
        received_on = timezone.localdate() - timedelta(days=3)
        container, _ = stock.receive(2, received_on=received_on)
        draw = services.draw(
            stock.nurse,
            patient=stock.patient,
            quantity_ug=35 * MG,
            container=container,
            at=timezone.localtime() - timedelta(minutes=20),
        )
    entry = LedgerEntry.objects.filter(kind=EntryKind.RECEIPT).first()
    assert timezone.localtime(entry.at, ZoneInfo("America/New_York")).date() == received_on
    assert draw.at < draw.recorded_at
    verify_passes()


@pytest.mark.parametrize("days", [0, 1, 30])
def test_a_draw_from_an_expired_lot_is_refused(stock, vial, days):  # type: ignore[no-untyped-def]
    Lot.objects.filter(pk=vial.lot_id).update(expiry=timezone.localdate() - timedelta(days=days))
    vial = Container.objects.get(pk=vial.pk)
    refused(
        lambda: services.draw(
            stock.nurse, patient=stock.patient, quantity_ug=35 * MG, container=vial
        ),
        field="container",
        match="expired",
    )
    refused(
        lambda: services.draw(
            stock.nurse,
            patient=stock.patient,
            quantity_ug=35 * MG,
            product=stock.ketamine,
            location=stock.safe,
        ),
        field="quantity",
    )


def test_a_draw_by_product_takes_the_first_expiring_opened_container(stock):  # type: ignore[no-untyped-def]
    today = timezone.localdate()
    [late] = stock.receive(1, lot_number="LATE", expiry=today + timedelta(days=300))
    soon_sealed, soon_opened = stock.receive(
        2, lot_number="SOON", expiry=today + timedelta(days=30)
    )
    services.draw(stock.nurse, patient=stock.patient, quantity_ug=1 * MG, container=soon_opened)
    picked = services.draw(
        stock.nurse,
        patient=stock.patient,
        quantity_ug=35 * MG,
        product=stock.ketamine,
        location=stock.safe,
    )
    assert picked.container_id == soon_opened.pk
    picked = services.draw(
        stock.nurse,
        patient=stock.patient,
        quantity_ug=480 * MG,
        product=stock.ketamine,
        location=stock.safe,
    )
    assert picked.container_id == soon_sealed.pk  # the opened one no longer holds 480 mg
    assert late.pk not in {picked.container_id}


@pytest.mark.parametrize(
    "convert",
    [
        lambda: rules.mg_to_ug("2.5001"),
        lambda: rules.ml_to_ug("0.755", 50),
        lambda: rules.mg_to_ug("0"),
        lambda: rules.mg_to_ug("-35"),
        lambda: rules.ml_to_ug("0", 50),
        lambda: rules.ml_to_ug("-0.5", 50),
    ],
    ids=["mg-too-precise", "ml-too-precise", "zero-mg", "negative-mg", "zero-ml", "negative-ml"],
)
def test_more_precision_than_the_unit_allows_or_no_amount_is_refused(stock, vial, convert):  # type: ignore[no-untyped-def]
    """The form converts before the service runs; a refused conversion stores nothing."""
    before = snapshot()
    with pytest.raises(ValueError):
        services.draw(stock.nurse, patient=stock.patient, quantity_ug=convert(), container=vial)
    assert snapshot() == before


@pytest.mark.parametrize(
    "quantity",
    [Decimal("2500.5"), 2500.5, Decimal("2500"), 2500.0, True],
    ids=["decimal-fraction", "float-fraction", "decimal", "float", "bool"],
)
def test_a_quantity_that_is_not_whole_micrograms_is_refused(stock, vial, quantity):  # type: ignore[no-untyped-def]
    """A fraction of a µg used to be stored truncated on the entry while the hash and the
    container kept the fraction, and `ledger verify` then failed on a legitimate ledger."""
    refused(
        lambda: services.draw(
            stock.nurse, patient=stock.patient, quantity_ug=quantity, container=vial
        ),
        field="quantity",
    )
    refused(
        lambda: services.adjust(stock.nurse, vial, delta_ug=quantity, reason="count"),
        field="quantity",
    )
    verify_passes()


@pytest.mark.parametrize("quantity", [0, -1, -35 * MG])
def test_a_zero_or_negative_quantity_is_refused_everywhere(stock, vial, drawn, quantity):  # type: ignore[no-untyped-def]
    vial.refresh_from_db()
    refused(
        lambda: services.draw(
            stock.nurse, patient=stock.patient, quantity_ug=quantity, container=vial
        ),
        field="quantity",
    )
    refused(lambda: services.administer(stock.nurse, drawn, quantity), field="quantity")
    refused(
        lambda: services.waste(
            stock.nurse, quantity_ug=quantity, draw_entry=drawn, **witness(stock.world.prescriber)
        ),
        field="quantity",
    )
    refused(
        lambda: services.waste(
            stock.nurse, quantity_ug=quantity, container=vial, **witness(stock.world.prescriber)
        ),
        field="quantity",
    )
    refused(
        lambda: destroy_quantity(stock, vial, quantity),
        field="quantity",
    )
    refused(
        lambda: services.report_loss(
            stock.nurse,
            vial,
            quantity_ug=quantity,
            kind="loss",
            discovered_at=timezone.now(),
            description="spilled",
        ),
        field="quantity",
    )
    refused(
        lambda: services.adjust(stock.nurse, vial, delta_ug=0, reason="count"), field="quantity"
    )


def destroy_quantity(stock: Stock, container: Container, quantity: int):  # type: ignore[no-untyped-def]
    admin = stock.actor(Role.CLINIC_ADMIN)
    return services.destroy(
        admin,
        container,
        quantity_ug=quantity,
        method="m",
        place="p",
        reason="r",
        witnesses=(
            (stock.world.nurse.username, PASSWORD),
            (stock.world.prescriber.username, PASSWORD),
        ),
    )


def test_nothing_goes_below_zero(stock, vial):  # type: ignore[no-untyped-def]
    refused(
        lambda: services.draw(
            stock.nurse, patient=stock.patient, quantity_ug=VIAL_UG + 1, container=vial
        ),
        field="quantity",
        match="below zero",
    )
    refused(
        lambda: services.adjust(stock.nurse, vial, delta_ug=-VIAL_UG - 1, reason="count"),
        field="quantity",
    )
    refused(lambda: destroy_quantity(stock, vial, VIAL_UG + 1), field="quantity")
    services.draw(stock.nurse, patient=stock.patient, quantity_ug=VIAL_UG, container=vial)
    vial.refresh_from_db()
    assert vial.balance_ug == 0 and vial.closed_at is not None
    refused(lambda: services.transfer(stock.nurse, vial, stock.cart))
    refused(
        lambda: services.draw(stock.nurse, patient=stock.patient, quantity_ug=1, container=vial),
        field="quantity",
    )


def test_administering_more_than_was_drawn_is_refused(stock, drawn):  # type: ignore[no-untyped-def]
    refused(lambda: services.administer(stock.nurse, drawn, 35 * MG + 1), field="quantity")
    services.administer(stock.nurse, drawn, 30 * MG)
    refused(
        lambda: services.administer(stock.nurse, drawn, 5 * MG + 1),
        field="quantity",
        match="Only 5 mg",
    )
    refused(
        lambda: services.waste(
            stock.nurse, quantity_ug=5 * MG + 1, draw_entry=drawn, **witness(stock.world.prescriber)
        ),
        field="quantity",
    )
    services.waste(
        stock.nurse, quantity_ug=5 * MG, draw_entry=drawn, **witness(stock.world.prescriber)
    )
    refused(lambda: services.administer(stock.nurse, drawn, 1), field="quantity")
    assert services.undispensed_ug(drawn) == 0
    verify_passes()


def test_administration_must_name_a_draw(stock, vial, drawn):  # type: ignore[no-untyped-def]
    receipt = LedgerEntry.objects.get(kind=EntryKind.RECEIPT)
    refused(lambda: services.administer(stock.nurse, receipt, 1_000))
    administration = services.administer(stock.nurse, drawn, 1_000)
    refused(lambda: services.administer(stock.nurse, administration, 1_000))


# --- reversals -----------------------------------------------------------------------------------


def test_a_draw_with_administrations_is_reversed_only_after_them(stock, vial, drawn):  # type: ignore[no-untyped-def]
    administration = services.administer(stock.nurse, drawn, 30 * MG)
    waste = services.waste(
        stock.nurse, quantity_ug=5 * MG, draw_entry=drawn, **witness(stock.world.prescriber)
    )
    refused(lambda: services.reverse(stock.prescriber, drawn, "wrong vial"), match="first")
    services.reverse(stock.prescriber, administration, "wrong patient")
    refused(lambda: services.reverse(stock.prescriber, drawn, "wrong vial"), match="first")
    services.reverse(stock.prescriber, waste, "not wasted")
    reversal = services.reverse(stock.prescriber, drawn, "wrong vial")
    assert reversal.delta_ug == 35 * MG and reversal.reverses_id == drawn.pk
    vial.refresh_from_db()
    assert vial.balance_ug == VIAL_UG
    refused(lambda: services.administer(stock.nurse, drawn, 1_000), match="reversed")
    verify_passes()


def test_an_entry_is_reversed_once_and_a_reversal_never(stock, vial, drawn):  # type: ignore[no-untyped-def]
    reversal = services.reverse(stock.prescriber, drawn, "wrong patient")
    refused(lambda: services.reverse(stock.prescriber, drawn, "again"), match="already reversed")
    refused(
        lambda: services.reverse(stock.prescriber, reversal, "undo the undo"),
        match="cannot itself be reversed",
    )
    assert LedgerEntry.objects.filter(kind=EntryKind.REVERSAL).count() == 1
    verify_passes()


def test_a_reversal_needs_its_reason(stock, drawn):  # type: ignore[no-untyped-def]
    refused(lambda: services.reverse(stock.prescriber, drawn, "  "), field="reason")


def test_a_receipt_is_not_reversed_once_stock_was_used(stock, vial, drawn):  # type: ignore[no-untyped-def]
    receipt = LedgerEntry.objects.get(kind=EntryKind.RECEIPT)
    refused(
        lambda: services.reverse(stock.prescriber, receipt, "never arrived"),
        field="quantity",
        match="below zero",
    )


def test_reversing_a_transfer_puts_the_container_back(stock, vial):  # type: ignore[no-untyped-def]
    move = services.transfer(stock.nurse, vial, stock.cart)
    assert Container.objects.get(pk=vial.pk).location == stock.cart
    back = services.reverse(stock.prescriber, move, "never left the safe")
    assert (back.from_location, back.to_location) == (stock.cart, stock.safe)
    assert Container.objects.get(pk=vial.pk).location == stock.safe
    verify_passes()


def test_an_earlier_move_is_not_reversed_after_the_container_moved_on(stock, vial):  # type: ignore[no-untyped-def]
    """Reversing the first of two transfers used to put the vial back in the safe while it
    sat in the second cart, recording it leaving a cart it was not in."""
    admin = stock.actor(Role.CLINIC_ADMIN)
    cart_2 = services.create_location(admin, "Cart 2", "cart")
    first = services.transfer(stock.nurse, vial, stock.cart)
    services.transfer(stock.nurse, Container.objects.get(pk=vial.pk), cart_2)
    receipt = LedgerEntry.objects.get(kind=EntryKind.RECEIPT)
    refused(lambda: services.reverse(stock.prescriber, first, "wrong cart"), match="moved since")
    refused(lambda: services.reverse(stock.prescriber, receipt, "not ours"), match="moved since")
    assert Container.objects.get(pk=vial.pk).location == cart_2


def test_an_emptied_vial_is_closed_and_a_reversal_reopens_it(stock, vial):  # type: ignore[no-untyped-def]
    last = services.draw(stock.nurse, patient=stock.patient, quantity_ug=VIAL_UG, container=vial)
    vial.refresh_from_db()
    assert vial.balance_ug == 0 and vial.closed_at == last.at
    services.reverse(stock.prescriber, last, "drawn from the wrong vial")
    vial.refresh_from_db()
    assert vial.balance_ug == VIAL_UG and vial.closed_at is None and vial.opened_at is not None
    verify_passes()


def test_a_waste_from_the_container_reversed_puts_it_back(stock, vial):  # type: ignore[no-untyped-def]
    waste = services.waste(
        stock.nurse, quantity_ug=2_500, container=vial, **witness(stock.world.prescriber)
    )
    assert Container.objects.get(pk=vial.pk).balance_ug == VIAL_UG - 2_500
    services.reverse(stock.prescriber, waste, "wasted the wrong vial")
    assert Container.objects.get(pk=vial.pk).balance_ug == VIAL_UG
    verify_passes()


# --- counts ---------------------------------------------------------------------------------------


def test_a_count_is_blind_until_both_have_counted(stock, vial):  # type: ignore[no-untyped-def]
    first, second = stock.nurse, stock.prescriber
    count = services.start_count(first, stock.safe)
    result = services.submit_count(first, count, {vial.lot_id: VIAL_UG})
    assert not result.complete and result.discrepancies == []
    assert list(CountLine.objects.filter(count=count).values_list("expected_ug", flat=True)) == [
        None
    ]
    assert Count.objects.get(pk=count.pk).status == "open"
    refused(
        lambda: services.submit_count(first, count, {vial.lot_id: VIAL_UG}), match="already entered"
    )
    result = services.submit_count(second, count, {vial.lot_id: VIAL_UG})
    assert result.complete and result.discrepancies == []
    assert set(CountLine.objects.filter(count=count).values_list("expected_ug", flat=True)) == {
        VIAL_UG
    }
    assert Count.objects.get(pk=count.pk).status == "done"
    assert not Discrepancy.objects.exists()
    refused(lambda: services.submit_count(stock.actor(Role.CLINIC_ADMIN), count, {}))


def test_a_count_that_misses_a_lot_is_refused(stock, vial):  # type: ignore[no-untyped-def]
    [spray] = stock.receive(1, product=stock.spray, lot_number="S1")
    count = services.start_count(stock.nurse, stock.safe)
    refused(
        lambda: services.submit_count(stock.nurse, count, {vial.lot_id: VIAL_UG}), match="every lot"
    )
    refused(lambda: services.submit_count(stock.nurse, count, {}), match="every lot")
    refused(
        lambda: services.submit_count(stock.nurse, count, {vial.lot_id: -1, spray.lot_id: 84_000}),
        match="negative",
    )
    services.submit_count(stock.nurse, count, {vial.lot_id: VIAL_UG, spray.lot_id: 84_000})


def test_one_count_per_location_at_a_time(stock, vial):  # type: ignore[no-untyped-def]
    services.start_count(stock.nurse, stock.safe)
    refused(lambda: services.start_count(stock.prescriber, stock.safe), match="under way")
    services.start_count(stock.prescriber, stock.cart)


def test_a_count_of_an_empty_location_completes(stock, vial):  # type: ignore[no-untyped-def]
    """An empty cart is counted too ("nothing here"). Such a count has no lines, and it used
    to stay open for ever while the same person could 'count' it again and again."""
    count = services.start_count(stock.nurse, stock.cart)
    assert not services.submit_count(stock.nurse, count, {}).complete
    refused(lambda: services.submit_count(stock.nurse, count, {}), match="already entered")
    result = services.submit_count(stock.prescriber, count, {})
    assert result.complete and result.discrepancies == []
    services.start_count(stock.nurse, stock.cart)  # and the next count can begin


def test_a_count_takes_no_figure_for_a_lot_the_location_does_not_keep(stock, vial):  # type: ignore[no-untyped-def]
    """A vial found where the book does not have it is not counted here: the count of the
    location that books it comes up short, and that discrepancy's resolution explains it."""
    count = services.start_count(stock.nurse, stock.cart)
    refused(
        lambda: services.submit_count(stock.nurse, count, {vial.lot_id: VIAL_UG}),
        match="Lot K100 is not kept in Cart 1",
    )
    safe = services.start_count(stock.nurse, stock.safe)
    services.submit_count(stock.nurse, safe, {vial.lot_id: 0})
    result = services.submit_count(stock.prescriber, safe, {vial.lot_id: 0})
    [discrepancy] = result.discrepancies
    assert (discrepancy.expected_ug, discrepancy.location) == (VIAL_UG, stock.safe)


def test_one_ml_short_opens_a_discrepancy_until_it_is_explained(stock, vial, drawn):  # type: ignore[no-untyped-def]
    book = VIAL_UG - 35 * MG
    one_ml = rules.ml_to_ug("1", 50)
    assert one_ml == 50_000
    count = services.start_count(stock.nurse, stock.safe)
    services.submit_count(stock.nurse, count, {vial.lot_id: book})
    result = services.submit_count(stock.prescriber, count, {vial.lot_id: book - one_ml})
    [discrepancy] = result.discrepancies
    assert discrepancy.is_open
    assert discrepancy.expected_ug == book
    assert discrepancy.counted == {
        str(stock.world.nurse.pk): book,
        str(stock.world.prescriber.pk): book - one_ml,
    }
    # A later count that agrees does not close it: only an explanation does.
    later = services.start_count(stock.nurse, stock.safe)
    services.submit_count(stock.nurse, later, {vial.lot_id: book})
    assert services.submit_count(stock.prescriber, later, {vial.lot_id: book}).discrepancies == []
    assert Discrepancy.objects.get(pk=discrepancy.pk).is_open
    admin = stock.actor(Role.CLINIC_ADMIN)
    refused(lambda: services.resolve_discrepancy(admin, discrepancy, "   "), field="resolution")
    assert Discrepancy.objects.get(pk=discrepancy.pk).is_open
    resolved = services.resolve_discrepancy(
        admin, discrepancy, "Recount: prescriber misread the vial."
    )
    assert not resolved.is_open and resolved.resolved_by == stock.user(Role.CLINIC_ADMIN)
    assert resolved.resolution == "Recount: prescriber misread the vial."
    refused(lambda: services.resolve_discrepancy(admin, discrepancy, "again"), match="already")
    verify_passes()


def test_equal_figures_that_disagree_with_the_book_still_open_a_discrepancy(stock, vial):  # type: ignore[no-untyped-def]
    count = services.start_count(stock.nurse, stock.safe)
    services.submit_count(stock.nurse, count, {vial.lot_id: VIAL_UG - 50_000})
    result = services.submit_count(stock.prescriber, count, {vial.lot_id: VIAL_UG - 50_000})
    [discrepancy] = result.discrepancies
    assert discrepancy.expected_ug == VIAL_UG and discrepancy.is_open


def test_loss_deadlines_run_in_the_clinics_days_whatever_zone_is_active(stock, vial):  # type: ignore[no-untyped-def]
    """Thursday 21:30 in New York is already Friday in UTC (a CLI's zone): the notice is
    still due on Friday, not on Monday."""
    thursday_night = datetime(2025, 3, 6, 21, 30, tzinfo=ZoneInfo("America/New_York"))
    with timezone.override(ZoneInfo("UTC")):
        report = services.report_loss(
            stock.nurse,
            vial,
            quantity_ug=2_500,
            kind="loss",
            discovered_at=thursday_night,
            description="vial dropped",
        )
    assert report.notice_due.isoformat() == "2025-03-07"
    assert report.form_106_due.isoformat() == "2025-04-20"


def test_a_loss_report_has_its_deadlines(stock, vial):  # type: ignore[no-untyped-def]
    friday = datetime(2025, 3, 7, 16, 30, tzinfo=ZoneInfo("America/New_York"))
    report = services.report_loss(
        stock.nurse,
        vial,
        quantity_ug=2_500,
        kind="theft",
        discovered_at=friday,
        description="vial short after the weekend count",
    )
    assert report.notice_due.isoformat() == "2025-03-10"  # Monday
    assert report.form_106_due.isoformat() == "2025-04-21"  # 45 days
    assert report.entry.kind == EntryKind.LOSS and report.entry.delta_ug == -2_500
    verify_passes()


# --- a container object loaded before someone else changed it --------------------------------


def test_a_transfer_starts_where_the_container_is_now(stock, vial):  # type: ignore[no-untyped-def]
    """The page that offers the transfer loaded the vial in the safe; meanwhile a colleague
    moved it to the cart. The transfer records it leaving the cart, not the safe."""
    admin = stock.actor(Role.CLINIC_ADMIN)
    cart_2 = services.create_location(admin, "Cart 2", "cart")
    loaded = Container.objects.get(pk=vial.pk)
    services.transfer(stock.prescriber, Container.objects.get(pk=vial.pk), stock.cart)
    entry = services.transfer(stock.nurse, loaded, cart_2)
    assert (entry.from_location, entry.to_location) == (stock.cart, cart_2)
    refused(
        lambda: services.transfer(stock.nurse, Container.objects.get(pk=vial.pk), cart_2),
        match="already in",
    )


def test_a_return_takes_what_the_container_holds_now(stock, vial):  # type: ignore[no-untyped-def]
    loaded = Container.objects.get(pk=vial.pk)
    services.draw(
        stock.prescriber,
        patient=stock.patient,
        quantity_ug=35 * MG,
        container=Container.objects.get(pk=vial.pk),
    )
    entry = services.return_to_supplier(
        stock.actor(Role.CLINIC_ADMIN),
        loaded,
        recipient_name="Rx Wholesale",
        recipient_address="2 Depot Rd",
        recipient_dea=SUPPLIER_DEA,
        reason="recall",
    )
    assert entry.quantity_ug == VIAL_UG - 35 * MG
    assert Container.objects.get(pk=vial.pk).balance_ug == 0
    verify_passes()
