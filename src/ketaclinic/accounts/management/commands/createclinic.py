from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from ketaclinic.accounts.services import create_clinic


class Command(BaseCommand):
    help = "Create a clinic (the tenant) for a first real install."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("name")
        parser.add_argument("--time-zone", required=True, help="e.g. America/Chicago")
        parser.add_argument("--dea", default="", help="DEA registration number of this location")
        parser.add_argument("--address", default="")
        parser.add_argument("--phone", default="")
        parser.add_argument("--rems-setting-id", default="")

    def handle(self, *args, **o):  # type: ignore[no-untyped-def]
        try:
            clinic = create_clinic(
                name=o["name"],
                time_zone=o["time_zone"],
                dea_registration_number=o["dea"],
                address=o["address"],
                phone=o["phone"],
                rems_setting_id=o["rems_setting_id"],
            )
        except ValidationError as exc:
            raise CommandError(
                "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            ) from None
        self.stdout.write(self.style.SUCCESS(f"Created clinic {clinic.pk}: {clinic.name}"))
