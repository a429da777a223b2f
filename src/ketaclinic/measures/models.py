from __future__ import annotations

from django.conf import settings
from django.db import models


class ResponseSource(models.TextChoices):
    STAFF = "staff", "Recorded by staff"
    SELF_REPORT = "self_report", "Patient self-report"


class ScaleResponse(models.Model):
    """One completed rating scale, scored when stored (ketaclinic.clinical.instruments)."""

    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="scale_responses"
    )
    instrument_code = models.CharField(max_length=30)
    instrument_version = models.CharField(max_length=200)  # some versions run past 60
    administered_at = models.DateTimeField()
    source = models.CharField(max_length=20, choices=ResponseSource.choices)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Ties the response to a visit once appointments exist (treatment courses).
    visit_id = models.BigIntegerField(null=True, blank=True)
    self_report_request = models.ForeignKey(
        "SelfReportRequest",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="responses",
    )
    # The score as computed at storage time; never recomputed in place.
    total = models.DecimalField(max_digits=6, decimal_places=2, null=True, blank=True)
    band = models.CharField(max_length=30, blank=True)
    flags = models.JSONField(default=list, blank=True)
    subscales = models.JSONField(default=dict, blank=True)
    convention = models.JSONField(default=dict, blank=True)
    complete = models.BooleanField(default=False)
    prorated = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["patient", "instrument_code", "administered_at"],
                name="scale_response_trend",
            ),
            models.Index(fields=["clinic", "-administered_at"], name="scale_response_recent"),
        ]

    @property
    def total_display(self) -> str:
        if self.total is None:
            return "—"
        # to_integral, not normalize: Decimal("20.00").normalize() prints as "2E+1".
        return (
            str(self.total.to_integral())
            if self.total == self.total.to_integral()
            else (f"{self.total:.1f}")
        )


class ScaleAnswer(models.Model):
    """One item's answer, as given (None = missing or not asked)."""

    response = models.ForeignKey(ScaleResponse, on_delete=models.PROTECT, related_name="answers")
    item_id = models.CharField(max_length=20)
    position = models.PositiveSmallIntegerField()
    value = models.JSONField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["response", "item_id"], name="one_answer_per_item")
        ]


class RequestStatus(models.TextChoices):
    PENDING = "pending", "Waiting for the patient"
    COMPLETED = "completed", "Completed"
    LOCKED = "locked", "Locked after wrong birth dates"
    CANCELLED = "cancelled", "Cancelled"


class SelfReportRequest(models.Model):
    """A link sent to a patient to fill in scales on their phone. Only the token's SHA-256 is
    stored; the link works once and expires."""

    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="self_report_requests"
    )
    instrument_codes = models.JSONField()
    token_hash = models.CharField(max_length=64, unique=True)
    channel = models.CharField(max_length=10, choices=[("email", "Email"), ("sms", "SMS")])
    sent_to = models.CharField(max_length=200, help_text="Masked address, for the record.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    status = models.CharField(
        max_length=12, choices=RequestStatus.choices, default=RequestStatus.PENDING
    )
    completed_at = models.DateTimeField(null=True, blank=True)
    failed_birth_date_checks = models.PositiveSmallIntegerField(default=0)
    visit_id = models.BigIntegerField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["patient", "-created_at"], name="self_report_by_patient")]


class AlertSeverity(models.TextChoices):
    HIGH = "high", "High"
    MODERATE = "moderate", "Moderate"


class Alert(models.Model):
    """Raised by a scale response; open until a clinician acknowledges it with a note."""

    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="alerts")
    response = models.ForeignKey(ScaleResponse, on_delete=models.PROTECT, related_name="alerts")
    severity = models.CharField(max_length=10, choices=AlertSeverity.choices)
    reasons = models.JSONField(help_text="Codes and sentences saying why the alert opened.")
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    opened_at = models.DateTimeField()
    escalated_at = models.DateTimeField(null=True, blank=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    acknowledgement_note = models.TextField(blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["clinic", "acknowledged_at", "-opened_at"], name="alert_queue"),
            models.Index(fields=["patient", "acknowledged_at"], name="alert_by_patient"),
        ]

    @property
    def is_open(self) -> bool:
        return self.acknowledged_at is None


class InstrumentWording(models.Model):
    """Item wording a clinic holds the rights to, loaded from a FHIR Questionnaire
    (`ketaclinic instruments load`). Pages show it instead of the item topics."""

    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.CASCADE, related_name="+")
    instrument_code = models.CharField(max_length=30)
    wording = models.JSONField(help_text="item id -> text")
    source_name = models.CharField(max_length=200, blank=True)
    loaded_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["clinic", "instrument_code"], name="one_wording_per_instrument"
            )
        ]
