from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from ketaclinic.inventory.verify import verify_all


class Command(BaseCommand):
    help = "Controlled-substance ledger tools. `ketaclinic ledger verify` checks everything."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("action", choices=["verify"])

    def handle(self, *args, **o):  # type: ignore[no-untyped-def]
        checked, problem = verify_all()
        if problem is not None:
            raise CommandError(f"Ledger check failed at {problem}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Ledger intact: {checked} entries; chain, balances and invariants verified."
            )
        )
