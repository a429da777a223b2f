from __future__ import annotations

from datetime import date

from django.conf import settings
from django.db import models
from simple_history.models import HistoricalRecords

from ketaclinic.patients.search import name_key


class SexAtBirth(models.TextChoices):
    FEMALE = "female", "Female"
    MALE = "male", "Male"
    INTERSEX = "intersex", "Intersex"
    NOT_RECORDED = "not_recorded", "Not recorded"


class PatientStatus(models.TextChoices):
    REFERRED = "referred", "Referred"
    SCREENING = "screening", "Screening"
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    DISCHARGED = "discharged", "Discharged"


class Patient(models.Model):
    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="+")
    mrn = models.CharField("MRN", max_length=20)
    given_name = models.CharField(max_length=100)
    family_name = models.CharField(max_length=100)
    preferred_name = models.CharField(max_length=100, blank=True)
    # Folded copies of the names for indexed prefix search (see patients/search.py).
    given_name_key = models.CharField(max_length=100, editable=False)
    family_name_key = models.CharField(max_length=100, editable=False)
    date_of_birth = models.DateField()
    sex_at_birth = models.CharField(max_length=20, choices=SexAtBirth.choices)
    gender_identity = models.CharField(max_length=60, blank=True)
    phone = models.CharField(max_length=40, blank=True)
    email = models.EmailField(blank=True)
    address_line1 = models.CharField("Address", max_length=200, blank=True)
    address_line2 = models.CharField("Address line 2", max_length=200, blank=True)
    city = models.CharField(max_length=100, blank=True)
    state = models.CharField(max_length=40, blank=True)
    postal_code = models.CharField(max_length=20, blank=True)
    emergency_contact_name = models.CharField(max_length=200, blank=True)
    emergency_contact_phone = models.CharField(max_length=40, blank=True)
    emergency_contact_relationship = models.CharField(max_length=60, blank=True)
    referring_clinician = models.CharField(max_length=200, blank=True)
    referring_clinician_contact = models.CharField(max_length=200, blank=True)
    responsible_prescriber = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
        related_name="+", help_text="Receives this patient's alerts.",
    )
    rems_patient_id = models.CharField("Spravato REMS patient id", max_length=40, blank=True)
    rems_enrolled_on = models.DateField("REMS enrolment date", null=True, blank=True)
    diagnosis_codes = models.JSONField("Diagnosis codes (ICD-10-CM)", default=list, blank=True)
    status = models.CharField(
        max_length=20, choices=PatientStatus.choices, default=PatientStatus.REFERRED
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords(
        excluded_fields=["given_name_key", "family_name_key", "updated_at"],
        related_name="history_records",
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["clinic", "mrn"], name="mrn_unique_per_clinic"),
        ]
        indexes = [
            models.Index(
                fields=["clinic", "family_name_key", "given_name_key", "id"],
                name="patient_family_key",
            ),
            # Both keys and the id, like patient_family_key: name search reads only the index.
            models.Index(
                fields=["clinic", "given_name_key", "family_name_key", "id"],
                name="patient_given_key",
            ),
            models.Index(fields=["clinic", "date_of_birth"], name="patient_dob"),
        ]

    def __str__(self) -> str:
        return f"{self.family_name}, {self.given_name} ({self.mrn})"

    def save(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.given_name_key = name_key(self.given_name)
        self.family_name_key = name_key(self.family_name)
        super().save(*args, **kwargs)

    @property
    def full_name(self) -> str:
        return f"{self.given_name} {self.family_name}"

    def age_on(self, today: date) -> int:
        dob = self.date_of_birth
        return today.year - dob.year - ((today.month, today.day) < (dob.month, dob.day))


class BodyMeasurement(models.Model):
    """Weight (and height when measured) at a point in time. Never edited: record a new one."""

    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="measurements")
    measured_at = models.DateTimeField()
    weight_kg = models.DecimalField(max_digits=5, decimal_places=1)
    height_cm = models.DecimalField(max_digits=4, decimal_places=1, null=True, blank=True)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["patient", "-measured_at", "-id"], name="measurement_latest"),
        ]
