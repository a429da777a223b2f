from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db.models import QuerySet

from ketaclinic.accounts.models import Clinic
from ketaclinic.audit.models import AuditEntry


@dataclass(frozen=True)
class AuditFilter:
    patient_id: int | None = None
    actor_id: int | None = None
    date_from: date | None = None
    date_to: date | None = None


def entries(clinic: Clinic, f: AuditFilter) -> QuerySet[AuditEntry]:
    rows = AuditEntry.objects.filter(clinic=clinic).select_related("actor")
    tz = ZoneInfo(clinic.time_zone)
    if f.patient_id is not None:
        rows = rows.filter(patient_id=f.patient_id)
    if f.actor_id is not None:
        rows = rows.filter(actor_id=f.actor_id)
    # Dates are the clinic's calendar days, whatever the server's zone.
    if f.date_from is not None:
        rows = rows.filter(at__gte=datetime.combine(f.date_from, time.min, tzinfo=tz))
    if f.date_to is not None:
        rows = rows.filter(
            at__lt=datetime.combine(f.date_to + timedelta(days=1), time.min, tzinfo=tz)
        )
    return rows.order_by("-at", "-sequence")
