"""The dose: esketamine devices 5 minutes apart, the IV pump rate from the dose plan, and
every administration posted to the ledger in the same transaction as the session record."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from ketaclinic.audit.models import AuditEntry
from ketaclinic.dosing import selectors, services
from ketaclinic.dosing.models import DoseAdministration, SessionEvent, SessionState
from ketaclinic.inventory.models import Container, EntryKind, LedgerEntry
from tests.dosing.conftest import (
    booked,
    checked_in,
    day,
    esketamine_course,
    fresh,
    iv_course,
    predose,
    run_esketamine,
)


@pytest.fixture
def second_session(clinic):  # type: ignore[no-untyped-def]
    """Session 2 of an esketamine course (84 mg = 3 devices), after the patient-day-1 56 mg."""
    start = day() - timedelta(days=4)
    course = esketamine_course(clinic, clinic.stock.patient, start, dose=84)
    first_kit, kit = clinic.kits(2)
    run_esketamine(clinic, booked(clinic, course, 1, clinic.at(start, 8, 30)), start, kit=first_kit)
    appt = booked(clinic, course, 2, clinic.at(day(), 8, 30))
    session = checked_in(clinic, appt, clinic.at(day(), 8, 30))
    predose(clinic, session, clinic.at(day(), 8, 45))
    return session, kit


def test_a_third_device_3_minutes_after_the_second_is_refused_and_accepted_at_5(
    clinic, second_session
):
    session, kit = second_session
    assert fresh(session).dose_mg == 84
    assert selectors.dose_plan(session).devices == 3
    services.record_device(clinic.nurse, session, container=kit, at=clinic.at(day(), 9, 0))
    services.record_device(clinic.nurse, session, container=kit, at=clinic.at(day(), 9, 5))
    with pytest.raises(ValidationError) as refused:
        services.record_device(clinic.nurse, session, container=kit, at=clinic.at(day(), 9, 8))
    assert "at least 5 minutes apart" in refused.value.message_dict["at"][0]
    assert "3:00 after the previous device" in refused.value.message_dict["at"][0]
    assert session.doses.count() == 2
    assert LedgerEntry.objects.filter(dosing_session_id=session.pk).count() == 4
    third = services.record_device(clinic.nurse, session, container=kit, at=clinic.at(day(), 9, 10))
    assert third.device_number == 3
    session = fresh(session)
    assert session.state == SessionState.OBSERVATION
    assert session.first_dose_at == clinic.at(day(), 9, 0)
    assert session.dose_ended_at == clinic.at(day(), 9, 10)
    given = LedgerEntry.objects.filter(
        dosing_session_id=session.pk, kind=EntryKind.ADMINISTRATION
    ).order_by("at")
    assert [e.quantity_ug for e in given] == [28_000, 28_000, 28_000]
    assert [e.at for e in given] == [clinic.at(day(), 9, m) for m in (0, 5, 10)]
    assert all(e.patient_id == session.patient_id for e in given)
    kit.refresh_from_db()
    assert kit.balance_ug == 0
    with pytest.raises(ValidationError, match="Cannot record a device: the session is observ"):
        services.record_device(clinic.nurse, session, container=kit, at=clinic.at(day(), 9, 20))


def test_a_device_is_refused_when_the_kit_is_empty_and_nothing_is_left_behind(
    clinic, second_session
):
    session, kit = second_session
    # Empty the kit for another patient first.
    from ketaclinic.inventory import services as ledger

    ledger.draw(clinic.nurse, patient=clinic.stock.patient_2, quantity_ug=84_000, container=kit)
    spare = Container.objects.filter(lot__lot_number="ESK1").exclude(pk=kit.pk).first()
    assert spare is not None and spare.balance_ug == 28_000  # the day-1 kit has one device left
    ledger.draw(clinic.nurse, patient=clinic.stock.patient_2, quantity_ug=28_000, container=spare)
    before = LedgerEntry.objects.count()
    with pytest.raises(ValidationError):
        services.record_device(clinic.nurse, session, container=kit, at=clinic.at(day(), 9, 0))
    session = fresh(session)
    assert session.state == SessionState.PRE_DOSE
    assert session.first_dose_at is None
    assert not DoseAdministration.objects.filter(session=session).exists()
    assert not SessionEvent.objects.filter(session=session, to_state=SessionState.DOSING).exists()
    assert LedgerEntry.objects.count() == before


def test_an_expired_kit_is_refused_and_the_session_write_rolls_back(clinic, second_session):
    session, _ = second_session
    expired = clinic.kits(1, lot="EXP1", expiry=day() + timedelta(days=2))[0]
    # The lot expires two days after the session day but before today: the ledger refuses it.
    before = LedgerEntry.objects.count()
    with pytest.raises(ValidationError, match="expired"):
        services.record_device(clinic.nurse, session, container=expired, at=clinic.at(day(), 9, 0))
    assert LedgerEntry.objects.count() == before
    assert not session.doses.exists()
    assert fresh(session).state == SessionState.PRE_DOSE


@pytest.fixture
def iv_session(clinic):  # type: ignore[no-untyped-def]
    course = iv_course(clinic, clinic.stock.patient, day())
    vial = clinic.vials(1)[0]
    appt = booked(clinic, course, 1, clinic.at(day(), 8, 30))
    session = checked_in(clinic, appt, clinic.at(day(), 8, 30))
    predose(clinic, session, clinic.at(day(), 8, 45))
    return session, vial


def test_the_iv_pump_rate_comes_from_the_dose_plan(clinic, iv_session):
    session, vial = iv_session
    assert session.dose_mg == 35  # 70 kg x 0.5 mg/kg
    plan = selectors.dose_plan(session, 10)
    assert (plan.volume_ml, plan.rate_ml_per_h) == (3.5, 5.25)  # 35 mg / 10 mg/mL over 40 min
    row = services.start_infusion(
        clinic.nurse,
        session,
        expected_version=fresh(session).version,
        container=vial,
        concentration_mg_per_ml="10",
        drawn_ug=40_000,
        at=clinic.at(day(), 9, 0),
    )
    assert row.pump_rate_ml_per_h == plan.rate_ml_per_h
    assert row.rate_mg_per_h == 52.5
    assert fresh(session).state == SessionState.DOSING


def test_the_iv_dose_posts_draw_administration_and_witnessed_waste(clinic, iv_session):
    session, vial = iv_session
    services.start_infusion(
        clinic.nurse,
        session,
        expected_version=fresh(session).version,
        container=vial,
        drawn_ug=40_000,
        at=clinic.at(day(), 9, 0),
    )
    # Residue without a witness: refused, nothing posted, still dosing.
    with pytest.raises(ValidationError) as refused:
        services.stop_infusion(
            clinic.nurse,
            session,
            expected_version=fresh(session).version,
            at=clinic.at(day(), 9, 40),
        )
    assert "witness" in refused.value.message_dict
    assert fresh(session).state == SessionState.DOSING
    assert not LedgerEntry.objects.filter(
        dosing_session_id=session.pk, kind=EntryKind.ADMINISTRATION
    ).exists()
    # A wrong witness password: refused after the administration was built; all rolled back.
    with pytest.raises(ValidationError):
        services.stop_infusion(
            clinic.nurse,
            session,
            expected_version=fresh(session).version,
            at=clinic.at(day(), 9, 40),
            witness_username="prescriber_a",
            witness_secret="nope",
        )
    assert not LedgerEntry.objects.filter(
        dosing_session_id=session.pk, kind=EntryKind.ADMINISTRATION
    ).exists()
    assert fresh(session).doses.get().ended_at is None
    # ... but the failed witness sign-in stays on record (it counts towards the lockout).
    failed = AuditEntry.objects.get(object_type="witness_authentication")
    assert failed.detail["result"] == "failed"
    assert "nope" not in str(failed.detail)
    row = services.stop_infusion(
        clinic.nurse,
        session,
        expected_version=fresh(session).version,
        at=clinic.at(day(), 9, 40),
        **clinic.witness(),
    )
    kinds = list(
        LedgerEntry.objects.filter(dosing_session_id=session.pk)
        .order_by("sequence")
        .values_list("kind", "quantity_ug")
    )
    assert kinds == [
        (EntryKind.DRAW, 40_000),
        (EntryKind.ADMINISTRATION, 35_000),
        (EntryKind.WASTE, 5_000),
    ]
    assert row.administered_ug == 35_000 and row.wasted_ug == 5_000
    assert row.waste_entry.witness == clinic.stock.world.prescriber
    vial.refresh_from_db()
    assert vial.balance_ug == 500_000 - 40_000
    session = fresh(session)
    assert session.state == SessionState.OBSERVATION
    assert session.dose_ended_at == clinic.at(day(), 9, 40)


def test_an_infusion_stopped_early_needs_a_reason(clinic, iv_session):
    session, vial = iv_session
    services.start_infusion(
        clinic.nurse,
        session,
        expected_version=fresh(session).version,
        container=vial,
        at=clinic.at(day(), 9, 0),
    )
    with pytest.raises(ValidationError) as refused:
        services.stop_infusion(
            clinic.nurse,
            session,
            expected_version=fresh(session).version,
            at=clinic.at(day(), 9, 20),
            administered_ug=17_500,
            **clinic.witness(),
        )
    assert "stop_reason" in refused.value.message_dict
    row = services.stop_infusion(
        clinic.nurse,
        session,
        expected_version=fresh(session).version,
        at=clinic.at(day(), 9, 20),
        administered_ug=17_500,
        stop_reason="BP 182/104",
        **clinic.witness(),
    )
    assert (row.administered_ug, row.wasted_ug) == (17_500, 17_500)


def test_a_devices_count_beyond_the_dose_is_refused(clinic):
    course = esketamine_course(clinic, clinic.stock.patient, day(), dose=56)
    kit = clinic.kits(1)[0]
    session = run_esketamine(
        clinic,
        booked(clinic, course, 1, clinic.at(day(), 8, 30)),
        day(),
        kit=kit,
        discharge_at=None,
    )
    assert session.doses.count() == 2
    with pytest.raises(ValidationError):
        services.record_device(clinic.nurse, session, container=kit, at=clinic.at(day(), 9, 30))
    assert session.doses.count() == 2


def test_the_nurse_slows_or_pauses_the_pump_with_a_reason_but_never_speeds_it_up(
    clinic, iv_session
):
    session, vial = iv_session
    services.start_infusion(
        clinic.nurse,
        session,
        expected_version=fresh(session).version,
        container=vial,
        concentration_mg_per_ml=10,
        at=clinic.at(day(), 9, 0),
    )
    assert selectors.current_pump_rate(session) == Decimal("5.25")
    with pytest.raises(ValidationError) as refused:
        services.adjust_infusion(
            clinic.nurse,
            session,
            expected_version=fresh(session).version,
            rate_ml_per_h="6",
            reason="running late",
        )
    assert "new order" in refused.value.message_dict["rate_ml_per_h"][0]
    event = services.adjust_infusion(
        clinic.nurse,
        session,
        expected_version=fresh(session).version,
        rate_ml_per_h="2.6",
        reason="BP 182/104 at 30 min",
        at=clinic.at(day(), 9, 30),
    )
    assert event.codes == ["pump_rate"] and event.by == clinic.stock.world.nurse
    assert selectors.current_pump_rate(fresh(session)) == Decimal("2.60")
    services.adjust_infusion(
        clinic.nurse,
        session,
        expected_version=fresh(session).version,
        rate_ml_per_h=0,
        reason="BP 190/110: paused, prescriber called",
        at=clinic.at(day(), 9, 35),
    )
    assert selectors.current_pump_rate(fresh(session)) == 0
