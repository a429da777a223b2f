"""Forms of the dosing-session pages. Each only parses what the nurse typed; the rules (gate,
device spacing, discharge criteria, witness) live in ketaclinic.dosing.services and come back
as field errors on these same forms.

Times are typed as a wall-clock time (HH:MM) on the session's day in the clinic's zone: the
nurse charts when a reading was taken or a device given, which may be a few minutes ago."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django import forms

from ketaclinic.dosing.models import (
    BpDecision,
    DosingSettings,
    PregnancyStatus,
    Severity,
    SideEffect,
    SideEffectKind,
)

YES_NO = [("yes", "Yes"), ("no", "No")]
MEDICINES = [
    ("benzodiazepines", "Benzodiazepines"),
    ("sedative_hypnotics", "Non-benzodiazepine sedative-hypnotics"),
    ("opioids", "Opioids"),
    ("psychostimulants", "Psychostimulants"),
    ("maois", "MAOIs"),
]
TIME_ERROR = "Enter the time as HH:MM, for example 10:05."
WITNESS_HELP = "The witness types their own password, or the 6-digit code from their app."


class TimeInput(forms.TimeInput):
    input_type = "time"

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(attrs, format="%H:%M")


def time_field(
    label: str = "Time", *, required: bool = False, help_text: str = ""
) -> forms.TimeField:
    return forms.TimeField(
        label=label,
        required=required,
        widget=TimeInput(),
        input_formats=["%H:%M", "%H:%M:%S"],
        error_messages={"invalid": TIME_ERROR},
        help_text=help_text or "Leave blank for now.",
    )


def _int(label: str, low: int, high: int, *, required: bool = True) -> forms.IntegerField:
    return forms.IntegerField(
        label=label,
        required=required,
        min_value=low,
        max_value=high,
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )


def _yes_no(label: str, *, required: bool = True) -> forms.TypedChoiceField:
    return forms.TypedChoiceField(
        label=label,
        choices=YES_NO,
        coerce=lambda v: v == "yes",
        empty_value=None,
        widget=forms.RadioSelect,
        required=required,
        error_messages={"required": f"Answer: {label.rstrip('?')}?"},
    )


class SessionForm(forms.Form):
    """A form that edits the session itself: it carries the version the user saw, so a change
    someone else saved meanwhile is refused (StaleSession) and the input kept."""

    version = forms.IntegerField(widget=forms.HiddenInput)
    # Which field of the service's ValidationError goes to which form field.
    service_fields: dict[str, str] = {}

    def __init__(
        self, *args: Any, tz: ZoneInfo | None = None, day: date | None = None, **kwargs: Any
    ):
        super().__init__(*args, **kwargs)
        self.tz = tz
        self.day = day

    def at(self, name: str = "at") -> datetime | None:
        value: time | None = self.cleaned_data.get(name)
        if value is None or self.tz is None or self.day is None:
            return None
        return datetime.combine(self.day, value, tzinfo=self.tz)


class ClockForm(SessionForm):
    """An append-only record (vitals, device, side effect): no version, never conflicts."""

    version = forms.IntegerField(widget=forms.HiddenInput, required=False)


class PredoseForm(SessionForm):
    at = time_field("Vitals taken at")
    sbp = _int("Systolic BP (mmHg)", 40, 300)
    dbp = _int("Diastolic BP (mmHg)", 20, 200)
    hr = _int("Heart rate (/min)", 20, 250)
    spo2 = _int("SpO2 (%)", 50, 100)
    rr = _int("Respiratory rate (/min)", 4, 60)
    temp_c = forms.DecimalField(
        label="Temperature (°C)",
        required=False,
        max_digits=4,
        decimal_places=1,
        min_value=Decimal("30"),
        max_value=Decimal("43"),
    )
    fasting = _yes_no("Fasting as instructed?")
    ride_name = forms.CharField(label="Ride home: name", max_length=120, required=False)
    ride_phone = forms.CharField(label="Ride home: phone", max_length=40, required=False)
    pregnancy_status = forms.ChoiceField(
        label="Pregnancy status",
        choices=[("", "—")] + list(PregnancyStatus.choices),
        required=False,
    )
    scales_done = _yes_no("Today's scales done?")
    scales_skip_reason = forms.CharField(
        label="If not, why", required=False, widget=forms.Textarea(attrs={"rows": 2})
    )
    cssrs_reviewed = forms.BooleanField(
        label="I have reviewed today's C-SSRS result", required=False
    )
    service_fields = {"taken_at": "at"}

    def __init__(self, *args: Any, pregnancy_relevant: bool = True, **kwargs: Any):
        super().__init__(*args, **kwargs)
        for key, label in MEDICINES:
            self.fields[f"med_{key}"] = _yes_no(label)
        if not pregnancy_relevant:
            del self.fields["pregnancy_status"]

    def medicines(self) -> dict[str, bool]:
        return {key: bool(self.cleaned_data.get(f"med_{key}")) for key, _ in MEDICINES}

    def medicine_fields(self) -> list[forms.BoundField]:
        return [self[f"med_{key}"] for key, _ in MEDICINES]


class DecisionForm(SessionForm):
    decision = forms.ChoiceField(
        label="Decision", choices=BpDecision.choices, widget=forms.RadioSelect
    )
    reason = forms.CharField(
        label="Reason (recorded in the audit log)", widget=forms.Textarea(attrs={"rows": 2})
    )


class DoseChangeForm(SessionForm):
    dose_mg = forms.DecimalField(
        label="Today's dose (mg)", max_digits=7, decimal_places=1, min_value=Decimal("0.1")
    )
    reason = forms.CharField(label="Reason", widget=forms.Textarea(attrs={"rows": 2}))


class ContainerChoice:
    """A `container` choice field filled with the usable containers the view passes in."""

    fields: dict[str, Any]
    cleaned_data: dict[str, Any]

    def __init__(self, *args: Any, containers: list[Any] = (), **kwargs: Any):  # type: ignore[assignment]
        super().__init__(*args, **kwargs)
        self.containers = {str(c.pk): c for c in containers}
        self.fields["container"].choices = [
            (str(c.pk), f"{c.label} · lot {c.lot.lot_number} · exp {c.lot.expiry:%Y-%m-%d}")
            for c in containers
        ]

    def container_obj(self) -> Any:
        return self.containers.get(self.cleaned_data.get("container") or "")


class DeviceForm(ContainerChoice, ClockForm):
    container = forms.ChoiceField(label="Device (lot)")
    at = time_field("Given at")


class InfusionStartForm(ContainerChoice, SessionForm):
    container = forms.ChoiceField(label="Vial (lot)")
    drawn_mg = forms.DecimalField(
        label="Drawn (mg)",
        required=False,
        max_digits=7,
        decimal_places=1,
        min_value=Decimal("0.1"),
        help_text="Leave blank to draw exactly the dose.",
    )
    concentration = forms.DecimalField(
        label="Infused concentration (mg/mL)",
        required=False,
        max_digits=7,
        decimal_places=3,
        min_value=Decimal("0.001"),
        help_text="Leave blank for the vial's own concentration.",
    )
    at = time_field("Started at")
    service_fields = {"concentration_mg_per_ml": "concentration", "drawn_ug": "drawn_mg"}


class InfusionStopForm(SessionForm):
    at = time_field("Stopped at")
    administered_mg = forms.DecimalField(
        label="Given (mg)",
        required=False,
        max_digits=7,
        decimal_places=1,
        min_value=Decimal("0"),
        help_text="Leave blank if the whole dose ran in.",
    )
    stop_reason = forms.CharField(label="Stopped early because", required=False)
    witness_username = forms.CharField(
        label="Witness's username (for the residue)",
        required=False,
        max_length=150,
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "autocapitalize": "none", "spellcheck": "false"}
        ),
    )
    witness_secret = forms.CharField(
        label="Witness's password or code",
        required=False,
        max_length=128,
        strip=False,
        help_text=WITNESS_HELP,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    waste_reason = forms.CharField(
        label="Waste reason", required=False, initial="residue in syringe"
    )
    service_fields = {
        "witness": "witness_username",
        "administered_ug": "administered_mg",
        "quantity": "administered_mg",
    }


class VitalsForm(ClockForm):
    at = time_field("Taken at")
    sbp = _int("Systolic", 40, 300, required=False)
    dbp = _int("Diastolic", 20, 200, required=False)
    hr = _int("Heart rate", 20, 250, required=False)
    spo2 = _int("SpO2 %", 50, 100, required=False)
    rr = _int("Resp. rate", 4, 60, required=False)
    moaas = forms.TypedChoiceField(
        label="MOAA/S",
        required=False,
        coerce=int,
        empty_value=None,
        choices=[("", "—")] + [(str(n), str(n)) for n in range(5, -1, -1)],
        help_text="5 = responds readily to name; 0 = no response.",
    )
    temp_c = forms.DecimalField(
        label="Temp °C",
        required=False,
        max_digits=4,
        decimal_places=1,
        min_value=Decimal("30"),
        max_value=Decimal("43"),
    )
    o2_lpm = forms.DecimalField(
        label="O2 L/min",
        required=False,
        max_digits=4,
        decimal_places=1,
        min_value=Decimal("0"),
        max_value=Decimal("15"),
    )
    note = forms.CharField(label="Note", required=False, max_length=300)
    service_fields = {"taken_at": "at"}

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if not any(data.get(k) is not None for k in ("sbp", "dbp", "hr", "spo2", "rr", "moaas")):
            raise forms.ValidationError("Enter at least one reading.")
        if (data.get("sbp") is None) != (data.get("dbp") is None):
            self.add_error("dbp" if data.get("dbp") is None else "sbp", "Enter both BP values.")
        return data


class SideEffectForm(ClockForm):
    kind = forms.ChoiceField(label="Effect", choices=SideEffectKind.choices)
    other_text = forms.CharField(label="If other, what", required=False, max_length=200)
    severity = forms.ChoiceField(label="Severity", choices=Severity.choices)
    at = time_field("Onset")
    action = forms.CharField(label="Action taken", required=False)
    outcome = forms.ChoiceField(
        label="Outcome",
        required=False,
        choices=[("", "—")] + list(SideEffect._meta.get_field("outcome").choices),
    )
    service_fields = {"onset_at": "at"}


class StabilityForm(SessionForm):
    note = forms.CharField(
        label="Clinician's note", required=False, widget=forms.Textarea(attrs={"rows": 2})
    )


class DischargeForm(SessionForm):
    at = time_field("Leaving at")
    ride_present = forms.BooleanField(label="The ride named above is here", required=False)
    ready_to_leave_minutes = forms.IntegerField(
        label="Minutes from first dose until ready to leave (REMS)",
        required=False,
        min_value=0,
        max_value=1440,
        help_text="When would the patient have been ready without the 2-hour rule?",
    )


class LeaveForm(SessionForm):
    at = time_field("Left at")
    reason = forms.CharField(
        label="What happened (advice given, who collected them)",
        widget=forms.Textarea(attrs={"rows": 2}),
    )


class AbortForm(SessionForm):
    reason = forms.CharField(
        label="Reason the session is not going ahead", widget=forms.Textarea(attrs={"rows": 2})
    )


class NoteForm(SessionForm):
    note = forms.CharField(
        label="Session note", required=False, widget=forms.Textarea(attrs={"rows": 4})
    )


class SignForm(SessionForm):
    pass


AMEND_CHOICES = [
    ("session:note", "Session note"),
    ("session:ride_name", "Ride name"),
    ("session:ride_phone", "Ride phone"),
    ("session:ready_to_leave_minutes", "Minutes until ready to leave"),
    ("session:discharge_reason", "Discharge reason"),
]
VITALS_FIELDS = ["sbp", "dbp", "hr", "spo2", "rr", "temp_c", "moaas", "note"]
SIDE_EFFECT_FIELDS = ["severity", "action", "outcome", "other_text"]


class AmendForm(forms.Form):
    target = forms.ChoiceField(label="What to correct")
    new_value = forms.CharField(label="Correct value", required=False, max_length=2000)
    reason = forms.CharField(label="Why", widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(
        self,
        *args: Any,
        vitals: list[Any] = (),
        effects: list[Any] = (),
        tz: ZoneInfo | None = None,
        **kwargs: Any,
    ):  # type: ignore[assignment]
        super().__init__(*args, **kwargs)
        choices = list(AMEND_CHOICES)
        for v in vitals:
            when = v.taken_at.astimezone(tz).strftime("%H:%M") if tz else ""
            for f in VITALS_FIELDS:
                choices.append((f"vitals:{v.pk}:{f}", f"Vitals {when}: {f}"))
        for e in effects:
            for f in SIDE_EFFECT_FIELDS:
                choices.append((f"side_effect:{e.pk}:{f}", f"{e.get_kind_display()}: {f}"))
        self.fields["target"].choices = choices

    def target_parts(self, session_pk: int) -> tuple[str, int, str]:
        parts = self.cleaned_data["target"].split(":")
        if parts[0] == "session":
            return "session", session_pk, parts[1]
        return parts[0], int(parts[1]), parts[2]


class PmfSubmitForm(forms.Form):
    confirmation_number = forms.CharField(label="REMS confirmation number", max_length=60)
    submitted_on = forms.DateField(
        label="Submitted on",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={"invalid": "Enter a real date as YYYY-MM-DD."},
    )


# After-care text is printed for the patient: it may never tell them to take a dose on their
# own (esketamine is never used at home; ketamine doses are given in the clinic).
SELF_DOSING = re.compile(
    r"\b(take|taking|use|using|spray|inject|administer|repeat)\b[^.\n]{0,40}"
    r"\b(dose|doses|ketamine|esketamine|spravato|nasal spray|device|lozenge|troche)\b",
    re.IGNORECASE,
)


class SettingsForm(forms.ModelForm):
    def clean_aftercare_text(self) -> str:
        text: str = self.cleaned_data["aftercare_text"]
        found = SELF_DOSING.search(text)
        if found:
            raise forms.ValidationError(
                f"After-care text must never tell a patient to take a dose on their own "
                f'(found: "{found.group(0)}"). Doses are given only in the clinic.'
            )
        return text

    class Meta:
        model = DosingSettings
        fields = [
            "alert_sbp",
            "alert_dbp",
            "alert_hr",
            "alert_spo2",
            "predose_sbp_limit",
            "predose_dbp_limit",
            "min_observation_minutes",
            "discharge_instrument",
            "discharge_cutoff",
            "aftercare_text",
        ]
        widgets = {"aftercare_text": forms.Textarea(attrs={"rows": 18})}
        labels = {
            "alert_sbp": "Alert at systolic BP at or above (mmHg)",
            "alert_dbp": "Alert at diastolic BP at or above (mmHg)",
            "alert_hr": "Alert at heart rate at or above (/min)",
            "alert_spo2": "Alert at SpO2 below (%)",
            "predose_sbp_limit": "Pre-dose limit, systolic (mmHg)",
            "predose_dbp_limit": "Pre-dose limit, diastolic (mmHg)",
            "min_observation_minutes": "Minimum observation after the dose ends (minutes)",
            "discharge_instrument": "Discharge score",
            "discharge_cutoff": "Score needed to leave (at least)",
            "aftercare_text": "After-care instructions (printed for the patient)",
        }
