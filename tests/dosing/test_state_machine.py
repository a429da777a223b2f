"""The session's states: each step by a named user at a recorded time, audited, the
appointment kept in step, and every illegal step refused with a clear message."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from ketaclinic.audit.models import AuditEntry
from ketaclinic.dosing import services
from ketaclinic.dosing.models import DosingSession, SessionEvent, SessionState
from ketaclinic.dosing.services import TRANSITIONS
from ketaclinic.treatment.models import AppointmentStatus
from tests.dosing.conftest import (
    booked,
    checked_in,
    day,
    esketamine_course,
    fresh,
    predose,
    run_esketamine,
)

S = SessionState


@pytest.fixture
def esk(clinic):  # type: ignore[no-untyped-def]
    course = esketamine_course(clinic, clinic.stock.patient, day(), dose=56)
    return course, booked(clinic, course, 1, clinic.at(day(), 8, 30)), clinic.kits(1)[0]


def test_the_transition_table_covers_every_state_and_ends_in_closed_states():
    assert set(TRANSITIONS) == set(S.values)
    assert TRANSITIONS[S.DISCHARGED] == frozenset()
    assert TRANSITIONS[S.ABORTED] == frozenset()
    # Once drug is given the session can only end in discharge (routine or against advice).
    for state in (S.DOSING, S.OBSERVATION, S.READY_FOR_DISCHARGE):
        assert S.ABORTED not in TRANSITIONS[state]


def test_a_whole_session_walks_the_states_each_step_named_timed_and_audited(clinic, esk):
    _, appt, kit = esk
    session = run_esketamine(clinic, appt, day(), kit=kit)
    steps = list(
        SessionEvent.objects.filter(session=session, kind="transition").values_list(
            "from_state", "to_state", "by__username", "at"
        )
    )
    assert [(f, t) for f, t, _, _ in steps] == [
        (S.BOOKED, S.CHECKED_IN),
        (S.CHECKED_IN, S.PRE_DOSE),
        (S.PRE_DOSE, S.DOSING),
        (S.DOSING, S.OBSERVATION),
        (S.OBSERVATION, S.READY_FOR_DISCHARGE),
        (S.READY_FOR_DISCHARGE, S.DISCHARGED),
    ]
    assert all(who == "nurse_a" for _, _, who, _ in steps)
    assert steps[0][3] == clinic.at(day(), 8, 30)
    assert steps[2][3] == clinic.at(day(), 9, 0)  # first device
    assert steps[-1][3] == clinic.at(day(), 11, 5)
    audited = AuditEntry.objects.filter(
        object_type="dosing_session", object_id=str(session.pk), action="update"
    )
    assert [e.detail["to"] for e in audited.order_by("sequence")] == [t for _, t, _, _ in steps]
    appt.refresh_from_db()
    assert appt.status == AppointmentStatus.COMPLETED


def test_the_appointment_status_follows_the_session(clinic, esk):
    _, appt, kit = esk
    session = checked_in(clinic, appt, clinic.at(day(), 8, 30))
    appt.refresh_from_db()
    assert appt.status == AppointmentStatus.CHECKED_IN
    predose(clinic, session, clinic.at(day(), 8, 45))
    services.record_device(clinic.nurse, session, container=kit, at=clinic.at(day(), 9, 0))
    appt.refresh_from_db()
    assert appt.status == AppointmentStatus.IN_SESSION


def test_a_device_before_the_pre_dose_checks_is_refused(clinic, esk):
    _, appt, kit = esk
    session = checked_in(clinic, appt, clinic.at(day(), 8, 30))
    with pytest.raises(ValidationError, match="checked in"):
        services.record_device(clinic.nurse, session, container=kit, at=clinic.at(day(), 9, 0))
    assert fresh(session).state == S.CHECKED_IN
    assert not session.doses.exists()


def test_discharge_from_checked_in_is_refused(clinic, esk):
    _, appt, _ = esk
    session = checked_in(clinic, appt, clinic.at(day(), 8, 30))
    with pytest.raises(ValidationError, match="Cannot discharge: the session is checked in"):
        services.discharge(
            clinic.nurse, session, expected_version=session.version, ride_present=True
        )


def test_checking_in_twice_is_refused(clinic, esk):
    _, appt, _ = esk
    checked_in(clinic, appt, clinic.at(day(), 8, 30))
    with pytest.raises(ValidationError, match="cannot move to checked in"):
        checked_in(clinic, appt, clinic.at(day(), 8, 31))


def test_check_in_on_another_day_is_refused(clinic, esk):
    _, appt, _ = esk
    with pytest.raises(ValidationError, match="check in on that day"):
        checked_in(clinic, appt, clinic.at(day() + timedelta(days=1), 8, 30))
    assert not DosingSession.objects.filter(appointment=appt, state=S.CHECKED_IN).exists()


def test_the_front_desk_checks_in_but_cannot_record_clinical_steps(clinic, esk):
    _, appt, _ = esk
    session = services.check_in(clinic.front_desk, appt, at=clinic.at(day(), 8, 30))
    assert session.checked_in_by == clinic.stock.world.staff_a["front_desk"]
    with pytest.raises(PermissionError):
        services.record_vitals(clinic.front_desk, session, sbp=120, dbp=80)


def test_abort_before_the_dose_frees_the_chair_and_needs_a_reason(clinic, esk):
    _, appt, _ = esk
    session = checked_in(clinic, appt, clinic.at(day(), 8, 30))
    with pytest.raises(ValidationError) as refused:
        services.abort(clinic.nurse, session, expected_version=session.version, reason=" ")
    assert "reason" in refused.value.message_dict
    services.abort(
        clinic.nurse, session, expected_version=session.version, reason="Patient unwell (flu)"
    )
    session = fresh(session)
    assert session.state == S.ABORTED
    assert session.abort_reason == "Patient unwell (flu)"
    assert session.aborted_by == clinic.stock.world.nurse
    appt.refresh_from_db()
    assert appt.status == AppointmentStatus.CANCELLED
    assert not appt.slots.exists()


def test_abort_after_drug_was_given_is_refused(clinic, esk):
    _, appt, kit = esk
    session = checked_in(clinic, appt, clinic.at(day(), 8, 30))
    predose(clinic, session, clinic.at(day(), 8, 45))
    services.record_device(clinic.nurse, session, container=kit, at=clinic.at(day(), 9, 0))
    with pytest.raises(ValidationError, match="must be observed and discharged"):
        services.abort(
            clinic.nurse, session, expected_version=fresh(session).version, reason="changed mind"
        )
    assert fresh(session).state == S.DOSING


def test_an_other_clinics_user_cannot_touch_the_session(clinic, esk):
    from ketaclinic.audit.context import Actor

    _, appt, _ = esk
    session = checked_in(clinic, appt, clinic.at(day(), 8, 30))
    world = clinic.stock.world
    outsider = Actor.system(world.clinic_b, user=world.prescriber_b, label="test")
    with pytest.raises(PermissionError):
        services.record_vitals(outsider, session, sbp=120, dbp=80)
    with pytest.raises(PermissionError):
        services.check_in(outsider, appt)
