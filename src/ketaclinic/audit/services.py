"""Writing to the audit log. Call these inside the transaction of the write they describe."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.db import transaction
from django.utils import timezone

from ketaclinic.audit.context import Actor
from ketaclinic.audit.models import AuditAction, AuditChain, AuditEntry


def canonical_payload(entry: AuditEntry) -> str:
    """The fields the hash covers, as canonical JSON (sorted keys, no spaces)."""
    return json.dumps(
        {
            "clinic": entry.clinic_id,
            "sequence": entry.sequence,
            "at": entry.at.isoformat(timespec="microseconds"),
            "actor": entry.actor_id,
            "patient": entry.patient_id,
            "action": entry.action,
            "object_type": entry.object_type,
            "object_id": entry.object_id,
            "ip": entry.ip,
            "user_agent": entry.user_agent,
            "request_id": entry.request_id,
            "reason": entry.reason,
            "detail": entry.detail,
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )


def compute_hash(previous_hash: str, entry: AuditEntry) -> str:
    return hashlib.sha256((previous_hash + canonical_payload(entry)).encode()).hexdigest()


def record(
    actor: Actor,
    action: AuditAction | str,
    object_type: str,
    object_id: Any = "",
    *,
    patient_id: int | None = None,
    reason: str = "",
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry to the clinic's chain. Joins the caller's transaction if there is one."""
    with transaction.atomic():
        chain, _ = AuditChain.objects.select_for_update().get_or_create(clinic=actor.clinic)
        entry = AuditEntry(
            clinic=actor.clinic,
            sequence=chain.last_sequence + 1,
            at=timezone.now(),
            actor=actor.user,
            patient_id=patient_id,
            action=str(action),
            object_type=object_type,
            object_id=str(object_id),
            ip=actor.ip,
            user_agent=actor.user_agent,
            request_id=actor.request_id,
            reason=reason,
            detail=detail or {},
            previous_hash=chain.last_hash,
        )
        entry.entry_hash = compute_hash(chain.last_hash, entry)
        entry.save()
        chain.last_sequence = entry.sequence
        chain.last_hash = entry.entry_hash
        chain.save(update_fields=["last_sequence", "last_hash"])
    return entry


def record_read(
    actor: Actor,
    object_type: str,
    object_id: Any,
    *,
    patient_id: int | None,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """One entry per page view of patient data (not one per query)."""
    return record(
        actor, AuditAction.READ, object_type, object_id, patient_id=patient_id, detail=detail
    )
