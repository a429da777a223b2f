from __future__ import annotations

from django import forms

from ketaclinic.accounts.models import Clinic
from ketaclinic.accounts.services import CLINIC_SETTING_FIELDS


class LoginForm(forms.Form):
    username = forms.CharField(
        max_length=150,
        widget=forms.TextInput(
            attrs={"autofocus": True, "autocomplete": "username", "autocapitalize": "none"}
        ),
    )
    password = forms.CharField(
        strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "current-password"})
    )


class TokenForm(forms.Form):
    token = forms.RegexField(
        label="6-digit code",
        regex=r"^\s*\d{6}\s*$",
        error_messages={"invalid": "Enter the 6 digits your authenticator app shows."},
        widget=forms.TextInput(
            attrs={
                "autofocus": True,
                "inputmode": "numeric",
                "autocomplete": "one-time-code",
                "pattern": "[0-9 ]*",
            }
        ),
    )


class ClinicSettingsForm(forms.ModelForm):
    """The clinic's own details and defaults; ranges are checked by the service."""

    class Meta:
        model = Clinic
        fields = list(CLINIC_SETTING_FIELDS)
        widgets = {
            "address": forms.Textarea(attrs={"rows": 3}),
            "crisis_text": forms.Textarea(attrs={"rows": 5}),
        }
        labels = {
            "dea_registration_number": "DEA registration number",
            "two_factor_for_all_staff": "Two-factor sign-in for every role",
            "annual_inventory": "Annual controlled-substance inventory",
            "crisis_text": "Crisis resources shown to patients",
            "alert_escalation_minutes": "Escalate open high-risk alerts after (minutes)",
            "self_report_link_hours": "Questionnaire links valid for (hours)",
            "assessment_valid_days": "Eligibility assessment valid for (days)",
            "max_iv_mg_per_kg": "Maximum IV ketamine dose (mg/kg)",
            "reminder_hours_before": "Send visit reminders (hours before)",
        }

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["crisis_text"].error_messages["required"] = (
            "Patients who report suicidal thoughts must be shown crisis resources: "
            "enter them (for example: call or text 988)."
        )
