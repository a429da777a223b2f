"""The demo clinic: scale histories that look like a real ketamine clinic's, made through the
real services (scores, audit chain, alerts)."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.db import connection, transaction
from django.utils import timezone

from ketaclinic.audit.verify import verify_all
from ketaclinic.clinical import dosing, outcomes
from ketaclinic.clinical.instruments import score
from ketaclinic.demo.loader import DEMO_CLINIC, load_demo
from ketaclinic.demo.scales import plan_courses
from ketaclinic.dosing.models import Amendment, DosingSession, SessionState
from ketaclinic.dosing.selectors import chair_board
from ketaclinic.inventory.models import Discrepancy, EntryKind, LedgerEntry
from ketaclinic.inventory.verify import verify_all as verify_ledger
from ketaclinic.measures.models import Alert, ResponseSource, ScaleResponse
from ketaclinic.patients.models import Patient, PatientStatus
from ketaclinic.treatment.models import (
    Appointment,
    AppointmentKind,
    AppointmentStatus,
    Chair,
    CourseStatus,
    Drug,
    EligibilityAssessment,
    OutboundMessage,
    Reminder,
    TreatmentCourse,
)
from ketaclinic.treatment.selectors import course_progress, course_sessions
from tests.inventory.conftest import append_only_trigger_off, verify_fails, verify_passes

TREATED = {PatientStatus.ACTIVE, PatientStatus.PAUSED, PatientStatus.DISCHARGED}


def phq9_by_patient(clinic) -> dict[int, list[ScaleResponse]]:  # type: ignore[no-untyped-def]
    rows = defaultdict(list)
    for r in ScaleResponse.objects.filter(clinic=clinic, instrument_code="phq9").order_by(
        "administered_at", "pk"
    ):
        rows[r.patient_id].append(r)
    return rows


def check_demo_loads_with_a_sound_audit_chain(demo) -> None:  # type: ignore[no-untyped-def]
    assert demo.name == DEMO_CLINIC
    assert Patient.objects.filter(clinic=demo).count() == 40
    checked, problem = verify_all()
    assert problem is None
    assert checked > 1000


def check_every_patient_has_the_demo_prescriber(demo) -> None:  # type: ignore[no-untyped-def]
    patients = Patient.objects.filter(clinic=demo).select_related("responsible_prescriber")
    assert {p.responsible_prescriber.username for p in patients} == {"prescriber"}


def check_exactly_one_open_alert_and_it_is_suicidality(demo) -> None:  # type: ignore[no-untyped-def]
    open_alerts = list(Alert.objects.filter(clinic=demo, acknowledged_at__isnull=True))
    assert len(open_alerts) == 1
    alert = open_alerts[0]
    assert "suicidality" in {r["code"] for r in alert.reasons}
    assert alert.severity == "high"
    assert alert.assigned_to.username == "prescriber"
    # It is the patient's latest PHQ-9, item 9 answered 1 ("several days").
    latest = (
        ScaleResponse.objects.filter(patient=alert.patient, instrument_code="phq9")
        .order_by("-administered_at", "-pk")
        .first()
    )
    assert alert.response == latest
    assert latest.answers.get(item_id="q9").value == 1
    assert latest.source == ResponseSource.SELF_REPORT


def check_older_alerts_are_acknowledged_with_a_note(demo) -> None:  # type: ignore[no-untyped-def]
    done = Alert.objects.filter(clinic=demo, acknowledged_at__isnull=False)
    assert done.count() >= 3
    for alert in done:
        assert alert.acknowledged_by.username == "prescriber"
        assert alert.acknowledgement_note.strip()
        assert alert.acknowledged_at >= alert.opened_at
        assert alert.opened_at >= alert.response.administered_at
    codes = {r["code"] for a in done for r in a.reasons}
    assert {"suicidality", "phq9_rise"} <= codes


def check_trajectories_cover_every_outcome(demo) -> None:  # type: ignore[no-untyped-def]
    kinds: dict[str, int] = defaultdict(int)
    for rows in phq9_by_patient(demo).values():
        if len(rows) < 2:
            continue
        c = outcomes.classify("phq9", float(rows[0].total), float(rows[-1].total))
        if c.remission:
            kinds["remitter"] += 1
        elif c.response:
            kinds["responder"] += 1
        elif c.percent_change >= 25:
            kinds["partial"] += 1
        elif c.percent_change < 20:
            kinds["non_responder"] += 1
    assert kinds["remitter"] >= 3
    assert kinds["responder"] >= 3
    assert kinds["non_responder"] >= 3
    assert kinds["partial"] >= 2


def check_history_spans_3_to_12_months_for_treated_patients(demo) -> None:  # type: ignore[no-untyped-def]
    by_patient = phq9_by_patient(demo)
    today = timezone.localdate(timezone=ZoneInfo(demo.time_zone))
    # Patients whose first course started in the last weeks: a PHQ-9 before each session.
    new = set(
        TreatmentCourse.objects.filter(
            clinic=demo, start_date__gte=today - timedelta(days=60), start_date__lte=today
        ).values_list("patient_id", flat=True)
    )
    assert 4 <= len(new) <= 5
    for patient in Patient.objects.filter(clinic=demo):
        rows = by_patient[patient.pk]
        assert rows, patient
        if patient.pk in new:
            assert patient.status == PatientStatus.ACTIVE
            # The screening baseline stands for session 1; each later session has its own.
            done = Appointment.objects.filter(
                patient=patient,
                kind=AppointmentKind.DOSING,
                status=AppointmentStatus.COMPLETED,
            ).count()
            today_under_way = (
                DosingSession.objects.filter(patient=patient)
                .exclude(state=SessionState.DISCHARGED)
                .count()
            )
            # (A session run through the dosing screen has that day's PHQ-9 too.)
            assert done <= len(rows) <= done + 1 + today_under_way, patient
            assert done >= 1
            assert rows[-1].administered_at - rows[0].administered_at < timedelta(days=60)
        elif patient.status in TREATED:
            span = rows[-1].administered_at - rows[0].administered_at
            assert timedelta(days=88) <= span <= timedelta(days=366), (patient, span)
            assert len(rows) >= 6
        else:
            assert len(rows) == 1  # screening and referred: a baseline only


def check_scales_are_the_expected_mix(demo) -> None:  # type: ignore[no-untyped-def]
    responses = ScaleResponse.objects.filter(clinic=demo)
    codes = set(responses.values_list("instrument_code", flat=True))
    # (CADSS-6 and the modified Aldrete come from the dosing sessions.)
    assert codes == {
        "phq9",
        "cssrs_screen",
        "gad7",
        "pcl5",
        "peg",
        "madrs",
        "cadss6",
        "aldrete_modified",
    }
    madrs = responses.filter(instrument_code="madrs")
    assert madrs.exists()
    assert set(madrs.values_list("source", flat=True)) == {ResponseSource.STAFF}
    assert set(madrs.values_list("recorded_by__username", flat=True)) == {"prescriber"}
    for code, dx in (("pcl5", "F43.10"), ("peg", "G90.511")):
        ids = set(responses.filter(instrument_code=code).values_list("patient_id", flat=True))
        assert ids
        for patient in Patient.objects.filter(pk__in=ids):
            assert any(d in patient.diagnosis_codes for d in (dx, "M79.7")), (code, patient)


def check_every_response_is_complete_and_rescores_the_same(demo) -> None:  # type: ignore[no-untyped-def]
    responses = ScaleResponse.objects.filter(clinic=demo).prefetch_related("answers")
    assert responses.count() > 500
    for r in responses:
        assert r.complete and not r.prorated, r.pk
        answers = {a.item_id: a.value for a in r.answers.all()}
        result = score(r.instrument_code, answers)
        assert not result.errors, (r.pk, result.errors)
        if result.total is not None:
            assert float(r.total) == pytest.approx(result.total)
        if r.instrument_code == "phq9" and "suicidality" not in r.flags:
            assert answers["q9"] == 0
        if r.instrument_code == "cssrs_screen":
            if answers["q2"] is not True:
                assert answers["q3"] is answers["q4"] is answers["q5"] is None
            if answers["q6"] is not True:
                assert answers["q6a"] is None


def check_demo_is_deterministic(demo) -> None:  # type: ignore[no-untyped-def]
    # Same seed, same plan: trajectories, baselines and visit days repeat.
    patients = list(Patient.objects.filter(clinic=demo).order_by("pk"))
    today = demo.created_at.date()
    a = plan_courses(random.Random(7), patients, today)
    b = plan_courses(random.Random(7), patients, today)
    assert [(p.archetype, p.baseline, p.final, p.days) for p in a] == [
        (p.archetype, p.baseline, p.final, p.days) for p in b
    ]


def progress(course):  # type: ignore[no-untyped-def]
    return course_progress(course, course_sessions(course))


def check_courses_in_every_phase(demo) -> None:  # type: ignore[no-untyped-def]
    today = timezone.localdate(timezone=ZoneInfo(demo.time_zone))
    courses = list(TreatmentCourse.objects.filter(clinic=demo).select_related("patient"))
    phases: dict[str, set[str]] = defaultdict(set)
    for course in courses:
        p = progress(course)
        if course.status == CourseStatus.ACTIVE:
            if p.needs_decision:
                phase = "awaiting_decision"
            elif p.induction_done == 0 and course.start_date > today:
                phase = "planned"
            else:
                assert 0 < p.induction_done < p.induction_total, (
                    course.pk,
                    course.start_date,
                    [(a.number, a.status, a.starts_at) for a in course_sessions(course)][:4],
                )
                phase = "induction"
        else:
            phase = course.status
        phases[phase].add(course.drug)
    both = {Drug.KETAMINE, Drug.ESKETAMINE}
    assert phases == {
        "planned": both,
        "induction": both,
        "awaiting_decision": {Drug.KETAMINE},
        CourseStatus.MAINTENANCE: both,
        CourseStatus.PAUSED: both,
        CourseStatus.STOPPED: both,
    }
    counts = Counter(c.status for c in courses)
    assert counts[CourseStatus.MAINTENANCE] >= 12
    assert counts[CourseStatus.STOPPED] >= 5
    # Every treated patient has the course their scale history tells; paused and discharged
    # patients' courses are paused and stopped.
    for course in courses:
        status = course.patient.status
        if status == PatientStatus.PAUSED:
            assert course.status == CourseStatus.PAUSED
        if status == PatientStatus.DISCHARGED:
            assert course.status == CourseStatus.STOPPED
            assert not course.appointments.filter(status=AppointmentStatus.PLANNED).exists()
        assert course.assessment.is_signed
        assert course.assessment.signed_at <= course.created_at
        if course.drug == Drug.ESKETAMINE:
            assert course.patient.rems_patient_id
            assert course.patient.rems_enrolled_on <= course.start_date
    assessments = EligibilityAssessment.objects.filter(clinic=demo)
    unsigned = assessments.filter(signed_at__isnull=True)
    assert {a.drug for a in unsigned} == both and unsigned.count() == 2
    refused = assessments.get(decision="not_eligible")
    assert refused.is_signed and not refused.courses.exists()


def check_course_scales_show_response(demo) -> None:  # type: ignore[no-untyped-def]
    outcomes_seen = Counter()
    for course in TreatmentCourse.objects.filter(
        clinic=demo, status__in=[CourseStatus.MAINTENANCE, CourseStatus.STOPPED, "active"]
    ):
        p = progress(course)
        if p.outcome is None:
            continue
        assert p.baseline == course.assessment.depression_scale
        outcomes_seen["response" if p.outcome.response else "none"] += 1
    assert outcomes_seen["response"] >= 5
    assert outcomes_seen["none"] >= 3
    review = next(
        c
        for c in TreatmentCourse.objects.filter(clinic=demo, status="active")
        if progress(c).needs_decision
    )
    assert progress(review).outcome.response


def check_a_week_of_bookings_in_clinic_hours(demo) -> None:  # type: ignore[no-untyped-def]
    tz = ZoneInfo(demo.time_zone)
    now = timezone.now()
    today = now.astimezone(tz).date()
    monday = datetime.combine(today - timedelta(days=today.weekday()), time(0), tzinfo=tz)
    assert Chair.objects.filter(clinic=demo).count() == 5  # 4 chairs and a therapy room
    week = list(
        Appointment.objects.filter(
            clinic=demo, starts_at__gte=monday, starts_at__lt=monday + timedelta(days=7)
        ).exclude(status=AppointmentStatus.CANCELLED)
    )
    assert len(week) >= 12
    assert len({a.chair_id for a in week}) >= 4
    assert {a.kind for a in week} == {AppointmentKind.DOSING, AppointmentKind.INTEGRATION}
    # Today's sessions under way are wherever the clock is when the demo loads.
    under_way = DosingSession.objects.exclude(state=SessionState.DISCHARGED).values_list(
        "appointment_id", flat=True
    )
    for appointment in Appointment.objects.filter(clinic=demo, starts_at__isnull=False).exclude(
        pk__in=under_way
    ):
        local = appointment.starts_at.astimezone(tz)
        ends = local + timedelta(minutes=appointment.duration_minutes)
        # Weekdays; a Saturday morning only for a session whose window has no weekday.
        assert local.weekday() < 5 or (local.weekday() == 5 and local.hour < 13), appointment.pk
        assert time(8) <= local.time() and ends.time() <= time(18, 30), appointment.pk
        assert local.date() == ends.date()
        if ends <= now:
            assert appointment.status == AppointmentStatus.COMPLETED, appointment.pk
        elif appointment.starts_at > now:
            assert appointment.status == AppointmentStatus.BOOKED, appointment.pk
    # Sessions not yet booked are never in the past.
    assert (
        not Appointment.objects.filter(
            clinic=demo, status=AppointmentStatus.PLANNED, target__lt=today - timedelta(days=3)
        )
        .exclude(course__status=CourseStatus.PAUSED)
        .exists()
    )


def check_reminders_in_the_outbox(demo) -> None:  # type: ignore[no-untyped-def]
    now = timezone.now()
    sent = Reminder.objects.filter(clinic=demo, status="sent").select_related("appointment")
    pending = Reminder.objects.filter(clinic=demo, status="pending").select_related("appointment")
    assert sent.count() >= 20
    assert pending.count() >= 10
    messages = {m.reminder_id: m for m in OutboundMessage.objects.filter(clinic=demo)}
    # (Today's sessions under way were moved to now after their reminder went out.)
    moved_today = set(
        DosingSession.objects.exclude(state=SessionState.DISCHARGED).values_list(
            "appointment_id", flat=True
        )
    )
    assert set(messages) == {r.pk for r in sent}
    for reminder in sent:
        if reminder.appointment_id not in moved_today:
            assert reminder.sent_at <= reminder.appointment.starts_at
        assert messages[reminder.pk].patient_id == reminder.appointment.patient_id
        assert "@" not in messages[reminder.pk].body
    for reminder in pending:
        assert reminder.send_at > now - timedelta(minutes=30)
        assert reminder.appointment.status == AppointmentStatus.BOOKED
        assert reminder.appointment.starts_at > now
    # Every booked visit has exactly one reminder still to go or already gone.
    for appointment in Appointment.objects.filter(clinic=demo, status=AppointmentStatus.BOOKED):
        assert appointment.reminders.exclude(status="skipped").count() == 1, appointment.pk


def check_ledger_follows_the_sessions(demo) -> None:  # type: ignore[no-untyped-def]
    checked, problem = verify_ledger()
    assert problem is None, problem
    assert checked > 150
    verify_passes()
    tz = ZoneInfo(demo.time_zone)
    first = LedgerEntry.objects.filter(clinic=demo).order_by("sequence").first().at
    sessions = {
        (a.patient_id, a.starts_at.astimezone(tz).date()): a
        for a in Appointment.objects.filter(
            clinic=demo,
            kind=AppointmentKind.DOSING,
            status=AppointmentStatus.COMPLETED,
            starts_at__gte=datetime.combine(
                first.astimezone(tz).date() + timedelta(days=1), time(0), tzinfo=tz
            ),
        ).select_related("course")
    }
    # Each completed session's dose was administered, on its day, in the hour after it began
    # (esketamine device by device); nothing is administered to anyone else.
    given: dict[tuple[int, object], int] = defaultdict(int)
    in_progress = set(
        DosingSession.objects.filter(clinic=demo)
        .exclude(state=SessionState.DISCHARGED)
        .values_list("pk", flat=True)
    )
    administrations = LedgerEntry.objects.filter(clinic=demo, kind=EntryKind.ADMINISTRATION)
    for entry in administrations.select_related("container__lot__product"):
        key = (entry.patient_id, entry.at.astimezone(tz).date())
        if key not in sessions:
            assert entry.dosing_session_id in in_progress  # today's, under way
            continue
        session = sessions[key]
        assert session.starts_at <= entry.at <= session.starts_at + timedelta(minutes=60)
        assert entry.container.lot.product.drug == session.course.drug
        given[key] += entry.quantity_ug
    assert len(given) == len(sessions) >= 30
    for key, session in sessions.items():
        course = session.course
        if course.drug == Drug.ESKETAMINE:
            assert given[key] == int(session.dose_mg * 1000), session.pk
        else:
            plan = dosing.iv_infusion(course.dosing_weight_kg, session.mg_per_kg, 40, 50)
            assert given[key] == int(plan.dose_mg * 1000), session.pk
    discrepancies = Discrepancy.objects.filter(clinic=demo)
    assert discrepancies.filter(resolved_at__isnull=False).count() == 1
    assert discrepancies.filter(resolved_at__isnull=True).count() == 1


def check_dosing_sessions(demo) -> None:  # type: ignore[no-untyped-def]
    """Completed IV and esketamine sessions with full flowsheets, signed and co-signed, one
    amended note, and sessions in progress today on the chair board."""
    done = list(
        DosingSession.objects.filter(clinic=demo, state=SessionState.DISCHARGED).select_related(
            "appointment"
        )
    )
    assert Counter(s.drug for s in done)[Drug.KETAMINE] >= 1
    assert Counter(s.drug for s in done)[Drug.ESKETAMINE] >= 1
    for session in done:
        assert session.appointment.status == AppointmentStatus.COMPLETED
        assert session.signed_at and session.cosigned_at
        assert session.signed_by.username == "nurse"
        assert session.cosigned_by.username == "prescriber"
        assert session.vitals.count() >= 5
        assert session.scales.filter(response__instrument_code="cadss6").exists()
        assert session.scales.filter(purpose="discharge").exists()
        entries = LedgerEntry.objects.filter(dosing_session_id=session.pk)
        assert entries.filter(kind=EntryKind.ADMINISTRATION).exists()
        if session.drug == Drug.KETAMINE:
            assert entries.filter(kind=EntryKind.WASTE, witness__username="prescriber").exists()
        else:
            assert session.rems_form.status in ("draft", "submitted")

    amended = Amendment.objects.filter(session__clinic=demo)
    assert amended.count() == 1
    amendment = amended.get()
    assert amendment.field == "note" and amendment.old_value != amendment.new_value
    assert amendment.session.note == amendment.old_value  # the original is kept
    # Under way now (how many depends on the hour the demo loads: none start before midnight).
    board = chair_board(demo)
    states = {row.state for row in board if row.session}
    under_way = {SessionState.DOSING, SessionState.OBSERVATION, SessionState.PRE_DOSE}
    if timezone.localtime(timezone.now(), ZoneInfo(demo.time_zone)).hour >= 1:
        assert len(states & under_way) >= 2, states
    for row in board:
        if row.state in (SessionState.DOSING, SessionState.OBSERVATION):
            assert row.minutes_since_dose is not None and row.next_vitals_due is not None


def check_changing_any_ledger_entry_is_named(demo) -> None:  # type: ignore[no-untyped-def]
    entries = list(LedgerEntry.objects.filter(clinic=demo).order_by("sequence"))
    picks = {entries[0], entries[len(entries) // 2], entries[-1]}
    for kind in (EntryKind.DRAW, EntryKind.ADMINISTRATION, EntryKind.WASTE, EntryKind.TRANSFER):
        picks.add(next(e for e in entries if e.kind == kind))
    for entry in picks:
        with transaction.atomic():
            with append_only_trigger_off(), connection.cursor() as cursor:
                cursor.execute(
                    "UPDATE inventory_ledgerentry SET quantity_ug = quantity_ug + 1 WHERE id = %s",
                    [entry.pk],
                )
            message = verify_fails()
            assert message.startswith(f"Ledger check failed at ledger entry {entry.pk} "), message
            transaction.set_rollback(True)
        verify_passes()


def test_demo_clinic(db) -> None:  # type: ignore[no-untyped-def]
    """One load (it takes seconds), then every check on it."""
    demo = load_demo()
    check_demo_loads_with_a_sound_audit_chain(demo)
    check_every_patient_has_the_demo_prescriber(demo)
    check_exactly_one_open_alert_and_it_is_suicidality(demo)
    check_older_alerts_are_acknowledged_with_a_note(demo)
    check_trajectories_cover_every_outcome(demo)
    check_history_spans_3_to_12_months_for_treated_patients(demo)
    check_scales_are_the_expected_mix(demo)
    check_every_response_is_complete_and_rescores_the_same(demo)
    check_demo_is_deterministic(demo)
    check_courses_in_every_phase(demo)
    check_course_scales_show_response(demo)
    check_a_week_of_bookings_in_clinic_hours(demo)
    check_reminders_in_the_outbox(demo)
    check_ledger_follows_the_sessions(demo)
    check_dosing_sessions(demo)
    check_changing_any_ledger_entry_is_named(demo)
