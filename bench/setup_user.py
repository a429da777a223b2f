"""Create or refresh the bench nurse in the bench clinic; run by bench/run.py.

Usage (with the bench environment): python bench/setup_user.py "<clinic name>" <username>
The password comes from KETACLINIC_NEW_PASSWORD (as for `ketaclinic createstaff`). Prints one
JSON line: {"clinic_id": ..., "user_id": ..., "created": ...}.

Idempotent: a new user goes through accounts.services.create_staff (the path `createstaff`
takes); an existing one gets the new password, an active nurse membership in the clinic and
no other active membership (so the clinic is chosen at sign-in without a prompt), no TOTP
device and no recorded failed logins.
"""

from __future__ import annotations

import json
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ketaclinic.site.settings")
    import django

    django.setup()
    from django.db import transaction
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from ketaclinic.accounts.models import Clinic, Membership, User
    from ketaclinic.accounts.roles import Role
    from ketaclinic.accounts.services import create_staff

    clinic_name, username = sys.argv[1], sys.argv[2]
    password = os.environ["KETACLINIC_NEW_PASSWORD"]
    clinic = Clinic.objects.filter(name=clinic_name).first()
    if clinic is None:
        sys.exit(f"No clinic named {clinic_name!r}: has the seed run?")
    if clinic.two_factor_for_all_staff:
        sys.exit(f"{clinic_name} requires two-factor for all staff: no bench sign-in.")
    with transaction.atomic():
        user = User.objects.filter(username=username).first()
        created = user is None
        if user is None:
            user = create_staff(
                clinic=clinic,
                username=username,
                password=password,
                role=Role.NURSE,
                first_name="Bench",
                last_name="Nurse",
                credentials="RN",
            )
        else:
            user.set_password(password)
            user.is_active = True
            user.save(update_fields=["password", "is_active"])
            Membership.objects.update_or_create(
                user=user, clinic=clinic, defaults={"role": Role.NURSE, "is_active": True}
            )
        Membership.objects.filter(user=user).exclude(clinic=clinic).update(is_active=False)
        TOTPDevice.objects.filter(user=user).delete()
    try:  # django-axes: forget earlier failed sign-ins so a lockout cannot linger
        from axes.models import AccessAttempt

        AccessAttempt.objects.filter(username=username).delete()
    except Exception as exc:  # noqa: BLE001 - best effort, the login step reports a lockout
        print(f"note: could not reset axes attempts: {exc}", file=sys.stderr)
    print(json.dumps({"clinic_id": clinic.pk, "user_id": user.pk, "created": created}))


if __name__ == "__main__":
    main()
