"""Many clients using one vial at the same moment (PostgreSQL: real row locks, real commits).

Eight threads, each with its own database connection, draw 35 mg from the same 500 mg vial
until the service refuses; every draw the service acknowledged (returned) is counted. None may
be lost and the vial may never go below zero. Then eight threads race to administer and waste
from one syringe: together they never use more than was drawn."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from ketaclinic.accounts.models import Clinic, User
from ketaclinic.accounts.roles import Role
from ketaclinic.audit.context import Actor
from ketaclinic.inventory import services
from ketaclinic.inventory.models import Container, EntryKind, LedgerEntry, Lot, StorageLocation
from ketaclinic.patients.models import Patient
from tests.inventory.conftest import VIAL_UG, Stock, verify_passes, witness

CLIENTS = 8
DOSE = 35_000  # 35 mg = 0.70 mL of 50 mg/mL

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="needs PostgreSQL (set KETACLINIC_TEST_DATABASE_URL): SQLite takes one writer "
        "at a time, so there is no race to test",
    ),
]


def run_clients(work: Callable[[int], None]) -> list[BaseException]:
    """Start CLIENTS threads together; each closes its own connection at the end."""
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


def own_actor(stock: Stock, n: int) -> Actor:
    """An actor loaded on the client's own connection (as each request loads its own)."""
    user = User.objects.get(pk=(stock.world.nurse if n % 2 else stock.world.prescriber).pk)
    return Actor.system(Clinic.objects.get(pk=stock.clinic.pk), user=user, label=f"client {n}")


def test_eight_clients_drawing_from_one_vial_lose_nothing(transactional_db, stock):  # type: ignore[no-untyped-def]
    [vial] = stock.receive(1)
    acknowledged = [0] * CLIENTS
    refusals: list[str] = []

    def work(n: int) -> None:
        actor = own_actor(stock, n)
        patient = Patient.objects.get(pk=stock.patient.pk)
        while True:
            try:
                services.draw(
                    actor,
                    patient=patient,
                    quantity_ug=DOSE,
                    container=Container.objects.get(pk=vial.pk),
                )
            except ValidationError as refused:
                refusals.append(" ".join(refused.messages))
                return
            acknowledged[n] += 1

    errors = run_clients(work)
    try:
        assert errors == []
        vial.refresh_from_db()
        draws = LedgerEntry.objects.filter(container=vial, kind=EntryKind.DRAW)
        assert sum(acknowledged) * DOSE == VIAL_UG - vial.balance_ug
        assert draws.count() == sum(acknowledged) == VIAL_UG // DOSE  # 14 draws, 10 mg left
        assert 0 <= vial.balance_ug < DOSE
        assert Lot.objects.get(pk=vial.lot_id).balance_ug == vial.balance_ug
        assert len(refusals) == CLIENTS and all("below zero" in r for r in refusals)
        sequences = list(
            LedgerEntry.objects.filter(clinic=stock.clinic)
            .order_by("sequence")
            .values_list("sequence", flat=True)
        )
        assert sequences == list(range(1, len(sequences) + 1))
        assert sorted(draws.values_list("container_balance_ug", flat=True)) == [
            VIAL_UG - DOSE * k for k in range(VIAL_UG // DOSE, 0, -1)
        ]
        verify_passes()
    finally:
        connection.close()


def test_eight_clients_using_one_syringe_never_exceed_the_draw(transactional_db, stock):  # type: ignore[no-untyped-def]
    [vial] = stock.receive(1)
    draw = services.draw(stock.nurse, patient=stock.patient, quantity_ug=DOSE, container=vial)
    step = 4_000  # 8 x 4 mg fit in 35 mg, 3 mg stay in the syringe
    acknowledged = [0] * CLIENTS

    def work(n: int) -> None:
        actor = own_actor(stock, n)
        while True:
            syringe = LedgerEntry.objects.get(pk=draw.pk)
            try:
                if n % 2:  # the nurses administer, the prescribers waste (the nurse witnesses)
                    services.administer(actor, syringe, step)
                else:
                    services.waste(
                        actor,
                        quantity_ug=step,
                        draw_entry=syringe,
                        **witness(stock.world.nurse),
                    )
            except ValidationError:
                return
            acknowledged[n] += 1

    errors = run_clients(work)
    try:
        assert errors == []
        used = LedgerEntry.objects.filter(draw=draw)
        assert used.count() == sum(acknowledged) == DOSE // step
        assert sum(used.values_list("quantity_ug", flat=True)) == sum(acknowledged) * step
        assert services.undispensed_ug(draw) == DOSE - sum(acknowledged) * step == 3_000
        vial.refresh_from_db()
        assert vial.balance_ug == VIAL_UG - DOSE  # syringe use does not touch the vial
        verify_passes()
    finally:
        connection.close()


def test_eight_clients_moving_one_vial_leave_an_unbroken_trail(transactional_db, stock):  # type: ignore[no-untyped-def]
    """Each client loaded the vial in the safe before any of them moved it; each move is
    recorded from where the vial really was at that moment."""
    [vial] = stock.receive(1)
    admin = stock.actor(Role.CLINIC_ADMIN)
    carts = [services.create_location(admin, f"Room {n}", "cart") for n in range(CLIENTS)]

    def work(n: int) -> None:
        loaded = Container.objects.get(pk=vial.pk)  # before the barrier: in the safe
        ready.wait(timeout=30)
        services.transfer(own_actor(stock, n), loaded, StorageLocation.objects.get(pk=carts[n].pk))

    ready = threading.Barrier(CLIENTS)
    errors = run_clients(work)
    try:
        assert errors == []
        moves = list(
            LedgerEntry.objects.filter(container=vial, kind=EntryKind.TRANSFER).order_by("sequence")
        )
        assert len(moves) == CLIENTS
        where = stock.safe.pk
        for move in moves:
            assert move.from_location_id == where
            where = move.to_location_id
        assert Container.objects.get(pk=vial.pk).location_id == where
        verify_passes()
    finally:
        connection.close()
