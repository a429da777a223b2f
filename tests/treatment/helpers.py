"""Build treatment data through the same services the pages use."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.utils import timezone

from ketaclinic.accounts.models import User
from ketaclinic.audit.context import Actor
from ketaclinic.measures.services import record_response
from ketaclinic.patients.models import Patient
from ketaclinic.treatment import services
from ketaclinic.treatment.models import Chair, EligibilityAssessment, TreatmentCourse

# Findings of a patient with nothing against treatment.
CLEAN_FINDINGS: dict[str, Any] = {
    "pregnant": False,
    "breastfeeding": False,
    "uncontrolled_hypertension": False,
    "hypertensive_encephalopathy_history": False,
    "aneurysmal_vascular_disease_or_avm": False,
    "intracerebral_haemorrhage_history": False,
    "raised_intracranial_pressure": False,
    "psychosis_history": False,
    "psychosis_current": False,
    "bipolar_or_mania": False,
    "substance_use_disorder": "none",
    "seizure_disorder": False,
    "hepatic_impairment": "none",
    "hypersensitivity_to_ketamine_or_esketamine": False,
    "medicines": [],
    "failed_antidepressant_trials": 2,
    "indication": "trd",
}
CALM_VITALS = {"systolic_bp": 122, "diastolic_bp": 78, "heart_rate": 72, "spo2": 98}


def assessment(
    patient: Patient,
    prescriber: User,
    *,
    drug: str = "esketamine",
    sign: bool = True,
    **findings: Any,
) -> EligibilityAssessment:
    actor = Actor.system(patient.clinic, user=prescriber, label="test")
    phq9 = record_response(actor, patient, "phq9", [2, 2, 2, 2, 1, 1, 1, 1, 0])
    cssrs = record_response(actor, patient, "cssrs_screen", [False, False])
    made = services.record_assessment(
        actor,
        patient,
        drug=drug,
        findings={**CLEAN_FINDINGS, **findings},
        vitals=dict(CALM_VITALS),
        depression_scale=phq9,
        cssrs=cssrs,
    )
    return services.sign_assessment(actor, made) if sign else made


def esketamine_course(
    patient: Patient, prescriber: User, start: date | None = None, **kwargs: Any
) -> TreatmentCourse:
    """A signed esketamine TRD course (weeks 1-8: 12 sessions) for a REMS-enrolled patient."""
    if not patient.rems_patient_id:
        patient.rems_patient_id = "REMS-0001"
        patient.rems_enrolled_on = timezone.localdate() - timedelta(days=3)
        patient.save(update_fields=["rems_patient_id", "rems_enrolled_on"])
    signed = assessment(patient, prescriber)
    return services.start_course(
        Actor.system(patient.clinic, user=prescriber, label="test"),
        patient,
        signed,
        protocol="esketamine_trd",
        start_date=start or timezone.localdate() + timedelta(days=1),
        indication="trd",
        responsible_prescriber=prescriber,
        dose_mg=kwargs.pop("dose_mg", 56),
        **kwargs,
    )


def chair(clinic: Any, name: str = "Chair 1") -> Chair:
    return Chair.objects.get_or_create(clinic=clinic, name=name)[0]


def at(clinic: Any, day: date, hour: int = 9, minute: int = 0) -> datetime:
    """An aware datetime at a wall-clock time in the clinic's zone."""
    return datetime.combine(day, time(hour, minute), tzinfo=ZoneInfo(clinic.time_zone))
