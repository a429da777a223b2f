"""Writes for clinics and staff (used by the CLI commands and the demo)."""

from __future__ import annotations

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.db import transaction

from ketaclinic.accounts.models import Clinic, Membership, User
from ketaclinic.accounts.roles import Role


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
