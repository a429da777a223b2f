"""After the induction (response, remission, the prescriber's choice), pausing and resuming
an esketamine course by the label's missed-dose guidance, and chairs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from ketaclinic.audit.context import Actor
from ketaclinic.audit.models import AuditEntry
from ketaclinic.measures.models import ScaleResponse
from ketaclinic.measures.services import record_response
from ketaclinic.treatment import selectors, services
from ketaclinic.treatment.models import Appointment, Chair, ChairSlot, Reminder
from tests.conftest import register
from tests.treatment import helpers


def _rx(world):  # type: ignore[no-untyped-def]
    return Actor.system(world.clinic_a, user=world.prescriber, label="test")


def _past_course(world, weeks_ago: int = 5, **kwargs):  # type: ignore[no-untyped-def]
    """A course that started `weeks_ago` weeks ago (its assessment signed today)."""
    patient = register(world.clinic_a, world.prescriber)
    start = world.clinic_a.today() - timedelta(weeks=weeks_ago)
    return helpers.esketamine_course(patient, world.prescriber, start=start, **kwargs)


def _phq9_later(course, answers: list[int], days_after_start: int = 30) -> ScaleResponse:  # type: ignore[no-untyped-def]
    response = record_response(
        Actor.system(course.clinic, user=course.responsible_prescriber, label="test"),
        course.patient,
        "phq9",
        answers,
    )
    start = helpers.at(course.clinic, course.start_date, 8)
    # the baseline (the assessment's) was answered the day before the first dose
    ScaleResponse.objects.filter(pk=course.assessment.depression_scale_id).update(
        administered_at=start - timedelta(days=1)
    )
    ScaleResponse.objects.filter(pk=response.pk).update(
        administered_at=start + timedelta(days=days_after_start)
    )
    return response


def test_after_the_induction_it_shows_response_and_remission(world) -> None:  # type: ignore[no-untyped-def]
    course = _past_course(world)
    # baseline (the assessment's PHQ-9) is 12; 3 is a response (-75%) and a remission (<5)
    _phq9_later(course, [1, 1, 1, 0, 0, 0, 0, 0, 0])
    progress = selectors.course_progress(course, selectors.course_sessions(course))
    assert progress.baseline.total == 12
    assert progress.latest.total == 3
    assert progress.outcome.response is True
    assert progress.outcome.remission is True
    assert progress.needs_decision is True


def test_a_partial_improvement_is_neither_response_nor_remission(world) -> None:  # type: ignore[no-untyped-def]
    course = _past_course(world)
    _phq9_later(course, [1, 1, 1, 1, 1, 1, 1, 1, 0])  # 8 of baseline 12: -33%
    progress = selectors.course_progress(course, selectors.course_sessions(course))
    assert (progress.outcome.response, progress.outcome.remission) == (False, False)


def test_no_decision_is_asked_during_the_induction(world) -> None:  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.prescriber)
    course = helpers.esketamine_course(patient, world.prescriber)
    progress = selectors.course_progress(course, selectors.course_sessions(course))
    assert progress.needs_decision is False
    assert progress.outcome is None


def test_choosing_maintenance_adds_sessions_from_week_9(world) -> None:  # type: ignore[no-untyped-def]
    course = _past_course(world)
    services.decide_after_induction(
        _rx(world), course, decision="maintenance", maintenance_sessions=3, note="Responded."
    )
    course.refresh_from_db()
    assert course.status == "maintenance"
    added = list(course.appointments.filter(number__gt=12).order_by("number"))
    assert [a.number for a in added] == [13, 14, 15]
    assert added[0].earliest == course.start_date + timedelta(weeks=8)
    # every 2 weeks by default: one session per 2-week block
    assert (added[1].target - added[0].target).days == 14
    entry = AuditEntry.objects.filter(object_type="treatment_course").last()
    assert entry.detail == {"decision": "maintenance", "sessions_added": 3}
    assert entry.reason == "Responded."


def test_choosing_stop_cancels_what_is_still_planned(world) -> None:  # type: ignore[no-untyped-def]
    course = _past_course(world)
    services.decide_after_induction(_rx(world), course, decision="stop", note="No response.")
    course.refresh_from_db()
    assert course.status == "stopped"
    assert not course.appointments.filter(status="planned").exists()
    with pytest.raises(ValidationError):
        services.decide_after_induction(
            _rx(world), course, decision="maintenance", maintenance_sessions=2
        )


def test_maintenance_needs_at_least_one_session(world) -> None:  # type: ignore[no-untyped-def]
    course = _past_course(world)
    with pytest.raises(ValidationError) as exc:
        services.decide_after_induction(
            _rx(world), course, decision="maintenance", maintenance_sessions=0
        )
    assert "maintenance_sessions" in exc.value.message_dict
    assert course.appointments.count() == 12


# --- pause and resume ---------------------------------------------------------------------------


def test_pausing_releases_future_bookings_and_stops_reminders(world) -> None:  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.prescriber)
    course = helpers.esketamine_course(patient, world.prescriber)
    chair = helpers.chair(world.clinic_a)
    second = course.appointments.get(number=2)
    services.book(
        _rx(world), second, starts_at=helpers.at(world.clinic_a, second.target), chair=chair
    )
    with pytest.raises(ValidationError):
        services.pause_course(_rx(world), course, reason="")
    released = services.pause_course(_rx(world), course, reason="Hospitalised for surgery.")
    assert released == 1
    second.refresh_from_db()
    assert (second.status, second.starts_at, second.chair) == ("planned", None, None)
    assert not ChairSlot.objects.exists()
    assert list(Reminder.objects.values_list("status", flat=True)) == ["skipped"]
    course.refresh_from_db()
    assert (course.status, course.status_before_pause) == ("paused", "active")
    # nothing can be booked while paused
    with pytest.raises(ValidationError) as exc:
        services.book(
            _rx(world), second, starts_at=helpers.at(world.clinic_a, second.target), chair=chair
        )
    assert "resume it" in exc.value.messages[0]


def test_resuming_in_weeks_1_to_4_continues_the_schedule_without_catch_up(world) -> None:  # type: ignore[no-untyped-def]
    course = _past_course(world, weeks_ago=2)  # label week 3 today
    services.pause_course(_rx(world), course, reason="Flu.")
    guidance = services.resume_course(
        _rx(world), course, resume_on=world.clinic_a.today(), depression_worse=True
    )
    assert guidance.action == "continue_schedule"
    assert guidance.label_week == 3
    course.refresh_from_db()
    assert course.status == "active"
    # sessions whose window closed are missed, not made up; the rest stay planned
    missed = course.appointments.filter(move_reason="missed while paused")
    assert (
        missed.count()
        == course.appointments.filter(latest__lt=world.clinic_a.today()).count()
    )
    assert missed.count() >= 3
    assert not course.appointments.filter(number__gt=12).exists()
    entry = AuditEntry.objects.filter(object_type="treatment_course").last()
    assert entry.detail["guidance"] == "continue_schedule"
    assert entry.detail["depression_worse"] is True


def test_resuming_maintenance_with_worse_depression_suggests_the_previous_frequency(world) -> None:  # type: ignore[no-untyped-def]
    course = _past_course(world, weeks_ago=6)  # label week 7: weekly
    services.pause_course(_rx(world), course, reason="Travel.")
    guidance = services.resume_course(
        _rx(world), course, resume_on=world.clinic_a.today(), depression_worse=True
    )
    assert guidance.action == "consider_previous_frequency"
    assert (guidance.current_frequency, guidance.suggested_frequency) == (
        "weekly",
        "twice_weekly",
    )
    assert "clinical.md §2.2" in guidance.source


def test_only_a_paused_course_resumes(world) -> None:  # type: ignore[no-untyped-def]
    course = _past_course(world)
    with pytest.raises(ValidationError):
        services.resume_course(
            _rx(world),
            course,
            resume_on=world.clinic_a.today(),
            depression_worse=False,
        )


def test_a_course_cannot_resume_before_it_was_paused(world) -> None:  # type: ignore[no-untyped-def]
    course = _past_course(world)
    services.pause_course(_rx(world), course, reason="Travel.")
    with pytest.raises(ValidationError) as exc:
        services.resume_course(
            _rx(world),
            course,
            resume_on=world.clinic_a.today() - timedelta(days=1),
            depression_worse=False,
        )
    assert "resume_on" in exc.value.message_dict
    course.refresh_from_db()
    assert course.status == "paused"


def test_resuming_returns_to_maintenance_if_it_was_in_maintenance(world) -> None:  # type: ignore[no-untyped-def]
    course = _past_course(world, weeks_ago=10)
    services.decide_after_induction(
        _rx(world), course, decision="maintenance", maintenance_sessions=4
    )
    services.pause_course(_rx(world), course, reason="Travel.")
    guidance = services.resume_course(
        _rx(world), course, resume_on=world.clinic_a.today(), depression_worse=True
    )
    course.refresh_from_db()
    assert course.status == "maintenance"
    assert (guidance.current_frequency, guidance.suggested_frequency) == (
        "every_2_weeks",
        "weekly",
    )


# --- chairs -------------------------------------------------------------------------------------


def test_a_chair_is_created_through_the_service_and_audited(world) -> None:  # type: ignore[no-untyped-def]
    admin = Actor.system(world.clinic_a, user=world.staff_a["clinic_admin"], label="test")
    chair = services.create_chair(admin, name=" Chair 7 ", room="Room B", capacity=2)
    assert (chair.name, chair.room, chair.capacity) == ("Chair 7", "Room B", 2)
    entry = AuditEntry.objects.get(object_type="chair")
    assert entry.object_id == str(chair.pk)
    assert entry.detail["capacity"] == 2


def test_a_chair_name_is_unique_in_its_clinic_only(world) -> None:  # type: ignore[no-untyped-def]
    admin = Actor.system(world.clinic_a, user=world.staff_a["clinic_admin"], label="test")
    services.create_chair(admin, name="Chair 1")
    with pytest.raises(ValidationError) as exc:
        services.create_chair(admin, name="Chair 1")
    assert exc.value.message_dict["name"] == ["A chair with this name exists."]
    other = Actor.system(world.clinic_b, user=world.admin_b, label="test")
    services.create_chair(other, name="Chair 1")
    assert Chair.objects.count() == 2


def test_a_chair_seats_at_least_one(world) -> None:  # type: ignore[no-untyped-def]
    admin = Actor.system(world.clinic_a, user=world.staff_a["clinic_admin"], label="test")
    with pytest.raises(ValidationError) as exc:
        services.create_chair(admin, name="Ghost", capacity=0)
    assert "capacity" in exc.value.message_dict
    assert not Chair.objects.exists()


def test_a_pause_releases_only_future_bookings(world) -> None:  # type: ignore[no-untyped-def]
    """What already happened (or is happening now) stays on the record as it was."""
    course = _past_course(world, weeks_ago=1)
    chair = helpers.chair(world.clinic_a)
    first = course.appointments.get(number=1)
    earlier = helpers.at(world.clinic_a, first.target, 9)
    Appointment.objects.filter(pk=first.pk).update(status="booked", starts_at=earlier, chair=chair)
    later = course.appointments.filter(earliest__gt=world.clinic_a.today()).order_by(
        "number"
    )[0]
    services.book(
        _rx(world), later, starts_at=helpers.at(world.clinic_a, later.target), chair=chair
    )
    assert services.pause_course(_rx(world), course, reason="Travel.") == 1
    first.refresh_from_db()
    later.refresh_from_db()
    assert (first.status, first.starts_at) == ("booked", earlier)
    assert (later.status, later.starts_at) == ("planned", None)
