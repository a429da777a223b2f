"""Writing to the audit log. Call these inside the transaction of the write they describe."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from ketaclinic.audit.context import Actor
from ketaclinic.audit.models import AuditAction, AuditChain, AuditEntry


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def canonical_parts(entry: AuditEntry) -> tuple[str, str]:
    """The canonical JSON of an entry split around its sequence number: (before, after).

    The hash covers `before + str(sequence) + after`, which is exactly the canonical JSON
    (sorted keys, no spaces). "sequence" and "user_agent" sort last among the keys, so the
    sequence can be filled in later: by PostgreSQL, once it has locked the chain head.
    """
    fields = {
        "clinic": entry.clinic_id,
        "at": entry.at.isoformat(timespec="microseconds"),
        "actor": entry.actor_id,
        "patient": entry.patient_id,
        "action": entry.action,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "ip": entry.ip,
        "request_id": entry.request_id,
        "reason": entry.reason,
        "detail": entry.detail,
    }
    before = _dumps(fields)[:-1] + ',"sequence":'
    after = ',"user_agent":' + _dumps(entry.user_agent) + "}"
    return before, after


def canonical_payload(entry: AuditEntry) -> str:
    """The fields the hash covers, as canonical JSON (sorted keys, no spaces)."""
    before, after = canonical_parts(entry)
    return before + str(entry.sequence) + after


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
    entry = AuditEntry(
        clinic=actor.clinic,
        at=timezone.now(),
        actor=actor.user,
        patient_id=patient_id,
        action=str(action),
        object_type=object_type,
        object_id=str(object_id),
        # Stored as the database will return it (IPv6 normalised), so the hash matches on verify.
        ip=AuditEntry._meta.get_field("ip").get_prep_value(actor.ip),
        user_agent=actor.user_agent,
        request_id=actor.request_id,
        reason=reason,
        detail=detail or {},
    )
    if connection.vendor == "postgresql":
        return _append_in_one_statement(entry)
    with transaction.atomic():
        chain, _ = AuditChain.objects.select_for_update().get_or_create(clinic=actor.clinic)
        entry.sequence = chain.last_sequence + 1
        entry.previous_hash = chain.last_hash
        entry.entry_hash = compute_hash(chain.last_hash, entry)
        entry.save()
        chain.last_sequence = entry.sequence
        chain.previous_hash = chain.last_hash
        chain.last_hash = entry.entry_hash
        chain.save(update_fields=["last_sequence", "previous_hash", "last_hash"])
    return entry


# PostgreSQL: one statement moves the chain head on and inserts the entry. The UPDATE locks
# the head row; a concurrent writer waits on it and then re-reads the committed head
# (READ COMMITTED re-evaluates the SET list on the newest row version), so sequences and
# hashes form one line. The lock is held for this statement alone (and its commit, when no
# outer transaction is open), not across round trips from a Python thread that may be waiting
# for the CPU. sha256() over the same bytes as compute_hash(): the JSON is ASCII
# (json.dumps escapes everything else) and bigint::text prints as Python's str(int).
_APPEND_SQL = """
WITH head AS (
    UPDATE audit_auditchain
    SET last_sequence = last_sequence + 1,
        previous_hash = last_hash,
        last_hash = encode(sha256(convert_to(
            last_hash || %(before)s || (last_sequence + 1)::text || %(after)s, 'UTF8'
        )), 'hex')
    WHERE clinic_id = %(clinic)s
    RETURNING last_sequence, previous_hash, last_hash
)
INSERT INTO audit_auditentry (
    clinic_id, sequence, at, actor_id, patient_id, action, object_type, object_id, ip,
    user_agent, request_id, reason, detail, previous_hash, entry_hash
)
SELECT %(clinic)s::bigint, head.last_sequence, %(at)s::timestamptz, %(actor)s::bigint,
    %(patient)s::bigint, %(action)s::text, %(object_type)s::text, %(object_id)s::text,
    %(ip)s::inet, %(user_agent)s::text, %(request_id)s::text, %(reason)s::text,
    %(detail)s::jsonb, head.previous_hash, head.last_hash
FROM head
RETURNING id, sequence, previous_hash, entry_hash
"""


def _append_in_one_statement(entry: AuditEntry) -> AuditEntry:
    before, after = canonical_parts(entry)
    params = {
        "before": before,
        "after": after,
        "clinic": entry.clinic_id,
        "at": entry.at,
        "actor": entry.actor_id,
        "patient": entry.patient_id,
        "action": entry.action,
        "object_type": entry.object_type,
        "object_id": entry.object_id,
        "ip": entry.ip,
        "user_agent": entry.user_agent,
        "request_id": entry.request_id,
        "reason": entry.reason,
        "detail": json.dumps(entry.detail, cls=AuditEntry._meta.get_field("detail").encoder),
    }
    with connection.cursor() as cursor:
        for _attempt in range(2):
            cursor.execute(_APPEND_SQL, params)
            row = cursor.fetchone()
            if row is not None:
                break
            # First entry of this clinic: create its chain head, then append.
            AuditChain.objects.get_or_create(clinic_id=entry.clinic_id)
        else:  # pragma: no cover - the head exists after get_or_create
            raise RuntimeError("audit chain head missing")
    entry.pk, entry.sequence, entry.previous_hash, entry.entry_hash = row
    entry._state.adding = False
    entry._state.db = connection.alias
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
