"""Eligibility assessments, treatment courses that follow a protocol, appointments laid out
from the protocol's plan, chairs, bookings that the database refuses to double up, and
reminders sent exactly once by the worker."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models


class Drug(models.TextChoices):
    KETAMINE = "ketamine", "Ketamine (racemic)"
    ESKETAMINE = "esketamine", "Esketamine (Spravato)"


class AssessmentDecision(models.TextChoices):
    ELIGIBLE = "eligible", "Eligible"
    ELIGIBLE_WITH_CAUTIONS = "eligible_with_cautions", "Eligible with cautions"
    NOT_ELIGIBLE = "not_eligible", "Not eligible"


class EligibilityAssessment(models.Model):
    """Screening before a course. Signed by a prescriber; never edited after signing."""

    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="eligibility_assessments"
    )
    drug = models.CharField(max_length=20, choices=Drug.choices)
    findings = models.JSONField(help_text="ketaclinic.clinical.eligibility.Findings as data")
    systolic_bp = models.PositiveSmallIntegerField(null=True, blank=True)
    diastolic_bp = models.PositiveSmallIntegerField(null=True, blank=True)
    heart_rate = models.PositiveSmallIntegerField(null=True, blank=True)
    spo2 = models.PositiveSmallIntegerField(null=True, blank=True)
    depression_scale = models.ForeignKey(
        "measures.ScaleResponse", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    cssrs = models.ForeignKey(
        "measures.ScaleResponse", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decision = models.CharField(max_length=30, choices=AssessmentDecision.choices)
    findings_fired = models.JSONField(default=list)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    signed_at = models.DateTimeField(null=True, blank=True)

    @property
    def is_signed(self) -> bool:
        return self.signed_at is not None


class Indication(models.TextChoices):
    TRD = "trd", "Treatment-resistant depression"
    MDSI = "mdsi", "Depression with suicidal ideation or behaviour"
    BIPOLAR_DEPRESSION = "bipolar_depression", "Bipolar depression"
    ANXIETY = "anxiety", "Anxiety"
    PTSD = "ptsd", "PTSD"
    OCD = "ocd", "OCD"
    CHRONIC_PAIN = "chronic_pain", "Chronic pain (incl. fibromyalgia, CRPS)"
    OTHER = "other", "Other"


class Route(models.TextChoices):
    IV = "iv", "Intravenous infusion"
    IM = "im", "Intramuscular"
    NASAL = "nasal", "Esketamine nasal spray"
    ORAL = "oral", "Oral or sublingual"


class CourseStatus(models.TextChoices):
    ACTIVE = "active", "Active"
    REVIEW = "review", "Induction done: decision needed"
    MAINTENANCE = "maintenance", "Maintenance"
    PAUSED = "paused", "Paused"
    STOPPED = "stopped", "Stopped"


class WeightBasis(models.TextChoices):
    ACTUAL = "actual", "Actual body weight"
    IDEAL = "ideal", "Ideal body weight"
    ADJUSTED = "adjusted", "Adjusted body weight"


class TreatmentCourse(models.Model):
    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="+")
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="courses"
    )
    assessment = models.ForeignKey(
        EligibilityAssessment, on_delete=models.PROTECT, related_name="courses"
    )
    indication = models.CharField(max_length=30, choices=Indication.choices)
    drug = models.CharField(max_length=20, choices=Drug.choices)
    route = models.CharField(max_length=10, choices=Route.choices)
    protocol = models.CharField(max_length=30)
    protocol_options = models.JSONField(default=dict, blank=True)
    responsible_prescriber = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    start_date = models.DateField()
    # Dose plan. Weight-based doses keep the basis and the weight used; a change of basis is an
    # explicit, audited amendment, never a silent switch.
    mg_per_kg = models.DecimalField(max_digits=5, decimal_places=3, null=True, blank=True)
    dose_mg = models.DecimalField(max_digits=7, decimal_places=1, null=True, blank=True)
    weight_basis = models.CharField(max_length=10, choices=WeightBasis.choices, blank=True)
    dosing_weight_kg = models.DecimalField(max_digits=5, decimal_places=1, null=True, blank=True)
    infusion_minutes = models.PositiveSmallIntegerField(null=True, blank=True)
    dose_reason = models.TextField(blank=True, help_text="Prescriber's reason above 0.5 mg/kg.")
    measurement_plan = models.JSONField(
        default=list,
        blank=True,
        help_text=(
            'e.g. [{"scale": "phq9", "when": "before_every_session"}, {"scale": "gad7", '
            '"when": "weekly"}, {"scale": "cadss6", "when": "at_40_minutes"}]'
        ),
    )
    caution_override_reason = models.TextField(blank=True)
    status = models.CharField(
        max_length=20, choices=CourseStatus.choices, default=CourseStatus.ACTIVE
    )
    # A pause remembers the status it interrupted, so resuming returns to it.
    paused_on = models.DateField(null=True, blank=True)
    status_before_pause = models.CharField(max_length=20, blank=True)
    # Insurance
    payer = models.CharField(max_length=120, blank=True)
    member_id = models.CharField(max_length=60, blank=True)
    prior_authorization_number = models.CharField(max_length=60, blank=True)
    authorized_sessions = models.PositiveSmallIntegerField(null=True, blank=True)
    authorization_expires = models.DateField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def typed_protocol_options(self) -> dict[str, Any]:
        """The protocol options as ketaclinic.clinical.protocols takes them. They are stored as
        text (JSON has no Decimal): doses back to Decimal, counts and intervals to int."""
        return {
            key: Decimal(value) if key in ("mg_per_kg", "dose_mg") else int(value)
            for key, value in (self.protocol_options or {}).items()
        }


class Chair(models.Model):
    """A treatment chair (or room). `capacity` patients may use it at the same time."""

    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="+")
    name = models.CharField(max_length=60)
    room = models.CharField(max_length=60, blank=True)
    capacity = models.PositiveSmallIntegerField(default=1)
    is_active = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["clinic", "name"], name="chair_name_per_clinic")
        ]

    def __str__(self) -> str:
        return self.name


class AppointmentStatus(models.TextChoices):
    PLANNED = "planned", "Planned"
    BOOKED = "booked", "Booked"
    CHECKED_IN = "checked_in", "Checked in"
    IN_SESSION = "in_session", "In session"
    COMPLETED = "completed", "Completed"
    CANCELLED = "cancelled", "Cancelled"
    NO_SHOW = "no_show", "No-show"


class AppointmentKind(models.TextChoices):
    DOSING = "dosing", "Dosing session"
    INTEGRATION = "integration", "Integration (psychotherapy)"


class Appointment(models.Model):
    """One planned session of a course, with its own status and its protocol window."""

    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="+")
    course = models.ForeignKey(
        TreatmentCourse, on_delete=models.PROTECT, related_name="appointments"
    )
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="appointments"
    )
    kind = models.CharField(
        max_length=12, choices=AppointmentKind.choices, default=AppointmentKind.DOSING
    )
    number = models.PositiveSmallIntegerField(null=True, blank=True)
    phase = models.CharField(max_length=20, blank=True)
    earliest = models.DateField()
    target = models.DateField()
    latest = models.DateField()
    dose_mg = models.DecimalField(max_digits=7, decimal_places=1, null=True, blank=True)
    mg_per_kg = models.DecimalField(max_digits=5, decimal_places=3, null=True, blank=True)
    starts_at = models.DateTimeField(null=True, blank=True)
    duration_minutes = models.PositiveSmallIntegerField(default=120)
    chair = models.ForeignKey(
        Chair, null=True, blank=True, on_delete=models.PROTECT, related_name="appointments"
    )
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    status = models.CharField(
        max_length=12, choices=AppointmentStatus.choices, default=AppointmentStatus.PLANNED
    )
    move_reason = models.TextField(blank=True)
    version = models.PositiveIntegerField(default=1)

    class Meta:
        indexes = [
            models.Index(fields=["clinic", "starts_at"], name="appointment_calendar"),
            models.Index(fields=["course", "number"], name="appointment_by_course"),
        ]


class ChairSlot(models.Model):
    """One 15-minute slot of one seat of a chair, held by a booking.

    The unique constraint is what refuses a double booking, on SQLite and PostgreSQL alike:
    two bookings that overlap need the same (chair, seat, slot) row.
    """

    chair = models.ForeignKey(Chair, on_delete=models.PROTECT, related_name="+")
    seat = models.PositiveSmallIntegerField(default=0)
    starts_at = models.DateTimeField()
    appointment = models.ForeignKey(Appointment, on_delete=models.CASCADE, related_name="slots")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["chair", "seat", "starts_at"], name="one_booking_per_chair_slot"
            )
        ]


class Reminder(models.Model):
    """A reminder to the patient before a visit, sent once by the worker."""

    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="+")
    appointment = models.ForeignKey(Appointment, on_delete=models.CASCADE, related_name="reminders")
    send_at = models.DateTimeField()
    channel = models.CharField(max_length=10, choices=[("email", "Email"), ("sms", "SMS")])
    status = models.CharField(
        max_length=10,
        default="pending",
        choices=[("pending", "Pending"), ("sent", "Sent"), ("skipped", "Skipped")],
    )
    sent_at = models.DateTimeField(null=True, blank=True)
    scales = models.JSONField(default=list, blank=True)

    class Meta:
        indexes = [models.Index(fields=["status", "send_at"], name="reminder_due")]
        constraints = [
            models.UniqueConstraint(fields=["appointment", "send_at"], name="one_reminder_per_time")
        ]


class OutboundMessage(models.Model):
    """The outbox: every message the worker sent, written in the same transaction that marks
    its reminder sent, so a reminder is recorded once even if the worker restarts."""

    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="+")
    reminder = models.OneToOneField(
        Reminder, null=True, blank=True, on_delete=models.PROTECT, related_name="message"
    )
    patient = models.ForeignKey("patients.Patient", on_delete=models.PROTECT, related_name="+")
    channel = models.CharField(max_length=10)
    to = models.CharField(max_length=200, help_text="masked")
    subject = models.CharField(max_length=200, blank=True)
    body = models.TextField(help_text="without one-time links")
    created_at = models.DateTimeField(auto_now_add=True)
