"""Drive a dosing session through the services at realistic times, for the demo clinic and
for tests: check-in, pre-dose checks, the dose (devices 5 minutes apart or an infusion with
its witnessed waste), readings on the protocol's schedule, CADSS-6, the discharge score,
the clinician's stability check, discharge and signatures. Steps later than ``now`` are left
undone, so a session started an hour ago stays in progress on the chair board."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from ketaclinic.audit.context import Actor
from ketaclinic.dosing import selectors, services
from ketaclinic.dosing.models import DosingSession, SessionState
from ketaclinic.treatment.models import Appointment

NO_MEDICINES = {
    "benzodiazepines": False,
    "sedative_hypnotics": False,
    "opioids": False,
    "psychostimulants": False,
    "maois": False,
}
ALDRETE_FULL = [2, 2, 2, 2, 2]
IV_CONCENTRATION = Decimal(10)  # mg/mL in the infusion bag (clinic's dilution)


@dataclass
class Team:
    nurse: Actor
    prescriber: Actor
    witness_username: str
    witness_secret: str


def _fresh(session: DosingSession) -> DosingSession:
    session.refresh_from_db()
    return session


def drive(
    appointment: Appointment,
    team: Team,
    *,
    arrive: datetime,
    now: datetime,
    rng: random.Random | None = None,
    sign: bool = True,
    predose_bp: tuple[int, int] | None = None,
) -> DosingSession | None:
    """Run ``appointment``'s session from ``arrive`` up to ``now``. Returns the session, or
    None when it cannot start (no stock, the gate refuses): the session stays as far as it
    got, which is what a clinic would see."""
    rng = rng or random.Random(appointment.pk)
    if arrive > now:
        return None
    session = services.check_in(team.nurse, appointment, at=arrive)
    at = arrive + timedelta(minutes=15)
    if at > now:
        return session
    sbp, dbp = predose_bp or (rng.randint(112, 136), rng.randint(68, 86))
    relevant = session.patient.sex_at_birth != "male"
    gate = services.record_predose(
        team.nurse,
        session,
        expected_version=_fresh(session).version,
        sbp=sbp,
        dbp=dbp,
        hr=rng.randint(62, 88),
        spo2=rng.randint(96, 99),
        rr=rng.randint(12, 16),
        fasting=True,
        ride_name=rng.choice(["Sam Carter", "Lee Morgan", "Alex Rivera", "Jo Patel"]),
        ride_phone=f"555-01{rng.randint(10, 99)}",
        pregnancy_status="not_pregnant" if relevant else "not_applicable",
        medicines=dict(NO_MEDICINES),
        scales_done=not selectors.missing_scales_today(session, at),
        scales_skip_reason="completed at the last visit; patient asked to skip today",
        cssrs_reviewed=True,
        taken_at=at,
    )
    if gate.needs_decision:
        services.record_prescriber_decision(
            team.prescriber,
            session,
            expected_version=_fresh(session).version,
            decision="proceed",
            reason="Repeat reading lower after rest; benefit outweighs a transient rise.",
        )
    start = arrive + timedelta(minutes=30)
    if start > now:
        return _fresh(session)
    # The protocol's interval is judged at the time of the dose, not of the checks.
    if not selectors.gate(_fresh(session), now=start).ok:
        return _fresh(session)
    session = _fresh(session)
    containers = selectors.usable_containers(session, start.date())
    if not containers:
        return session
    if session.is_esketamine:
        devices = selectors.dose_plan(session).devices or 0
        for n in range(devices):
            when = start + timedelta(minutes=5 * n)
            if when > now:
                return _fresh(session)
            kits = selectors.usable_containers(session, when.date()) or containers
            services.record_device(team.nurse, session, container=kits[0], at=when)
        ended = start + timedelta(minutes=5 * (devices - 1))
    else:
        plan_minutes = session.infusion_minutes or 40
        services.start_infusion(
            team.nurse,
            session,
            expected_version=_fresh(session).version,
            container=containers[0],
            concentration_mg_per_ml=IV_CONCENTRATION,
            drawn_ug=int(Decimal(session.dose_mg) * 1000) + 2_500,
            at=start,
        )
        ended = start + timedelta(minutes=plan_minutes)
        for minute in range(10, plan_minutes, 10):
            when = start + timedelta(minutes=minute)
            if when > now:
                return _fresh(session)
            services.record_vitals(
                team.nurse,
                session,
                sbp=sbp + rng.randint(0, 14),
                dbp=dbp + rng.randint(0, 8),
                hr=rng.randint(66, 92),
                spo2=rng.randint(95, 99),
                moaas=rng.choice([4, 5, 5]),
                taken_at=when,
            )
        if ended > now:
            return _fresh(session)
        services.stop_infusion(
            team.nurse,
            session,
            expected_version=_fresh(session).version,
            at=ended,
            witness_username=team.witness_username,
            witness_secret=team.witness_secret,
        )
    session = _fresh(session)
    schedule = selectors.vitals_due(session, ended).schedule
    for when in schedule:
        if when <= ended or when > now:
            continue
        peak = session.is_esketamine and when - start <= timedelta(minutes=50)
        services.record_vitals(
            team.nurse,
            session,
            sbp=sbp + (rng.randint(10, 24) if peak else rng.randint(-4, 8)),
            dbp=dbp + (rng.randint(4, 12) if peak else rng.randint(-2, 6)),
            hr=rng.randint(64, 90),
            spo2=rng.randint(95, 99),
            rr=rng.randint(12, 16),
            moaas=rng.choice([4, 5]) if peak else 5,
            taken_at=when,
        )
        if session.is_esketamine and peak:
            services.record_dissociation(
                team.nurse,
                session,
                code="cadss6",
                answers=[rng.randint(0, 2) for _ in range(6)],
                administered_at=when,
            )
            if rng.random() < 0.4:
                services.record_side_effect(
                    team.nurse,
                    session,
                    kind=rng.choice(["dissociation", "nausea", "dizziness"]),
                    severity="mild",
                    onset_at=when - timedelta(minutes=10),
                    action="reassurance; dim lights",
                    outcome="resolved",
                )
    earliest = selectors.earliest_discharge(session)
    if earliest is None or earliest > now:
        return _fresh(session)
    score_at = earliest - timedelta(minutes=4)
    services.record_discharge_score(
        team.nurse, session, answers=ALDRETE_FULL, administered_at=score_at
    )
    if session.is_esketamine:
        services.confirm_stability(
            team.prescriber,
            session,
            expected_version=_fresh(session).version,
            note="Alert, oriented, steady gait; BP settling.",
        )
    leave = earliest + timedelta(minutes=rng.randint(2, 12))
    if leave > now:
        return _fresh(session)
    services.discharge(
        team.nurse,
        session,
        expected_version=_fresh(session).version,
        ride_present=True,
        ready_to_leave_minutes=rng.randint(70, 110) if session.is_esketamine else None,
        at=leave,
    )
    if sign:
        services.sign(team.nurse, session, expected_version=_fresh(session).version)
        services.cosign(team.prescriber, session, expected_version=_fresh(session).version)
    return _fresh(session)


def in_progress(session: DosingSession | None) -> bool:
    return session is not None and session.state not in (
        SessionState.DISCHARGED,
        SessionState.ABORTED,
    )
