"""Writes for clinics and staff: the CLI commands, the demo, the settings and staff pages."""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Any

from axes.models import AccessAttempt
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.tokens import default_token_generator
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from django_otp.plugins.otp_totp.models import TOTPDevice

from ketaclinic import notifications
from ketaclinic.accounts.models import Clinic, Membership, User
from ketaclinic.accounts.roles import ROLES_REQUIRING_TWO_FACTOR, Perm, Role, role_has
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


def actor_may(actor: Actor, perm: Perm) -> bool:
    """Whether the actor's active role in the actor's clinic grants `perm`: the services'
    own check, under the views' @requires (a service may be called from elsewhere)."""
    if actor.user is None:
        return False
    role = (
        Membership.objects.filter(user=actor.user, clinic=actor.clinic, is_active=True)
        .values_list("role", flat=True)
        .first()
    )
    return role is not None and role_has(role, perm)


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


# --- staff management (clinic admins, from the staff pages) -----------------------------------

# An email address checked the way Django's forms check one.
_email_validator = EmailValidator(message="Enter a valid email address, like name@example.org.")


def _lock_clinic_staff(clinic: Clinic) -> None:
    """Serialise staff changes of one clinic on its row, so two admins demoting each other at
    the same moment cannot both pass the last-admin check."""
    Clinic.objects.select_for_update().filter(pk=clinic.pk).values_list("pk").first()


def _refuse_former_admin(actor: Actor) -> None:
    """Checked under the clinic lock: another admin may have demoted the actor since the view
    checked their role at the start of the request."""
    if actor.user is None:
        return  # the command line
    role = (
        Membership.objects.filter(user=actor.user, clinic=actor.clinic, is_active=True)
        .values_list("role", flat=True)
        .first()
    )
    if role is None or not role_has(role, Perm.STAFF_MANAGE):
        raise ValidationError("Your role here no longer manages staff; nothing was changed.")


def _locked_membership(actor: Actor, membership: Membership) -> Membership:
    """Re-read the membership under the clinic lock; only ever one of the actor's clinic."""
    _lock_clinic_staff(actor.clinic)
    _refuse_former_admin(actor)
    return Membership.objects.select_related("user").get(pk=membership.pk, clinic=actor.clinic)


def _refuse_self(actor: Actor, membership: Membership, doing: str) -> None:
    if actor.user is not None and membership.user_id == actor.user.pk:
        raise ValidationError(
            f"You cannot {doing} your own membership: ask another clinic admin to do it."
        )


def _refuse_last_admin(membership: Membership, doing: str) -> None:
    """A clinic always keeps one active clinic admin: nobody else can manage its staff."""
    if membership.role != Role.CLINIC_ADMIN or not membership.is_active:
        return
    others = (
        Membership.objects.filter(
            clinic_id=membership.clinic_id,
            role=Role.CLINIC_ADMIN,
            is_active=True,
            user__is_active=True,
        )
        .exclude(pk=membership.pk)
        .exists()
    )
    if not others:
        raise ValidationError(
            f"{membership.user.display_name} is the clinic's only active clinic admin: "
            f"make someone else clinic admin before you {doing} them."
        )


def _membership_audit(
    actor: Actor, action: AuditAction, membership: Membership, **detail: Any
) -> None:
    audit.record(
        actor,
        action,
        "membership",
        membership.pk,
        detail={"user_id": membership.user_id, "username": membership.user.username, **detail},
    )


def password_setup_link(user: User) -> str:
    """A one-time link to choose a password: Django's password-reset token, so it expires
    after PASSWORD_RESET_TIMEOUT and stops working once the password is set."""
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    path = reverse("accounts:password_reset_confirm", kwargs={"uidb64": uid, "token": token})
    return settings.SITE_URL + path


def _link_valid_for() -> str:
    days = settings.PASSWORD_RESET_TIMEOUT // (24 * 60 * 60)
    if days >= 1:
        return f"{days} day{'s' if days != 1 else ''}"
    hours = max(1, settings.PASSWORD_RESET_TIMEOUT // 3600)
    return f"{hours} hour{'s' if hours != 1 else ''}"


def _send_password_setup(actor: Actor, user: User, role: str) -> None:
    """Email the user a link to choose their password, once the transaction has committed."""
    who = actor.user.display_name if actor.user is not None else "A clinic admin"
    two_factor = (
        "\nAfter choosing a password you will set up two-factor sign-in with an "
        "authenticator app on your phone.\n"
        if role in ROLES_REQUIRING_TWO_FACTOR or actor.clinic.two_factor_for_all_staff
        else ""
    )
    body = (
        f"{who} added you to {actor.clinic.name} on ketaclinic as {Role(role).label}.\n\n"
        f"Your username is: {user.username}\n\n"
        f"Open this link to choose your password (it works once and expires in "
        f"{_link_valid_for()}):\n{password_setup_link(user)}\n{two_factor}\n"
        "If you did not expect this, ignore this email and tell the clinic."
    )
    address, subject = user.email, f"Your ketaclinic account at {actor.clinic.name}"
    transaction.on_commit(lambda: notifications.send_email(address, subject, body))


def new_staff_errors(
    username: str, first_name: str, last_name: str, email: str, credentials: str
) -> dict[str, str]:
    """What is wrong with a new account's details, by field (empty when all is well); the staff
    form shows these next to its fields, and add_staff_member refuses on them."""
    errors: dict[str, str] = {}
    if not username:
        errors["username"] = "Enter a username."
    else:
        try:
            UnicodeUsernameValidator()(username)
        except ValidationError:
            errors["username"] = (
                "Use letters, digits and @ . + - _ only (no spaces), at most 150 characters."
            )
        if len(username) > 150:
            errors["username"] = "Use at most 150 characters."
        # Case-blind: "JSmith" and "jsmith" would be two accounts nobody can tell apart.
        elif "username" not in errors and User.objects.filter(username__iexact=username).exists():
            errors["username"] = (
                "That username is taken. If this person already works at another clinic, "
                "add their existing account instead."
            )
    if not first_name:
        errors["first_name"] = "Enter the first name."
    if not last_name:
        errors["last_name"] = "Enter the last name."
    if not email:
        errors["email"] = "Enter an email address: the link to choose a password goes there."
    else:
        try:
            _email_validator(email)
        except ValidationError:
            errors["email"] = "Enter a valid email address, like name@example.org."
        else:
            if User.objects.filter(email__iexact=email).exists():
                errors["email"] = (
                    "Another account already uses this email address. If this person "
                    "already works at another clinic, add their existing account instead."
                )
    if len(credentials) > 40:
        errors["credentials"] = "Use at most 40 characters."
    return errors


@transaction.atomic
def add_staff_member(
    actor: Actor,
    *,
    username: str,
    role: str,
    first_name: str = "",
    last_name: str = "",
    email: str = "",
    credentials: str = "",
) -> Membership:
    """Create a staff account and give it `role` in the actor's clinic.

    Nobody types the new person's password: the account gets a random one nobody knows and
    the person is emailed a link (Django's password-reset token) to choose their own. A random
    password rather than an unusable one, so "Forgot your password?" works for them later.
    """
    username, email = username.strip(), email.strip()
    first_name, last_name, credentials = first_name.strip(), last_name.strip(), credentials.strip()
    errors = new_staff_errors(username, first_name, last_name, email, credentials)
    if role not in Role.values:
        errors["role"] = "Choose one of the roles listed."
    if errors:
        raise ValidationError(errors)
    _lock_clinic_staff(actor.clinic)
    _refuse_former_admin(actor)
    user = User(
        username=username,
        first_name=first_name,
        last_name=last_name,
        email=email,
        credentials=credentials,
        initials=(first_name[:1] + last_name[:1]).upper(),
    )
    user.set_password(secrets.token_urlsafe(32))
    try:
        with transaction.atomic():
            user.save()
    except IntegrityError:
        # Another clinic's admin took the same username a moment ago.
        raise ValidationError({"username": "That username is taken."}) from None
    membership = Membership.objects.create(user=user, clinic=actor.clinic, role=role)
    _membership_audit(actor, AuditAction.CREATE, membership, role=role, new_account=True)
    _send_password_setup(actor, user, role)
    return membership


@transaction.atomic
def add_existing_user(actor: Actor, *, username: str, role: str) -> Membership:
    """Give someone who already has an account (at another clinic) a role in this one."""
    username = username.strip()
    errors: dict[str, str] = {}
    user = User.objects.filter(username=username, is_active=True).first() if username else None
    if not username:
        errors["username"] = "Enter the username of their existing account."
    elif user is None:
        errors["username"] = (
            "No account has this username. Check the spelling, or add them as a new "
            "staff member."
        )
    if role not in Role.values:
        errors["role"] = "Choose one of the roles listed."
    if errors:
        raise ValidationError(errors)
    assert user is not None
    _lock_clinic_staff(actor.clinic)
    _refuse_former_admin(actor)
    existing = Membership.objects.filter(user=user, clinic=actor.clinic).first()
    if existing is not None:
        raise ValidationError(
            {
                "username": f"{user.display_name} already has a role here"
                + ("." if existing.is_active else " (inactive): reactivate them from their page.")
            }
        )
    membership = Membership.objects.create(user=user, clinic=actor.clinic, role=role)
    _membership_audit(actor, AuditAction.CREATE, membership, role=role, new_account=False)
    if user.email:
        who = actor.user.display_name if actor.user is not None else "A clinic admin"
        body = (
            f"{who} added you to {actor.clinic.name} on ketaclinic as {Role(role).label}.\n"
            "Sign in as usual and choose the clinic from the clinic switcher.\n\n"
            "If you did not expect this, tell the clinic."
        )
        address, subject = user.email, f"You now work at {actor.clinic.name} on ketaclinic"
        transaction.on_commit(lambda: notifications.send_email(address, subject, body))
    return membership


@transaction.atomic
def change_role(actor: Actor, membership: Membership, role: str) -> Membership:
    if role not in Role.values:
        raise ValidationError({"role": "Choose one of the roles listed."})
    locked = _locked_membership(actor, membership)
    _refuse_self(actor, locked, "change the role of")
    if locked.role == role:
        return locked
    if role != Role.CLINIC_ADMIN:
        _refuse_last_admin(locked, "change the role of")
    before = locked.role
    locked.role = role
    locked.save(update_fields=["role"])
    _membership_audit(actor, AuditAction.UPDATE, locked, role={"from": before, "to": role})
    return locked


@transaction.atomic
def deactivate_membership(actor: Actor, membership: Membership) -> Membership:
    """Stop someone working in this clinic. Their other clinics and their history stay; the
    next request they make finds no role here."""
    locked = _locked_membership(actor, membership)
    _refuse_self(actor, locked, "deactivate")
    if not locked.is_active:
        return locked
    _refuse_last_admin(locked, "deactivate")
    locked.is_active = False
    locked.save(update_fields=["is_active"])
    _membership_audit(actor, AuditAction.UPDATE, locked, is_active={"from": True, "to": False})
    return locked


@transaction.atomic
def reactivate_membership(actor: Actor, membership: Membership) -> Membership:
    locked = _locked_membership(actor, membership)
    _refuse_self(actor, locked, "reactivate")
    if locked.is_active:
        return locked
    locked.is_active = True
    locked.save(update_fields=["is_active"])
    _membership_audit(actor, AuditAction.UPDATE, locked, is_active={"from": False, "to": True})
    return locked


@transaction.atomic
def reset_two_factor(actor: Actor, membership: Membership) -> int:
    """Remove the member's authenticator devices; they enrol again at their next request.

    Refused for yourself: with a stolen session, resetting your own device would let the thief
    bind their own authenticator.
    """
    locked = _locked_membership(actor, membership)
    _refuse_self(actor, locked, "reset the two-factor sign-in of")
    removed, _ = TOTPDevice.objects.filter(user_id=locked.user_id).delete()
    _membership_audit(actor, AuditAction.UPDATE, locked, two_factor="reset", devices=removed)
    return removed


@transaction.atomic
def unlock_account(actor: Actor, membership: Membership) -> int:
    """Clear the member's failed sign-ins (django-axes), so a locked account opens now."""
    locked = _locked_membership(actor, membership)
    username = locked.user.username
    # Never call axes' reset without a username: with no filter it clears every account's.
    assert username
    cleared = AccessAttempt.objects.filter(username=username).delete()[0]
    _membership_audit(actor, AuditAction.UPDATE, locked, unlocked=True, attempts_cleared=cleared)
    return cleared


@transaction.atomic
def send_password_link(actor: Actor, membership: Membership) -> None:
    """Email the member a fresh link to choose a password (the first one expired, or they
    forgot it)."""
    locked = _locked_membership(actor, membership)
    if not locked.user.email:
        raise ValidationError(f"{locked.user.display_name} has no email address on file.")
    _membership_audit(actor, AuditAction.UPDATE, locked, setup_link="sent")
    _send_password_setup(actor, locked.user, locked.role)
