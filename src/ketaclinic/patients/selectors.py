"""Reads shared by the patient pages and APIs. Each runs a fixed number of queries."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404

from ketaclinic.accounts.models import Clinic
from ketaclinic.audit.models import AuditAction, AuditEntry
from ketaclinic.clinical import dosing
from ketaclinic.patients.models import BodyMeasurement, Patient
from ketaclinic.patients.search import parse_query, prefix_upper_bound

PAGE_SIZE = 25
LIST_ORDER = ("family_name_key", "given_name_key", "id")


def get_patient(clinic: Clinic, patient_id: int) -> Patient:
    """The patient, only if they belong to `clinic`: another clinic's id is a 404."""
    return get_object_or_404(Patient, pk=patient_id, clinic=clinic)


def patient_page(clinic: Clinic, page_number: Any) -> Page:
    patients = Patient.objects.filter(clinic=clinic).order_by(*LIST_ORDER)
    return Paginator(patients, PAGE_SIZE).get_page(page_number)


def search_queryset(clinic: Clinic, raw_query: str) -> QuerySet[Patient]:
    query = parse_query(raw_query)
    patients = Patient.objects.filter(clinic=clinic)
    if query.date_of_birth:
        return patients.filter(date_of_birth=query.date_of_birth).order_by(*LIST_ORDER)
    if query.mrn:
        return patients.filter(mrn__istartswith=query.mrn).order_by("mrn")
    if not query.name_tokens:
        return patients.none()
    # Every token must start the given or family name: "ann smi" finds Ann Smith and Smith Ann.
    for token in query.name_tokens:
        bound = prefix_upper_bound(token)
        family = Q(family_name_key__gte=token)
        given = Q(given_name_key__gte=token)
        if bound is not None:
            family &= Q(family_name_key__lt=bound)
            given &= Q(given_name_key__lt=bound)
        patients = patients.filter(family | given)
    return patients.order_by(*LIST_ORDER)


def search_page(clinic: Clinic, raw_query: str, page_number: Any) -> Page:
    return Paginator(search_queryset(clinic, raw_query), PAGE_SIZE).get_page(page_number)


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
    recent_viewers: list[AuditEntry]


RECENT_MEASUREMENTS = 10
RECENT_HISTORY = 10
RECENT_VIEWERS = 15


def chart(clinic: Clinic, patient_id: int, *, clinical: bool) -> Chart:
    patient = get_patient(clinic, patient_id)
    measurements: list[BodyMeasurement] = []
    count = 0
    latest_height = None
    if clinical:
        measurements = list(
            BodyMeasurement.objects.filter(patient=patient)
            .select_related("recorded_by")
            .order_by("-measured_at", "-id")[:RECENT_MEASUREMENTS]
        )
        count = BodyMeasurement.objects.filter(patient=patient).count()
        latest_height = (
            BodyMeasurement.objects.filter(patient=patient, height_cm__isnull=False)
            .order_by("-measured_at", "-id")
            .values_list("height_cm", flat=True)
            .first()
        )
    latest = measurements[0] if measurements else None
    return Chart(
        patient=patient,
        body=body_size(patient, latest, latest_height),
        measurements=measurements,
        measurement_count=count,
        history=edit_history(patient, RECENT_HISTORY),
        recent_viewers=chart_viewers(clinic, patient.pk, RECENT_VIEWERS),
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


def edit_history(patient: Patient, limit: int | None) -> list[dict[str, Any]]:
    """Each saved version with who, when and which fields changed (old and new values)."""
    records = patient.history_records.select_related("history_user").order_by(
        "-history_date", "-history_id"
    )
    if limit is not None:
        records = records[: limit + 1]
    rows = list(records)
    fields = [
        f
        for f in Patient.history.model._meta.fields  # type: ignore[attr-defined]
        if f.attname not in HISTORY_FIELDS_HIDDEN and f.name not in HISTORY_FIELDS_HIDDEN
    ]
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
    return history


def chart_viewers(clinic: Clinic, patient_id: int, limit: int) -> list[AuditEntry]:
    return list(
        AuditEntry.objects.filter(clinic=clinic, patient_id=patient_id, action=AuditAction.READ)
        .select_related("actor")
        .order_by("-at")[:limit]
    )
