"""The controlled-substance ledger, clicked through in a real browser: a clinic admin receives
ten vials, a nurse draws for a patient, gives 35 mg and wastes 2.5 mg in front of a witness who
signs in on that screen, two nurses count blind at the end of the day and find 1 mL less than
the book, the clinic admin resolves the discrepancy, and the day's administration record
(21 CFR 1304.22(c)) shows the administration and the waste, on the page and in the PDF."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from ketaclinic.accounts.roles import Role
from ketaclinic.accounts.services import create_clinic, create_staff
from ketaclinic.audit.context import Actor
from ketaclinic.audit.models import AuditEntry
from ketaclinic.inventory import services
from ketaclinic.inventory.models import Discrepancy, EntryKind, LedgerEntry, Lot
from ketaclinic.inventory.verify import verify_clinic
from tests.conftest import PASSWORD, measure, register
from tests.e2e.conftest import DESKTOP, PHONE, log_in, no_horizontal_overflow, shot
from tests.inventory.test_reports import contains_all, pdf_text

pytestmark = pytest.mark.e2e


def _staff(clinic, username, role, first, last, credentials=""):  # type: ignore[no-untyped-def]
    return create_staff(
        clinic=clinic,
        username=username,
        password=PASSWORD,
        role=role,
        first_name=first,
        last_name=last,
        credentials=credentials,
        check_password=False,
        two_factor_waived=True,  # as `ketaclinic demo` does: no authenticator app needed
    )


def _sign_out(page) -> None:  # type: ignore[no-untyped-def]
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_load_state()


def _ledger(page) -> None:  # type: ignore[no-untyped-def]
    page.locator(".mainnav").get_by_role("link", name="Ledger").click()
    expect(page.get_by_role("heading", name="Stock on hand")).to_be_visible()


def test_receive_draw_administer_waste_count_resolve_and_report(page, console_errors):  # type: ignore[no-untyped-def]
    clinic = create_clinic(
        name="Riverside Ketamine Clinic",
        time_zone="America/New_York",
        dea_registration_number="BK1234563",
        address="100 Main St\nSpringfield, IL 62701",
    )
    admin = _staff(clinic, "admin", Role.CLINIC_ADMIN, "Alex", "Morgan")
    nadia = _staff(clinic, "nadia", Role.NURSE, "Nadia", "Okafor", "RN")
    noah = _staff(clinic, "noah", Role.NURSE, "Noah", "Bennett", "RN")
    set_up = Actor.system(clinic, user=admin, label="test")
    ketamine = services.create_product(
        set_up,
        drug="ketamine",
        name="Ketamine HCl 50 mg/mL, 10 mL vial",
        ndc="42023-0114-10",
        form="injection",
        concentration_mg_per_ml=Decimal("50"),
        container_volume_ml=Decimal("10"),
    )
    services.create_location(set_up, "Main safe", "safe")
    patient = register(
        clinic,
        nadia,
        given_name="Thessaly",
        family_name="Quandt",
        address_line1="12 Orchard Lane",
        city="Springfield",
        state="IL",
        postal_code="62704",
    )
    measure(patient, nadia, weight="70.0")
    expiry = (timezone.localdate() + timedelta(days=400)).isoformat()

    # --- the clinic admin receives 10 vials; the supplier's DEA number is required ------------
    log_in(page, "admin", PASSWORD)
    _ledger(page)
    page.get_by_role("link", name="Receive").click()
    page.select_option("#id_product", label=ketamine.name)
    page.fill("#id_lot_number", "KX2201")
    page.fill("#id_expiry", expiry)
    page.fill("#id_containers", "10")
    page.fill("#id_invoice_number", "INV-5521")
    page.fill("#id_new_supplier_name", "Cardinal Health (test)")
    page.fill("#id_new_supplier_address", "7000 Cardinal Place\nDublin, OH 43017")
    page.get_by_role("button", name="Record receipt").click()
    expect(page.locator(".form-errors")).to_contain_text("Nothing was saved.")
    dea = page.locator(".field.has-error", has=page.locator("#id_new_supplier_dea"))
    expect(dea.locator(".errorlist")).to_have_text(
        "The supplier's DEA number is required on every CIII receipt record (21 CFR 1304.22(c))."
    )
    expect(page.locator("#id_lot_number")).to_have_value("KX2201")
    assert not LedgerEntry.objects.exists() and not Lot.objects.exists()
    shot(page, "ledger-receive-refused")
    page.fill("#id_new_supplier_dea", "rc0123454")
    page.get_by_role("button", name="Record receipt").click()
    expect(page.locator(".messages")).to_contain_text(
        "Received 10 x 50 mg/mL x 10 mL vial of lot KX2201 into Main safe: 5000 mg (100 mL)."
    )
    row = page.locator("tr[data-lot=KX2201]")
    expect(row).to_contain_text("5000 mg")
    expect(row).to_contain_text("100 mL")
    lot = Lot.objects.get(lot_number="KX2201")
    assert lot.supplier.dea_number == "RC0123454" and lot.containers.count() == 10
    _sign_out(page)

    # --- a nurse draws 37.5 mg (0.75 mL), gives 35 mg and wastes 2.5 mg, witnessed ---------------
    log_in(page, "nadia", PASSWORD)
    _ledger(page)
    page.get_by_role("link", name="Draw for a patient").click()
    page.fill("#id_patient_mrn", patient.mrn)
    page.fill("#id_quantity", "0.755")
    page.select_option("#id_unit", "ml")
    page.get_by_role("button", name="Record draw").click()
    quantity = page.locator(".field.has-error", has=page.locator("#id_quantity"))
    expect(quantity.locator(".errorlist")).to_contain_text("finer than a syringe measures")
    page.fill("#id_quantity", "0.75")
    page.get_by_role("button", name="Record draw").click()
    expect(page).to_have_url(re.compile(r"/ledger/draws/\d+/$"))
    expect(page.locator("h1")).to_have_text("Draw for Thessaly Quandt")
    expect(page.locator("#drawn")).to_have_text("37.5 mg (0.75 mL)")
    expect(page.locator("#remaining")).to_have_text("37.5 mg (0.75 mL)")

    administer = page.locator("#administer-form")
    administer.locator("#id_quantity").fill("35")
    administer.get_by_role("button", name="Record administration").click()
    expect(page.locator(".messages")).to_contain_text("Administered 35 mg (0.7 mL).")
    expect(page.locator("#remaining")).to_have_text("2.5 mg (0.05 mL)")

    # The witness, Noah, types his own password on this screen.
    waste = page.locator("#waste-form")
    waste.locator("#id_quantity").fill("2.5")
    waste.locator("#id_witness_username").fill("noah")
    waste.locator("#id_witness_secret").fill("not-his-password")
    waste.get_by_role("button", name="Record witnessed waste").click()
    expect(page.locator("#waste-form .errorlist")).to_have_text(
        "The witness's username and password (or code) did not match."
    )
    assert not LedgerEntry.objects.filter(kind=EntryKind.WASTE).exists()
    waste = page.locator("#waste-form")
    expect(waste.locator("#id_witness_secret")).to_have_value("")  # never sent back
    waste.locator("#id_witness_secret").fill(PASSWORD)
    waste.get_by_role("button", name="Record witnessed waste").click()
    expect(page.locator(".messages")).to_contain_text(
        "Wasted 2.5 mg (0.05 mL), witnessed by Noah Bennett, RN."
    )
    expect(page.locator("#draw-complete")).to_be_visible()
    assert LedgerEntry.objects.get(kind=EntryKind.WASTE).witness == noah
    expect(page.locator("#draw-uses tbody tr")).to_have_count(2)
    shot(page, "ledger-draw-complete")
    page.set_viewport_size(PHONE)
    fits, scroll, inner = no_horizontal_overflow(page)
    assert fits, f"draw page scrolls sideways on a phone: {scroll} > {inner}"
    shot(page, "ledger-draw-complete-phone")
    page.set_viewport_size(DESKTOP)
    vial = LedgerEntry.objects.get(kind=EntryKind.DRAW).container
    vial.refresh_from_db()
    assert vial.balance_ug == 462_500  # 500 -> 462.5 mg (clinical.md §5.10)

    # --- end of day: a blind count by two nurses, 1 mL short of the book -----------------------
    page.locator(".ledger-nav").get_by_role("link", name="Counts").click()
    page.select_option("#id_location", label="Main safe")
    page.get_by_role("button", name="Start a count").click()
    expect(page.get_by_role("heading", name="Daily count of Main safe")).to_be_visible()
    expect(page.locator("main")).not_to_contain_text("99.25")  # the book is not shown
    page.fill(f"#id_lot_{lot.pk}", "98.25")
    page.get_by_role("button", name="Submit my count").click()
    expect(page.locator("#count-waiting")).to_contain_text("A second person must now count")
    expect(page.locator("main")).not_to_contain_text("98.25")
    count_url = page.url
    _sign_out(page)

    log_in(page, "noah", PASSWORD)
    page.goto(count_url)
    expect(page.locator("#count-form")).to_be_visible()
    for figure in ("99.25", "98.25"):  # neither the book nor Nadia's count
        expect(page.locator("main")).not_to_contain_text(figure)
    page.fill(f"#id_lot_{lot.pk}", "98.25")
    page.get_by_role("button", name="Submit my count").click()
    expect(page.locator(".messages")).to_contain_text("Count complete: 1 discrepancy opened.")
    comparison = page.locator("#count-comparison")
    expect(comparison).to_contain_text("99.25 mL")
    expect(comparison.locator("tbody tr").first).to_contain_text("98.25 mL")
    expect(comparison).to_contain_text("−1 mL")
    expect(comparison).to_contain_text("open")
    shot(page, "ledger-count-comparison")
    discrepancy = Discrepancy.objects.get()
    assert discrepancy.expected_ug == 4_962_500
    assert sorted(discrepancy.counted.values()) == [4_912_500, 4_912_500]
    _sign_out(page)

    # --- the clinic admin resolves it ------------------------------------------------------------
    log_in(page, "admin", PASSWORD)
    _ledger(page)
    expect(page.locator("#open-discrepancies")).to_contain_text("1 open discrepancy")
    page.locator("#open-discrepancies").get_by_role("link", name="Review and resolve").click()
    page.locator("#discrepancy-table tbody tr").first.get_by_role("link").click()
    page.fill(
        "#id_resolution",
        "Recount: 1 mL had been drawn up for a second patient and "
        "returned to the vial's box uncapped; wasted with a witness.",
    )
    page.get_by_role("button", name="Resolve discrepancy").click()
    expect(page.locator(".messages")).to_contain_text("Discrepancy resolved.")
    expect(page.locator("#resolution")).to_contain_text("Recount: 1 mL")
    discrepancy.refresh_from_db()
    assert discrepancy.resolved_by == admin
    _ledger(page)
    expect(page.locator("#open-discrepancies")).to_have_count(0)

    # --- the day's administration record: on the page and as a PDF -------------------------------
    page.locator(".ledger-nav").get_by_role("link", name="Reports").click()
    page.locator("main").get_by_role("link", name="Administration record").click()
    table = page.locator("#report-table")
    expect(table.locator("tbody tr")).to_have_count(2)
    administered, wasted = table.locator("tbody tr").nth(0), table.locator("tbody tr").nth(1)
    for text in (
        "Administered",
        "35 mg",
        "0.7 mL",
        "Quandt, Thessaly",
        "12 Orchard Lane",
        "NO (Nadia Okafor, RN)",
    ):
        expect(administered).to_contain_text(text)
    for text in (
        "Wasted: residue in syringe",
        "2.5 mg",
        "0.05 mL",
        "witness NB (Noah Bennett, RN), by password",
    ):
        expect(wasted).to_contain_text(text)
    shot(page, "ledger-administration-record")
    before = AuditEntry.objects.filter(action="export").count()
    with page.expect_download() as download:
        page.locator("#download-pdf").click()
    pdf = download.value
    assert re.fullmatch(r"administration-record-\d{8}-\d{4}\.pdf", pdf.suggested_filename)
    data = open(pdf.path(), "rb").read()
    assert data.startswith(b"%PDF-")
    missing = contains_all(
        pdf_text(data),
        "Administration record",
        "Riverside Ketamine Clinic",
        "DEA registration BK1234563",
        "Administered",
        "35 mg",
        "Wasted: residue in syringe",
        "2.5 mg",
        "Quandt, Thessaly",
        "12 Orchard Lane, Springfield IL 62704",
        "NO (Nadia Okafor, RN)",
        "witness NB (Noah Bennett, RN), by password",
    )
    assert missing == [], missing
    assert AuditEntry.objects.filter(action="export").count() == before + 1
    assert verify_clinic(clinic.pk)[1] is None
    assert console_errors == []
