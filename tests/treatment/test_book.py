"""Booking and moving appointments: windows, reasons, chair slots the database will not double
up, capacity, insurance warnings, integration sessions and cancelling."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from ketaclinic.audit.context import Actor
from ketaclinic.audit.models import AuditEntry
from ketaclinic.treatment import services
from ketaclinic.treatment.models import Appointment, Chair, ChairSlot, Reminder
from tests.conftest import register
from tests.treatment import helpers

START = date(2030, 3, 4)  # a Monday, far enough ahead that every window is in the future


def _desk(world):  # type: ignore[no-untyped-def]
    return Actor.system(world.clinic_a, user=world.staff_a["front_desk"], label="test")


def _course(world, **kwargs):  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.prescriber, **kwargs.pop("patient", {}))
    return helpers.esketamine_course(patient, world.prescriber, start=START, **kwargs)


def _session(course, number: int) -> Appointment:  # type: ignore[no-untyped-def]
    return course.appointments.get(number=number)


def test_it_books_a_session_on_its_target_day(world) -> None:  # type: ignore[no-untyped-def]
    course = _course(world)
    chair = helpers.chair(world.clinic_a)
    second = _session(course, 2)
    warnings = services.book(
        _desk(world), second, starts_at=helpers.at(world.clinic_a, second.target), chair=chair
    )
    second.refresh_from_db()
    assert warnings == []
    assert second.status == "booked"
    assert second.chair == chair
    assert second.version == 2
    # 150 minutes of chair time: ten 15-minute slots
    assert ChairSlot.objects.filter(appointment=second).count() == 10


def test_moving_inside_the_window_just_moves(world) -> None:  # type: ignore[no-untyped-def]
    course = _course(world)
    chair = helpers.chair(world.clinic_a)
    third = _session(course, 3)
    assert third.earliest < third.latest
    day = third.latest if third.latest != third.target else third.earliest
    services.book(_desk(world), third, starts_at=helpers.at(world.clinic_a, day), chair=chair)
    third.refresh_from_db()
    assert third.move_reason == ""
    entry = AuditEntry.objects.filter(object_type="appointment", object_id=str(third.pk)).last()
    assert entry.detail["outside_window"] is False
    assert entry.reason == ""


def test_moving_outside_the_window_needs_a_reason(world) -> None:  # type: ignore[no-untyped-def]
    course = _course(world)
    chair = helpers.chair(world.clinic_a)
    third = _session(course, 3)
    day = third.latest + timedelta(days=1)
    with pytest.raises(ValidationError) as exc:
        services.book(_desk(world), third, starts_at=helpers.at(world.clinic_a, day), chair=chair)
    assert "outside this session's window" in exc.value.message_dict["reason"][0]
    third.refresh_from_db()
    assert third.status == "planned" and third.starts_at is None
    assert not ChairSlot.objects.exists()

    services.book(
        _desk(world),
        third,
        starts_at=helpers.at(world.clinic_a, day),
        chair=chair,
        reason="Patient away at a funeral.",
    )
    third.refresh_from_db()
    assert third.move_reason == "Patient away at a funeral."
    entry = AuditEntry.objects.filter(object_type="appointment", object_id=str(third.pk)).last()
    assert entry.reason == "Patient away at a funeral."
    assert entry.detail["outside_window"] is True


def test_the_database_refuses_a_second_booking_of_the_same_chair_slot(world) -> None:  # type: ignore[no-untyped-def]
    first = _course(world)
    second = _course(world, patient={"given_name": "Bob"})
    chair = helpers.chair(world.clinic_a)
    a = _session(first, 2)
    start = helpers.at(world.clinic_a, a.target, 10)
    services.book(_desk(world), a, starts_at=start, chair=chair)
    # Straight to the table, past every service check: the unique constraint says no.
    with pytest.raises(IntegrityError), transaction.atomic():
        ChairSlot.objects.create(
            chair=chair, seat=0, starts_at=start, appointment=_session(second, 2)
        )


def test_the_service_refuses_a_double_booking_with_a_clear_message(world) -> None:  # type: ignore[no-untyped-def]
    first = _course(world)
    second = _course(world, patient={"given_name": "Bob"})
    chair = helpers.chair(world.clinic_a)
    a, b = _session(first, 2), _session(second, 2)
    services.book(_desk(world), a, starts_at=helpers.at(world.clinic_a, a.target, 10), chair=chair)
    # overlapping, not identical: 11:00 falls inside a's 10:00-12:30
    with pytest.raises(ValidationError) as exc:
        services.book(
            _desk(world), b, starts_at=helpers.at(world.clinic_a, b.target, 11), chair=chair
        )
    message = exc.value.message_dict["starts_at"][0]
    assert "Chair 1 is already booked at" in message
    b.refresh_from_db()
    assert b.status == "planned"
    assert not ChairSlot.objects.filter(appointment=b).exists()
    # right after the first visit ends, the chair is free
    services.book(
        _desk(world), b, starts_at=helpers.at(world.clinic_a, b.target, 12, 30), chair=chair
    )


def test_a_chair_takes_as_many_patients_as_its_capacity(world) -> None:  # type: ignore[no-untyped-def]
    chair = Chair.objects.create(clinic=world.clinic_a, name="Lounge", capacity=2)
    courses = [_course(world, patient={"given_name": n}) for n in ("Ann", "Bob", "Cy")]
    sessions = [_session(c, 2) for c in courses]
    start = helpers.at(world.clinic_a, sessions[0].target, 9)
    services.book(_desk(world), sessions[0], starts_at=start, chair=chair)
    services.book(_desk(world), sessions[1], starts_at=start, chair=chair)
    with pytest.raises(ValidationError) as exc:
        services.book(_desk(world), sessions[2], starts_at=start, chair=chair)
    assert "Lounge is already booked" in exc.value.message_dict["starts_at"][0]
    assert set(ChairSlot.objects.values_list("seat", flat=True)) == {0, 1}


def test_moving_a_booking_frees_its_old_slots(world) -> None:  # type: ignore[no-untyped-def]
    first = _course(world)
    second = _course(world, patient={"given_name": "Bob"})
    chair = helpers.chair(world.clinic_a)
    a, b = _session(first, 2), _session(second, 2)
    nine = helpers.at(world.clinic_a, a.target, 9)
    services.book(_desk(world), a, starts_at=nine, chair=chair)
    services.book(_desk(world), a, starts_at=helpers.at(world.clinic_a, a.target, 14), chair=chair)
    services.book(_desk(world), b, starts_at=nine, chair=chair)
    assert ChairSlot.objects.filter(appointment=a).count() == 10


def test_a_stale_form_cannot_overwrite_someone_elses_move(world) -> None:  # type: ignore[no-untyped-def]
    course = _course(world)
    chair = helpers.chair(world.clinic_a)
    second = _session(course, 2)
    services.book(
        _desk(world), second, starts_at=helpers.at(world.clinic_a, second.target), chair=chair
    )
    with pytest.raises(ValidationError) as exc:
        services.book(
            _desk(world),
            second,
            starts_at=helpers.at(world.clinic_a, second.target, 13),
            chair=chair,
            expected_version=1,
        )
    assert "Someone else changed" in exc.value.messages[0]


def test_it_refuses_another_clinics_chair(world) -> None:  # type: ignore[no-untyped-def]
    course = _course(world)
    theirs = Chair.objects.create(clinic=world.clinic_b, name="B1")
    second = _session(course, 2)
    with pytest.raises(ValidationError) as exc:
        services.book(
            _desk(world), second, starts_at=helpers.at(world.clinic_a, second.target), chair=theirs
        )
    assert "chair" in exc.value.message_dict


def test_it_warns_when_a_booking_goes_past_the_authorised_sessions(world) -> None:  # type: ignore[no-untyped-def]
    course = _course(world, insurance={"payer": "Acme Health", "authorized_sessions": 2})
    chair = helpers.chair(world.clinic_a)
    one, two, three = (_session(course, n) for n in (1, 2, 3))
    assert (
        services.book(
            _desk(world), one, starts_at=helpers.at(world.clinic_a, one.target), chair=chair
        )
        == []
    )
    assert (
        services.book(
            _desk(world), two, starts_at=helpers.at(world.clinic_a, two.target), chair=chair
        )
        == []
    )
    warnings = services.book(
        _desk(world), three, starts_at=helpers.at(world.clinic_a, three.target), chair=chair
    )
    assert warnings == ["This is session 3; the payer authorised 2."]
    three.refresh_from_db()
    assert three.status == "booked"  # a warning, not a refusal


def test_it_warns_when_a_booking_is_after_the_authorisation_expires(world) -> None:  # type: ignore[no-untyped-def]
    course = _course(world, insurance={"authorization_expires": START + timedelta(days=5)})
    chair = helpers.chair(world.clinic_a)
    early, late = _session(course, 2), _session(course, 5)
    assert (
        services.book(
            _desk(world), early, starts_at=helpers.at(world.clinic_a, early.target), chair=chair
        )
        == []
    )
    warnings = services.book(
        _desk(world), late, starts_at=helpers.at(world.clinic_a, late.target), chair=chair
    )
    assert len(warnings) == 1 and "expires" in warnings[0]


def test_an_integration_session_is_a_non_dosing_appointment(world) -> None:  # type: ignore[no-untyped-def]
    course = _course(world, insurance={"authorized_sessions": 1})
    chair = helpers.chair(world.clinic_a, "Therapy room")
    day = START + timedelta(days=2)
    visit = services.add_integration_session(_desk(world), course, day)
    assert visit.kind == "integration"
    assert visit.dose_mg is None and visit.mg_per_kg is None and visit.number is None
    assert visit.duration_minutes == 60
    one = _session(course, 1)
    services.book(_desk(world), one, starts_at=helpers.at(world.clinic_a, one.target), chair=chair)
    # it does not count against the dosing authorisation
    assert (
        services.book(
            _desk(world), visit, starts_at=helpers.at(world.clinic_a, day, 15), chair=chair
        )
        == []
    )
    assert Reminder.objects.get(appointment=visit).scales == []
    assert course.appointments.filter(kind="dosing").count() == 12


def test_cancelling_frees_the_chair_and_skips_the_reminder(world) -> None:  # type: ignore[no-untyped-def]
    course = _course(world)
    chair = helpers.chair(world.clinic_a)
    second = _session(course, 2)
    services.book(
        _desk(world), second, starts_at=helpers.at(world.clinic_a, second.target), chair=chair
    )
    with pytest.raises(ValidationError):
        services.cancel(_desk(world), second, reason="")
    services.cancel(_desk(world), second, reason="Patient has flu.")
    second.refresh_from_db()
    assert second.status == "cancelled"
    assert not ChairSlot.objects.exists()
    assert list(Reminder.objects.values_list("status", flat=True)) == ["skipped"]
    with pytest.raises(ValidationError):
        services.book(
            _desk(world), second, starts_at=helpers.at(world.clinic_a, second.target), chair=chair
        )


def test_booking_schedules_a_reminder_with_the_scales_due(world) -> None:  # type: ignore[no-untyped-def]
    course = _course(world)
    chair = helpers.chair(world.clinic_a)
    second = _session(course, 2)
    start = helpers.at(world.clinic_a, second.target, 10)
    services.book(_desk(world), second, starts_at=start, chair=chair)
    reminder = Reminder.objects.get(appointment=second)
    assert reminder.send_at == start - timedelta(hours=24)
    assert reminder.scales == ["phq9", "cssrs_screen"]
    # moving it replaces the pending reminder
    services.book(_desk(world), second, starts_at=start + timedelta(hours=3), chair=chair)
    assert list(Reminder.objects.values_list("send_at", flat=True)) == [
        start + timedelta(hours=3) - timedelta(hours=24)
    ]
