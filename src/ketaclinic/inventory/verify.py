"""`ketaclinic ledger verify`: the hash chain, every running balance recomputed from the
entries, the stored container and lot balances, and the invariants."""

from __future__ import annotations

from dataclasses import dataclass

from ketaclinic.clinical import ledger as rules
from ketaclinic.inventory.models import Container, EntryKind, LedgerChain, LedgerEntry, Lot
from ketaclinic.inventory.services import entry_hash


@dataclass(frozen=True)
class LedgerProblem:
    entry_id: int | None
    clinic_id: int
    sequence: int | None
    message: str

    def __str__(self) -> str:
        if self.entry_id is None:
            return f"clinic {self.clinic_id}: {self.message}"
        return (
            f"ledger entry {self.entry_id} (clinic {self.clinic_id}, sequence "
            f"{self.sequence}): {self.message}"
        )


def verify_clinic(clinic_id: int) -> tuple[int, LedgerProblem | None]:
    entries = list(LedgerEntry.objects.filter(clinic_id=clinic_id).order_by("sequence"))
    reversed_ids = {e.reverses_id for e in entries if e.reverses_id}
    previous = "0" * 64
    for expected, entry in enumerate(entries, start=1):
        if entry.sequence != expected:
            return len(entries), LedgerProblem(
                entry.pk, clinic_id, entry.sequence, f"sequence {expected} is missing"
            )
        if entry.previous_hash != previous:
            return len(entries), LedgerProblem(
                entry.pk, clinic_id, entry.sequence, "does not link to the entry before it"
            )
        if entry_hash(previous, entry) != entry.entry_hash:
            return len(entries), LedgerProblem(
                entry.pk, clinic_id, entry.sequence, "contents do not match its hash (changed)"
            )
        previous = entry.entry_hash
    movements = [
        rules.Movement(
            entry_id=e.pk,
            container_id=e.container_id,
            lot_id=e.lot_id,
            delta_ug=e.delta_ug,
            kind={
                EntryKind.DRAW: rules.DRAW,
                EntryKind.ADMINISTRATION: rules.ADMINISTRATION,
                EntryKind.WASTE: rules.WASTE,
            }.get(e.kind, e.kind),  # type: ignore[call-overload]
            quantity_ug=e.quantity_ug,
            draw_id=e.draw_id,
            voided=e.pk in reversed_ids,
            stated_container_balance=e.container_balance_ug,
            stated_lot_balance=e.lot_balance_ug,
        )
        for e in entries
    ]
    replayed = rules.replay(movements)
    if replayed.first_problem is not None:
        entry_id, message = replayed.first_problem
        sequence = next(e.sequence for e in entries if e.pk == entry_id)
        return len(entries), LedgerProblem(entry_id, clinic_id, sequence, message)
    head = LedgerChain.objects.filter(clinic_id=clinic_id).first()
    if head is None and entries:
        return len(entries), LedgerProblem(
            None, clinic_id, None, f"{len(entries)} entries are stored but the chain head is gone"
        )
    if head is not None and head.last_sequence != len(entries):
        return len(entries), LedgerProblem(
            None,
            clinic_id,
            None,
            f"chain head says {head.last_sequence} entries, "
            f"{len(entries)} are stored (entries removed?)",
        )
    if head is not None and entries and head.last_hash != entries[-1].entry_hash:
        # The last entry rewritten with a freshly computed hash: nothing after it links to it,
        # only the chain head remembers the hash it was written with.
        last = entries[-1]
        return len(entries), LedgerProblem(
            last.pk,
            clinic_id,
            last.sequence,
            "is not the entry the chain head recorded (rewritten?)",
        )
    for container in Container.objects.filter(clinic_id=clinic_id):
        if container.balance_ug != replayed.container_balance.get(container.pk, 0):
            return len(entries), LedgerProblem(
                None,
                clinic_id,
                None,
                (
                    f"container {container.label} shows {container.balance_ug} µg but its entries "
                    f"add up to {replayed.container_balance.get(container.pk, 0)} µg"
                ),
            )
    for lot in Lot.objects.filter(clinic_id=clinic_id):
        if lot.balance_ug != replayed.lot_balance.get(lot.pk, 0):
            return len(entries), LedgerProblem(
                None,
                clinic_id,
                None,
                (
                    f"lot {lot.lot_number} shows {lot.balance_ug} µg but its entries add up to "
                    f"{replayed.lot_balance.get(lot.pk, 0)} µg"
                ),
            )
    return len(entries), None


def verify_all() -> tuple[int, LedgerProblem | None]:
    total = 0
    clinic_ids = sorted(
        set(LedgerEntry.objects.values_list("clinic_id", flat=True).distinct())
        | set(LedgerChain.objects.values_list("clinic_id", flat=True))
    )
    for clinic_id in clinic_ids:
        checked, problem = verify_clinic(clinic_id)
        total += checked
        if problem is not None:
            return total, problem
    return total, None
