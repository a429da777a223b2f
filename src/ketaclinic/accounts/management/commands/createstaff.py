from __future__ import annotations

import getpass
import os

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from ketaclinic.accounts.models import Clinic
from ketaclinic.accounts.roles import Role
from ketaclinic.accounts.services import create_staff


class Command(BaseCommand):
    help = (
        "Create a staff user with a role in a clinic. The password is asked for, or read "
        "from KETACLINIC_NEW_PASSWORD (for scripts)."
    )

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("username")
        parser.add_argument("--clinic", required=True, help="clinic id or exact name")
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--first-name", default="")
        parser.add_argument("--last-name", default="")
        parser.add_argument("--email", default="")
        parser.add_argument("--credentials", default="", help="e.g. MD, RN")

    def handle(self, *args, **o):  # type: ignore[no-untyped-def]
        ref = o["clinic"]
        clinic = (
            Clinic.objects.filter(pk=int(ref)).first()
            if ref.isdigit()
            else Clinic.objects.filter(name=ref).first()
        )
        if clinic is None:
            raise CommandError(f"No clinic {ref!r}. Create one with `ketaclinic createclinic`.")
        password = os.environ.get("KETACLINIC_NEW_PASSWORD") or getpass.getpass("Password: ")
        try:
            user = create_staff(
                clinic=clinic,
                username=o["username"],
                password=password,
                role=o["role"],
                first_name=o["first_name"],
                last_name=o["last_name"],
                email=o["email"],
                credentials=o["credentials"],
            )
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from None
        self.stdout.write(
            self.style.SUCCESS(f"{user.username} is now {Role(o['role']).label} at {clinic.name}.")
        )
