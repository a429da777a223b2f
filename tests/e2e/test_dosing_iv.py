"""An IV ketamine session in a real browser: the pump rate on the screen is the one the course's
dose plan gives (0.5 mg/kg x 70 kg over 40 minutes), the nurse starts and stops the infusion,
the residue is wasted in front of a witness who signs in on the same screen, and the ledger
shows the draw, the administration and the waste of that session."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from ketaclinic.accounts.roles import Role
from ketaclinic.accounts.services import create_clinic
from ketaclinic.audit.context import Actor
from ketaclinic.clinical.dosing import iv_infusion
from ketaclinic.dosing.models import DosingSession
from ketaclinic.inventory import services as ledger
from ketaclinic.inventory.models import EntryKind, Form, LedgerEntry
from ketaclinic.treatment import services as treatment
from tests.conftest import PASSWORD, measure, register
from tests.e2e.conftest import DESKTOP, PHONE, log_in, no_horizontal_overflow, shot
from tests.e2e.test_dosing_esketamine import MEDICINES, afternoon_zone, staff
from tests.treatment.helpers import assessment, chair

pytestmark = pytest.mark.e2e


def test_an_iv_session_takes_its_pump_rate_from_the_plan_and_posts_to_the_ledger(
    page, console_errors
):  # type: ignore[no-untyped-def]
    clinic = create_clinic(
        name="Harbor Ketamine Clinic",
        time_zone=afternoon_zone(),
        dea_registration_number="BK1234563",
        address="5 Harbor Rd\nSpringfield, IL 62701",
    )
    tz = ZoneInfo(clinic.time_zone)
    today = timezone.now().astimezone(tz).date()
    admin = staff(clinic, "admin", Role.CLINIC_ADMIN, "Alex", "Morgan")
    nurse = staff(clinic, "nadia", Role.NURSE, "Nadia", "Okafor", "RN")
    staff(clinic, "noah", Role.NURSE, "Noah", "Bennett", "RN")
    prescriber = staff(clinic, "priya", Role.PRESCRIBER, "Priya", "Shah", "MD")
    set_up = Actor.system(clinic, user=admin, label="test")
    supplier = ledger.create_supplier(
        set_up, name="Rx Wholesale", address="2 Depot Rd", dea_number="RS1234563"
    )
    ketamine = ledger.create_product(
        set_up,
        drug="ketamine",
        name="Ketamine HCl 50 mg/mL, 10 mL vial",
        ndc="0409-2051-05",
        form=Form.INJECTION,
        concentration_mg_per_ml="50",
        container_volume_ml="10",
    )
    safe = ledger.create_location(set_up, "Safe", "safe")
    ledger.receive(
        set_up,
        product=ketamine,
        lot_number="KX2201",
        expiry=today + timedelta(days=300),
        supplier=supplier,
        invoice_number="INV-9",
        received_on=today - timedelta(days=10),
        containers=2,
        location=safe,
    )
    patient = register(clinic, nurse, given_name="Tobias", family_name="Reyes", sex_at_birth="male")
    measure(patient, nurse, weight="70.0")
    signed = assessment(patient, prescriber, drug="ketamine")
    course = treatment.start_course(
        Actor.system(clinic, user=prescriber, label="test"),
        patient,
        signed,
        protocol="iv_ketamine_standard",
        start_date=today,
        indication="trd",
        responsible_prescriber=prescriber,
        mg_per_kg=Decimal("0.5"),
        infusion_minutes=40,
    )
    appointment = course.appointments.get(number=1)
    treatment.book(
        Actor.system(clinic, user=nurse, label="test"),
        appointment,
        starts_at=datetime.combine(today, time(9, 45), tzinfo=tz),
        chair=chair(clinic, "Chair 1"),
        reason="test",
    )
    expected = iv_infusion(70, Decimal("0.5"), 40, 50)  # 35 mg, 0.7 mL, 1.05 mL/h

    log_in(page, "nadia", PASSWORD)
    page.goto("/dosing/board/")
    row = page.locator("#board-table tbody tr", has_text="Tobias Reyes")
    row.locator("input[name=at]").fill("09:40")
    row.get_by_role("button", name="Check in").click()
    expect(page.locator("#state")).to_have_text("Checked in")

    form = page.locator("#predose-form")
    expect(form.locator("#id_pre-pregnancy_status")).to_have_count(0)  # not asked of a man
    for field, value in {
        "at": "09:50",
        "sbp": "128",
        "dbp": "82",
        "hr": "72",
        "spo2": "98",
        "rr": "14",
        "ride_name": "Ana Reyes",
        "ride_phone": "555-0177",
    }.items():
        form.locator(f"#id_pre-{field}").fill(value)
    form.locator("#id_pre-fasting input[value=yes]").check()
    for m in MEDICINES:
        form.locator(f"#id_pre-med_{m} input[value=no]").check()
    form.locator("#id_pre-scales_done input[value=no]").check()
    form.locator("#id_pre-scales_skip_reason").fill("Done by phone yesterday")
    form.locator("#id_pre-cssrs_reviewed").check()
    form.get_by_role("button", name="Record pre-dose checks").click()
    expect(page.locator("#gate")).to_contain_text("Pre-dose gate passed")

    # --- the pump rate comes from the dose plan --------------------------------------------
    expect(page.locator("#dose-plan")).to_contain_text("35 mg")
    expect(page.locator("#pump-rate")).to_have_text(f"{expected.rate_ml_per_h.normalize():f} mL/h")
    shot(page, "dosing-iv-ready")
    start = page.locator("#start-form")
    start.locator("#id_inf-drawn_mg").fill("40")
    start.locator("#id_inf-at").fill("10:00")
    start.get_by_role("button", name="Start infusion").click()
    expect(page.locator(".messages")).to_contain_text(
        f"Infusion started at {expected.rate_ml_per_h:f} mL/h"
    )
    session = DosingSession.objects.get(appointment=appointment)
    dose = session.doses.get()
    assert dose.pump_rate_ml_per_h == expected.rate_ml_per_h and dose.dose_mg == expected.dose_mg

    # --- vitals during the infusion, then stop and waste the residue with a witness ---------
    vitals = page.locator("#vitals-form")
    for field, value in {
        "at": "10:10",
        "sbp": "134",
        "dbp": "86",
        "hr": "80",
        "spo2": "98",
    }.items():
        vitals.locator(f"#id_vs-{field}").fill(value)
    vitals.get_by_role("button", name="Record vitals").click()
    expect(page.locator("#flowsheet tbody tr")).to_have_count(2)

    stop = page.locator("#stop-form")
    stop.locator("#id_stop-at").fill("10:40")
    stop.locator("#id_stop-witness_username").fill("noah")
    stop.locator("#id_stop-witness_secret").fill("not-his-password")
    stop.get_by_role("button", name="Stop infusion").click()
    expect(page.locator("#stop-form .errorlist")).to_contain_text("did not match")
    expect(page.locator("#id_stop-witness_secret")).to_have_value("")  # never sent back
    assert not LedgerEntry.objects.filter(
        dosing_session_id=session.pk, kind=EntryKind.WASTE
    ).exists()
    page.locator("#id_stop-witness_secret").fill(PASSWORD)
    page.locator("#stop-form").get_by_role("button", name="Stop infusion").click()
    expect(page.locator(".messages")).to_contain_text("5 mg wasted, witnessed")
    expect(page.locator("#state")).to_have_text("Observation")
    shot(page, "dosing-iv-observation")
    page.set_viewport_size(PHONE)
    fits, scroll, inner = no_horizontal_overflow(page)
    assert fits, f"IV session page scrolls sideways on a phone: {scroll} > {inner}"
    shot(page, "dosing-iv-observation-phone")
    page.set_viewport_size(DESKTOP)

    # --- the ledger: draw, administration and waste of this session -------------------------
    entries = LedgerEntry.objects.filter(dosing_session_id=session.pk).order_by("sequence")
    assert [(e.kind, e.quantity_ug) for e in entries] == [
        (EntryKind.DRAW, 40_000),
        (EntryKind.ADMINISTRATION, 35_000),
        (EntryKind.WASTE, 5_000),
    ]
    doses = page.locator("#doses")
    for name in ("draw", "given", "waste"):
        expect(doses.get_by_role("link", name=name, exact=True)).to_be_visible()
    page.goto(f"/ledger/draws/{dose.draw_entry_id}/")
    expect(page.locator("#drawn")).to_contain_text("40 mg")
    uses = page.locator("#draw-uses tbody tr")
    expect(uses).to_have_count(2)
    expect(uses.nth(0)).to_contain_text("Administration")
    expect(uses.nth(0)).to_contain_text("35 mg")
    expect(uses.nth(1)).to_contain_text("Waste")
    expect(uses.nth(1)).to_contain_text("Noah Bennett")
    expect(page.locator("#draw-complete")).to_be_visible()
    shot(page, "dosing-iv-ledger-draw")
    assert console_errors == [], console_errors
