"""Several staff acting on one session at the same moment (PostgreSQL: real row locks).

Eight clients record "the second device" at once: exactly one is stored, with one draw and
one administration in the ledger; the rest are refused by the 5-minute rule. Meanwhile
readings added by everyone are all kept and never conflict."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from ketaclinic.accounts.models import Clinic, User
from ketaclinic.audit.context import Actor
from ketaclinic.dosing import services
from ketaclinic.dosing.models import DoseAdministration, DosingSession
from ketaclinic.inventory.models import EntryKind, LedgerEntry
from tests.dosing.conftest import booked, checked_in, day, esketamine_course, predose

CLIENTS = 8

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL (set KETACLINIC_TEST_DATABASE_URL): SQLite takes one writer "
        "at a time, so there is no race to test",
    ),
]


def run_clients(work: Callable[[int], None]) -> list[BaseException]:
    barrier = threading.Barrier(CLIENTS)
    errors: list[BaseException] = []

    def client(n: int) -> None:
        try:
            barrier.wait(timeout=30)
            work(n)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a client hung (deadlock?)"
    return errors


def test_eight_clients_recording_the_second_device_store_exactly_one(transactional_db, clinic):  # type: ignore[no-untyped-def]
    course = esketamine_course(clinic, clinic.stock.patient, day(), dose=56)
    kit = clinic.kits(1)[0]
    appt = booked(clinic, course, 1, clinic.at(day(), 8, 30))
    session = checked_in(clinic, appt, clinic.at(day(), 8, 30))
    predose(clinic, session, clinic.at(day(), 8, 45))
    services.record_device(clinic.nurse, session, container=kit, at=clinic.at(day(), 9, 0))
    world = clinic.stock.world

    def work(n: int) -> None:
        user = User.objects.get(pk=(world.nurse if n % 2 else world.prescriber).pk)
        actor = Actor.system(Clinic.objects.get(pk=world.clinic_a.pk), user=user, label=f"c{n}")
        mine = DosingSession.objects.get(pk=session.pk)
        services.record_vitals(actor, mine, hr=70 + n, taken_at=clinic.at(day(), 9, 6))
        try:
            services.record_device(actor, mine, container=kit, at=clinic.at(day(), 9, 5))
        except ValidationError:
            pass

    errors = run_clients(work)
    assert errors == []
    assert DoseAdministration.objects.filter(session=session).count() == 2
    given = LedgerEntry.objects.filter(dosing_session_id=session.pk)
    assert given.filter(kind=EntryKind.DRAW).count() == 2
    assert given.filter(kind=EntryKind.ADMINISTRATION).count() == 2
    kit.refresh_from_db()
    assert kit.balance_ug == 84_000 - 56_000
    assert session.vitals.filter(hr__isnull=False, sbp__isnull=True).count() == CLIENTS
    assert DosingSession.objects.get(pk=session.pk).state == "observation"
