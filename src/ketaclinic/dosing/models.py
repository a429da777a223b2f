"""Dosing sessions and everything recorded in one: pre-dose checks, each dose (or esketamine
device) with its ledger entries, the vitals flowsheet, side effects, linked rating scales,
events (state changes and alerts), amendments after signing and the REMS monitoring form.

Append-only rows (vitals, doses, events, side effects, amendments) never conflict; fields of
the session itself are edited under optimistic concurrency (``version``)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

DEFAULT_AFTERCARE = """\
After your treatment today

- Do not drive, cycle or operate machinery until the next day, after a restful night's sleep.
- Go home with the adult who is collecting you; do not take public transport alone.
- Do not drink alcohol or use cannabis for 24 hours.
- Avoid sleeping tablets, benzodiazepines and opioid painkillers for the rest of today unless
  your prescriber has told you otherwise.
- Avoid important decisions and legal or financial commitments until tomorrow.
- Rest at home today. Eat lightly at first if you feel sick.
- Feeling a little dizzy, tired, sick or "spaced out" for a few hours is common and passes.

Call the clinic if you have a severe headache, chest pain, trouble breathing, confusion that
does not clear, or anything that worries you. If you have thoughts of harming yourself, call
or text 988 (Suicide & Crisis Lifeline), or 911 in an emergency.

Your next visit is arranged by the clinic. Bring any questions to it.
"""


class SessionState(models.TextChoices):
    BOOKED = "booked", "Booked"
    CHECKED_IN = "checked_in", "Checked in"
    PRE_DOSE = "pre_dose", "Pre-dose checks"
    DOSING = "dosing", "Dosing"
    OBSERVATION = "observation", "Observation"
    READY_FOR_DISCHARGE = "ready_for_discharge", "Ready for discharge"
    DISCHARGED = "discharged", "Discharged"
    ABORTED = "aborted", "Aborted"


class DischargeKind(models.TextChoices):
    ROUTINE = "routine", "Discharged home"
    AGAINST_ADVICE = "against_advice", "Left early / against medical advice"


class PregnancyStatus(models.TextChoices):
    NOT_APPLICABLE = "not_applicable", "Not applicable"
    NOT_PREGNANT = "not_pregnant", "Not pregnant (reported)"
    TEST_NEGATIVE = "test_negative", "Pregnancy test negative"
    PREGNANT = "pregnant", "Pregnant"
    UNKNOWN = "unknown", "Unknown"


class BpDecision(models.TextChoices):
    PROCEED = "proceed", "Proceed"
    DEFER = "defer", "Defer the dose"


class DischargeInstrument(models.TextChoices):
    ALDRETE = "aldrete_modified", "Modified Aldrete"
    PADSS = "padss_modified", "Modified PADSS"


class DosingSettings(models.Model):
    """A clinic's dosing-session settings. Created with the defaults on first use."""

    clinic = models.OneToOneField(
        "accounts.Clinic", on_delete=models.PROTECT, related_name="dosing_settings"
    )
    # In-session alert thresholds (clinical.md §9.4; ketaclinic.clinical.monitoring defaults).
    alert_sbp = models.PositiveSmallIntegerField("alert at systolic BP >=", default=180)
    alert_dbp = models.PositiveSmallIntegerField("alert at diastolic BP >=", default=110)
    alert_hr = models.PositiveSmallIntegerField("alert at heart rate >=", default=110)
    alert_spo2 = models.PositiveSmallIntegerField("alert at SpO2 below", default=92)
    # Pre-dose BP limit for IV/IM/oral ketamine; esketamine always uses the label's 140/90.
    predose_sbp_limit = models.PositiveSmallIntegerField(default=140)
    predose_dbp_limit = models.PositiveSmallIntegerField(default=90)
    # IV/IM/oral: minimum observation after the dose ends (no published standard; clinic
    # descriptions give 30-60 min, clinical.md §1.5c).
    min_observation_minutes = models.PositiveSmallIntegerField(default=60)
    discharge_instrument = models.CharField(
        max_length=20, choices=DischargeInstrument.choices, default=DischargeInstrument.ALDRETE
    )
    discharge_cutoff = models.PositiveSmallIntegerField(default=9)
    aftercare_text = models.TextField(default=DEFAULT_AFTERCARE)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)


class DosingSession(models.Model):
    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="+")
    appointment = models.OneToOneField(
        "treatment.Appointment", on_delete=models.PROTECT, related_name="dosing_session"
    )
    course = models.ForeignKey(
        "treatment.TreatmentCourse", on_delete=models.PROTECT, related_name="dosing_sessions"
    )
    patient = models.ForeignKey(
        "patients.Patient", on_delete=models.PROTECT, related_name="dosing_sessions"
    )
    drug = models.CharField(max_length=20)  # copied from the course: "ketamine" / "esketamine"
    route = models.CharField(max_length=10)  # iv / im / nasal / oral
    state = models.CharField(
        max_length=20, choices=SessionState.choices, default=SessionState.BOOKED
    )
    version = models.PositiveIntegerField(default=1)

    # Dose plan for today, copied from the appointment/course when the session opens.
    planned_dose_mg = models.DecimalField(max_digits=7, decimal_places=1, null=True, blank=True)
    planned_mg_per_kg = models.DecimalField(max_digits=5, decimal_places=3, null=True, blank=True)
    dosing_weight_kg = models.DecimalField(max_digits=5, decimal_places=1, null=True, blank=True)
    infusion_minutes = models.PositiveSmallIntegerField(null=True, blank=True)
    # The dose ordered for today: the plan, or the prescriber's change (named, with a reason).
    dose_mg = models.DecimalField(max_digits=7, decimal_places=1, null=True, blank=True)
    dose_change_reason = models.TextField(blank=True)
    dose_changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    dose_changed_at = models.DateTimeField(null=True, blank=True)

    # Pre-dose checks.
    fasting = models.BooleanField(null=True)
    ride_name = models.CharField(max_length=120, blank=True)
    ride_phone = models.CharField(max_length=40, blank=True)
    pregnancy_status = models.CharField(max_length=20, choices=PregnancyStatus.choices, blank=True)
    medicines = models.JSONField(
        default=dict,
        blank=True,
        help_text="Concomitant medicines reviewed: {benzodiazepines, sedative_hypnotics, "
        "opioids, psychostimulants, maois: bool}",
    )
    scales_done = models.BooleanField(null=True)
    scales_skip_reason = models.TextField(blank=True)
    cssrs_reviewed = models.BooleanField(default=False)
    cssrs_response = models.ForeignKey(
        "measures.ScaleResponse", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    predose_blocks = models.JSONField(
        default=list, blank=True, help_text="[{code, message, overridable}] at the last check"
    )
    predose_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    predose_at = models.DateTimeField(null=True, blank=True)
    # Prescriber's decision on overridable blocks (pre-dose BP over the limit, protocol window).
    bp_decision = models.CharField(max_length=10, choices=BpDecision.choices, blank=True)
    bp_decision_codes = models.JSONField(default=list, blank=True)
    bp_decision_reason = models.TextField(blank=True)
    bp_decision_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    bp_decision_at = models.DateTimeField(null=True, blank=True)

    # The clock.
    checked_in_at = models.DateTimeField(null=True, blank=True)
    checked_in_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    first_dose_at = models.DateTimeField(null=True, blank=True)
    dose_ended_at = models.DateTimeField(null=True, blank=True)

    # Discharge.
    stability_confirmed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    stability_confirmed_at = models.DateTimeField(null=True, blank=True)
    stability_note = models.TextField(blank=True)
    ride_present = models.BooleanField(default=False)
    ready_to_leave_minutes = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="REMS: minutes from first device until ready to leave"
    )
    discharged_at = models.DateTimeField(null=True, blank=True)
    discharged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    discharge_kind = models.CharField(max_length=20, choices=DischargeKind.choices, blank=True)
    discharge_reason = models.TextField(blank=True)
    aborted_at = models.DateTimeField(null=True, blank=True)
    aborted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    abort_reason = models.TextField(blank=True)

    note = models.TextField(blank=True)

    # Signing: the nurse signs (the note becomes read-only); the prescriber co-signs.
    signed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    signed_at = models.DateTimeField(null=True, blank=True)
    cosigned_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    cosigned_at = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            models.Index(fields=["clinic", "state"], name="dosing_session_state"),
            models.Index(fields=["course", "first_dose_at"], name="dosing_session_course"),
        ]

    @property
    def is_signed(self) -> bool:
        return self.signed_at is not None

    @property
    def is_esketamine(self) -> bool:
        return self.drug == "esketamine"


class VitalsReading(models.Model):
    """One set of vital signs. Append-only: a correction after signing is an Amendment."""

    session = models.ForeignKey(DosingSession, on_delete=models.PROTECT, related_name="vitals")
    taken_at = models.DateTimeField()
    phase = models.CharField(
        max_length=12,
        blank=True,
        choices=[("predose", "Pre-dose"), ("during", "During dose"), ("after", "After dose")],
    )
    sbp = models.PositiveSmallIntegerField(null=True, blank=True)
    dbp = models.PositiveSmallIntegerField(null=True, blank=True)
    hr = models.PositiveSmallIntegerField(null=True, blank=True)
    spo2 = models.PositiveSmallIntegerField(null=True, blank=True)
    rr = models.PositiveSmallIntegerField(null=True, blank=True)
    temp_c = models.DecimalField(max_digits=4, decimal_places=1, null=True, blank=True)
    moaas = models.PositiveSmallIntegerField(null=True, blank=True, help_text="MOAA/S 0-5")
    o2_lpm = models.DecimalField(max_digits=4, decimal_places=1, null=True, blank=True)
    note = models.CharField(max_length=300, blank=True)
    alerts = models.JSONField(default=list, blank=True)  # codes from check_vitals (+ moaas_0)
    flagged = models.BooleanField(default=False)
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["taken_at", "pk"]
        indexes = [models.Index(fields=["session", "taken_at"], name="vitals_by_session")]


class DoseAdministration(models.Model):
    """One esketamine device, or one IV infusion / IM or oral dose, with its ledger entries."""

    session = models.ForeignKey(DosingSession, on_delete=models.PROTECT, related_name="doses")
    drug = models.CharField(max_length=20)
    route = models.CharField(max_length=10)
    device_number = models.PositiveSmallIntegerField(null=True, blank=True)
    container = models.ForeignKey("inventory.Container", on_delete=models.PROTECT, related_name="+")
    lot_number = models.CharField(max_length=40)
    concentration_mg_per_ml = models.DecimalField(
        max_digits=7, decimal_places=3, null=True, blank=True
    )
    dose_mg = models.DecimalField(max_digits=7, decimal_places=1)
    drawn_ug = models.PositiveBigIntegerField()
    administered_ug = models.PositiveBigIntegerField(null=True, blank=True)
    wasted_ug = models.PositiveBigIntegerField(default=0)
    volume_ml = models.DecimalField(max_digits=7, decimal_places=2, null=True, blank=True)
    pump_rate_ml_per_h = models.DecimalField(max_digits=7, decimal_places=2, null=True, blank=True)
    rate_mg_per_h = models.DecimalField(max_digits=7, decimal_places=2, null=True, blank=True)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    stop_reason = models.TextField(blank=True)
    draw_entry = models.ForeignKey(
        "inventory.LedgerEntry", on_delete=models.PROTECT, related_name="+"
    )
    administration_entry = models.ForeignKey(
        "inventory.LedgerEntry", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    waste_entry = models.ForeignKey(
        "inventory.LedgerEntry", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    given_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["started_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["session", "device_number"], name="one_row_per_device_number"
            )
        ]


class EventKind(models.TextChoices):
    TRANSITION = "transition", "State change"
    ALERT = "alert", "Alert"
    OVERRIDE = "override", "Prescriber decision"
    NOTE = "note", "Note"


class SessionEvent(models.Model):
    """The session's timeline: every state change (who, when), every alert, every decision."""

    session = models.ForeignKey(DosingSession, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(max_length=12, choices=EventKind.choices)
    at = models.DateTimeField()
    by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    from_state = models.CharField(max_length=20, blank=True)
    to_state = models.CharField(max_length=20, blank=True)
    codes = models.JSONField(default=list, blank=True)
    message = models.TextField(blank=True)
    vitals = models.ForeignKey(
        VitalsReading, null=True, blank=True, on_delete=models.PROTECT, related_name="events"
    )
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "pk"]


class SideEffectKind(models.TextChoices):
    DISSOCIATION = "dissociation", "Dissociation"
    DIZZINESS = "dizziness", "Dizziness"
    NAUSEA = "nausea", "Nausea"
    VOMITING = "vomiting", "Vomiting"
    SEDATION = "sedation", "Sedation"
    HEADACHE = "headache", "Headache"
    ANXIETY = "anxiety", "Anxiety"
    RAISED_BP = "raised_bp", "Raised blood pressure"
    RESPIRATORY_DEPRESSION = "respiratory_depression", "Respiratory depression"
    HALLUCINATIONS = "hallucinations", "Hallucinations"
    OTHER = "other", "Other"


class Severity(models.TextChoices):
    MILD = "mild", "Mild"
    MODERATE = "moderate", "Moderate"
    SEVERE = "severe", "Severe"
    SERIOUS = "serious", "Serious"


class SideEffect(models.Model):
    session = models.ForeignKey(
        DosingSession, on_delete=models.PROTECT, related_name="side_effects"
    )
    kind = models.CharField(max_length=30, choices=SideEffectKind.choices)
    other_text = models.CharField(max_length=200, blank=True)
    severity = models.CharField(max_length=10, choices=Severity.choices)
    onset_at = models.DateTimeField()
    action = models.TextField(blank=True)
    outcome = models.CharField(
        max_length=30,
        blank=True,
        choices=[
            ("ongoing", "Ongoing"),
            ("resolved", "Resolved"),
            ("resolved_with_treatment", "Resolved with treatment"),
            ("transferred", "Transferred to emergency care"),
        ],
    )
    reportable = models.BooleanField(default=False, help_text="serious: report (REMS / FDA)")
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["onset_at", "pk"]


class ScalePurpose(models.TextChoices):
    DISSOCIATION = "dissociation", "Dissociation (CADSS)"
    DISCHARGE = "discharge", "Discharge score"


class SessionScale(models.Model):
    """A rating scale given during the session (measures.ScaleResponse), and why."""

    session = models.ForeignKey(DosingSession, on_delete=models.PROTECT, related_name="scales")
    response = models.OneToOneField(
        "measures.ScaleResponse", on_delete=models.PROTECT, related_name="dosing_link"
    )
    purpose = models.CharField(max_length=20, choices=ScalePurpose.choices)

    class Meta:
        ordering = ["response__administered_at", "pk"]


class Amendment(models.Model):
    """A correction to a signed session, kept beside the original value (never in place)."""

    session = models.ForeignKey(DosingSession, on_delete=models.PROTECT, related_name="amendments")
    object_type = models.CharField(max_length=20)  # session / vitals / side_effect
    object_id = models.BigIntegerField()
    field = models.CharField(max_length=40)
    old_value = models.TextField(blank=True)
    new_value = models.TextField(blank=True)
    reason = models.TextField()
    by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    at = models.DateTimeField()

    class Meta:
        ordering = ["at", "pk"]


class PmfStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    SUBMITTED = "submitted", "Submitted"


class RemsMonitoringForm(models.Model):
    """The Spravato REMS Patient Monitoring Form of one session, due 7 days after it
    (clinical.md §2.6). The fields are built from the session; ``data`` freezes them at
    submission."""

    clinic = models.ForeignKey("accounts.Clinic", on_delete=models.PROTECT, related_name="+")
    session = models.OneToOneField(
        DosingSession, on_delete=models.PROTECT, related_name="rems_form"
    )
    status = models.CharField(max_length=10, choices=PmfStatus.choices, default=PmfStatus.DRAFT)
    due_on = models.DateField()
    confirmation_number = models.CharField(max_length=60, blank=True)
    submitted_on = models.DateField(null=True, blank=True)
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    submitted_at = models.DateTimeField(null=True, blank=True)
    data = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["clinic", "status", "due_on"], name="pmf_due")]
