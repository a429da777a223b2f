from __future__ import annotations

from django import forms

from ketaclinic.accounts.models import Clinic
from ketaclinic.accounts.roles import Role
from ketaclinic.accounts.services import CLINIC_SETTING_FIELDS, new_staff_errors


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


ROLE_CHOICES = [("", "Choose a role")] + list(Role.choices)
ROLE_HELP = "Prescribers and clinic admins always sign in with two-factor."


def _role_field() -> forms.ChoiceField:
    return forms.ChoiceField(
        choices=ROLE_CHOICES,
        help_text=ROLE_HELP,
        error_messages={"invalid_choice": "Choose one of the roles listed."},
    )


class NewStaffForm(forms.Form):
    """A new staff account. No password: the person is emailed a link to choose one.
    The service checks uniqueness and formats; these fields only shape the page."""

    username = forms.CharField(
        max_length=150,
        widget=forms.TextInput(attrs={"autocapitalize": "none", "autocomplete": "off"}),
        help_text="What they type to sign in: letters, digits and @ . + - _",
    )
    first_name = forms.CharField(max_length=150)
    last_name = forms.CharField(max_length=150)
    email = forms.CharField(
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "off"}),
        help_text="The link to choose a password is sent here.",
    )
    credentials = forms.CharField(max_length=40, required=False, help_text="e.g. MD, NP, RN, CRNA")
    role = _role_field()

    def clean(self) -> dict[str, object]:
        # Every problem at once: a taken username shows beside a missing first name.
        data = super().clean() or {}
        fields = ("username", "first_name", "last_name", "email", "credentials")
        values = [str(data.get(name) or "").strip() for name in fields]
        for name, message in new_staff_errors(*values).items():
            if name not in self.errors and self.data.get(self.add_prefix(name), "").strip():
                self.add_error(name, message)
        return data


class ExistingStaffForm(forms.Form):
    """Someone with an account at another clinic: their username and their role here."""

    username = forms.CharField(
        max_length=150,
        widget=forms.TextInput(attrs={"autocapitalize": "none", "autocomplete": "off"}),
        help_text="The username they already sign in with.",
    )
    role = _role_field()


class RoleForm(forms.Form):
    role = forms.ChoiceField(
        choices=Role.choices,
        label="Role in this clinic",
        error_messages={"invalid_choice": "Choose one of the roles listed."},
    )
