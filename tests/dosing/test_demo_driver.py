"""The demo driver runs sessions through the same services, at realistic times."""

from __future__ import annotations

import random
from datetime import timedelta

from ketaclinic.dosing import selectors
from ketaclinic.dosing.demo import Team, drive, in_progress
from ketaclinic.dosing.models import SessionState
from ketaclinic.inventory.models import EntryKind, LedgerEntry
from tests.conftest import PASSWORD
from tests.dosing.conftest import booked, day, esketamine_course, iv_course


def team(clinic) -> Team:  # type: ignore[no-untyped-def]
    return Team(clinic.nurse, clinic.prescriber, clinic.stock.world.prescriber.username, PASSWORD)


def test_a_whole_esketamine_session_and_its_pmf(clinic):  # type: ignore[no-untyped-def]
    course = esketamine_course(clinic, clinic.stock.patient, day(), dose=56)
    clinic.kits(1)
    appt = booked(clinic, course, 1, clinic.at(day(), 8, 30))
    arrive = clinic.at(day(), 8, 30)
    session = drive(
        appt,
        team(clinic),
        arrive=arrive,
        now=arrive + timedelta(hours=4),
        rng=random.Random(1),
        predose_bp=(150, 95),
    )
    assert session is not None and session.state == SessionState.DISCHARGED
    assert session.bp_decision == "proceed"
    assert session.cosigned_at is not None
    data = selectors.pmf_data(session)
    assert data["devices"] == 2 and data["total_minutes"] >= 120
    assert data["bp_before"] == "150/95" and data["bp_40_min"] and data["bp_before_discharge"]
    assert session.scales.filter(purpose="dissociation").exists()


def test_an_iv_session_posts_its_waste_and_one_in_progress_stays_open(clinic):  # type: ignore[no-untyped-def]
    course = iv_course(clinic, clinic.stock.patient, day())
    clinic.vials(1)
    arrive = clinic.at(day(), 8, 30)
    done = drive(
        booked(clinic, course, 1, arrive),
        team(clinic),
        arrive=arrive,
        now=arrive + timedelta(hours=4),
    )
    assert done is not None and done.state == SessionState.DISCHARGED
    kinds = set(
        LedgerEntry.objects.filter(dosing_session_id=done.pk).values_list("kind", flat=True)
    )
    assert kinds == {EntryKind.DRAW, EntryKind.ADMINISTRATION, EntryKind.WASTE}
    later = day() + timedelta(days=2)
    second = booked(clinic, course, 2, clinic.at(later, 8, 30))
    running = drive(
        second, team(clinic), arrive=clinic.at(later, 8, 30), now=clinic.at(later, 9, 20)
    )
    assert in_progress(running), selectors.gate(running, now=clinic.at(later, 9, 0))
    assert running.state == SessionState.DOSING, selectors.gate(running, now=clinic.at(later, 9, 0))
