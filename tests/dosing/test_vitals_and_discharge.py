"""The vitals flowsheet (alerts, schedule), side effects, dissociation, and discharge."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError

from ketaclinic.audit.models import AuditEntry
from ketaclinic.dosing import selectors, services
from ketaclinic.dosing.models import (
    DischargeKind,
    SessionEvent,
    SessionState,
    SideEffect,
)
from tests.dosing.conftest import (
    ALDRETE_8,
    ALDRETE_10,
    booked,
    checked_in,
    day,
    esketamine_course,
    fresh,
    iv_course,
    predose,
)

CADSS6 = [1, 0, 2, 1, 0, 0]


@pytest.fixture
def dosed(clinic):  # type: ignore[no-untyped-def]
    """An esketamine session, 56 mg: devices at 09:00 and 09:05, now in observation."""
    course = esketamine_course(clinic, clinic.stock.patient, day(), dose=56)
    kit = clinic.kits(1)[0]
    session = checked_in(
        clinic, booked(clinic, course, 1, clinic.at(day(), 8, 30)), clinic.at(day(), 8, 30)
    )
    predose(clinic, session, clinic.at(day(), 8, 45))
    services.record_device(clinic.nurse, session, container=kit, at=clinic.at(day(), 9, 0))
    services.record_device(clinic.nurse, session, container=kit, at=clinic.at(day(), 9, 5))
    return fresh(session)


def test_a_40_minute_reading_of_185_over_100_raises_the_alert(clinic, dosed):
    version = dosed.version
    reading = services.record_vitals(
        clinic.nurse,
        dosed,
        sbp=185,
        dbp=100,
        hr=88,
        spo2=97,
        moaas=4,
        taken_at=clinic.at(day(), 9, 45),
    )
    assert reading.alerts == ["sbp_high"]
    assert reading.flagged
    assert reading.phase == "after"
    assert reading.recorded_by == clinic.stock.world.nurse
    event = SessionEvent.objects.get(session=dosed, kind="alert")
    assert event.codes == ["sbp_high"] and event.vitals == reading
    assert "185" in event.message
    # Readings are appended: they never change the session's version (no conflicts).
    assert fresh(dosed).version == version


def test_the_clinic_sets_its_own_thresholds(clinic, dosed):
    services.update_settings(clinic.prescriber, alert_sbp=170, alert_spo2=94)
    reading = services.record_vitals(
        clinic.nurse, dosed, sbp=172, dbp=90, hr=80, spo2=93, taken_at=clinic.at(day(), 9, 45)
    )
    assert reading.alerts == ["sbp_high", "spo2_low"]
    with pytest.raises(PermissionError):
        services.update_settings(clinic.nurse, alert_sbp=200)


def test_moaas_zero_is_an_alert(clinic, dosed):
    reading = services.record_vitals(clinic.nurse, dosed, moaas=0, taken_at=clinic.at(day(), 9, 20))
    assert reading.alerts == ["moaas_0"]


def test_implausible_readings_are_refused_with_the_field(clinic, dosed):
    with pytest.raises(ValidationError) as refused:
        services.record_vitals(clinic.nurse, dosed, sbp=120, dbp=130)
    assert "dbp" in refused.value.message_dict
    with pytest.raises(ValidationError) as refused:
        services.record_vitals(clinic.nurse, dosed, spo2=101)
    assert "spo2" in refused.value.message_dict
    assert dosed.vitals.count() == 1  # only the pre-dose reading


def test_the_esketamine_schedule_and_the_overdue_reading(clinic, dosed):
    due = selectors.vitals_due(dosed, clinic.at(day(), 9, 30))
    # 40 min after the last device (09:45), 10:15, 10:45 and before discharge at 11:00; the
    # pre-dose reading (08:45) stands for the one "before the dose" at 09:00.
    assert [t.astimezone(clinic.tz).strftime("%H:%M") for t in due.schedule] == [
        "09:45",
        "10:15",
        "10:45",
        "11:00",
    ]
    assert due.next_due == clinic.at(day(), 9, 45) and not due.overdue
    assert selectors.vitals_due(dosed, clinic.at(day(), 9, 50)).overdue
    services.record_vitals(
        clinic.nurse, dosed, sbp=130, dbp=84, hr=76, spo2=98, taken_at=clinic.at(day(), 9, 46)
    )
    assert selectors.vitals_due(fresh(dosed), clinic.at(day(), 9, 50)).next_due == clinic.at(
        day(), 10, 15
    )


def test_cadss6_is_recorded_as_a_scale_response_linked_to_the_session(clinic, dosed):
    response = services.record_dissociation(
        clinic.nurse, dosed, code="cadss6", answers=CADSS6, administered_at=clinic.at(day(), 9, 45)
    )
    assert response.total == 4
    assert response.visit_id == dosed.appointment_id
    assert response.dosing_link.session == dosed
    assert response.dosing_link.purpose == "dissociation"
    with pytest.raises(ValidationError):
        services.record_dissociation(clinic.nurse, dosed, code="phq9", answers=[0] * 9)


def test_a_serious_side_effect_is_flagged_for_reporting(clinic, dosed):
    effect = services.record_side_effect(
        clinic.nurse,
        dosed,
        kind="respiratory_depression",
        severity="serious",
        onset_at=clinic.at(day(), 9, 25),
        action="jaw thrust, O2 2 L/min",
        outcome="resolved",
    )
    assert effect.reportable
    assert SessionEvent.objects.filter(session=dosed, codes=["serious_adverse_event"]).exists()
    mild = services.record_side_effect(clinic.nurse, dosed, kind="nausea", severity="mild")
    assert not mild.reportable
    with pytest.raises(ValidationError) as refused:
        services.record_side_effect(clinic.nurse, dosed, kind="other", severity="worst")
    assert set(refused.value.message_dict) == {"other_text", "severity"}
    assert SideEffect.objects.filter(session=dosed).count() == 2


def _ready_but_for_time(clinic, session):  # type: ignore[no-untyped-def]
    services.record_vitals(
        clinic.nurse,
        session,
        sbp=124,
        dbp=80,
        hr=72,
        spo2=98,
        moaas=5,
        taken_at=clinic.at(day(), 10, 35),
    )
    services.record_discharge_score(
        clinic.nurse, session, answers=ALDRETE_10, administered_at=clinic.at(day(), 10, 36)
    )
    services.confirm_stability(
        clinic.prescriber, session, expected_version=fresh(session).version, note="stable"
    )


def test_discharge_is_refused_at_100_minutes_and_allowed_at_125_with_aldrete_10(clinic, dosed):
    _ready_but_for_time(clinic, dosed)
    with pytest.raises(ValidationError) as refused:
        services.discharge(
            clinic.nurse,
            dosed,
            expected_version=fresh(dosed).version,
            ride_present=True,
            at=clinic.at(day(), 10, 40),
        )
    messages = refused.value.messages
    assert any("earliest discharge 11:00" in m for m in messages)
    assert fresh(dosed).state == SessionState.OBSERVATION
    services.discharge(
        clinic.nurse,
        dosed,
        expected_version=fresh(dosed).version,
        ride_present=True,
        ready_to_leave_minutes=95,
        at=clinic.at(day(), 11, 5),
    )
    session = fresh(dosed)
    assert session.state == SessionState.DISCHARGED
    assert session.discharge_kind == DischargeKind.ROUTINE
    assert session.discharged_by == clinic.stock.world.nurse
    assert session.rems_form.due_on == day() + timedelta(days=7)


def test_a_refused_discharge_names_every_unmet_criterion(clinic, dosed):
    services.record_vitals(
        clinic.nurse, dosed, sbp=186, dbp=104, hr=90, spo2=97, taken_at=clinic.at(day(), 10, 35)
    )
    services.record_discharge_score(
        clinic.nurse, dosed, answers=ALDRETE_8, administered_at=clinic.at(day(), 10, 36)
    )
    with pytest.raises(ValidationError) as refused:
        services.discharge(
            clinic.nurse,
            dosed,
            expected_version=fresh(dosed).version,
            ride_present=False,
            at=clinic.at(day(), 10, 40),
        )
    text = " ".join(refused.value.messages)
    assert "earliest discharge 11:00" in text
    assert "Modified Aldrete score 8 is below 9" in text
    assert "outside the limits: sbp_high" in text
    assert "ride home (Sam Carter) is not here" in text
    assert "confirm the patient is clinically stable" in text


def test_only_a_prescriber_confirms_stability(clinic, dosed):
    with pytest.raises(PermissionError):
        services.confirm_stability(clinic.nurse, dosed, expected_version=dosed.version)


def test_an_alert_after_ready_returns_the_patient_to_observation(clinic, dosed):
    _ready_but_for_time(clinic, dosed)
    services.mark_ready(
        clinic.nurse, dosed, expected_version=fresh(dosed).version, now=clinic.at(day(), 11, 1)
    )
    assert fresh(dosed).state == SessionState.READY_FOR_DISCHARGE
    services.record_vitals(
        clinic.nurse, dosed, sbp=190, dbp=112, hr=96, spo2=97, taken_at=clinic.at(day(), 11, 2)
    )
    assert fresh(dosed).state == SessionState.OBSERVATION


def test_leaving_against_advice_is_recorded_as_such(clinic, dosed):
    with pytest.raises(ValidationError) as refused:
        services.discharge_against_advice(
            clinic.nurse, dosed, expected_version=dosed.version, reason=""
        )
    assert "reason" in refused.value.message_dict
    services.discharge_against_advice(
        clinic.nurse,
        dosed,
        expected_version=fresh(dosed).version,
        reason="Insisted on leaving at 60 min; risks explained; partner driving",
        ride_present=True,
        at=clinic.at(day(), 10, 5),
    )
    session = fresh(dosed)
    assert session.state == SessionState.DISCHARGED
    assert session.discharge_kind == DischargeKind.AGAINST_ADVICE
    entry = AuditEntry.objects.get(object_type="dosing_session_discharge")
    assert entry.action == "override"
    assert entry.reason.startswith("Insisted on leaving")
    assert any("earliest discharge" in u for u in entry.detail["unmet"])
    assert session.rems_form.status == "draft"


def test_iv_observation_runs_the_clinic_minimum_after_the_dose_ends(clinic):
    course = iv_course(clinic, clinic.stock.patient, day())
    vial = clinic.vials(1)[0]
    session = checked_in(
        clinic, booked(clinic, course, 1, clinic.at(day(), 8, 30)), clinic.at(day(), 8, 30)
    )
    predose(clinic, session, clinic.at(day(), 8, 45))
    services.start_infusion(
        clinic.nurse,
        session,
        expected_version=fresh(session).version,
        container=vial,
        at=clinic.at(day(), 9, 0),
    )
    services.stop_infusion(
        clinic.nurse, session, expected_version=fresh(session).version, at=clinic.at(day(), 9, 40)
    )
    session = fresh(session)
    assert selectors.earliest_discharge(session) == clinic.at(day(), 10, 40)  # default 60 min
    services.record_vitals(
        clinic.nurse, session, sbp=124, dbp=80, hr=72, spo2=98, taken_at=clinic.at(day(), 10, 30)
    )
    services.record_discharge_score(
        clinic.nurse, session, answers=ALDRETE_10, administered_at=clinic.at(day(), 10, 31)
    )
    early = selectors.discharge_readiness(session, clinic.at(day(), 10, 35), ride_present=True)
    assert [u for u in early.unmet] == [
        "Observation is not complete: earliest discharge 10:40 (60 minutes after the dose "
        "ended; 5 min to go)."
    ]
    assert selectors.discharge_readiness(session, clinic.at(day(), 10, 40), ride_present=True).ready
    services.update_settings(clinic.prescriber, min_observation_minutes=90)
    assert selectors.earliest_discharge(fresh(session)) == clinic.at(day(), 11, 10)


def test_an_esketamine_discharge_asks_the_rems_question(clinic, dosed):
    _ready_but_for_time(clinic, dosed)
    with pytest.raises(ValidationError) as refused:
        services.discharge(
            clinic.nurse,
            dosed,
            expected_version=fresh(dosed).version,
            ride_present=True,
            at=clinic.at(day(), 11, 5),
        )
    assert "ready_to_leave_minutes" in refused.value.message_dict
    assert fresh(dosed).state == SessionState.OBSERVATION
