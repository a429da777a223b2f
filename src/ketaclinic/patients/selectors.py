"""Reads shared by the patient pages and APIs. Each runs a fixed number of queries."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import Count, Q, QuerySet, Subquery, Window
from django.db.models.functions import Lower, Upper
from django.shortcuts import get_object_or_404
from django.utils import timezone

from ketaclinic.accounts.models import Clinic, User
from ketaclinic.audit.models import AuditAction, AuditEntry
from ketaclinic.clinical import dosing
from ketaclinic.patients.models import BodyMeasurement, Patient
from ketaclinic.patients.search import parse_query, prefix_upper_bound

PAGE_SIZE = 25
LIST_ORDER = ("family_name_key", "given_name_key", "id")
# MRN prefixes: UPPER(mrn) LIKE 'P%' (istartswith) uses the index patient_mrn_prefix
# (PostgreSQL, migration 0004). Ordering by an expression no index provides keeps the planner
# from walking the MRN index in ORDER BY order and filtering row by row instead.
MRN_ORDER = (Upper("mrn"), "mrn", "id")
# Birth dates: the few matches come from patient_dob and are sorted (Lower() changes nothing
# in the lower-case keys, but no index offers that order, so none is walked for it).
DOB_ORDER = (Lower("family_name_key"), Lower("given_name_key"), "id")


def get_patient(clinic: Clinic, patient_id: int) -> Patient:
    """The patient, only if they belong to `clinic`: another clinic's id is a 404."""
    return get_object_or_404(Patient, pk=patient_id, clinic=clinic)


def _rows_in_order(clinic: Clinic, ids: list[int]) -> list[Patient]:
    """The patients with these ids, in the order of `ids` (one query by primary key)."""
    by_id = Patient.objects.filter(clinic=clinic, pk__in=ids).in_bulk()
    return [by_id[i] for i in ids if i in by_id]


def _page_of_rows(clinic: Clinic, keys: QuerySet[Any], page_number: Any) -> Page:
    """Paginate `keys` (an ordered queryset whose first column is the patient id), then fetch
    the page's 25 rows. The count and the OFFSET run on index entries only (index-only scans
    when every column is in an index); only 25 whole rows are ever read."""
    page = Paginator(keys, PAGE_SIZE).get_page(page_number)
    page.object_list = _rows_in_order(clinic, [row[0] for row in page.object_list])
    return page


def patient_page(clinic: Clinic, page_number: Any) -> Page:
    """One page of the registry. Ids come from patient_family_key, which holds every ORDER BY
    column: page 2,000 of 4,000 skips 50,000 index entries instead of 50,000 rows."""
    keys = Patient.objects.filter(clinic=clinic).order_by(*LIST_ORDER).values_list("id")
    return _page_of_rows(clinic, keys, page_number)


def _name_range(field: str, token: str) -> Q:
    bound = prefix_upper_bound(token)
    condition = Q(**{f"{field}__gte": token})
    if bound is not None:
        condition &= Q(**{f"{field}__lt": bound})
    return condition


def search_queryset(clinic: Clinic, raw_query: str) -> QuerySet[Any]:
    """Ordered (id, ...) rows of the patients matching a search, for `search_page`."""
    query = parse_query(raw_query)
    patients = Patient.objects.filter(clinic=clinic)
    if query.date_of_birth:
        matches = patients.filter(date_of_birth=query.date_of_birth)
        return matches.order_by(*DOB_ORDER).values_list("id")
    if query.mrn:
        return patients.filter(mrn__istartswith=query.mrn).order_by(*MRN_ORDER).values_list("id")
    if not query.name_tokens:
        return patients.none().values_list("id")
    # Every token must start the given or family name: "ann smi" finds Ann Smith and Smith Ann.
    # The longest token picks the candidates, as a UNION of two range scans: family names
    # (patient_family_key) and given names (patient_given_key). Both indexes hold both keys
    # and the id, so PostgreSQL answers from the indexes alone (index-only scans, also for the
    # other tokens' conditions) and never reads the ~1,700 rows "smi" matches; an OR of the
    # two ranges would visit every one of them, twice (count and page).
    tokens = sorted(query.name_tokens, key=len, reverse=True)
    lead = tokens[0]
    others = Q()
    for token in tokens[1:]:
        others &= _name_range("family_name_key", token) | _name_range("given_name_key", token)
    columns = ("id", "family_name_key", "given_name_key")
    by_family = patients.filter(_name_range("family_name_key", lead), others)
    by_given = patients.filter(_name_range("given_name_key", lead), others)
    return (
        by_family.values_list(*columns)
        .union(by_given.values_list(*columns))
        .order_by("family_name_key", "given_name_key", "id")
    )


def search_page(clinic: Clinic, raw_query: str, page_number: Any) -> Page:
    return _page_of_rows(clinic, search_queryset(clinic, raw_query), page_number)


@dataclass
class BodySize:
    weight_kg: Decimal | None = None
    height_cm: Decimal | None = None
    bmi: Decimal | None = None
    ideal_kg: Decimal | None = None
    adjusted_kg: Decimal | None = None
    notes: list[str] = field(default_factory=list)


def body_size(
    patient: Patient, latest: BodyMeasurement | None, latest_height_cm: Decimal | None
) -> BodySize:
    """BMI, ideal (Devine) and adjusted body weight from the latest weight and height."""
    size = BodySize()
    if latest is None:
        return size
    size.weight_kg = latest.weight_kg
    size.height_cm = latest_height_cm
    if latest_height_cm is None:
        size.notes.append("No height on record: BMI and ideal weight need one.")
        return size
    size.bmi = dosing.body_mass_index(latest.weight_kg, latest_height_cm)
    try:
        size.ideal_kg = dosing.ideal_body_weight(latest_height_cm, patient.sex_at_birth)
        size.adjusted_kg = dosing.adjusted_body_weight(
            latest.weight_kg, latest_height_cm, patient.sex_at_birth
        )
    except ValueError as exc:
        size.notes.append(str(exc))
    return size


@dataclass
class Chart:
    patient: Patient
    body: BodySize
    measurements: list[BodyMeasurement]
    measurement_count: int
    history: list[dict[str, Any]]
    recent_viewers: list[ChartViewer]


RECENT_MEASUREMENTS = 10
RECENT_HISTORY = 10
RECENT_VIEWERS = 15


def chart(clinic: Clinic, patient_id: int, *, clinical: bool) -> Chart:
    """The chart's reads: four queries (three without `clinical`)."""
    patient = get_patient(clinic, patient_id)
    measurements: list[BodyMeasurement] = []
    if clinical:
        measurements = recent_measurements(patient, RECENT_MEASUREMENTS)
    latest = measurements[0] if measurements else None
    return Chart(
        patient=patient,
        body=body_size(patient, latest, getattr(latest, "latest_height_cm", None)),
        measurements=measurements,
        measurement_count=getattr(latest, "total", 0),
        history=edit_history(patient, RECENT_HISTORY),
        recent_viewers=chart_viewers(clinic, patient.pk, RECENT_VIEWERS),
    )


# What a staff name needs (User.display_name): not the password hash and the rest of the row.
USER_NAME_FIELDS = ("first_name", "last_name", "username", "credentials")


def recent_measurements(patient: Patient, limit: int) -> list[BodyMeasurement]:
    """The latest `limit` measurements in one query, each annotated with the patient's total
    count (`total`) and latest recorded height (`latest_height_cm`, which may be older than
    the rows shown: height is not measured at every visit)."""
    latest_height = (
        BodyMeasurement.objects.filter(patient=patient, height_cm__isnull=False)
        .order_by("-measured_at", "-id")
        .values("height_cm")[:1]
    )
    return list(
        BodyMeasurement.objects.filter(patient=patient)
        .select_related("recorded_by")
        .only(
            "measured_at",
            "weight_kg",
            "height_cm",
            "recorded_by",
            *(f"recorded_by__{name}" for name in USER_NAME_FIELDS),
        )
        # Window functions run before LIMIT: the count is over all the patient's rows.
        .annotate(total=Window(Count("id")), latest_height_cm=Subquery(latest_height))
        .order_by("-measured_at", "-id")[:limit]
    )


def measurement_page(patient: Patient, page_number: Any) -> Page:
    rows = (
        BodyMeasurement.objects.filter(patient=patient)
        .select_related("recorded_by")
        .order_by("-measured_at", "-id")
    )
    return Paginator(rows, 50).get_page(page_number)


HISTORY_FIELDS_HIDDEN = {
    "id",
    "clinic",
    "created_at",
    "history_id",
    "history_date",
    "history_change_reason",
    "history_type",
    "history_user",
}


@functools.cache
def _history_fields() -> list[Any]:
    """The fields an edit can change, in model order (the same for every patient)."""
    return [
        f
        for f in Patient.history.model._meta.fields  # type: ignore[attr-defined]
        if f.attname not in HISTORY_FIELDS_HIDDEN and f.name not in HISTORY_FIELDS_HIDDEN
    ]


def edit_history(patient: Patient, limit: int | None) -> list[dict[str, Any]]:
    """Each saved version with who, when and which fields changed (old and new values)."""
    # The model's own manager, not patient.history_records: that related manager builds a
    # new manager class on every access.
    records = (
        Patient.history.model.objects.filter(history_relation=patient)  # type: ignore[attr-defined]
        .select_related("history_user")
        .order_by("-history_date", "-history_id")
    )
    if limit is not None:
        records = records[: limit + 1]
    rows = list(records)
    fields = _history_fields()
    history = []
    for index, record in enumerate(rows[:limit] if limit is not None else rows):
        older = rows[index + 1] if index + 1 < len(rows) else None
        changes = []
        if older is not None:
            for f in fields:
                old, new = getattr(older, f.attname), getattr(record, f.attname)
                if old != new:
                    changes.append({"field": f.verbose_name, "old": old, "new": new})
        history.append(
            {
                "when": record.history_date,
                "who": record.history_user,
                "kind": {"+": "Registered", "~": "Changed", "-": "Removed"}[record.history_type],
                "changes": changes,
                "is_first": older is None and record.history_type == "+",
            }
        )
    _name_staff_in_changes(history, fields)
    return history


def _name_staff_in_changes(history: list[dict[str, Any]], fields: list[Any]) -> None:
    """A changed staff field (the responsible prescriber) shows the person, not their id: one
    query, and only when such a change is on the page."""
    from ketaclinic.accounts.models import User

    staff_fields = {
        f.verbose_name for f in fields if getattr(f, "related_model", None) is User
    }
    changes = [c for row in history for c in row["changes"] if c["field"] in staff_fields]
    ids = {v for c in changes for v in (c["old"], c["new"]) if v is not None}
    if not ids:
        return
    names = {u.pk: u.display_name for u in User.objects.filter(pk__in=ids)}
    for change in changes:
        for side in ("old", "new"):
            if change[side] is not None:
                change[side] = names.get(change[side], change[side])


@dataclass(frozen=True)
class ChartViewer:
    at: datetime
    when: str  # `at` in the current time zone, as YYYY-MM-DD HH:MM
    who: str  # the staff member's display name; "system" without one


def chart_viewers(clinic: Clinic, patient_id: int, limit: int) -> list[ChartViewer]:
    """The latest `limit` chart views, as plain values with the time and name formatted here:
    on a busy chart this table has 15 rows, and as model rows with the template's date filter
    it cost about 0.8 ms of CPU a view (more than the query)."""
    rows = (
        AuditEntry.objects.filter(clinic=clinic, patient_id=patient_id, action=AuditAction.READ)
        .order_by("-at")
        .values_list("at", "actor_id", *(f"actor__{name}" for name in USER_NAME_FIELDS))[:limit]
    )
    return [
        ChartViewer(
            at=at,
            when=timezone.localtime(at).strftime("%Y-%m-%d %H:%M"),
            # An unsaved User holding only the name fields, for its display_name.
            who=User(**dict(zip(USER_NAME_FIELDS, names, strict=True))).display_name
            if actor_id is not None
            else "system",
        )
        for at, actor_id, *names in rows
    ]
