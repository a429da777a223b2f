from __future__ import annotations

from datetime import datetime, time
from typing import Any

from django import forms

from ketaclinic.accounts.models import User
from ketaclinic.accounts.roles import Role
from ketaclinic.clinical.protocols import PROTOCOL_CODES
from ketaclinic.measures.models import ScaleResponse
from ketaclinic.treatment.models import Chair, Drug, Indication, WeightBasis

TRI = [("", "Not assessed"), ("no", "No"), ("yes", "Yes")]

# Findings the assessment form asks, in the words a prescriber uses. Keys are the fields of
# ketaclinic.clinical.eligibility.Findings.
YES_NO_FINDINGS = [
    ("pregnant", "Pregnant"),
    ("breastfeeding", "Breastfeeding"),
    ("can_become_pregnant", "Could become pregnant"),
    ("uncontrolled_hypertension", "Uncontrolled hypertension"),
    ("hypertensive_encephalopathy_history", "History of hypertensive encephalopathy"),
    ("aneurysmal_vascular_disease_or_avm", "Aneurysmal vascular disease or AVM"),
    ("intracerebral_haemorrhage_history", "History of intracerebral haemorrhage"),
    ("raised_intracranial_pressure", "Raised intracranial pressure"),
    ("psychosis_history", "History of psychosis"),
    ("psychosis_current", "Current psychosis"),
    ("bipolar_or_mania", "Bipolar disorder or mania"),
    ("seizure_disorder", "Seizure disorder"),
    ("hypersensitivity_to_ketamine_or_esketamine", "Hypersensitivity to ketamine or esketamine"),
]
MEDICINES = [
    ("benzodiazepines", "Benzodiazepines"),
    ("opioids", "Opioids"),
    ("psychostimulants", "Psychostimulants"),
    ("maois", "MAOIs"),
]


class AssessmentForm(forms.Form):
    drug = forms.ChoiceField(choices=Drug.choices)
    substance_use_disorder = forms.ChoiceField(
        label="Substance use disorder",
        required=False,
        choices=[("", "Not assessed"), ("none", "None"), ("past", "Past"), ("current", "Current")],
    )
    hepatic_impairment = forms.ChoiceField(
        label="Hepatic impairment",
        required=False,
        choices=[
            ("", "Not assessed"),
            ("none", "None"),
            ("child_pugh_a", "Child-Pugh A"),
            ("child_pugh_b", "Child-Pugh B"),
            ("child_pugh_c", "Child-Pugh C"),
        ],
    )
    failed_antidepressant_trials = forms.IntegerField(
        label="Adequate antidepressant trials failed (this episode)",
        min_value=0,
        max_value=30,
        required=False,
    )
    indication = forms.ChoiceField(choices=Indication.choices, required=False, initial="trd")
    systolic_bp = forms.IntegerField(
        label="Systolic BP (mmHg)", min_value=50, max_value=300, required=False
    )
    diastolic_bp = forms.IntegerField(
        label="Diastolic BP (mmHg)", min_value=20, max_value=200, required=False
    )
    heart_rate = forms.IntegerField(
        label="Heart rate (/min)", min_value=20, max_value=250, required=False
    )
    spo2 = forms.IntegerField(label="SpO2 (%)", min_value=50, max_value=100, required=False)
    depression_scale = forms.ModelChoiceField(
        queryset=ScaleResponse.objects.none(), label="Baseline PHQ-9 or QIDS-SR16"
    )
    cssrs = forms.ModelChoiceField(queryset=ScaleResponse.objects.none(), label="C-SSRS screener")

    def __init__(self, *args: Any, patient: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        for name, label in YES_NO_FINDINGS:
            self.fields[name] = forms.ChoiceField(label=label, choices=TRI, required=False)
        for name, label in MEDICINES:
            self.fields[f"med_{name}"] = forms.ChoiceField(
                label=f"Takes {label}", choices=TRI, required=False
            )
        recent = ScaleResponse.objects.filter(patient=patient).order_by("-administered_at")
        depression = self.fields["depression_scale"]
        depression.queryset = recent.filter(instrument_code__in=["phq9", "qids_sr16"])  # type: ignore[attr-defined]
        depression.label_from_instance = _response_label  # type: ignore[attr-defined]
        self.fields["cssrs"].queryset = recent.filter(instrument_code="cssrs_screen")  # type: ignore[attr-defined]
        self.fields["cssrs"].label_from_instance = _response_label  # type: ignore[attr-defined]

    def findings(self) -> dict[str, Any]:
        d = self.cleaned_data
        out: dict[str, Any] = {}
        for name, _ in YES_NO_FINDINGS:
            if d.get(name):
                out[name] = d[name] == "yes"
        meds = {name: d[f"med_{name}"] == "yes" for name, _ in MEDICINES if d.get(f"med_{name}")}
        if meds:
            out["medicines"] = meds
        for name in ("substance_use_disorder", "hepatic_impairment", "indication"):
            if d.get(name):
                out[name] = d[name]
        if d.get("failed_antidepressant_trials") is not None:
            out["failed_antidepressant_trials"] = d["failed_antidepressant_trials"]
        return out

    def vitals(self) -> dict[str, Any]:
        return {
            k: self.cleaned_data.get(k)
            for k in ("systolic_bp", "diastolic_bp", "heart_rate", "spo2")
        }


def _response_label(response: ScaleResponse) -> str:
    return (
        f"{response.instrument_code.upper()} {response.administered_at:%Y-%m-%d}: "
        f"{response.total_display}{' (' + response.band + ')' if response.band else ''}"
    )


MEASUREMENT_CHOICES = [
    ("phq9:before_every_session", "PHQ-9 before every session"),
    ("cssrs_screen:before_every_session", "C-SSRS screener before every session"),
    ("gad7:weekly", "GAD-7 weekly"),
    ("qids_sr16:weekly", "QIDS-SR16 weekly"),
    ("pcl5:monthly", "PCL-5 monthly"),
    ("peg:weekly", "PEG (pain) weekly"),
    ("cadss6:at_40_minutes", "CADSS-6 at 40 minutes"),
    ("madrs:end_of_induction", "MADRS at the end of the induction"),
]


class CourseForm(forms.Form):
    protocol = forms.ChoiceField(choices=[(c, c.replace("_", " ")) for c in PROTOCOL_CODES])
    start_date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    indication = forms.ChoiceField(choices=Indication.choices)
    responsible_prescriber = forms.ModelChoiceField(queryset=User.objects.none())
    maintenance_sessions = forms.IntegerField(
        min_value=0, max_value=52, initial=0, help_text="Sessions after the fixed induction."
    )
    per_week = forms.TypedChoiceField(
        label="IV induction: infusions per week",
        coerce=int,
        choices=[(2, "2 a week"), (3, "3 a week")],
        initial=2,
        required=False,
    )
    maintenance_interval_weeks = forms.IntegerField(
        label="IV maintenance interval (weeks)", min_value=2, max_value=6, required=False, initial=4
    )
    maintenance_every_weeks = forms.TypedChoiceField(
        label="Esketamine from week 9",
        coerce=int,
        required=False,
        initial=2,
        choices=[(1, "weekly"), (2, "every 2 weeks")],
    )
    interval_days = forms.IntegerField(
        label="IM/oral: days between sessions", min_value=1, max_value=60, required=False
    )
    sessions = forms.IntegerField(
        label="IM/oral: number of sessions", min_value=1, max_value=60, required=False
    )
    mg_per_kg = forms.DecimalField(
        label="IV dose (mg/kg)", max_digits=5, decimal_places=3, required=False, initial="0.5"
    )
    weight_basis = forms.ChoiceField(choices=WeightBasis.choices, initial="actual", required=False)
    infusion_minutes = forms.IntegerField(min_value=5, max_value=240, initial=40, required=False)
    dose_mg = forms.TypedChoiceField(
        label="Esketamine dose after day 1 (mg)",
        coerce=int,
        choices=[(56, "56 mg"), (84, "84 mg")],
        required=False,
        initial=56,
    )
    dose_reason = forms.CharField(
        label="Reason for a dose above 0.5 mg/kg",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    caution_override_reason = forms.CharField(
        label="Why the course goes ahead despite the cautions",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    measurement_plan = forms.MultipleChoiceField(
        choices=MEASUREMENT_CHOICES,
        widget=forms.CheckboxSelectMultiple,
        required=False,
        initial=[
            "phq9:before_every_session",
            "cssrs_screen:before_every_session",
            "gad7:weekly",
            "cadss6:at_40_minutes",
        ],
    )
    payer = forms.CharField(required=False)
    member_id = forms.CharField(required=False)
    prior_authorization_number = forms.CharField(required=False)
    authorized_sessions = forms.IntegerField(min_value=1, max_value=200, required=False)
    authorization_expires = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args: Any, clinic: Any, drug: str, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["responsible_prescriber"].queryset = User.objects.filter(  # type: ignore[attr-defined]
            memberships__clinic=clinic,
            memberships__role=Role.PRESCRIBER,
            memberships__is_active=True,
        )
        self.fields["responsible_prescriber"].label_from_instance = lambda u: u.display_name  # type: ignore[attr-defined]
        wanted = [c for c in PROTOCOL_CODES if c.startswith("esketamine") == (drug == "esketamine")]
        self.fields["protocol"].choices = [(c, c.replace("_", " ")) for c in wanted]  # type: ignore[attr-defined]

    def protocol_options(self) -> dict[str, Any]:
        d = self.cleaned_data
        protocol = d["protocol"]
        names = {
            "iv_ketamine_standard": ["per_week", "maintenance_interval_weeks"],
            "esketamine_trd": ["maintenance_every_weeks"],
            "im_ketamine": ["interval_days", "sessions"],
            "oral_ketamine": ["interval_days", "sessions"],
            "custom": ["interval_days", "sessions"],
        }.get(protocol, [])
        return {n: d[n] for n in names if d.get(n) not in (None, "")}

    def plan(self) -> list[dict[str, str]]:
        return [
            {"scale": v.split(":")[0], "when": v.split(":")[1]}
            for v in self.cleaned_data["measurement_plan"]
        ]

    def insurance(self) -> dict[str, Any]:
        return {
            k: self.cleaned_data[k]
            for k in (
                "payer",
                "member_id",
                "prior_authorization_number",
                "authorized_sessions",
                "authorization_expires",
            )
            if self.cleaned_data.get(k) not in (None, "")
        }


class BookingForm(forms.Form):
    day = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    start_time = forms.TimeField(widget=forms.TimeInput(attrs={"type": "time"}), initial=time(9))
    chair = forms.ModelChoiceField(queryset=Chair.objects.none())
    staff = forms.ModelChoiceField(queryset=User.objects.none(), required=False)
    reason = forms.CharField(
        label="Reason (needed outside the protocol window)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    version = forms.IntegerField(widget=forms.HiddenInput)

    def __init__(self, *args: Any, clinic: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.fields["chair"].queryset = Chair.objects.filter(clinic=clinic, is_active=True)  # type: ignore[attr-defined]
        self.fields["staff"].queryset = User.objects.filter(  # type: ignore[attr-defined]
            memberships__clinic=clinic,
            memberships__is_active=True,
            memberships__role__in=[Role.PRESCRIBER, Role.NURSE],
        ).order_by("last_name")
        self.fields["staff"].label_from_instance = lambda u: u.display_name  # type: ignore[attr-defined]

    def starts_at(self, tz: Any) -> datetime:
        return datetime.combine(
            self.cleaned_data["day"], self.cleaned_data["start_time"], tzinfo=tz
        )


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[
            ("maintenance", "Continue to maintenance"),
            ("extend", "Extend the induction"),
            ("stop", "Stop the course"),
        ],
        widget=forms.RadioSelect,
    )
    maintenance_sessions = forms.IntegerField(min_value=0, max_value=52, initial=4, required=False)
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)


class PauseForm(forms.Form):
    reason = forms.CharField(
        label="Why is the course paused?", widget=forms.Textarea(attrs={"rows": 2})
    )


class ResumeForm(forms.Form):
    resume_on = forms.DateField(label="Resume on", widget=forms.DateInput(attrs={"type": "date"}))
    depression_worse = forms.BooleanField(
        label="Depression has worsened since the last dose", required=False
    )
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)


class WeightBasisForm(forms.Form):
    weight_basis = forms.ChoiceField(label="New weight basis", choices=WeightBasis.choices)
    reason = forms.CharField(
        label="Why the basis changes", widget=forms.Textarea(attrs={"rows": 2})
    )


class ChairForm(forms.ModelForm):
    class Meta:
        model = Chair
        fields = ["name", "room", "capacity"]
