from __future__ import annotations

from django.core.management.base import BaseCommand

from ketaclinic.accounts.roles import permissions_markdown


class Command(BaseCommand):
    help = "Print the role-to-permission matrix as a Markdown table (docs/permissions.md)."

    def handle(self, *args, **o):  # type: ignore[no-untyped-def]
        self.stdout.write(permissions_markdown(), ending="")
