"""Recompute every clinic's audit hash chain and report the first entry that does not match."""

from __future__ import annotations

from dataclasses import dataclass

from ketaclinic.audit.models import AuditChain, AuditEntry
from ketaclinic.audit.services import compute_hash


@dataclass(frozen=True)
class ChainProblem:
    entry_id: int | None
    clinic_id: int
    sequence: int | None
    message: str

    def __str__(self) -> str:
        where = f"audit entry {self.entry_id} (clinic {self.clinic_id}, sequence {self.sequence})"
        return f"{where}: {self.message}"


def verify_clinic(clinic_id: int, batch_size: int = 5000) -> ChainProblem | None:
    previous_hash = "0" * 64
    expected_sequence = 1
    last_seen: AuditEntry | None = None
    entries = (
        AuditEntry.objects.filter(clinic_id=clinic_id).order_by("sequence").iterator(batch_size)
    )
    for entry in entries:
        if entry.sequence != expected_sequence:
            return ChainProblem(
                entry.pk,
                clinic_id,
                entry.sequence,
                f"sequence {expected_sequence} is missing (entry removed?)",
            )
        if entry.previous_hash != previous_hash:
            return ChainProblem(
                entry.pk,
                clinic_id,
                entry.sequence,
                "previous_hash does not match the entry before it",
            )
        if compute_hash(previous_hash, entry) != entry.entry_hash:
            return ChainProblem(
                entry.pk,
                clinic_id,
                entry.sequence,
                "contents do not match entry_hash (entry changed)",
            )
        previous_hash = entry.entry_hash
        expected_sequence += 1
        last_seen = entry
    head = AuditChain.objects.filter(clinic_id=clinic_id).first()
    if head is not None and head.last_sequence != expected_sequence - 1:
        return ChainProblem(
            None,
            clinic_id,
            head.last_sequence,
            f"the chain head says {head.last_sequence} entries but "
            f"{expected_sequence - 1} are stored (entries removed at the end?)",
        )
    if head is not None and last_seen is not None and head.last_hash != last_seen.entry_hash:
        return ChainProblem(
            last_seen.pk,
            clinic_id,
            last_seen.sequence,
            "the chain head's hash does not match the last entry",
        )
    return None


def verify_all() -> tuple[int, ChainProblem | None]:
    """Return (entries checked, first problem or None)."""
    clinic_ids = sorted(
        set(AuditEntry.objects.values_list("clinic_id", flat=True).distinct())
        | set(AuditChain.objects.values_list("clinic_id", flat=True))
    )
    for clinic_id in clinic_ids:
        problem = verify_clinic(clinic_id)
        if problem is not None:
            return AuditEntry.objects.count(), problem
    return AuditEntry.objects.count(), None
