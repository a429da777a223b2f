"""The chair board's reads (constant query count) and the REMS Patient Monitoring Form."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from ketaclinic.dosing import selectors, services
from ketaclinic.dosing.models import PmfStatus, SessionState
from tests.conftest import register
from tests.dosing.conftest import (
    booked,
    checked_in,
    day,
    esketamine_course,
    fresh,
    predose,
    run_esketamine,
)

CADSS6 = [2, 1, 2, 1, 0, 1]


def _in_progress(clinic, n: int):  # type: ignore[no-untyped-def]
    """n esketamine patients on today's board (the fixed day), each dosed at 09:00 + n min."""
    sessions = []
    kits = clinic.kits(n, lot=f"B{n}")
    for i in range(n):
        patient = register(
            clinic.stock.clinic, clinic.stock.world.nurse, given_name=f"P{i}", family_name="Board"
        )
        course = esketamine_course(clinic, patient, day(), dose=56)
        appt = booked(clinic, course, 1, clinic.at(day(), 8, 0), chair_name=f"Board {n}-{i}")
        session = checked_in(clinic, appt, clinic.at(day(), 8, 30))
        predose(clinic, session, clinic.at(day(), 8, 40))
        services.record_device(clinic.nurse, session, container=kits[i], at=clinic.at(day(), 9, 0))
        services.record_vitals(
            clinic.nurse, session, sbp=130, dbp=84, hr=80, spo2=97, taken_at=clinic.at(day(), 9, 2)
        )
        sessions.append(session)
    return sessions


def _board_queries(clinic) -> tuple[int, list[selectors.BoardRow]]:  # type: ignore[no-untyped-def]
    with CaptureQueriesContext(connection) as captured:
        rows = selectors.chair_board(clinic.stock.clinic, now=clinic.at(day(), 9, 30))
    return len(captured.captured_queries), rows


def test_the_chair_board_costs_the_same_queries_for_12_sessions_as_for_1(clinic):
    _in_progress(clinic, 1)
    one, rows = _board_queries(clinic)
    assert len(rows) == 1
    row = rows[0]
    assert row.state == SessionState.DOSING
    assert row.minutes_since_dose == 30
    assert row.next_vitals_due is not None
    assert not row.ready and row.earliest_discharge == clinic.at(day(), 11, 0)
    _in_progress(clinic, 11)
    twelve, rows = _board_queries(clinic)
    assert len(rows) == 12
    assert twelve == one, (one, twelve)


def test_the_board_lists_booked_appointments_without_a_session_and_overdue_vitals(clinic):
    course = esketamine_course(clinic, clinic.stock.patient, day(), dose=56)
    clinic.kits(1)
    appt = booked(clinic, course, 1, clinic.at(day(), 9, 0))
    rows = selectors.chair_board(clinic.stock.clinic, now=clinic.at(day(), 8, 0))
    assert [(r.appointment.pk, r.session, r.state) for r in rows] == [
        (appt.pk, None, SessionState.BOOKED)
    ]
    [session] = _in_progress(clinic, 1)
    rows = selectors.chair_board(clinic.stock.clinic, now=clinic.at(day(), 9, 55))
    row = next(r for r in rows if r.session and r.session.pk == session.pk)
    assert row.next_vitals_due == clinic.at(day(), 9, 40) and row.vitals_overdue


@pytest.fixture
def pmf_session(clinic):  # type: ignore[no-untyped-def]
    start = day() - timedelta(days=4)
    course = esketamine_course(clinic, clinic.stock.patient, start, dose=84)
    k1, k2 = clinic.kits(2)
    run_esketamine(clinic, booked(clinic, course, 1, clinic.at(start, 8, 30)), start, kit=k1)
    appt = booked(clinic, course, 2, clinic.at(day(), 8, 30))
    session = checked_in(clinic, appt, clinic.at(day(), 8, 30))
    meds = {
        "benzodiazepines": True,
        "sedative_hypnotics": False,
        "opioids": False,
        "psychostimulants": False,
        "maois": False,
    }
    predose(clinic, session, clinic.at(day(), 8, 45), sbp=150, dbp=95, medicines=meds)
    services.record_prescriber_decision(
        clinic.prescriber,
        session,
        expected_version=fresh(session).version,
        decision="proceed",
        reason="benefit outweighs a transient rise",
    )
    for minute in (0, 5, 10):
        services.record_device(clinic.nurse, session, container=k2, at=clinic.at(day(), 9, minute))
    services.record_vitals(
        clinic.nurse,
        session,
        sbp=185,
        dbp=100,
        hr=90,
        spo2=96,
        moaas=4,
        taken_at=clinic.at(day(), 9, 50),
    )
    services.record_dissociation(
        clinic.nurse,
        session,
        code="cadss6",
        answers=CADSS6,
        administered_at=clinic.at(day(), 9, 50),
    )
    services.record_side_effect(
        clinic.nurse,
        session,
        kind="dissociation",
        severity="moderate",
        onset_at=clinic.at(day(), 9, 20),
        outcome="resolved",
    )
    services.record_vitals(
        clinic.nurse,
        session,
        sbp=132,
        dbp=84,
        hr=76,
        spo2=98,
        moaas=5,
        taken_at=clinic.at(day(), 11, 0),
    )
    services.record_discharge_score(
        clinic.nurse, session, answers=[2, 2, 2, 2, 2], administered_at=clinic.at(day(), 11, 1)
    )
    services.confirm_stability(clinic.prescriber, session, expected_version=fresh(session).version)
    services.discharge(
        clinic.nurse,
        session,
        expected_version=fresh(session).version,
        ride_present=True,
        ready_to_leave_minutes=100,
        at=clinic.at(day(), 11, 5),
    )
    return fresh(session)


def test_the_pmf_fields_come_from_the_session(clinic, pmf_session):
    data = selectors.pmf_data(pmf_session)
    assert data["patient_first_name"] == "Ann" and data["patient_last_name"] == "Smith"
    assert data["rems_patient_id"] == "REMS-P-42"
    assert data["first_treatment"] is False
    assert data["medicines"]["benzodiazepines"] is True
    assert data["monitoring_clinician"] == clinic.stock.world.prescriber.display_name
    assert data["rems_setting_id"] == "HCS-000123"
    assert data["treatment_date"] == day().isoformat()
    assert (data["dose_mg"], data["devices"], data["lot_numbers"]) == (84, 3, ["ESK1"])
    assert data["total_minutes"] == 125
    assert data["ready_to_leave_minutes"] == 100
    assert data["vitals_ok_before"] is False  # 150/95 before the dose
    assert data["vitals_ok_after"] is True
    assert (data["bp_before"], data["bp_40_min"], data["bp_before_discharge"]) == (
        "150/95",
        "185/100",
        "132/84",
    )
    assert data["sedation"] is True  # MOAA/S 4
    assert data["dissociation"] is True
    assert data["dissociation_scores"] == [{"code": "cadss6", "total": "7.00"}]
    assert data["respiratory_depression"] is False
    assert [e["kind"] for e in data["adverse_events"]] == ["dissociation"]


def test_the_pmf_is_due_within_7_days_and_marked_submitted(clinic, pmf_session):
    form = pmf_session.rems_form
    assert form.status == PmfStatus.DRAFT
    assert form.due_on == day() + timedelta(days=7)
    first = pmf_session.course.dosing_sessions.exclude(pk=pmf_session.pk).get().rems_form
    due = selectors.pmf_forms_due(clinic.stock.clinic, today=day() + timedelta(days=5))
    # The earlier session's form is overdue (listed first), this one has 2 days left.
    assert [(f.pk, f.days_left) for f in due] == [(first.pk, -2), (form.pk, 2)]
    assert [
        f.pk for f in selectors.pmf_forms_due(clinic.stock.clinic, today=day() - timedelta(8))
    ] == []
    with pytest.raises(ValidationError) as refused:
        services.mark_pmf_submitted(clinic.nurse, form, confirmation_number="", submitted_on="")
    assert set(refused.value.message_dict) == {"confirmation_number", "submitted_on"}
    services.mark_pmf_submitted(
        clinic.nurse, form, confirmation_number="PMF-778812", submitted_on=day() + timedelta(1)
    )
    form.refresh_from_db()
    assert form.status == PmfStatus.SUBMITTED
    assert form.data["bp_40_min"] == "185/100"
    due = selectors.pmf_forms_due(clinic.stock.clinic, today=day() + timedelta(days=5))
    assert [f.pk for f in due] == [first.pk]
    with pytest.raises(ValidationError, match="already"):
        services.mark_pmf_submitted(
            clinic.nurse, form, confirmation_number="X", submitted_on=timezone.localdate()
        )


def test_the_aftercare_text_never_tells_the_patient_to_take_a_dose(clinic):
    text = selectors.aftercare_text(clinic.stock.clinic).lower()
    assert "do not drive" in text and "next day" in text
    for phrase in ("take your dose", "take a dose", "take your medication", "spray"):
        assert phrase not in text
