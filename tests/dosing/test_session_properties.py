"""Random sequences of what staff might click, in any order: the session never reaches an
unsafe state, a refused step changes nothing, and the ledger always matches the doses."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ketaclinic.dosing import services
from ketaclinic.dosing.models import DosingSession, SessionEvent, SessionState
from ketaclinic.inventory.models import EntryKind, LedgerEntry
from tests.dosing.conftest import (
    ALDRETE_8,
    ALDRETE_10,
    booked,
    day,
    esketamine_course,
    predose,
)

S = SessionState
ALL_STEPS = [
    "check_in",
    "predose_ok",
    "predose_high",
    "proceed",
    "defer",
    "device",
    "vitals_ok",
    "vitals_high",
    "score_10",
    "score_8",
    "stability",
    "discharge",
    "against_advice",
    "abort",
    "sign",
    "cosign",
    "stale_note",
]
# The usual path through a session; hypothesis drops steps, inserts others and varies the
# minutes between them, so sequences reach every state (random clicks alone rarely would).
HAPPY = [
    "check_in",
    "predose_ok",
    "device",
    "device",
    "vitals_ok",
    "score_10",
    "stability",
    "discharge",
    "sign",
    "cosign",
]


@st.composite
def steps_strategy(draw: st.DrawFn) -> list[tuple[str, int]]:
    steps: list[tuple[str, int]] = []
    for step in HAPPY:
        for extra in draw(st.lists(st.sampled_from(ALL_STEPS), max_size=2)):
            steps.append((extra, draw(st.integers(0, 30))))
        if draw(st.integers(0, 9)) > 0:  # keep it 9 times in 10
            steps.append((step, draw(st.integers(0, 70))))
    return steps


STEPS = steps_strategy()


def _snapshot(session: DosingSession) -> tuple[Any, ...]:
    fresh = DosingSession.objects.get(pk=session.pk)
    return (
        fresh.version,
        fresh.state,
        fresh.doses.count(),
        fresh.events.count(),
        LedgerEntry.objects.filter(dosing_session_id=session.pk).count(),
        fresh.signed_at,
        fresh.cosigned_at,
    )


@pytest.fixture
def setting(clinic):  # type: ignore[no-untyped-def]
    course = esketamine_course(clinic, clinic.stock.patient, day(), dose=56)
    kit = clinic.kits(1)[0]
    appt = booked(clinic, course, 1, clinic.at(day(), 8, 0))
    session = services.open_session(clinic.nurse, appt)
    return clinic, appt, kit, session


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=STEPS)
# Near misses worth trying every run: a device 3 minutes after the previous one, discharge
# at 100 minutes, a high pre-dose BP dosed without a decision, aborting after a device.
@example(steps=[("check_in", 0), ("predose_ok", 15), ("device", 15), ("device", 3), ("device", 2)])
@example(
    steps=[
        ("check_in", 0),
        ("predose_ok", 15),
        ("device", 15),
        ("device", 5),
        ("vitals_ok", 60),
        ("score_10", 1),
        ("stability", 1),
        ("discharge", 33),  # 100 minutes after the first device
        ("discharge", 25),
        ("sign", 1),
        ("cosign", 1),
    ]
)
@example(steps=[("check_in", 0), ("predose_high", 15), ("device", 15), ("abort", 1)])
@example(steps=[("check_in", 0), ("predose_ok", 15), ("device", 15), ("abort", 1)])
def test_no_sequence_of_steps_reaches_an_unsafe_state(setting, steps):  # type: ignore[no-untyped-def]
    clinic, appt, kit, session = setting
    with transaction.atomic():
        _run(clinic, appt, kit, session, steps)
        transaction.set_rollback(True)


def _run(clinic, appt, kit, session, steps):  # type: ignore[no-untyped-def]
    t = clinic.at(day(), 8, 0)
    for step, minutes in steps:
        t = t + timedelta(minutes=minutes)
        before = _snapshot(session)
        version = before[0]
        try:
            _do(clinic, appt, kit, session, step, t, version)
        except (ValidationError, PermissionError):
            assert _snapshot(session) == before, f"refused {step} changed the session"
        _invariants(clinic, session)


def _do(clinic, appt, kit, session, step, t, version):  # type: ignore[no-untyped-def]
    n, p = clinic.nurse, clinic.prescriber
    if step == "check_in":
        services.check_in(n, appt, at=t)
    elif step == "predose_ok":
        predose(clinic, session, t)
    elif step == "predose_high":
        predose(clinic, session, t, sbp=162, dbp=98)
    elif step in ("proceed", "defer"):
        services.record_prescriber_decision(
            p, session, expected_version=version, decision=step, reason="decided"
        )
    elif step == "device":
        services.record_device(n, session, container=kit, at=t)
    elif step == "vitals_ok":
        services.record_vitals(n, session, sbp=124, dbp=80, hr=72, spo2=98, taken_at=t)
    elif step == "vitals_high":
        services.record_vitals(n, session, sbp=188, dbp=112, hr=96, spo2=97, taken_at=t)
    elif step in ("score_10", "score_8"):
        answers = ALDRETE_10 if step == "score_10" else ALDRETE_8
        services.record_discharge_score(n, session, answers=answers, administered_at=t)
    elif step == "stability":
        services.confirm_stability(p, session, expected_version=version)
    elif step == "discharge":
        services.discharge(
            n,
            session,
            expected_version=version,
            ride_present=True,
            ready_to_leave_minutes=90,
            at=t,
        )
    elif step == "against_advice":
        services.discharge_against_advice(
            n, session, expected_version=version, reason="left early", at=t
        )
    elif step == "abort":
        services.abort(n, session, expected_version=version, reason="unwell")
    elif step == "sign":
        services.sign(n, session, expected_version=version)
    elif step == "cosign":
        services.cosign(p, session, expected_version=version)
    elif step == "stale_note":
        services.update_note(n, session, expected_version=version - 1, note="stale")


def _invariants(clinic, session):  # type: ignore[no-untyped-def]
    s = DosingSession.objects.get(pk=session.pk)
    doses = list(s.doses.all())
    given = LedgerEntry.objects.filter(dosing_session_id=s.pk, kind=EntryKind.ADMINISTRATION)
    # The ledger holds exactly the devices recorded, never more than the dose.
    assert given.count() == len(doses) <= 2
    assert sum(e.quantity_ug for e in given) == 28_000 * len(doses)
    # Devices at least 5 minutes apart.
    times = [d.started_at for d in doses]
    assert all(b - a >= timedelta(minutes=5) for a, b in zip(times, times[1:], strict=False))
    # Drug given only through the gate; never aborted after drug.
    if doses:
        assert s.first_dose_at == times[0]
        assert s.state != S.ABORTED
        assert s.predose_at is not None and s.predose_at <= times[0]
        reading = s.vitals.filter(phase="predose").order_by("-taken_at", "-pk").first()
        if reading.sbp > 140 or reading.dbp > 90:
            assert s.bp_decision == "proceed" and s.bp_decision_by is not None
    else:
        assert s.state not in (S.DOSING, S.OBSERVATION, S.READY_FOR_DISCHARGE)
    # A routine discharge only after 120 minutes, a score of 9+ and the clinician's check.
    if s.state == S.DISCHARGED and s.discharge_kind == "routine":
        assert s.discharged_at - s.first_dose_at >= timedelta(minutes=120)
        assert s.stability_confirmed_by is not None
        assert len(doses) == 2
    # Each state change is one event, in the transition table's order.
    path = list(
        SessionEvent.objects.filter(session=s, kind="transition").values_list(
            "from_state", "to_state"
        )
    )
    for (_, to), (frm, _) in zip(path, path[1:], strict=False):
        assert to == frm
    for frm, to in path:
        assert to in services.TRANSITIONS[frm]
    if path:
        assert path[-1][1] == s.state
    # Signing only once closed; co-signing only after signing.
    if s.signed_at is not None:
        assert s.state in (S.DISCHARGED, S.ABORTED)
    if s.cosigned_at is not None:
        assert s.signed_at is not None and s.cosigned_by != s.signed_by
