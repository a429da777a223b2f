from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from django import forms
from django.utils import timezone

from ketaclinic.clinical import identifiers
from ketaclinic.patients.models import Patient

DATE_ERROR = "Enter a real date as YYYY-MM-DD, for example 1984-03-07."


class DateInput(forms.DateInput):
    input_type = "date"


class PatientForm(forms.ModelForm):
    mrn = forms.CharField(
        label="MRN",
        max_length=20,
        required=False,
        help_text="Leave blank to assign the next MRN; fill in to keep one from another system.",
    )
    diagnosis_codes_text = forms.CharField(
        label="Diagnosis codes (ICD-10-CM)",
        required=False,
        help_text="Separate codes with commas, for example F33.2, F41.1.",
    )

    class Meta:
        model = Patient
        fields = [
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
            "status",
            "rems_patient_id",
            "rems_enrolled_on",
        ]
        widgets = {
            "date_of_birth": DateInput(format="%Y-%m-%d"),
            "rems_enrolled_on": DateInput(format="%Y-%m-%d"),
        }
        error_messages = {
            "date_of_birth": {"invalid": DATE_ERROR},
            "rems_enrolled_on": {"invalid": DATE_ERROR},
        }
        help_texts = {
            "rems_patient_id": "From the Spravato REMS enrolment form; needed before esketamine.",
        }

    def __init__(self, *args, clinic_today: date | None = None, **kwargs):  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.clinic_today = clinic_today or timezone.localdate()
        if self.instance.pk:
            del self.fields["mrn"]
            self.fields["diagnosis_codes_text"].initial = ", ".join(self.instance.diagnosis_codes)

    def clean_date_of_birth(self) -> date:
        dob: date = self.cleaned_data["date_of_birth"]
        if dob > self.clinic_today:
            raise forms.ValidationError("Date of birth cannot be in the future.")
        if dob.year < 1900:
            raise forms.ValidationError("Date of birth must be in 1900 or later.")
        return dob

    def clean_rems_patient_id(self) -> str:
        rems_id: str = (self.cleaned_data.get("rems_patient_id") or "").strip()
        if rems_id and not rems_id.replace("-", "").isalnum():
            raise forms.ValidationError("A REMS id may hold only letters, digits and dashes.")
        return rems_id

    def clean_rems_enrolled_on(self) -> date | None:
        enrolled: date | None = self.cleaned_data.get("rems_enrolled_on")
        if enrolled is not None and enrolled > self.clinic_today:
            raise forms.ValidationError("The REMS enrolment date cannot be in the future.")
        if enrolled is not None and enrolled.year < 2019:
            # Spravato (and its REMS) was approved on 2019-03-05 (clinical.md §2.8).
            raise forms.ValidationError("Spravato REMS enrolment began in 2019.")
        return enrolled

    def clean(self) -> dict:  # type: ignore[type-arg]
        data = super().clean() or {}
        rems_id, enrolled = data.get("rems_patient_id"), data.get("rems_enrolled_on")
        if rems_id and enrolled is None and "rems_enrolled_on" not in self.errors:
            self.add_error("rems_enrolled_on", "Enter the date the patient was enrolled.")
        if enrolled is not None and not rems_id and "rems_patient_id" not in self.errors:
            self.add_error("rems_patient_id", "Enter the patient's REMS id.")
        return data

    def clean_mrn(self) -> str:
        mrn: str = self.cleaned_data.get("mrn", "").strip()
        if mrn and not mrn.replace("-", "").isalnum():
            raise forms.ValidationError("An MRN may hold only letters, digits and dashes.")
        return mrn

    def clean_diagnosis_codes_text(self) -> list[str]:
        raw = self.cleaned_data.get("diagnosis_codes_text", "")
        codes: list[str] = []
        problems = []
        for part in [p.strip() for p in raw.replace(";", ",").split(",") if p.strip()]:
            try:
                code = identifiers.icd10cm_code(part)
            except ValueError as exc:
                problems.append(str(exc))
                continue
            if code not in codes:
                codes.append(code)
        if problems:
            raise forms.ValidationError(problems)
        return codes

    def patient_data(self) -> dict:  # type: ignore[type-arg]
        data = {name: self.cleaned_data[name] for name in self.Meta.fields}
        data["diagnosis_codes"] = self.cleaned_data["diagnosis_codes_text"]
        return data


class MeasurementForm(forms.Form):
    weight_kg = forms.DecimalField(
        label="Weight (kg)",
        max_digits=5,
        decimal_places=1,
        error_messages={"max_decimal_places": "Weight takes one decimal place, e.g. 72.4."},
    )
    height_cm = forms.DecimalField(
        label="Height (cm)",
        max_digits=4,
        decimal_places=1,
        required=False,
        help_text="Leave blank if not measured today; the last height is used.",
        error_messages={"max_decimal_places": "Height takes one decimal place, e.g. 171.5."},
    )
    measured_at = forms.DateTimeField(
        label="Measured at",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
        help_text="Leave blank for now.",
        error_messages={"invalid": "Enter a real date and time, e.g. 2026-11-22 09:30."},
    )

    def clean_weight_kg(self) -> Decimal:
        weight: Decimal = self.cleaned_data["weight_kg"]
        if weight <= 0 or weight > 400:
            raise forms.ValidationError(
                f"Weight must be more than 0 kg and at most 400 kg; got {weight} kg."
            )
        return weight

    def clean_height_cm(self) -> Decimal | None:
        height: Decimal | None = self.cleaned_data.get("height_cm")
        if height is not None and not (Decimal(30) <= height <= Decimal(250)):
            raise forms.ValidationError(f"Height must be between 30 and 250 cm; got {height} cm.")
        return height

    def clean_measured_at(self):  # type: ignore[no-untyped-def]
        when = self.cleaned_data.get("measured_at") or timezone.now()
        if when > timezone.now() + timedelta(minutes=5):
            raise forms.ValidationError("A measurement cannot be in the future.")
        return when


class SearchForm(forms.Form):
    q = forms.CharField(
        label="Name, MRN or date of birth",
        max_length=100,
        widget=forms.TextInput(
            attrs={
                "autofocus": True,
                "autocomplete": "off",
                "placeholder": "e.g. smi ann, 00000018 or 1984-03-07",
            }
        ),
    )
