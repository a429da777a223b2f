"""Acceptance, in a real browser: a prescriber signs an eligibility assessment and starts an
esketamine course (12 sessions laid out); the front desk moves one session inside its window
and one outside it (asked for a reason); a second booking of the same chair and time is
refused."""

from __future__ import annotations

import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from ketaclinic.accounts.roles import Role
from ketaclinic.accounts.services import create_clinic, create_staff
from ketaclinic.audit.context import Actor
from ketaclinic.audit.models import AuditEntry
from ketaclinic.measures.services import record_response
from ketaclinic.treatment.models import Appointment, Chair, ChairSlot, TreatmentCourse
from tests.conftest import PASSWORD, register
from tests.e2e.conftest import PHONE, log_in, no_horizontal_overflow, shot
from tests.treatment import helpers

pytestmark = pytest.mark.e2e

FINDINGS = [
    "pregnant",
    "breastfeeding",
    "can_become_pregnant",
    "uncontrolled_hypertension",
    "hypertensive_encephalopathy_history",
    "aneurysmal_vascular_disease_or_avm",
    "intracerebral_haemorrhage_history",
    "raised_intracranial_pressure",
    "psychosis_history",
    "psychosis_current",
    "bipolar_or_mania",
    "seizure_disorder",
    "hypersensitivity_to_ketamine_or_esketamine",
    "med_benzodiazepines",
    "med_opioids",
    "med_psychostimulants",
    "med_maois",
]


def _staff(clinic, username, role, first, last):  # type: ignore[no-untyped-def]
    return create_staff(
        clinic=clinic,
        username=username,
        password=PASSWORD,
        role=role,
        first_name=first,
        last_name=last,
        check_password=False,
        two_factor_waived=True,
    )


def _sign_out(page) -> None:  # type: ignore[no-untyped-def]
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_load_state()


def _book(page, appointment: Appointment, day, hour: str, chair: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"/courses/{appointment.course_id}/")
    row = page.locator(f"#session-{appointment.pk}")
    with page.expect_navigation():
        row.get_by_role("link", name=re.compile("Book|Move")).click()
    page.fill("#id_day", day.isoformat())
    page.fill("#id_start_time", hour)
    page.select_option("#id_chair", label=chair)
    with page.expect_navigation():
        page.locator("#booking-form").get_by_role("button", name="Save").click()


def test_prescriber_starts_an_esketamine_course_and_the_front_desk_books_it(  # type: ignore[no-untyped-def]
    page, console_errors
):
    clinic = create_clinic(name="Clinic A", time_zone="America/New_York")
    prescriber = _staff(clinic, "pat", Role.PRESCRIBER, "Pat", "Okafor")
    _staff(clinic, "desk", Role.FRONT_DESK, "Dee", "Ramos")
    Chair.objects.create(clinic=clinic, name="Chair 1", room="East")
    patient = register(clinic, prescriber, given_name="Thessaly", family_name="Quandt")
    patient.rems_patient_id, patient.rems_enrolled_on = "SPR-1001", timezone.localdate()
    patient.save(update_fields=["rems_patient_id", "rems_enrolled_on"])
    actor = Actor.system(clinic, user=prescriber, label="test")
    record_response(actor, patient, "phq9", [2, 2, 2, 2, 1, 1, 1, 1, 0])
    record_response(actor, patient, "cssrs_screen", [False, False])
    start = timezone.localdate() + timedelta(days=1)
    # Someone else's course on the same days, for the double booking at the end.
    other = register(clinic, prescriber, given_name="Bob", family_name="Other")
    other_course = helpers.esketamine_course(other, prescriber, start=start)

    # --- the prescriber: assessment, signature, course --------------------------------------
    log_in(page, "pat", PASSWORD)
    page.goto(f"/patients/{patient.pk}/eligibility/new/")
    page.select_option("#id_drug", "esketamine")
    page.select_option("#id_indication", "trd")
    page.fill("#id_failed_antidepressant_trials", "3")
    page.fill("#id_systolic_bp", "124")
    page.fill("#id_diastolic_bp", "80")
    page.fill("#id_heart_rate", "70")
    page.fill("#id_spo2", "98")
    for name in FINDINGS:
        page.select_option(f"#id_{name}", "no")
    page.select_option("#id_substance_use_disorder", "none")
    page.select_option("#id_hepatic_impairment", "none")
    page.locator("#id_depression_scale").select_option(index=1)
    page.locator("#id_cssrs").select_option(index=1)
    with page.expect_navigation():
        page.get_by_role("button", name="Compute the decision").click()
    expect(page.locator("#decision h2")).to_have_text("Eligible")
    with page.expect_navigation():
        page.locator("#sign-assessment").click()
    expect(page.locator(".messages")).to_contain_text("Assessment signed.")
    with page.expect_navigation():
        page.get_by_role("link", name="Start a treatment course").click()
    page.select_option("#id_protocol", "esketamine_trd")
    page.fill("#id_start_date", start.isoformat())
    page.select_option("#id_dose_mg", "84")
    shot(page, "course-new-desktop")
    with page.expect_navigation():
        page.locator("#course-form").get_by_role("button").last.click()
    expect(page.locator(".messages")).to_contain_text("Course started: 12 sessions laid out.")
    expect(page.locator("#sessions tbody tr")).to_have_count(12)
    course = TreatmentCourse.objects.get(patient=patient)
    assert course.appointments.filter(status="planned").count() == 12
    assert course.appointments.get(number=1).dose_mg == 56  # day 1 is 56 mg whatever the plan
    assert course.appointments.get(number=2).dose_mg == 84
    shot(page, "course-desktop")
    _sign_out(page)

    # --- the front desk: inside the window, outside it, and a double booking ---------------
    log_in(page, "desk", PASSWORD)
    third = course.appointments.get(number=3)
    inside = third.latest if third.latest != third.target else third.earliest
    assert inside != third.target
    _book(page, third, inside, "10:00", "Chair 1")
    expect(page.locator(".messages")).to_contain_text("Booked.")
    third.refresh_from_db()
    assert third.starts_at is not None and third.move_reason == ""

    fifth = course.appointments.get(number=5)
    outside = fifth.latest + timedelta(days=1)
    _book(page, fifth, outside, "10:00", "Chair 1")
    expect(page.locator("#id_reason-errors")).to_contain_text("outside this session's window")
    shot(page, "book-outside-window-desktop")
    fifth.refresh_from_db()
    assert fifth.starts_at is None
    page.fill("#id_reason", "Patient travelling that week; prescriber agreed.")
    with page.expect_navigation():
        page.locator("#booking-form").get_by_role("button", name="Save").click()
    expect(page.locator(".messages")).to_contain_text("Booked.")
    expect(page.locator(f"#session-{fifth.pk}")).to_contain_text("outside window: Patient")
    assert AuditEntry.objects.filter(
        object_type="appointment", object_id=str(fifth.pk), reason__startswith="Patient trav"
    ).exists()

    second = course.appointments.get(number=2)
    _book(page, second, second.target, "09:00", "Chair 1")
    expect(page.locator(".messages")).to_contain_text("Booked.")
    theirs = other_course.appointments.get(number=2)
    assert theirs.target == second.target
    _book(page, theirs, theirs.target, "09:30", "Chair 1")
    expect(page.get_by_role("alert")).to_contain_text("Chair 1 is already booked at")
    shot(page, "book-double-refused-desktop")
    assert not ChairSlot.objects.filter(appointment=theirs).exists()

    # The calendar shows the three bookings; the pages fit a phone.
    page.goto(f"/calendar/?date={second.target.isoformat()}&view=week&by=chair")
    monday = second.target - timedelta(days=second.target.weekday())
    this_week = [
        a
        for a in Appointment.objects.filter(clinic=clinic, status="booked")
        if monday
        <= timezone.localtime(a.starts_at, ZoneInfo(clinic.time_zone)).date()
        < monday + timedelta(days=7)
    ]
    assert second in this_week
    expect(page.locator("#calendar .booking")).to_have_count(len(this_week))
    shot(page, "calendar-week-desktop")
    page.set_viewport_size(PHONE)
    for url, name in (
        (f"/courses/{course.pk}/", "course-phone"),
        (f"/appointments/{theirs.pk}/book/", "book-phone"),
        (f"/calendar/?date={second.target.isoformat()}&view=day&by=chair", "calendar-day-phone"),
    ):
        page.goto(url)
        if name == "calendar-day-phone":  # the day's bookings are on screen, not off to the side
            expect(page.locator("#calendar .booking").first).to_be_in_viewport()
        shot(page, name)
        fits, scroll, inner = no_horizontal_overflow(page)
        assert fits, (name, scroll, inner)
    assert console_errors == []
