"""The controlled-substance ledger pages: every write goes through the services, bad input is
refused at its field and stores nothing, counts stay blind, and the demo ledger verifies."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from ketaclinic.accounts.models import Clinic, User
from ketaclinic.accounts.roles import Role
from ketaclinic.accounts.services import create_clinic
from ketaclinic.audit.context import Actor
from ketaclinic.audit.models import AuditEntry
from ketaclinic.inventory import services
from ketaclinic.inventory.models import (
    Container,
    Count,
    CountStatus,
    Discrepancy,
    EntryKind,
    Inventory,
    LedgerEntry,
    LossReport,
    Lot,
    Product,
    StorageLocation,
    Supplier,
)
from ketaclinic.inventory.verify import verify_clinic
from tests.conftest import PASSWORD, make_staff, measure, register, signed_in

SUPPLIER_DEA = "RC0123454"


@dataclass
class Ledger:
    clinic: Clinic
    ketamine: Product
    kit: Product
    supplier: Supplier
    safe: StorageLocation
    cart: StorageLocation
    good: Lot  # 10 vials in the safe, expires in a year
    soon: Lot  # 2 vials in the safe, expires in 30 days
    old: Lot  # 1 vial in the safe, expired yesterday
    kits: Lot  # 2 kits of 2 x 28 mg in the cart
    patient: object


def actor(clinic: Clinic, user: User) -> Actor:
    return Actor.system(clinic, user=user, label="test")


@pytest.fixture
def ledger(world) -> Ledger:  # type: ignore[no-untyped-def]
    return make_ledger(world)


def make_ledger(world) -> Ledger:  # type: ignore[no-untyped-def]
    """Clinic A's ledger set up through the services (used by test_reports.py too)."""
    clinic = world.clinic_a
    admin = actor(clinic, world.staff_a[Role.CLINIC_ADMIN])
    ketamine = services.create_product(
        admin,
        drug="ketamine",
        name="Ketamine HCl 50 mg/mL, 10 mL vial",
        ndc="42023-0114-10",
        form="injection",
        concentration_mg_per_ml=Decimal("50"),
        container_volume_ml=Decimal("10"),
    )
    kit = services.create_product(
        admin,
        drug="esketamine",
        name="Spravato 56 mg kit",
        ndc="50458-0028-02",
        form="nasal_spray",
        device_mg=28,
        devices_per_container=2,
    )
    supplier = services.create_supplier(
        admin, name="Acme Distribution", address="1 Depot Rd\nColumbus, OH", dea_number=SUPPLIER_DEA
    )
    safe = services.create_location(admin, "Main safe", "safe")
    cart = services.create_location(admin, "Cart 1", "cart")
    # The clinic's own day (New York), as the pages count days to expiry from it.
    today = timezone.localtime(timezone.now(), ZoneInfo(clinic.time_zone)).date()

    def receive(lot: str, expiry, containers: int, received_on=today, product=ketamine, where=safe):  # type: ignore[no-untyped-def]
        services.receive(
            admin,
            product=product,
            lot_number=lot,
            expiry=expiry,
            supplier=supplier,
            invoice_number=f"INV-{lot}",
            received_on=received_on,
            containers=containers,
            location=where,
        )
        return Lot.objects.get(lot_number=lot)

    good = receive("GOOD1", today + timedelta(days=365), 10)
    soon = receive("SOON1", today + timedelta(days=30), 2)
    old = receive("OLD1", today - timedelta(days=1), 1, received_on=today - timedelta(days=100))
    kits = receive("KIT1", today + timedelta(days=200), 2, product=kit, where=cart)
    patient = register(
        clinic,
        world.nurse,
        given_name="Ann",
        family_name="Smith",
        address_line1="1 Elm St",
        city="Springfield",
        state="IL",
        postal_code="62701",
    )
    measure(patient, world.nurse, weight="70.0")
    return Ledger(clinic, ketamine, kit, supplier, safe, cart, good, soon, old, kits, patient)


def entries() -> int:
    return LedgerEntry.objects.count()


def field_errors(response, name: str) -> list[str]:  # type: ignore[no-untyped-def]
    form = response.context["form"]
    return [str(e) for e in form.errors.get(name, [])]


def draw_data(ledger: Ledger, **overrides) -> dict[str, str]:  # type: ignore[no-untyped-def]
    data = {
        "patient_mrn": ledger.patient.mrn,  # type: ignore[attr-defined]
        "product": str(ledger.ketamine.pk),
        "location": str(ledger.safe.pk),
        "container": "",
        "quantity": "37.5",
        "unit": "mg",
    }
    data.update(overrides)
    return data


def a_draw(ledger: Ledger, user: User, ug: int = 37_500):  # type: ignore[no-untyped-def]
    return services.draw(
        actor(ledger.clinic, user),
        patient=ledger.patient,  # type: ignore[arg-type]
        quantity_ug=ug,
        product=ledger.ketamine,
        location=ledger.safe,
    )


# --- stock and set-up --------------------------------------------------------------------------


def test_stock_shows_each_location_and_lot_with_expiry_warnings(world, ledger):  # type: ignore[no-untyped-def]
    response = signed_in(world.staff_a[Role.AUDITOR]).get(reverse("ledger:stock"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Main safe" in page and "Cart 1" in page
    assert "GOOD1" in page and "5000 mg" in page and "100 mL" in page
    assert 'class="badge danger expiry-expired">Expired' in page  # OLD1
    assert 'class="badge warn expiry-soon">Expires in 30 days' in page  # SOON1
    assert "4 devices" in page  # two 56 mg kits in the cart
    stock = {
        (r.location.name, r.lot.lot_number): r
        for loc in response.context["stock"]
        for r in loc.rows
    }
    assert stock[("Main safe", "OLD1")].status == "expired"
    assert stock[("Main safe", "SOON1")].status == "soon"
    assert stock[("Main safe", "GOOD1")].status == "ok"
    assert stock[("Main safe", "GOOD1")].sealed == 10
    # No patient data on the stock page: nothing audited.
    assert not AuditEntry.objects.filter(object_type__startswith="ledger").exists()


def test_front_desk_cannot_see_the_ledger(world, ledger):  # type: ignore[no-untyped-def]
    client = signed_in(world.staff_a[Role.FRONT_DESK])
    assert client.get(reverse("ledger:stock")).status_code == 403
    assert b"Ledger" not in client.get(reverse("patients:list")).content


def test_set_up_pages_create_products_suppliers_and_locations(world, ledger):  # type: ignore[no-untyped-def]
    client = signed_in(world.staff_a[Role.CLINIC_ADMIN])
    r = client.post(
        reverse("ledger:product_create"),
        {
            "drug": "ketamine",
            "name": "Ketamine 100 mg/mL, 5 mL",
            "ndc": "0143-9508-10",
            "form": "injection",
            "concentration_mg_per_ml": "100",
            "container_volume_ml": "5",
        },
    )
    assert r.status_code == 302
    assert Product.objects.get(ndc="0143-9508-10").container_content_ug == 500_000
    r = client.post(
        reverse("ledger:product_create"),
        {
            "drug": "esketamine",
            "name": "Kit 84",
            "ndc": "50458-0028-03",
            "form": "nasal_spray",
            "device_mg": "28",
            "devices_per_container": "3",
        },
    )
    assert r.status_code == 302
    assert Product.objects.get(ndc="50458-0028-03").container_content_ug == 84_000
    r = client.post(
        reverse("ledger:product_create"),
        {
            "drug": "ketamine",
            "name": "No volume",
            "ndc": "1",
            "form": "injection",
            "concentration_mg_per_ml": "50",
            "container_volume_ml": "10.001",
        },
    )
    assert r.status_code == 200
    assert field_errors(r, "container_volume_ml") == [
        "The vial volume takes at most 2 decimal places."
    ]
    r = client.post(
        reverse("ledger:supplier_create"),
        {"name": "Bad", "address": "x", "dea_number": "RC0123455"},
    )
    assert "fails the DEA check digit" in field_errors(r, "dea_number")[0]
    r = client.post(
        reverse("ledger:supplier_create"), {"name": "None", "address": "x", "dea_number": ""}
    )
    assert "DEA number is required" in field_errors(r, "dea_number")[0]
    assert not Supplier.objects.filter(name__in=["Bad", "None"]).exists()
    r = client.post(reverse("ledger:location_create"), {"name": "Cart 2", "kind": "cart"})
    assert r.status_code == 302
    r = client.post(reverse("ledger:location_create"), {"name": "Cart 2", "kind": "cart"})
    assert r.status_code == 200 and StorageLocation.objects.filter(name="Cart 2").count() == 1
    assert signed_in(world.nurse).get(reverse("ledger:product_create")).status_code == 403


# --- receipts ----------------------------------------------------------------------------------


def receipt_data(ledger: Ledger, **overrides) -> dict[str, str]:  # type: ignore[no-untyped-def]
    today = timezone.localdate()
    data = {
        "product": str(ledger.ketamine.pk),
        "lot_number": "NEW1",
        "expiry": (today + timedelta(days=400)).isoformat(),
        "containers": "10",
        "location": str(ledger.safe.pk),
        "supplier": str(ledger.supplier.pk),
        "new_supplier_name": "",
        "new_supplier_address": "",
        "new_supplier_dea": "",
        "invoice_number": "A-100",
        "received_on": today.isoformat(),
    }
    data.update(overrides)
    return data


def test_receiving_records_one_entry_per_container(world, ledger):  # type: ignore[no-untyped-def]
    before = entries()
    r = signed_in(world.staff_a[Role.CLINIC_ADMIN]).post(
        reverse("ledger:receive"), receipt_data(ledger)
    )
    assert r.status_code == 302
    lot = Lot.objects.get(lot_number="NEW1")
    assert lot.balance_ug == 5_000_000 and lot.containers.count() == 10
    receipts = LedgerEntry.objects.filter(lot=lot, kind=EntryKind.RECEIPT)
    assert receipts.count() == entries() - before == 10
    assert receipts.first().detail["supplier_dea"] == SUPPLIER_DEA  # type: ignore[union-attr]


def test_a_receipt_without_the_suppliers_dea_number_is_refused_and_stores_nothing(world, ledger):  # type: ignore[no-untyped-def]
    before = (entries(), Supplier.objects.count(), Lot.objects.count())
    r = signed_in(world.prescriber).post(
        reverse("ledger:receive"),
        receipt_data(
            ledger,
            supplier="",
            new_supplier_name="Nameless Pharma",
            new_supplier_address="2 Road",
            new_supplier_dea="",
        ),
    )
    assert r.status_code == 200
    assert field_errors(r, "new_supplier_dea") == [
        "The supplier's DEA number is required on every CIII receipt record (21 CFR 1304.22(c))."
    ]
    assert b"Nothing was saved." in r.content
    assert (entries(), Supplier.objects.count(), Lot.objects.count()) == before


def test_receipt_field_errors(world, ledger):  # type: ignore[no-untyped-def]
    client = signed_in(world.staff_a[Role.CLINIC_ADMIN])
    today = timezone.localdate()
    before = entries()
    r = client.post(
        reverse("ledger:receive"),
        receipt_data(
            ledger,
            supplier="",
            new_supplier_name="X",
            new_supplier_address="Y",
            new_supplier_dea="RC0123455",
        ),
    )
    assert "fails the DEA check digit" in field_errors(r, "new_supplier_dea")[0]
    r = client.post(reverse("ledger:receive"), receipt_data(ledger, expiry=today.isoformat()))
    assert field_errors(r, "expiry") == [
        "This lot is expired on arrival; do not receive it into stock."
    ]
    r = client.post(reverse("ledger:receive"), receipt_data(ledger, containers="-2"))
    assert field_errors(r, "containers") == ["Receive at least 1 container."]
    r = client.post(
        reverse("ledger:receive"),
        receipt_data(ledger, received_on=(today + timedelta(days=2)).isoformat()),
    )
    assert field_errors(r, "received_on") == ["The receipt date cannot be in the future."]
    # The same lot number again with another expiry: the service refuses, at the field.
    r = client.post(reverse("ledger:receive"), receipt_data(ledger, lot_number="GOOD1"))
    assert "is on record with expiry" in field_errors(r, "expiry")[0]
    assert entries() == before


def test_a_receipt_can_add_a_new_supplier_in_the_same_step(world, ledger):  # type: ignore[no-untyped-def]
    r = signed_in(world.prescriber).post(
        reverse("ledger:receive"),
        receipt_data(
            ledger,
            supplier="",
            new_supplier_name="Beta Wholesale",
            new_supplier_address="9 Dock St",
            new_supplier_dea="pc1234563",
        ),
    )
    assert r.status_code == 302
    supplier = Supplier.objects.get(name="Beta Wholesale")
    assert supplier.dea_number == "PC1234563"
    assert Lot.objects.get(lot_number="NEW1").supplier == supplier


# --- draw, administer, waste ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("quantity", "unit", "message"),
    [
        (
            "2.5001",
            "mg",
            "Quantity 2.5001 mg has more precision than the ledger's unit (1 µg = "
            "0.001 mg); round it to at most 3 decimal places.",
        ),
        (
            "0.755",
            "ml",
            "Quantity 0.755 mL is finer than a syringe measures (0.01 mL); round it "
            "to 2 decimal places.",
        ),
        ("-5", "mg", "Quantity must be more than 0 mg; got -5 mg."),
        ("0", "ml", "Quantity must be more than 0 mL; got 0 mL."),
        ("abc", "mg", "Quantity must be a number; got 'abc'."),
        (
            "1",
            "devices",
            "Ketamine HCl 50 mg/mL, 10 mL vial is a solution; enter the quantity in mg or mL.",
        ),
        (
            "600",
            "mg",
            "No unexpired Ketamine HCl 50 mg/mL, 10 mL vial container in Main safe holds 600 mg.",
        ),
    ],
)
def test_a_bad_draw_quantity_is_refused_at_its_field_and_stores_nothing(
    world, ledger, quantity, unit, message
):  # type: ignore[no-untyped-def]
    before = entries()
    r = signed_in(world.nurse).post(
        reverse("ledger:draw"), draw_data(ledger, quantity=quantity, unit=unit)
    )
    assert r.status_code == 200
    assert field_errors(r, "quantity") == [message]
    assert entries() == before


def test_a_draw_from_an_expired_lot_is_refused_at_the_container(world, ledger):  # type: ignore[no-untyped-def]
    expired = Container.objects.get(lot=ledger.old)
    before = entries()
    r = signed_in(world.nurse).post(
        reverse("ledger:draw"), draw_data(ledger, container=str(expired.pk))
    )
    assert r.status_code == 200
    assert field_errors(r, "container") == [
        f"Lot OLD1 expired on {ledger.old.expiry}; it cannot be drawn. Quarantine it for "
        "return or destruction."
    ]
    assert entries() == before
    # The pick list says so before anyone chooses it.
    assert "EXPIRED" in dict(r.context["form"].fields["container"].choices)[expired.pk]  # type: ignore[index]


def test_draw_takes_the_first_expiring_unexpired_lot_and_converts_ml(world, ledger):  # type: ignore[no-untyped-def]
    r = signed_in(world.nurse).post(
        reverse("ledger:draw"), draw_data(ledger, quantity="0.75", unit="ml")
    )
    assert r.status_code == 302
    draw = LedgerEntry.objects.get(kind=EntryKind.DRAW)
    assert r["Location"] == reverse("ledger:draw_detail", args=[draw.pk])
    assert draw.quantity_ug == 37_500
    assert draw.lot == ledger.soon  # expires in 30 days: before GOOD1, and OLD1 is expired
    assert draw.patient_id == ledger.patient.pk  # type: ignore[attr-defined]


def test_draw_errors_for_patient_and_kits(world, ledger):  # type: ignore[no-untyped-def]
    client = signed_in(world.nurse)
    r = client.post(reverse("ledger:draw"), draw_data(ledger, patient_mrn="NOPE"))
    assert field_errors(r, "patient_mrn") == ["No patient of this clinic has MRN NOPE."]
    kit = draw_data(ledger, product=str(ledger.kit.pk), location=str(ledger.cart.pk))
    r = client.post(reverse("ledger:draw"), {**kit, "quantity": "1", "unit": "ml"})
    assert field_errors(r, "quantity") == [
        "Spravato 56 mg kit is not a solution; enter the quantity in mg or devices."
    ]
    r = client.post(reverse("ledger:draw"), {**kit, "quantity": "30", "unit": "mg"})
    assert field_errors(r, "quantity") == [
        "Spravato 56 mg kit is used in whole 28 mg devices; 30 mg is not a whole number of devices."
    ]
    assert entries() == LedgerEntry.objects.filter(kind=EntryKind.RECEIPT).count()
    r = client.post(reverse("ledger:draw"), {**kit, "quantity": "2", "unit": "devices"})
    assert r.status_code == 302
    assert LedgerEntry.objects.get(kind=EntryKind.DRAW).quantity_ug == 56_000


def test_the_worked_example_draw_administer_and_witnessed_waste(world, ledger):  # type: ignore[no-untyped-def]
    """clinical.md §5.10: 35 mg given from a 500 mg vial, 2.5 mg residue wasted with a witness;
    the vial's balance 500 -> 462.5 mg."""
    nurse = signed_in(world.nurse)
    nurse.post(reverse("ledger:draw"), draw_data(ledger, quantity="37.5"))
    draw = LedgerEntry.objects.get(kind=EntryKind.DRAW)
    page = nurse.get(reverse("ledger:draw_detail", args=[draw.pk]))
    assert "37.5 mg (0.75 mL)" in page.content.decode()
    assert page.context["administer_form"] is not None and page.context["waste_form"] is not None

    r = nurse.post(
        reverse("ledger:draw_administer", args=[draw.pk]), {"quantity": "40", "unit": "mg"}
    )
    assert field_errors_of(r, "administer_form", "quantity") == [
        "Only 37.5 mg of this draw is left to administer; 40 mg is more."
    ]
    r = nurse.post(
        reverse("ledger:draw_administer", args=[draw.pk]), {"quantity": "0.70", "unit": "ml"}
    )
    assert r.status_code == 302

    waste = {
        "quantity": "2.5",
        "unit": "mg",
        "reason": "residue in syringe",
        "witness_username": world.prescriber.username,
        "witness_secret": "wrong",
    }
    r = nurse.post(reverse("ledger:draw_waste", args=[draw.pk]), waste)
    assert field_errors_of(r, "waste_form", "witness_username") == [
        "The witness's username and password (or code) did not match."
    ]
    r = nurse.post(
        reverse("ledger:draw_waste", args=[draw.pk]),
        {**waste, "witness_username": world.nurse.username, "witness_secret": PASSWORD},
    )
    assert field_errors_of(r, "waste_form", "witness_username") == [
        "The witness must be someone other than the person wasting."
    ]
    r = nurse.post(
        reverse("ledger:draw_waste", args=[draw.pk]),
        {
            **waste,
            "witness_username": world.staff_a[Role.FRONT_DESK].username,
            "witness_secret": PASSWORD,
        },
    )
    assert (
        "must be a prescriber, nurse or clinic admin"
        in field_errors_of(r, "waste_form", "witness_username")[0]
    )
    assert LedgerEntry.objects.filter(kind=EntryKind.WASTE).count() == 0

    r = nurse.post(
        reverse("ledger:draw_waste", args=[draw.pk]), {**waste, "witness_secret": PASSWORD}
    )
    assert r.status_code == 302
    wasted = LedgerEntry.objects.get(kind=EntryKind.WASTE)
    assert (wasted.quantity_ug, wasted.witness, wasted.witness_method) == (
        2_500,
        world.prescriber,
        "password",
    )
    container = draw.container
    container.refresh_from_db()
    assert container.balance_ug == 462_500
    page = nurse.get(reverse("ledger:draw_detail", args=[draw.pk])).content.decode()
    assert 'id="draw-complete"' in page and "Record administration" not in page
    assert verify_clinic(ledger.clinic.pk)[1] is None


def field_errors_of(response, form_name: str, field: str) -> list[str]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200
    return [str(e) for e in response.context[form_name].errors.get(field, [])]


def test_the_witness_can_sign_with_a_current_totp_code(world, ledger):  # type: ignore[no-untyped-def]
    draw = a_draw(ledger, world.nurse)
    device = TOTPDevice.objects.create(user=world.prescriber, name="phone", confirmed=True)
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    r = signed_in(world.nurse).post(
        reverse("ledger:draw_waste", args=[draw.pk]),
        {
            "quantity": "0.05",
            "unit": "ml",
            "witness_username": world.prescriber.username,
            "witness_secret": f"{totp.token():06d}",
        },
    )
    assert r.status_code == 302
    assert LedgerEntry.objects.get(kind=EntryKind.WASTE).witness_method == "totp"


def test_waste_from_a_container_transfer_return_destroy_and_adjust(world, ledger):  # type: ignore[no-untyped-def]
    vial = Container.objects.filter(lot=ledger.good).order_by("pk").first()
    nurse, admin = signed_in(world.nurse), signed_in(world.staff_a[Role.CLINIC_ADMIN])
    witness = {"witness_username": world.prescriber.username, "witness_secret": PASSWORD}

    r = nurse.post(
        reverse("ledger:transfer"), {"container": vial.pk, "to_location": ledger.safe.pk}
    )
    assert field_errors(r, "to_location") == [f"{vial.label} is already in Main safe."]
    r = nurse.post(
        reverse("ledger:transfer"), {"container": vial.pk, "to_location": ledger.cart.pk}
    )
    assert r.status_code == 302
    vial.refresh_from_db()
    assert vial.location == ledger.cart

    r = nurse.post(
        reverse("ledger:waste"),
        {"container": vial.pk, "quantity": "-1", "unit": "ml", "reason": "spill", **witness},
    )
    assert field_errors(r, "quantity") == ["Quantity must be more than 0 mL; got -1 mL."]
    r = nurse.post(
        reverse("ledger:waste"),
        {"container": vial.pk, "quantity": "1", "unit": "ml", "reason": "spill", **witness},
    )
    assert r.status_code == 302
    vial.refresh_from_db()
    assert vial.balance_ug == 450_000

    assert nurse.get(reverse("ledger:adjust")).status_code == 403
    r = admin.post(
        reverse("ledger:adjust"),
        {
            "container": vial.pk,
            "direction": "remove",
            "quantity": "2.5",
            "unit": "mg",
            "reason": "",
        },
    )
    assert field_errors(r, "reason") == ["This field is required."]
    r = admin.post(
        reverse("ledger:adjust"),
        {
            "container": vial.pk,
            "direction": "remove",
            "quantity": "2.5",
            "unit": "mg",
            "reason": "recount",
        },
    )
    assert r.status_code == 302
    assert LedgerEntry.objects.get(kind=EntryKind.ADJUSTMENT).delta_ug == -2_500

    other = Container.objects.filter(lot=ledger.good).order_by("pk")[1]
    destroy = {
        "container": other.pk,
        "quantity": "10",
        "unit": "ml",
        "reason": "broken",
        "method": "Rx Destroyer",
        "place": "Clinic",
        **witness,
        "second_witness_username": world.prescriber.username,
        "second_witness_secret": PASSWORD,
    }
    r = admin.post(reverse("ledger:destroy"), destroy)
    assert field_errors(r, "second_witness_username") == [
        "Destruction needs two different witnesses."
    ]
    r = admin.post(
        reverse("ledger:destroy"), {**destroy, "second_witness_username": world.nurse.username}
    )
    assert r.status_code == 302
    destroyed = LedgerEntry.objects.get(kind=EntryKind.DESTRUCTION)
    assert (destroyed.witness, destroyed.second_witness) == (world.prescriber, world.nurse)
    assert destroyed.detail["form_41"]["batch"] == "GOOD1"
    assert destroyed.detail["form_41"]["quantity_mg"] == "500"

    expired = Container.objects.get(lot=ledger.old)
    ret = {
        "container": expired.pk,
        "reason": "expired",
        "recipient_name": "Reverse Co",
        "recipient_address": "3 Way",
        "recipient_dea": "RC0123455",
    }
    r = admin.post(reverse("ledger:return"), ret)
    assert "fails the DEA check digit" in field_errors(r, "recipient_dea")[0]
    r = admin.post(reverse("ledger:return"), {**ret, "recipient_dea": SUPPLIER_DEA})
    assert r.status_code == 302
    expired.refresh_from_db()
    assert expired.balance_ug == 0 and expired.closed_at is not None
    assert verify_clinic(ledger.clinic.pk)[1] is None


def test_reverse_an_entry(world, ledger):  # type: ignore[no-untyped-def]
    draw = a_draw(ledger, world.nurse)
    url = reverse("ledger:entry_reverse", args=[draw.pk])
    assert signed_in(world.nurse).post(url, {"reason": "wrong patient"}).status_code == 403
    page = signed_in(world.nurse).get(reverse("ledger:entry", args=[draw.pk])).content.decode()
    assert "Reverse this entry" not in page
    admin = signed_in(world.staff_a[Role.CLINIC_ADMIN])
    assert (
        "Reverse this entry" in admin.get(reverse("ledger:entry", args=[draw.pk])).content.decode()
    )
    r = admin.post(url, {"reason": ""})
    assert r.status_code == 200 and r.context["reverse_form"].errors["reason"]
    r = admin.post(url, {"reason": "wrong patient"})
    assert r.status_code == 302
    reversal = LedgerEntry.objects.get(kind=EntryKind.REVERSAL)
    assert reversal.reverses == draw and reversal.delta_ug == 37_500
    draw.container.refresh_from_db()
    assert draw.container.balance_ug == 500_000
    page = admin.get(reverse("ledger:entry", args=[draw.pk])).content.decode()
    assert 'id="reversed-by"' in page and "Reverse this entry" not in page
    r = admin.post(url, {"reason": "again"}, follow=True)
    assert f"Entry {draw.sequence} is already reversed." in r.content.decode()
    assert LedgerEntry.objects.filter(kind=EntryKind.REVERSAL).count() == 1


# --- blind counts and discrepancies ------------------------------------------------------------


def test_the_count_is_blind_until_the_second_counter_has_entered(world, ledger):  # type: ignore[no-untyped-def]
    a_draw(ledger, world.nurse)  # the book: SOON1 2 vials less 0.75 mL = 19.25 mL
    second_nurse = make_staff(ledger.clinic, "nurse2", Role.NURSE)
    first, second = signed_in(world.nurse), signed_in(second_nurse)
    r = first.post(reverse("ledger:count_start"), {"location": ledger.safe.pk, "kind": "daily"})
    count = Count.objects.get()
    assert r["Location"] == reverse("ledger:count", args=[count.pk])
    url = reverse("ledger:count", args=[count.pk])
    submit = reverse("ledger:count_submit", args=[count.pk])
    book_figures = ["19.25", "100 mL", "962.5", "5000 mg", "50 mL", "Book"]

    page = first.get(url).content.decode()
    assert "Submit my count" in page
    for figure in book_figures:
        assert figure not in page
    figures = {
        f"lot_{ledger.good.pk}": "100",
        f"lot_{ledger.soon.pk}": "18.25",  # 1 mL less than the book
        f"lot_{ledger.old.pk}": "10",
    }
    r = first.post(submit, {**figures, f"lot_{ledger.good.pk}": "100.001"})
    assert r.status_code == 200
    assert r.context["form"].errors[f"lot_{ledger.good.pk}"] == [
        "Volume 100.001 mL is finer than a syringe measures (0.01 mL); "
        "round it to 2 decimal places."
    ]
    r = first.post(submit, {**figures, f"lot_{ledger.good.pk}": "-1"})
    assert r.context["form"].errors[f"lot_{ledger.good.pk}"] == [
        "A count cannot be negative; got -1 mL."
    ]
    assert first.post(submit, figures).status_code == 302
    page = first.get(url).content.decode()
    assert 'id="count-waiting"' in page and "Submit my count" not in page
    for figure in ["18.25", *book_figures]:
        assert figure not in page
    # Anyone else looking meanwhile sees no figures either.
    auditor_page = signed_in(world.staff_a[Role.AUDITOR]).get(url).content.decode()
    for figure in ["18.25", *book_figures]:
        assert figure not in auditor_page
    # The first counter cannot count twice.
    r = first.post(submit, figures, follow=True)
    assert "You have already entered your count" in r.content.decode()

    page = second.get(url).content.decode()
    assert "Submit my count" in page and "18.25" not in page
    r = second.post(submit, figures)
    assert r.status_code == 302
    count.refresh_from_db()
    assert count.status == CountStatus.DONE
    page = second.get(url).content.decode()
    assert "19.25 mL" in page and "18.25 mL" in page and "−1 mL" in page
    d = Discrepancy.objects.get()
    assert (d.lot, d.expected_ug, sorted(d.counted.values())) == (
        ledger.soon,
        962_500,
        [912_500, 912_500],
    )


def test_discrepancies_list_open_first_and_resolve(world, ledger):  # type: ignore[no-untyped-def]
    nurse_actor = actor(ledger.clinic, world.nurse)
    prescriber_actor = actor(ledger.clinic, world.prescriber)
    for shortfall in (2_500, 5_000):
        count = services.start_count(nurse_actor, ledger.cart)
        book = services.book_by_lot(ledger.cart)
        services.submit_count(nurse_actor, count, book)
        services.submit_count(prescriber_actor, count, {k: v - shortfall for k, v in book.items()})
    older, newer = Discrepancy.objects.order_by("pk")
    services.resolve_discrepancy(actor(ledger.clinic, world.prescriber), newer, "Recounted.")
    page = signed_in(world.nurse).get(reverse("ledger:discrepancies"))
    assert [d.pk for d, _book, _figures in page.context["page"].object_list] == [older.pk, newer.pk]

    url = reverse("ledger:discrepancy_resolve", args=[older.pk])
    assert signed_in(world.nurse).post(url, {"resolution": "x"}).status_code == 403
    admin = signed_in(world.staff_a[Role.CLINIC_ADMIN])
    r = admin.post(url, {"resolution": ""})
    assert r.status_code == 200 and r.context["form"].errors["resolution"]
    r = admin.post(url, {"resolution": "One device used for a patient, recorded late."})
    assert r.status_code == 302
    older.refresh_from_db()
    assert older.resolved_by == world.staff_a[Role.CLINIC_ADMIN]
    page = admin.get(reverse("ledger:discrepancy", args=[older.pk])).content.decode()
    assert "recorded late" in page and "Resolve discrepancy" not in page


# --- losses and inventory ------------------------------------------------------------------------


def test_loss_report_deadlines_stay_on_the_stock_page_until_done(world, ledger):  # type: ignore[no-untyped-def]
    admin = signed_in(world.staff_a[Role.CLINIC_ADMIN])
    vial = Container.objects.filter(lot=ledger.good).first()
    assert signed_in(world.nurse).get(reverse("ledger:loss_new")).status_code == 403
    data = {
        "container": vial.pk,
        "quantity": "10",
        "unit": "ml",
        "kind": "theft",  # type: ignore[union-attr]
        "discovered_at": timezone.localtime(
            timezone.now(), ZoneInfo(ledger.clinic.time_zone)
        ).strftime("%Y-%m-%dT%H:%M"),
        "description": "Vial missing from the safe at the morning count.",
    }
    r = admin.post(reverse("ledger:loss_new"), {**data, "description": ""})
    assert r.status_code == 200 and LossReport.objects.count() == 0
    r = admin.post(reverse("ledger:loss_new"), data)
    report = LossReport.objects.get()
    assert r["Location"] == reverse("ledger:loss", args=[report.pk])
    discovered = timezone.localtime(report.discovered_at, ZoneInfo(ledger.clinic.time_zone)).date()
    assert report.form_106_due == discovered + timedelta(days=45)
    assert report.notice_due > discovered
    stock = admin.get(reverse("ledger:stock")).content.decode()
    assert f'id="loss-{report.pk}"' in stock and "Form 106 filed electronically" in stock
    page = admin.get(reverse("ledger:loss", args=[report.pk])).content.decode()
    assert "DEA Form 106 draft" in page and "GOOD1" in page and "BK1234563" in page

    step = reverse("ledger:loss_step", args=[report.pk])
    assert admin.post(step, {"step": "notice"}).status_code == 302
    r = admin.post(step, {"step": "form_106", "dea_confirmation": ""})
    assert r.status_code == 200
    assert (
        admin.post(step, {"step": "form_106", "dea_confirmation": "DEA-106-77"}).status_code == 302
    )
    report.refresh_from_db()
    assert (
        report.notice_sent_at
        and report.form_106_filed_at
        and report.dea_confirmation == "DEA-106-77"
    )
    assert f'id="loss-{report.pk}"' not in admin.get(reverse("ledger:stock")).content.decode()
    assert AuditEntry.objects.filter(object_type="ledger_loss_report").count() == 2


def test_inventory_with_sealed_and_estimated_opened_containers(world, ledger):  # type: ignore[no-untyped-def]
    a_draw(ledger, world.nurse)  # one SOON1 vial opened: 462.5 mg = 9.25 mL left
    client = signed_in(world.prescriber)
    page = client.get(reverse("ledger:inventories")).content.decode()
    assert "No initial inventory yet" in page
    form = client.get(reverse("ledger:inventory_new")).context["form"]
    assert form.initial["kind"] == "initial"
    data = {
        "kind": "initial",
        "timing": "close",
        f"sealed_{ledger.good.pk}": "10",
        f"opened_{ledger.good.pk}": "",
        f"sealed_{ledger.soon.pk}": "1",
        f"opened_{ledger.soon.pk}": "9.255",
        f"sealed_{ledger.old.pk}": "1",
        f"opened_{ledger.old.pk}": "",
        f"sealed_{ledger.kits.pk}": "2",
        f"opened_{ledger.kits.pk}": "",
    }
    r = client.post(reverse("ledger:inventory_new"), data)
    assert r.status_code == 200 and Inventory.objects.count() == 0
    assert "finer than a syringe measures" in str(
        r.context["form"].errors[f"opened_{ledger.soon.pk}"]
    )
    r = client.post(reverse("ledger:inventory_new"), {**data, "timing": ""})
    assert r.status_code == 200 and Inventory.objects.count() == 0
    r = client.post(reverse("ledger:inventory_new"), {**data, f"opened_{ledger.soon.pk}": "9.25"})
    inventory = Inventory.objects.get()
    assert r["Location"] == reverse("ledger:inventory", args=[inventory.pk])
    soon = next(line for line in inventory.lines if line["lot_id"] == ledger.soon.pk)
    assert (soon["sealed"], soon["opened_estimate_ug"], soon["counted_ug"], soon["book_ug"]) == (
        1,
        462_500,
        962_500,
        962_500,
    )
    taken = timezone.localtime(inventory.taken_at).date()
    page = client.get(reverse("ledger:inventories")).content.decode()
    assert f"due by <b>{taken.replace(year=taken.year + 2):%Y-%m-%d}</b>" in page
    ledger.clinic.annual_inventory = True
    ledger.clinic.save()
    page = client.get(reverse("ledger:inventories")).content.decode()
    assert f"due by <b>{taken.replace(year=taken.year + 1):%Y-%m-%d}</b>" in page


# --- the entry list and auditing -------------------------------------------------------------


def test_entry_list_filters_and_pages(world, ledger):  # type: ignore[no-untyped-def]
    client = signed_in(world.staff_a[Role.AUDITOR])
    for _ in range(3):
        a_draw(ledger, world.nurse, ug=1_000)
    page = client.get(reverse("ledger:entries"), {"kind": "draw"}).context["page"]
    assert {e.kind for e, _q, _after in page.object_list} == {"draw"} and page.paginator.count == 3
    page = client.get(reverse("ledger:entries"), {"lot": "kit1"}).context["page"]
    assert page.paginator.count == 2
    today = timezone.localdate()
    page = client.get(
        reverse("ledger:entries"), {"date_from": (today + timedelta(days=2)).isoformat()}
    ).context["page"]
    assert page.paginator.count == 0
    r = client.get(
        reverse("ledger:entries"),
        {"date_from": today.isoformat(), "date_to": (today - timedelta(days=5)).isoformat()},
    )
    assert r.context["page"] is None and r.context["form"].errors["date_to"]
    for _ in range(40):
        a_draw(ledger, world.nurse, ug=1_000)
    page = client.get(reverse("ledger:entries"), {"page": "2"}).context["page"]
    assert page.number == 2 and page.paginator.num_pages == 2


def test_pages_showing_a_patient_record_one_audit_read_each(world, ledger):  # type: ignore[no-untyped-def]
    draw = a_draw(ledger, world.nurse)
    client = signed_in(world.staff_a[Role.AUDITOR])
    last = AuditEntry.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    client.get(reverse("ledger:draw_detail", args=[draw.pk]))
    client.get(reverse("ledger:entry", args=[draw.pk]))
    client.get(reverse("ledger:entries"))
    client.get(reverse("ledger:stock"))
    client.get(reverse("ledger:counts"))
    reads = list(AuditEntry.objects.filter(pk__gt=last).order_by("pk"))
    assert [(e.action, e.object_type, e.patient_id) for e in reads] == [
        ("read", "ledger_draw", ledger.patient.pk),  # type: ignore[attr-defined]
        ("read", "ledger_entry", ledger.patient.pk),  # type: ignore[attr-defined]
        ("read", "ledger_entries", None),
    ]
    assert reads[2].detail == {"patients": [ledger.patient.pk]}  # type: ignore[attr-defined]


def test_another_clinics_ids_answer_404(world, ledger):  # type: ignore[no-untyped-def]
    draw = a_draw(ledger, world.nurse)
    client = signed_in(world.admin_b)
    for name in ("entry", "draw_detail"):
        assert client.get(reverse(f"ledger:{name}", args=[draw.pk])).status_code == 404
    page = client.get(reverse("ledger:stock")).content.decode()
    assert "GOOD1" not in page
    assert b"GOOD1" not in client.get(reverse("ledger:draw")).content


# --- the demo ------------------------------------------------------------------------------------


def test_the_demo_ledger_is_a_month_of_entries_that_verifies(db, capsys):  # type: ignore[no-untyped-def]
    from ketaclinic.demo.inventory_demo import load_inventory_demo

    clinic = create_clinic(
        name="Demo", time_zone="America/New_York", dea_registration_number="BK1234563"
    )
    users = {
        role: make_staff(clinic, f"demo_{role.value}", role)
        for role in (Role.PRESCRIBER, Role.NURSE, Role.CLINIC_ADMIN, Role.FRONT_DESK)
    }
    for n, weight in enumerate(["62.0", "81.5", "95.0"]):
        patient = register(clinic, users[Role.NURSE], given_name=f"Pat{n}")
        measure(patient, users[Role.NURSE], weight=weight)

    demo = load_inventory_demo(clinic, users, password=PASSWORD)

    call_command("ledger", "verify")
    assert "Ledger intact" in capsys.readouterr().out
    assert verify_clinic(clinic.pk)[1] is None
    kinds = set(LedgerEntry.objects.filter(clinic=clinic).values_list("kind", flat=True))
    assert {"receipt", "transfer", "draw", "administration", "waste", "adjustment"} <= kinds
    assert Product.objects.filter(clinic=clinic).count() == 3
    assert {(p.container_content_ug, p.form) for p in Product.objects.filter(clinic=clinic)} == {
        (500_000, "injection"),
        (56_000, "nasal_spray"),
        (84_000, "nasal_spray"),
    }
    supplier = Supplier.objects.get(clinic=clinic)
    assert supplier.dea_number == "RC0123454"
    assert set(StorageLocation.objects.filter(clinic=clinic).values_list("kind", flat=True)) == {
        "safe",
        "cart",
    }
    today = timezone.localdate()
    assert any(
        lot.expiry <= today + timedelta(days=60) and lot.balance_ug > 0
        for lot in Lot.objects.filter(clinic=clinic)
    ), "one lot on hand expires within 60 days"
    first = LedgerEntry.objects.filter(clinic=clinic).order_by("sequence").first()
    assert (today - timezone.localtime(first.at).date()).days >= 28  # type: ignore[union-attr]
    wastes = LedgerEntry.objects.filter(clinic=clinic, kind=EntryKind.WASTE)
    assert wastes.exists() and not wastes.filter(witness=None).exists()
    discrepancies = Discrepancy.objects.filter(clinic=clinic)
    assert discrepancies.filter(resolved_at__isnull=True).count() == 1
    assert discrepancies.filter(resolved_at__isnull=False).count() == 1
    assert Count.objects.filter(clinic=clinic, status=CountStatus.DONE).count() >= 20
    assert not Count.objects.filter(clinic=clinic, status=CountStatus.OPEN).exists()
    assert Inventory.objects.filter(clinic=clinic, kind="initial").exists()
    assert demo.administrations > 30
    # The demo's pages render for its staff.
    client = signed_in(users[Role.PRESCRIBER])
    for name in (
        "stock",
        "entries",
        "counts",
        "discrepancies",
        "inventories",
        "report_administrations",
    ):
        assert client.get(reverse(f"ledger:{name}")).status_code == 200
