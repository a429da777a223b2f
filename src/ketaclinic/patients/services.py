"""Writes to the patient registry: each in one transaction with its audit entry."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from ketaclinic.accounts.models import Clinic
from ketaclinic.audit import services as audit
from ketaclinic.audit.context import Actor
from ketaclinic.audit.models import AuditAction
from ketaclinic.clinical import identifiers
from ketaclinic.patients.models import BodyMeasurement, Patient

# Fields a registration form may set; anything else is ignored rather than trusted.
PATIENT_FIELDS = (
    "given_name",
    "family_name",
    "preferred_name",
    "date_of_birth",
    "sex_at_birth",
    "gender_identity",
    "phone",
    "email",
    "address_line1",
    "address_line2",
    "city",
    "state",
    "postal_code",
    "emergency_contact_name",
    "emergency_contact_phone",
    "emergency_contact_relationship",
    "referring_clinician",
    "referring_clinician_contact",
    "diagnosis_codes",
    "status",
    "rems_patient_id",
    "rems_enrolled_on",
)


def _next_free_mrn(clinic: Clinic) -> str:
    """Take the clinic's next MRN under a row lock, skipping any entered by hand."""
    locked = Clinic.objects.select_for_update().get(pk=clinic.pk)
    while True:
        mrn = identifiers.medical_record_number(locked.next_mrn_sequence)
        locked.next_mrn_sequence += 1
        if not Patient.objects.filter(clinic=clinic, mrn=mrn).exists():
            break
    locked.save(update_fields=["next_mrn_sequence"])
    return mrn


def register_patient(actor: Actor, data: dict[str, Any], mrn: str = "") -> Patient:
    try:
        with transaction.atomic():
            if mrn:
                if Patient.objects.filter(clinic=actor.clinic, mrn=mrn).exists():
                    raise ValidationError({"mrn": f"MRN {mrn} is already in use in this clinic."})
            else:
                mrn = _next_free_mrn(actor.clinic)
            patient = Patient(
                clinic=actor.clinic,
                mrn=mrn,
                **{k: v for k, v in data.items() if k in PATIENT_FIELDS},
            )
            patient._history_user = actor.user  # type: ignore[attr-defined]
            patient.save()
            audit.record(actor, AuditAction.CREATE, "patient", patient.pk, patient_id=patient.pk)
    except IntegrityError:
        # Two registrations raced for the same hand-entered MRN; the constraint caught it.
        raise ValidationError({"mrn": f"MRN {mrn} is already in use in this clinic."}) from None
    return patient


def update_patient(actor: Actor, patient: Patient, data: dict[str, Any]) -> list[str]:
    """Apply changed demographics; returns the names of the fields that changed."""
    if patient.clinic_id != actor.clinic.pk:
        raise PermissionError("Patient belongs to another clinic.")
    changed = [k for k, v in data.items() if k in PATIENT_FIELDS and getattr(patient, k) != v]
    if not changed:
        return []
    with transaction.atomic():
        for name in changed:
            setattr(patient, name, data[name])
        patient._history_user = actor.user  # type: ignore[attr-defined]
        patient.save()
        audit.record(
            actor,
            AuditAction.UPDATE,
            "patient",
            patient.pk,
            patient_id=patient.pk,
            detail={"fields": changed},
        )
    return changed


def record_measurement(
    actor: Actor,
    patient: Patient,
    *,
    weight_kg: Decimal,
    height_cm: Decimal | None,
    measured_at: datetime,
) -> BodyMeasurement:
    if patient.clinic_id != actor.clinic.pk:
        raise PermissionError("Patient belongs to another clinic.")
    with transaction.atomic():
        measurement = BodyMeasurement.objects.create(
            clinic=actor.clinic,
            patient=patient,
            measured_at=measured_at,
            weight_kg=weight_kg,
            height_cm=height_cm,
            recorded_by=actor.user,
        )
        audit.record(
            actor, AuditAction.CREATE, "body_measurement", measurement.pk, patient_id=patient.pk
        )
    return measurement
