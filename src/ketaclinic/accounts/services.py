"""Writes for clinics and staff (used by the CLI commands and the demo)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from ketaclinic.accounts.models import Clinic, Membership, User
from ketaclinic.accounts.roles import Role
from ketaclinic.audit import services as audit
from ketaclinic.audit.context import Actor
from ketaclinic.audit.models import AuditAction


def create_clinic(
    *,
    name: str,
    time_zone: str,
    dea_registration_number: str = "",
    address: str = "",
    phone: str = "",
    rems_setting_id: str = "",
) -> Clinic:
    clinic = Clinic(
        name=name,
        time_zone=time_zone,
        address=address,
        phone=phone,
        dea_registration_number=dea_registration_number.strip().upper(),
        rems_setting_id=rems_setting_id,
    )
    clinic.full_clean()
    clinic.save()
    return clinic


def create_staff(
    *,
    clinic: Clinic,
    username: str,
    password: str,
    role: str,
    first_name: str = "",
    last_name: str = "",
    email: str = "",
    credentials: str = "",
    check_password: bool = True,
    two_factor_waived: bool = False,
) -> User:
    """Create a staff user (or reuse one by username) and give them `role` in `clinic`."""
    if role not in Role.values:
        raise ValidationError(f"Unknown role {role!r}; choose one of {', '.join(Role.values)}.")
    with transaction.atomic():
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User(
                username=username,
                first_name=first_name,
                last_name=last_name,
                email=email,
                credentials=credentials,
                initials=(first_name[:1] + last_name[:1]).upper(),
                two_factor_waived=two_factor_waived,
            )
            if check_password:
                validate_password(password, user)
            user.set_password(password)
            user.full_clean(exclude=["password"])
            user.save()
        if Membership.objects.filter(user=user, clinic=clinic).exists():
            raise ValidationError(f"{username} already has a role in {clinic.name}.")
        Membership.objects.create(user=user, clinic=clinic, role=role)
    return user


# The clinic settings a clinic admin may change from the settings page, in the page's order.
CLINIC_SETTING_FIELDS = (
    "name",
    "address",
    "phone",
    "time_zone",
    "dea_registration_number",
    "rems_setting_id",
    "two_factor_for_all_staff",
    "crisis_text",
    "alert_escalation_minutes",
    "self_report_link_hours",
    "assessment_valid_days",
    "max_iv_mg_per_kg",
    "reminder_hours_before",
    "annual_inventory",
)


# Sensible ranges for the numeric settings: (lowest, highest, why). Outside them a value is far
# more likely a slip of the keyboard than a clinic's choice.
CLINIC_SETTING_RANGES: dict[str, tuple[Decimal, Decimal, str]] = {
    "alert_escalation_minutes": (Decimal(5), Decimal(24 * 60), "minutes, at most a day"),
    "self_report_link_hours": (Decimal(1), Decimal(14 * 24), "hours, at most 14 days"),
    "assessment_valid_days": (Decimal(1), Decimal(365), "days, at most a year"),
    # Reference 1.2: doses of 0.1-1.0 mg/kg are studied (Fava 2018); none above.
    "max_iv_mg_per_kg": (Decimal("0.10"), Decimal("1.00"), "mg/kg, the range studied"),
    "reminder_hours_before": (Decimal(1), Decimal(7 * 24), "hours, at most a week"),
}


@transaction.atomic
def update_clinic_settings(actor: Actor, changes: dict[str, Any]) -> list[str]:
    """Change the actor's clinic's settings; returns the names of the fields that changed.

    The audit entry keeps each change as old and new value, so a later question ("who raised
    the maximum IV dose, and from what?") has an answer.
    """
    unknown = sorted(set(changes) - set(CLINIC_SETTING_FIELDS))
    if unknown:
        raise ValidationError(f"Not a clinic setting: {', '.join(unknown)}.")
    errors = {}
    for name, (low, high, unit) in CLINIC_SETTING_RANGES.items():
        if name in changes and changes[name] is not None:
            value = Decimal(str(changes[name]))
            if not low <= value <= high:
                errors[name] = f"Enter a value from {low} to {high} ({unit})."
    if "crisis_text" in changes and not str(changes["crisis_text"] or "").strip():
        errors["crisis_text"] = (
            "Patients who report suicidal thoughts must be shown crisis resources: "
            "enter them (for example: call or text 988)."
        )
    if errors:
        raise ValidationError(errors)
    clinic = Clinic.objects.select_for_update().get(pk=actor.clinic.pk)
    before = {name: getattr(clinic, name) for name in changes}
    for name, value in changes.items():
        setattr(clinic, name, value)
    if "dea_registration_number" in changes:
        clinic.dea_registration_number = clinic.dea_registration_number.strip().upper()
    clinic.full_clean()
    changed = [name for name in changes if getattr(clinic, name) != before[name]]
    if not changed:
        return []
    clinic.save(update_fields=changed)
    audit.record(
        actor,
        AuditAction.UPDATE,
        "clinic_settings",
        clinic.pk,
        detail={
            "changes": {
                name: {"from": str(before[name]), "to": str(getattr(clinic, name))}
                for name in changed
            }
        },
    )
    actor.clinic.refresh_from_db()
    return changed
