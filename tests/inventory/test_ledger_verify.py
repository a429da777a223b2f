"""`ketaclinic ledger verify` against someone with direct database access: the append-only
trigger refuses UPDATE and DELETE; with it dropped, any changed, removed or re-hashed entry
and any edited Container or Lot balance is found, and a changed entry is named."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.models import F

from ketaclinic.accounts.roles import Role
from ketaclinic.inventory import services
from ketaclinic.inventory.models import Container, EntryKind, LedgerChain, LedgerEntry, Lot
from tests.inventory.conftest import (
    Stock,
    append_only_trigger_off,
    verify_fails,
    verify_passes,
    witness,
)


@pytest.fixture
def ledger(stock: Stock) -> list[LedgerEntry]:
    """Ten entries of clinic A, oldest first: two receipts, a transfer, a draw, an
    administration, a witnessed syringe waste (the middle), a witnessed waste from a vial, an
    adjustment, a second draw and its reversal (the last)."""
    vial, other = stock.receive(2)
    services.transfer(stock.nurse, other, stock.cart)
    draw = services.draw(stock.nurse, patient=stock.patient, quantity_ug=35_000, container=vial)
    services.administer(stock.nurse, draw, 32_500)
    services.waste(
        stock.nurse, quantity_ug=2_500, draw_entry=draw, **witness(stock.world.prescriber)
    )
    services.waste(
        stock.nurse, quantity_ug=2_500, container=other, **witness(stock.user(Role.CLINIC_ADMIN))
    )
    services.adjust(stock.actor(Role.CLINIC_ADMIN), other, delta_ug=-1_000, reason="count short")
    second = services.draw(
        stock.prescriber, patient=stock.patient_2, quantity_ug=50_000, container=other
    )
    services.reverse(stock.actor(Role.CLINIC_ADMIN), second, "drawn for the wrong patient")
    entries = list(LedgerEntry.objects.filter(clinic=stock.clinic).order_by("sequence"))
    assert [e.kind for e in entries] == [
        EntryKind.RECEIPT,
        EntryKind.RECEIPT,
        EntryKind.TRANSFER,
        EntryKind.DRAW,
        EntryKind.ADMINISTRATION,
        EntryKind.WASTE,
        EntryKind.WASTE,
        EntryKind.ADJUSTMENT,
        EntryKind.DRAW,
        EntryKind.REVERSAL,
    ]
    return entries


POSITIONS = {"first": 0, "middle": 5, "last": -1}


def test_verify_passes_on_an_intact_ledger(ledger):  # type: ignore[no-untyped-def]
    assert "10 entries" in verify_passes()


def tampered(field: str, entry: LedgerEntry, stock: Stock) -> dict[str, object]:
    other_user = (
        stock.user(Role.CLINIC_ADMIN)
        if entry.witness_id != stock.user(Role.CLINIC_ADMIN).pk
        else stock.world.prescriber
    )
    return {
        "quantity_ug": {"quantity_ug": entry.quantity_ug + 1},
        "delta_ug": {"delta_ug": entry.delta_ug - 1},
        "container_balance_ug": {"container_balance_ug": entry.container_balance_ug + 1},
        "lot_balance_ug": {"lot_balance_ug": entry.lot_balance_ug + 1},
        "reason": {"reason": entry.reason + " (edited)"},
        "patient": {
            "patient": stock.patient_2 if entry.patient_id == stock.patient.pk else stock.patient
        },
        "at": {"at": entry.at - timedelta(seconds=1)},
        "witness": {"witness": other_user},
    }[field]


@pytest.mark.parametrize("position", list(POSITIONS))
@pytest.mark.parametrize(
    "field",
    [
        "quantity_ug",
        "delta_ug",
        "container_balance_ug",
        "lot_balance_ug",
        "reason",
        "patient",
        "at",
        "witness",
    ],
)
def test_verify_names_any_changed_entry(ledger, stock, field, position):  # type: ignore[no-untyped-def]
    entry = ledger[POSITIONS[position]]
    with append_only_trigger_off():
        changed = LedgerEntry.objects.filter(pk=entry.pk).update(**tampered(field, entry, stock))
    assert changed == 1
    message = verify_fails()
    assert f"ledger entry {entry.pk} " in message
    assert "changed" in message


@pytest.mark.parametrize("position", list(POSITIONS))
def test_verify_catches_a_deleted_entry(ledger, position):  # type: ignore[no-untyped-def]
    index = POSITIONS[position]
    with append_only_trigger_off(deletes=True), connection.cursor() as cursor:
        cursor.execute("DELETE FROM inventory_ledgerentry WHERE id = %s", [ledger[index].pk])
    message = verify_fails()
    if position == "last":
        assert "removed" in message
    else:
        assert "missing" in message and f"ledger entry {ledger[index + 1].pk} " in message


def test_verify_catches_a_changed_container_balance(ledger):  # type: ignore[no-untyped-def]
    container = ledger[0].container
    Container.objects.filter(pk=container.pk).update(balance_ug=F("balance_ug") + 1)
    message = verify_fails()
    assert f"container {container.label} shows" in message


def test_verify_catches_a_changed_lot_balance(ledger):  # type: ignore[no-untyped-def]
    Lot.objects.filter(pk=ledger[0].lot_id).update(balance_ug=F("balance_ug") - 2_500)
    assert f"lot {ledger[0].lot.lot_number} shows" in verify_fails()


def test_verify_catches_a_missing_chain_head(ledger):  # type: ignore[no-untyped-def]
    LedgerChain.objects.all().delete()
    assert "chain head" in verify_fails()


def rewrite(entries: list[LedgerEntry], start: int, *, head: bool, **changes: object) -> None:
    """Change entries[start] and recompute the hash of it and of every entry after it (and of
    the chain head, if `head`): tampering by someone who knows how the chain is made."""
    with append_only_trigger_off():
        LedgerEntry.objects.filter(pk=entries[start].pk).update(**changes)
        previous = entries[start].previous_hash
        for stale in entries[start:]:
            entry = LedgerEntry.objects.get(pk=stale.pk)
            new_hash = services.entry_hash(previous, entry)
            LedgerEntry.objects.filter(pk=entry.pk).update(
                previous_hash=previous, entry_hash=new_hash
            )
            previous = new_hash
            if not head:
                break
    if head:
        LedgerChain.objects.update(last_hash=previous)


def test_verify_catches_a_middle_entry_rewritten_with_a_fresh_hash(ledger):  # type: ignore[no-untyped-def]
    rewrite(ledger, 5, head=False, reason="nothing wasted")
    assert f"ledger entry {ledger[6].pk} " in verify_fails()


def test_verify_catches_the_last_entry_rewritten_with_a_fresh_hash(ledger):  # type: ignore[no-untyped-def]
    """Nothing links to the last entry: only the chain head remembers its hash."""
    rewrite(ledger, 9, head=False, reason="rewritten")
    message = verify_fails()
    assert f"ledger entry {ledger[9].pk} " in message and "rewritten" in message


def test_a_rehashed_chain_still_fails_on_the_balances(ledger):  # type: ignore[no-untyped-def]
    """A draw made 1 mg smaller, every hash after it recomputed: the running balances give
    it away."""
    draw = ledger[3]
    rewrite(
        ledger, 3, head=True, quantity_ug=draw.quantity_ug - 1_000, delta_ug=draw.delta_ug + 1_000
    )
    message = verify_fails()
    assert f"ledger entry {draw.pk} " in message and "recomputed" in message


def test_a_rehashed_chain_still_fails_on_a_syringe_used_twice(ledger):  # type: ignore[no-untyped-def]
    administration = ledger[4]
    rewrite(ledger, 4, head=True, quantity_ug=administration.quantity_ug + 1)
    message = verify_fails()
    assert f"ledger entry {ledger[5].pk} " in message and "exceeds" in message


def test_the_trigger_refuses_update_and_delete(ledger):  # type: ignore[no-untyped-def]
    entry = ledger[5]
    with pytest.raises(DatabaseError), transaction.atomic():
        LedgerEntry.objects.filter(pk=entry.pk).update(reason="edited")
    with pytest.raises(DatabaseError), transaction.atomic():
        LedgerEntry.objects.filter(pk=entry.pk).update(quantity_ug=1)
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE inventory_ledgerentry SET delta_ug = 0")
    with pytest.raises(DatabaseError), transaction.atomic():
        LedgerEntry.objects.filter(pk=entry.pk).delete()
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM inventory_ledgerentry")
    with pytest.raises(RuntimeError, match="append-only"):
        entry.save()
    with pytest.raises(RuntimeError, match="append-only"):
        entry.delete()
    assert LedgerEntry.objects.get(pk=entry.pk).reason == entry.reason
    assert LedgerEntry.objects.count() == len(ledger)
    verify_passes()
