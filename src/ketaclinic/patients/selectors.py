"""Reads shared by the patient pages and APIs. Each runs a fixed number of queries."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.core.paginator import Page, Paginator
from django.db import connection
from django.db.models import Q, QuerySet
from django.db.models.functions import Lower, Upper
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone

from ketaclinic.accounts.models import Clinic, User
from ketaclinic.audit.models import AuditAction, AuditEntry
from ketaclinic.clinical import dosing
from ketaclinic.patients.models import BodyMeasurement, Patient, PatientStatus
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


@dataclass(frozen=True)
class PatientRow:
    """One line of the registry or of search results: plain values with the link, birth date
    and status label made here. As model rows with the template's url tag, date filter and
    get_status_display, 25 lines cost 1-2 ms of CPU a page."""

    pk: int
    clinic_id: int
    mrn: str
    family_name: str
    given_name: str
    preferred_name: str
    date_of_birth: date | None
    status: str
    status_label: str
    href: str
    born: str  # date_of_birth as YYYY-MM-DD, "" without one


# Patient columns, written into the SQL of _rows_in_order (constants, not input).
ROW_FIELDS = (
    "id",
    "clinic_id",
    "mrn",
    "family_name",
    "given_name",
    "preferred_name",
    "date_of_birth",
    "status",
)
_STATUS_LABELS = dict(PatientStatus.choices)
_URL_SENTINEL = 987654321


def _rows_in_order(clinic: Clinic, ids: list[int]) -> list[PatientRow]:
    """The patients with these ids, in the order of `ids` (one query by primary key)."""
    if not ids:
        return []
    # Plain SQL (see _raw_rows): the ORM query cost more CPU than the rest of this function.
    placeholders = ", ".join(["%s"] * len(ids))
    sql = (
        f"SELECT {', '.join(ROW_FIELDS)} FROM patients_patient"  # noqa: S608 - only %s added
        f" WHERE clinic_id = %s AND id IN ({placeholders})"
    )
    born_on = _converter(Patient, "date_of_birth")
    by_id = {row[0]: row for row in _raw_rows(sql, [clinic.pk, *ids])}
    # The chart link, reversed once: its two halves around the id.
    before, after = reverse("patients:chart", kwargs={"patient_id": _URL_SENTINEL}).split(
        str(_URL_SENTINEL)
    )
    rows = []
    for i in ids:
        if i not in by_id:
            continue
        pk, clinic_id, mrn, family, given, preferred, raw_born, status = by_id[i]
        born = born_on(raw_born)
        rows.append(
            PatientRow(
                pk=pk,
                clinic_id=clinic_id,
                mrn=mrn,
                family_name=family,
                given_name=given,
                preferred_name=preferred,
                date_of_birth=born,
                status=status,
                status_label=str(_STATUS_LABELS.get(status, status)),
                href=f"{before}{pk}{after}",
                born=born.strftime("%Y-%m-%d") if born else "",
            )
        )
    return rows


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
    patient: Patient, latest: MeasurementRow | None, latest_height_cm: Decimal | None
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


@dataclass(frozen=True)
class MeasurementRow:
    """A measurement as the chart shows it (the fields _measurement_table.html reads)."""

    measured_at: datetime
    weight_kg: Decimal
    height_cm: Decimal | None
    recorded_by: User | None  # unsaved: only the name fields, for display_name


@dataclass
class Chart:
    patient: Patient
    body: BodySize
    measurements: list[MeasurementRow]
    measurement_count: int
    history: list[dict[str, Any]]
    recent_viewers: list[ChartViewer]


RECENT_MEASUREMENTS = 10
RECENT_HISTORY = 10
RECENT_VIEWERS = 15


def chart(clinic: Clinic, patient_id: int, *, clinical: bool) -> Chart:
    """The chart's reads: four queries (three without `clinical`)."""
    patient = get_patient(clinic, patient_id)
    measurements: list[MeasurementRow] = []
    count, latest_height_cm = 0, None
    if clinical:
        measurements, count, latest_height_cm = recent_measurements(
            patient.pk, RECENT_MEASUREMENTS
        )
    latest = measurements[0] if measurements else None
    return Chart(
        patient=patient,
        body=body_size(patient, latest, latest_height_cm),
        measurements=measurements,
        measurement_count=count,
        history=edit_history(patient, RECENT_HISTORY),
        recent_viewers=chart_viewers(clinic, patient.pk, RECENT_VIEWERS),
    )


# What a staff name needs (User.display_name): not the password hash and the rest of the row.
# The raw SQL below selects these columns as u.first_name, ... in this order.
USER_NAME_FIELDS = ("first_name", "last_name", "username", "credentials")


def _staff(actor_id: int | None, names: Any) -> User | None:
    """An unsaved User holding only the name fields, for its display_name."""
    if actor_id is None:
        return None
    return User(**dict(zip(USER_NAME_FIELDS, names, strict=True)))


def _converter(model: Any, name: str) -> Any:
    """What the ORM does to a column's raw value on this database (SQLite hands back text
    datetimes and float decimals; PostgreSQL aware datetimes and Decimals)."""
    column = model._meta.get_field(name).get_col(model._meta.db_table)
    steps = [*connection.ops.get_db_converters(column), *column.get_db_converters(connection)]

    def convert(value: Any) -> Any:
        for step in steps:
            value = step(value, column, connection)
        return value

    return convert


def _raw_rows(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    """Plain SQL for the chart's busiest reads: an ORM query cost 0.5-1 ms of CPU to compile
    and turn into objects, ten times the raw query. The SQL is written for both SQLite and
    PostgreSQL (window functions, LIMIT, no vendor functions)."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


_MEASUREMENTS_SQL = """
SELECT m.measured_at, m.weight_kg, m.height_cm, m.recorded_by_id,
       u.first_name, u.last_name, u.username, u.credentials,
       COUNT(*) OVER (),
       (SELECT h.height_cm FROM patients_bodymeasurement h
        WHERE h.patient_id = m.patient_id AND h.height_cm IS NOT NULL
        ORDER BY h.measured_at DESC, h.id DESC LIMIT 1)
FROM patients_bodymeasurement m LEFT OUTER JOIN accounts_user u ON u.id = m.recorded_by_id
WHERE m.patient_id = %s
ORDER BY m.measured_at DESC, m.id DESC
LIMIT %s"""


def recent_measurements(
    patient_id: int, limit: int
) -> tuple[list[MeasurementRow], int, Decimal | None]:
    """The latest `limit` measurements in one query, with the patient's total count and
    latest recorded height (which may be older than the rows shown: height is not measured
    at every visit)."""
    rows = _raw_rows(_MEASUREMENTS_SQL, [patient_id, limit])
    if not rows:
        return [], 0, None
    at = _converter(BodyMeasurement, "measured_at")
    weight = _converter(BodyMeasurement, "weight_kg")
    height = _converter(BodyMeasurement, "height_cm")
    measurements = [
        MeasurementRow(
            measured_at=at(measured_at),
            weight_kg=weight(weight_kg),
            height_cm=height(height_cm),
            recorded_by=_staff(recorded_by_id, names[:-2]),
        )
        for measured_at, weight_kg, height_cm, recorded_by_id, *names in rows
    ]
    total, latest_height = rows[0][-2], rows[0][-1]
    return measurements, total, height(latest_height)


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


@functools.cache
def _history_sql(vendor: str, limited: bool) -> str:
    """The edit-history read: the compared columns (named by the model, so nothing here comes
    from input), then when, kind and who. Built once per process and database vendor."""
    quote = connection.ops.quote_name
    columns = ", ".join(f"h.{quote(f.column)}" for f in _history_fields())
    return (
        f"SELECT {columns}, h.history_date, h.history_type, h.history_user_id,"  # noqa: S608
        " u.first_name, u.last_name, u.username, u.credentials"
        f" FROM {quote(Patient.history.model._meta.db_table)} h"  # type: ignore[attr-defined]
        " LEFT OUTER JOIN accounts_user u ON u.id = h.history_user_id"
        " WHERE h.history_relation_id = %s"
        " ORDER BY h.history_date DESC, h.history_id DESC" + (" LIMIT %s" if limited else "")
    )


def edit_history(patient: Patient, limit: int | None) -> list[dict[str, Any]]:
    """Each saved version with who, when and which fields changed (old and new values)."""
    fields = _history_fields()
    history_model = Patient.history.model  # type: ignore[attr-defined]
    params: list[Any] = [patient.pk]
    if limit is not None:
        params.append(limit + 1)
    rows = _raw_rows(_history_sql(connection.vendor, limit is not None), params)
    convert = [_converter(history_model, f.name) for f in fields]
    convert_when = _converter(history_model, "history_date")
    width = len(fields)
    versions = [
        (
            [c(v) for c, v in zip(convert, row[:width], strict=True)],
            convert_when(row[width]),
            row[width + 1],
            _staff(row[width + 2], row[width + 3 :]),
        )
        for row in rows
    ]
    history = []
    shown = versions[:limit] if limit is not None else versions
    for index, (values, when, kind, who) in enumerate(shown):
        older = versions[index + 1][0] if index + 1 < len(versions) else None
        changes = []
        if older is not None:
            for f, old, new in zip(fields, older, values, strict=True):
                if old != new:
                    changes.append({"field": f.verbose_name, "old": old, "new": new})
        history.append(
            {
                "when": when,
                "who": who,
                "kind": {"+": "Registered", "~": "Changed", "-": "Removed"}[kind],
                "changes": changes,
                "is_first": older is None and kind == "+",
            }
        )
    _name_staff_in_changes(history, fields)
    return history


def _name_staff_in_changes(history: list[dict[str, Any]], fields: list[Any]) -> None:
    """A changed staff field (the responsible prescriber) shows the person, not their id: one
    query, and only when such a change is on the page."""
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


_VIEWERS_SQL = """
SELECT a.at, a.actor_id, u.first_name, u.last_name, u.username, u.credentials
FROM audit_auditentry a LEFT OUTER JOIN accounts_user u ON u.id = a.actor_id
WHERE a.clinic_id = %s AND a.patient_id = %s AND a.action = %s
ORDER BY a.at DESC
LIMIT %s"""


def chart_viewers(clinic: Clinic, patient_id: int, limit: int) -> list[ChartViewer]:
    """The latest `limit` chart views, as plain values with the time and name formatted here:
    on a busy chart this table has 15 rows, and as model rows with the template's date filter
    it cost about 0.8 ms of CPU a view (more than the query)."""
    rows = _raw_rows(_VIEWERS_SQL, [clinic.pk, patient_id, str(AuditAction.READ), limit])
    convert = _converter(AuditEntry, "at")
    viewers = []
    for raw_at, actor_id, *names in rows:
        at = convert(raw_at)
        staff = _staff(actor_id, names)
        viewers.append(
            ChartViewer(
                at=at,
                when=timezone.localtime(at).strftime("%Y-%m-%d %H:%M"),
                who=staff.display_name if staff is not None else "system",
            )
        )
    return viewers
