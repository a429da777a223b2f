from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from ketaclinic.audit.verify import verify_all


class Command(BaseCommand):
    help = "Audit log tools. `ketaclinic audit verify` recomputes every clinic's hash chain."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("action", choices=["verify"])

    def handle(self, *args, **o):  # type: ignore[no-untyped-def]
        checked, problem = verify_all()
        if problem is not None:
            raise CommandError(f"Audit chain broken at {problem}")
        self.stdout.write(self.style.SUCCESS(f"Audit chain intact: {checked} entries verified."))
