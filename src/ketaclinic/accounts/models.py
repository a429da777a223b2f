from __future__ import annotations

from datetime import date
from decimal import Decimal
from zoneinfo import ZoneInfo, available_timezones

from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from ketaclinic.accounts.roles import ROLES_REQUIRING_TWO_FACTOR, Role
from ketaclinic.clinical import identifiers


def validate_time_zone(value: str) -> None:
    if value not in available_timezones():
        raise ValidationError(f"{value!r} is not a time zone name; use one like America/New_York.")


def validate_dea_number(value: str) -> None:
    try:
        identifiers.dea_number(value)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


DEFAULT_CRISIS_TEXT = (
    "If you are thinking about suicide, or are worried you might act on these thoughts, "
    "call or text 988 (the Suicide & Crisis Lifeline, US) now, or call 911 or go to the "
    "nearest emergency department. You can also call the clinic."
)


class Clinic(models.Model):
    """A clinic: the tenant. Every clinical row carries its clinic."""

    name = models.CharField(max_length=200)
    time_zone = models.CharField(
        max_length=64, default="America/New_York", validators=[validate_time_zone]
    )
    address = models.TextField(blank=True)
    phone = models.CharField(max_length=40, blank=True)
    dea_registration_number = models.CharField(
        max_length=9,
        blank=True,
        validators=[validate_dea_number],
        help_text="The DEA registration of this location (21 CFR 1301.12).",
    )
    rems_setting_id = models.CharField(
        "Spravato REMS healthcare-setting id", max_length=40, blank=True
    )
    two_factor_for_all_staff = models.BooleanField(
        default=False,
        help_text="Prescribers and clinic admins always use two-factor sign-in; "
        "this extends it to every role.",
    )
    # Rating scales and alerts (measures app).
    crisis_text = models.TextField(
        default=DEFAULT_CRISIS_TEXT,
        help_text="Shown to a patient after a self-report that raised a suicidality flag.",
    )
    alert_escalation_minutes = models.PositiveIntegerField(
        default=60, help_text="A high-risk alert still open this long goes to the clinic admins."
    )
    self_report_link_hours = models.PositiveIntegerField(
        default=72, help_text="How long a patient's questionnaire link stays valid."
    )
    # Eligibility, courses and scheduling (treatment app).
    assessment_valid_days = models.PositiveSmallIntegerField(
        default=90, help_text="A course starts only on a signed assessment at most this old."
    )
    max_iv_mg_per_kg = models.DecimalField(
        max_digits=4, decimal_places=2, default=Decimal("0.75"),
        help_text="IV doses above this are refused; above 0.5 mg/kg need a reason.",
    )
    reminder_hours_before = models.PositiveSmallIntegerField(default=24)
    # Controlled-substance inventory: biennial by federal rule, annual where the state says.
    annual_inventory = models.BooleanField(
        default=False, help_text="Take the full inventory every year instead of every 2 years."
    )
    # Next MRN sequence number; incremented under a row lock by patients.services.
    next_mrn_sequence = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def today(self) -> date:
        """Today on the clinic's own calendar. The server runs in UTC, and services also run
        outside a request (worker, CLI), so never take the date from the active time zone."""
        return timezone.localdate(timezone=ZoneInfo(self.time_zone))


class User(AbstractUser):
    """A member of staff. Patients are not users; they reach the portal with one-time links."""

    initials = models.CharField(
        max_length=6, blank=True, help_text="Shown in controlled-substance records."
    )
    credentials = models.CharField(max_length=40, blank=True, help_text="e.g. MD, NP, RN, CRNA")
    # Only `ketaclinic demo` sets this, so demo logins work without an authenticator app.
    two_factor_waived = models.BooleanField(default=False)

    @property
    def display_name(self) -> str:
        name = self.get_full_name() or self.username
        return f"{name}, {self.credentials}" if self.credentials else name


class Membership(models.Model):
    """A user's single role in one clinic."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="memberships")
    clinic = models.ForeignKey(Clinic, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "clinic"], name="one_role_per_clinic"),
        ]

    def __str__(self) -> str:
        return f"{self.user} as {self.get_role_display()} at {self.clinic}"

    @property
    def requires_two_factor(self) -> bool:
        return self.role in ROLES_REQUIRING_TWO_FACTOR or self.clinic.two_factor_for_all_staff
