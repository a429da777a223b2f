"""An esketamine (Spravato) session clicked through in a real browser, as the issue's
acceptance test tells it: check-in; a pre-dose BP of 150/95 blocks dosing until the prescriber
decides; a third device 3 minutes after the second is refused and accepted at 5; a 40-minute
reading of 185/100 raises the alert; CADSS-6 recorded; discharge refused at 100 minutes and
allowed at 125 with Aldrete 10; the nurse signs and the prescriber co-signs; the REMS
monitoring form (page and PDF) holds those values; the ledger shows the three devices.

Then two nurses edit one session at once: the second to save gets a conflict message and
loses nothing.

The nurse charts the time of each step (10:00, 10:05, ...). The clinic's time zone is chosen
so that it is mid-afternoon there while the test runs, so those times are today and past."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from ketaclinic.accounts.roles import Role
from ketaclinic.accounts.services import create_clinic, create_staff
from ketaclinic.audit.context import Actor
from ketaclinic.dosing import services as dosing
from ketaclinic.dosing.models import DosingSession, SessionState
from ketaclinic.inventory import services as ledger
from ketaclinic.inventory.models import EntryKind, Form, LedgerEntry
from ketaclinic.treatment import services as treatment
from tests.conftest import PASSWORD, register
from tests.e2e.conftest import DESKTOP, PHONE, log_in, no_horizontal_overflow, shot
from tests.inventory.test_reports import contains_all, pdf_text
from tests.treatment.helpers import chair, esketamine_course

pytestmark = pytest.mark.e2e

MEDICINES = ("benzodiazepines", "sedative_hypnotics", "opioids", "psychostimulants", "maois")


def afternoon_zone() -> str:
    """A fixed-offset zone where it is 14:xx now (Etc/GMT-N is UTC+N)."""
    offset = 14 - timezone.now().hour
    return "Etc/GMT" if offset == 0 else f"Etc/GMT{-offset:+d}"


def staff(clinic, username, role, first, last, credentials=""):  # type: ignore[no-untyped-def]
    return create_staff(
        clinic=clinic,
        username=username,
        password=PASSWORD,
        role=role,
        first_name=first,
        last_name=last,
        credentials=credentials,
        check_password=False,
        two_factor_waived=True,
    )


class Setup:
    """A clinic, its staff, esketamine kits in the safe and a patient whose first 56 mg
    session ran four days ago; today's 84 mg session is booked at 09:45 in Chair 2."""

    def __init__(self) -> None:
        self.clinic = create_clinic(
            name="Harbor Ketamine Clinic",
            time_zone=afternoon_zone(),
            dea_registration_number="BK1234563",
            address="5 Harbor Rd\nSpringfield, IL 62701",
        )
        c = self.clinic
        c.rems_setting_id = "HCS-552211"
        c.phone = "555-0100"
        c.save(update_fields=["rems_setting_id", "phone"])
        self.tz = ZoneInfo(c.time_zone)
        self.admin = staff(c, "admin", Role.CLINIC_ADMIN, "Alex", "Morgan")
        self.nurse = staff(c, "nadia", Role.NURSE, "Nadia", "Okafor", "RN")
        self.nurse_2 = staff(c, "noah", Role.NURSE, "Noah", "Bennett", "RN")
        self.prescriber = staff(c, "priya", Role.PRESCRIBER, "Priya", "Shah", "MD")
        admin = Actor.system(c, user=self.admin, label="test")
        supplier = ledger.create_supplier(
            admin, name="Rx Wholesale", address="2 Depot Rd", dea_number="RS1234563"
        )
        self.spray = ledger.create_product(
            admin,
            drug="esketamine",
            name="Spravato 28 mg device, kit of 3",
            ndc="50458-028-03",
            form=Form.NASAL_SPRAY,
            device_mg=28,
            devices_per_container=3,
        )
        safe = ledger.create_location(admin, "Safe", "safe")
        self.today = timezone.now().astimezone(self.tz).date()
        ledger.receive(
            admin,
            product=self.spray,
            lot_number="SPV2207",
            expiry=self.today + timedelta(days=300),
            supplier=supplier,
            invoice_number="INV-1",
            received_on=self.today - timedelta(days=20),
            containers=3,
            location=safe,
        )
        self.patient = register(
            c, self.nurse, given_name="Marisol", family_name="Vance", sex_at_birth="female"
        )
        self.patient.rems_patient_id = "REMS-P-7781"
        self.patient.rems_enrolled_on = self.today - timedelta(days=30)
        self.patient.save(update_fields=["rems_patient_id", "rems_enrolled_on"])
        self.course = esketamine_course(
            self.patient, self.prescriber, start=self.today - timedelta(days=4), dose_mg=84
        )
        self.nurse_actor = Actor.system(c, user=self.nurse, label="test")
        self.prescriber_actor = Actor.system(c, user=self.prescriber, label="test")
        self._first_session()
        self.appointment = self.course.appointments.get(number=2)
        treatment.book(
            self.nurse_actor,
            self.appointment,
            starts_at=self.at(9, 45),
            chair=chair(c, "Chair 2"),
            reason="test: today's session",
        )

    def at(self, hh: int, mm: int = 0, days_ago: int = 0) -> datetime:
        return datetime.combine(self.today - timedelta(days=days_ago), time(hh, mm), tzinfo=self.tz)

    def _first_session(self) -> None:
        """Session 1 (56 mg, two devices) four days ago, through the services."""
        appt = self.course.appointments.get(number=1)
        treatment.book(
            self.nurse_actor,
            appt,
            starts_at=self.at(8, 30, 4),
            chair=chair(self.clinic, "Chair 1"),
            reason="test",
        )
        appt.refresh_from_db()
        s = dosing.check_in(self.nurse_actor, appt, at=self.at(8, 30, 4))
        dosing.record_predose(
            self.nurse_actor,
            s,
            expected_version=s.version,
            sbp=124,
            dbp=80,
            hr=70,
            spo2=98,
            rr=14,
            fasting=True,
            ride_name="Leo Vance",
            ride_phone="555-0142",
            pregnancy_status="not_pregnant",
            medicines={m: False for m in MEDICINES},
            scales_done=False,
            scales_skip_reason="declined",
            cssrs_reviewed=True,
            taken_at=self.at(8, 40, 4),
        )
        kit = ledger.available_containers(
            self.clinic.pk, self.spray, safe_of(self.clinic), 28_000, self.today
        )[0]
        for n in range(2):
            dosing.record_device(self.nurse_actor, s, container=kit, at=self.at(9, 5 * n, 4))
        dosing.record_vitals(
            self.nurse_actor,
            s,
            sbp=126,
            dbp=80,
            hr=72,
            spo2=98,
            moaas=5,
            taken_at=self.at(10, 55, 4),
        )
        dosing.record_discharge_score(
            self.nurse_actor, s, answers=[2, 2, 2, 2, 2], administered_at=self.at(10, 56, 4)
        )
        s.refresh_from_db()
        dosing.confirm_stability(self.prescriber_actor, s, expected_version=s.version)
        s.refresh_from_db()
        dosing.discharge(
            self.nurse_actor,
            s,
            expected_version=s.version,
            ride_present=True,
            ready_to_leave_minutes=90,
            at=self.at(11, 5, 4),
        )

    def session(self) -> DosingSession:
        return DosingSession.objects.get(appointment=self.appointment)


def safe_of(clinic: Any) -> Any:
    from ketaclinic.inventory.models import StorageLocation

    return StorageLocation.objects.get(clinic=clinic, name="Safe")


def sign_out(page) -> None:  # type: ignore[no-untyped-def]
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_load_state()


def second_browser(browser, live_server, username: str):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport=DESKTOP, base_url=live_server.url)
    context.set_default_timeout(10_000)
    other = context.new_page()
    log_in(other, username, PASSWORD)
    return context, other


def phone_shots(page, name: str) -> None:  # type: ignore[no-untyped-def]
    """A desktop and a phone screenshot; the page must not scroll sideways on the phone."""
    shot(page, name)
    page.set_viewport_size(PHONE)
    fits, scroll, inner = no_horizontal_overflow(page)
    shot(page, f"{name}-phone")
    page.set_viewport_size(DESKTOP)
    assert fits, f"{name} scrolls sideways on a phone: {scroll} > {inner}"


def answer_scale(form, values: list[int]) -> None:  # type: ignore[no-untyped-def]
    for n, value in enumerate(values):
        form.locator("fieldset.item").nth(n).locator(f"input[type=radio][value='{value}']").check()


def test_an_esketamine_session_from_check_in_to_the_rems_form(
    page, browser, live_server, console_errors
):  # type: ignore[no-untyped-def]
    world = Setup()
    shots = []

    # --- check-in from the chair board -----------------------------------------------------
    log_in(page, "nadia", PASSWORD)
    page.locator(".mainnav").get_by_role("link", name="Chair board").click()
    expect(page.get_by_role("heading", name="Chair board")).to_be_visible()
    row = page.locator("#board-table tbody tr", has_text="Marisol Vance")
    expect(row).to_contain_text("Chair 2")
    expect(row).to_contain_text("Booked")
    shots.append(shot(page, "dosing-board-booked"))
    row.locator("input[name=at]").fill("09:50")
    row.get_by_role("button", name="Check in").click()
    expect(page.locator("#state")).to_have_text("Checked in")
    expect(page.locator("#next-action")).to_contain_text("Record the pre-dose checks")
    session_url = page.url

    # --- pre-dose checks: BP 150/95 blocks dosing -------------------------------------------
    form = page.locator("#predose-form")
    for field, value in {
        "at": "09:55",
        "sbp": "150",
        "dbp": "95",
        "hr": "78",
        "spo2": "98",
        "rr": "14",
        "ride_name": "Leo Vance",
        "ride_phone": "555-0142",
    }.items():
        form.locator(f"#id_pre-{field}").fill(value)
    form.locator("#id_pre-fasting input[value=yes]").check()
    form.locator("#id_pre-pregnancy_status").select_option("not_pregnant")
    for m in MEDICINES:
        form.locator(f"#id_pre-med_{m} input[value=no]").check()
    form.locator("#id_pre-scales_done input[value=no]").check()
    form.locator("#id_pre-scales_skip_reason").fill("Patient declined the questionnaires today")
    form.locator("#id_pre-cssrs_reviewed").check()
    form.get_by_role("button", name="Record pre-dose checks").click()
    expect(page.locator("#gate")).to_contain_text("Dosing is blocked")
    expect(page.locator("#gate-blocks")).to_contain_text("150/95")
    expect(page.locator("#awaiting-decision")).to_be_visible()
    expect(page.locator("#device-form")).to_have_count(0)
    expect(page.locator("#next-action")).to_contain_text("the prescriber must decide")
    shots.append(shot(page, "dosing-session-blocked"))

    # --- the prescriber decides, in her own browser -----------------------------------------
    context, doctor = second_browser(browser, live_server, "priya")
    try:
        doctor.goto(session_url)
        decision = doctor.locator("#decision-form")
        decision.locator("input[value=proceed]").check()
        decision.locator("textarea").fill(
            "Usual BP 145/92 at home; asymptomatic. Proceed, recheck at 40 min."
        )
        decision.get_by_role("button", name="Record decision").click()
        expect(doctor.locator(".messages")).to_contain_text("Decision recorded: proceed.")
    finally:
        context.close()

    # --- devices: the third 3 minutes after the second is refused, accepted at 5 -------------
    page.goto(session_url)
    expect(page.locator("#next-action")).to_contain_text("Give device 1")
    for at in ("10:00", "10:05"):
        page.locator("#id_dev-at").fill(at)
        page.locator("#device-form button[type=submit]").click()
        expect(page.locator(".messages")).to_contain_text(f"recorded at {at}")
    expect(page.locator("#next-device")).to_contain_text("10:10")
    page.locator("#id_dev-at").fill("10:08")
    page.locator("#device-form button[type=submit]").click()
    expect(page.locator("#device-form .errorlist")).to_contain_text("at least 5 minutes apart")
    expect(page.locator("#id_dev-at")).to_have_value("10:08")
    assert world.session().doses.count() == 2
    shots.append(shot(page, "dosing-device-refused"))
    page.locator("#id_dev-at").fill("10:10")
    page.locator("#device-form button[type=submit]").click()
    expect(page.locator(".messages")).to_contain_text("Device 3 recorded at 10:10")
    expect(page.locator("#devices-given")).to_have_text("3 of 3")
    expect(page.locator("#state")).to_have_text("Observation")
    page.goto("/dosing/board/")
    row = page.locator("#board-table tbody tr", has_text="Marisol Vance")
    expect(row).to_contain_text("Observation")
    expect(row).to_contain_text("12:00")  # earliest discharge
    phone_shots(page, "dosing-board-in-progress")
    page.goto(session_url)

    # --- the 40-minute reading of 185/100 raises the alert ----------------------------------
    vitals = page.locator("#vitals-form")
    for field, value in {
        "at": "10:40",
        "sbp": "185",
        "dbp": "100",
        "hr": "92",
        "spo2": "97",
        "rr": "16",
    }.items():
        vitals.locator(f"#id_vs-{field}").fill(value)
    vitals.locator("#id_vs-moaas").select_option("4")
    vitals.get_by_role("button", name="Record vitals").click()
    expect(page.locator("#vitals-alert")).to_contain_text("systolic BP at or above 180")
    expect(page.locator("#flowsheet td.high", has_text="185/100")).to_be_visible()
    expect(page.locator("svg.vitals-chart")).to_be_visible()
    session = world.session()
    assert session.events.filter(kind="alert").exists()
    shots.append(shot(page, "dosing-session-alert"))

    # --- a side effect: dissociation, mild -------------------------------------------------
    page.locator("#effects summary").click()
    effect = page.locator("#side-effect-form")
    effect.locator("#id_se-kind").select_option("dissociation")
    effect.locator("#id_se-severity").select_option("mild")
    effect.locator("#id_se-at").fill("10:20")
    effect.locator("#id_se-action").fill("Reassured; lights dimmed")
    effect.locator("#id_se-outcome").select_option("resolved")
    effect.get_by_role("button", name="Record").click()
    expect(page.locator("#side-effects")).to_contain_text("Dissociation")

    # --- CADSS-6 at about 40 minutes ------------------------------------------------------
    cadss = page.locator("#cadss-form")
    cadss.locator("#id_cadss-at").fill("10:42")
    answer_scale(cadss, [2, 1, 1, 0, 1, 0])
    cadss.get_by_role("button", name="Record CADSS-6").click()
    expect(page.locator(".messages")).to_contain_text("CADSS-6 recorded: total 5")
    expect(page.locator("#cadss-result-1")).to_contain_text("5")

    # BP settles; Aldrete 10.
    vitals = page.locator("#vitals-form")
    for field, value in {
        "at": "11:35",
        "sbp": "132",
        "dbp": "84",
        "hr": "76",
        "spo2": "98",
    }.items():
        vitals.locator(f"#id_vs-{field}").fill(value)
    vitals.get_by_role("button", name="Record vitals").click()
    expect(page.locator("#vitals-alert")).to_have_count(0)
    score = page.locator("#discharge-score-form")
    score.locator("#id_ds-at").fill("11:38")
    answer_scale(score, [2, 2, 2, 2, 2])
    score.get_by_role("button", name="Record score").click()
    expect(page.locator(".messages")).to_contain_text("Discharge score recorded: 10")

    # --- discharge refused at 100 minutes, naming each unmet criterion ---------------------
    dis = page.locator("#discharge-form")
    dis.locator("#id_dis-at").fill("11:40")
    dis.locator("#id_dis-ride_present").check()
    dis.locator("#id_dis-ready_to_leave_minutes").fill("95")
    dis.get_by_role("button", name="Discharge").click()
    errors = page.locator("#discharge-form .form-errors")
    expect(errors).to_contain_text("12:00")
    expect(errors).to_contain_text("clinically stable")
    expect(page.locator("#id_dis-ready_to_leave_minutes")).to_have_value("95")
    assert world.session().state != SessionState.DISCHARGED
    shots.append(shot(page, "dosing-discharge-refused"))

    # --- the prescriber confirms stability ------------------------------------------------
    context, doctor = second_browser(browser, live_server, "priya")
    try:
        doctor.goto(session_url)
        doctor.locator("#stability-form textarea").fill(
            "Alert, oriented, BP settled, walking steadily."
        )
        doctor.locator("#stability-form").get_by_role("button", name="Confirm stability").click()
        expect(doctor.locator(".messages")).to_contain_text("Clinical stability confirmed.")
    finally:
        context.close()

    # --- discharge at 125 minutes, then the nurse signs ------------------------------------
    page.goto(session_url)
    dis = page.locator("#discharge-form")
    dis.locator("#id_dis-at").fill("12:05")
    dis.locator("#id_dis-ride_present").check()
    dis.locator("#id_dis-ready_to_leave_minutes").fill("95")
    dis.get_by_role("button", name="Discharge").click()
    expect(page.locator(".messages")).to_contain_text("Discharged home.")
    expect(page.locator("#state")).to_have_text("Discharged")
    page.locator("#sign-form").get_by_role("button", name="Sign the note").click()
    expect(page.locator("#signed")).to_contain_text("signed by Nadia Okafor")
    expect(page.locator("#note-form")).to_have_count(0)  # read-only now
    shots.append(shot(page, "dosing-session-signed"))
    page.set_viewport_size(PHONE)
    fits, scroll, inner = no_horizontal_overflow(page)
    assert fits, f"session page scrolls sideways on a phone: {scroll} > {inner}"
    shots.append(shot(page, "dosing-session-signed-phone"))
    page.set_viewport_size(DESKTOP)

    # --- the prescriber co-signs ------------------------------------------------------------
    context, doctor = second_browser(browser, live_server, "priya")
    try:
        doctor.goto(session_url)
        doctor.locator("#cosign-form").get_by_role("button", name="Co-sign").click()
        expect(doctor.locator("#cosigned")).to_contain_text("co-signed by Priya Shah")
        doctor.goto("/dosing/settings/")
        expect(doctor.locator("#id_aftercare_text")).to_contain_text("Do not drive")
        phone_shots(doctor, "dosing-settings")
    finally:
        context.close()
    session = world.session()
    assert session.signed_by == world.nurse and session.cosigned_by == world.prescriber

    # --- the REMS monitoring form: page and PDF --------------------------------------------
    page.goto(session_url)
    page.get_by_role("link", name="REMS monitoring form").click()
    expect(page.locator("#pmf-bp_before")).to_have_text("150/95")
    expect(page.locator("#pmf-bp_40_min")).to_have_text("185/100")
    expect(page.locator("#pmf-bp_before_discharge")).to_have_text("132/84")
    expect(page.locator("#pmf-lot_numbers")).to_contain_text("SPV2207")
    expect(page.locator("#pmf-dose_mg")).to_contain_text("84")
    expect(page.locator("#pmf-total_minutes")).to_have_text("125")
    expect(page.locator("#pmf-dissociation")).to_contain_text("Yes (CADSS-6 total 5)")
    phone_shots(page, "dosing-pmf")
    pdf = page.request.get(page.url.split("?")[0] + "?format=pdf")
    assert pdf.headers["content-type"] == "application/pdf"
    text = pdf_text(pdf.body())
    missing = contains_all(
        text,
        "Marisol",
        "Vance",
        "150/95",
        "185/100",
        "132/84",
        "SPV2207",
        "84 mg",
        "125",
        "HCS-552211",
    )
    assert missing == [], missing
    page.locator("#id_confirmation_number").fill("PMF-20931")
    page.get_by_role("button", name="Mark submitted").click()
    expect(page.locator("#pmf-confirmation")).to_have_text("PMF-20931")
    page.goto("/dosing/rems-forms/")
    expect(page.locator("#pmf-list")).to_contain_text("PMF-20931")
    phone_shots(page, "dosing-pmf-list")
    page.goto(session_url + "after-care/")
    expect(page.locator("#aftercare")).to_contain_text("Do not drive")
    expect(page.locator("#aftercare")).to_contain_text("Marisol Vance")
    phone_shots(page, "dosing-aftercare")

    # --- the ledger shows the three devices administered -----------------------------------
    administered = LedgerEntry.objects.filter(
        dosing_session_id=session.pk, kind=EntryKind.ADMINISTRATION
    )
    assert administered.count() == 3 and {e.quantity_ug for e in administered} == {28_000}
    page.goto("/ledger/reports/administrations/")
    rows = page.locator("#report-table tbody tr", has_text="Vance, Marisol").filter(
        has_text="Administered"
    )
    expect(rows).to_have_count(3)  # the report covers today: session 1's devices are not in it
    for i in range(3):
        expect(rows.nth(i)).to_contain_text("28 mg")
    shots.append(shot(page, "dosing-ledger-administrations"))
    assert console_errors == [], console_errors


def test_a_conflicting_edit_from_a_second_browser_gets_a_message_and_loses_nothing(
    page, browser, live_server, console_errors
):  # type: ignore[no-untyped-def]
    world = Setup()
    log_in(page, "nadia", PASSWORD)
    # The chair board follows a check-in made elsewhere without a reload.
    page.goto("/dosing/board/")
    row = page.locator("#board-table tbody tr", has_text="Marisol Vance")
    expect(row).to_contain_text("Booked")
    page.evaluate("() => { window.notReloaded = true; }")
    session = dosing.check_in(world.nurse_actor, world.appointment, at=world.at(9, 50))
    expect(row).to_contain_text("Checked in", timeout=25_000)
    assert page.evaluate("() => window.notReloaded === true")
    page.goto(f"/dosing/sessions/{session.pk}/")
    page.locator("#id_note-note").fill(
        "Patient anxious on arrival; reassured. Partner waiting outside."
    )

    context, other = second_browser(browser, live_server, "noah")
    try:
        other.goto(f"/dosing/sessions/{session.pk}/")
        other.locator("#id_note-note").fill("Arrived on time, BP cuff size large.")
        other.get_by_role("button", name="Save note").click()
        expect(other.locator(".messages")).to_contain_text("Note saved.")
    finally:
        context.close()

    page.get_by_role("button", name="Save note").click()
    expect(page.locator("#conflict")).to_contain_text("someone else changed this session")
    # Nothing lost: Nadia's text is still in the form, Noah's is saved.
    expect(page.locator("#id_note-note")).to_have_value(
        "Patient anxious on arrival; reassured. Partner waiting outside."
    )
    assert world.session().note == "Arrived on time, BP cuff size large."
    expect(page.locator("#note-saved")).to_have_text("Arrived on time, BP cuff size large.")
    shot(page, "dosing-conflict")
    # Having read the page, she saves both.
    page.locator("#id_note-note").fill(
        "Arrived on time, BP cuff size large. Patient anxious on arrival; reassured."
    )
    page.get_by_role("button", name="Save note").click()
    expect(page.locator(".messages")).to_contain_text("Note saved.")
    assert world.session().note.endswith("reassured.")
    assert console_errors == [], console_errors
