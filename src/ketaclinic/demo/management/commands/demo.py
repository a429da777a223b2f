from __future__ import annotations

import subprocess
import sys

from django.core.management import call_command
from django.core.management.base import BaseCommand

from ketaclinic.demo.loader import DEMO_CLINIC, DEMO_PASSWORD, DEMO_STAFF, demo_exists, load_demo


class Command(BaseCommand):
    help = (
        "Load the Demo Ketamine Clinic if it is not there yet, then serve it with the "
        "background worker beside it. --no-serve loads and exits."
    )

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--no-serve", action="store_true")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args, **o):  # type: ignore[no-untyped-def]
        if demo_exists():
            self.stdout.write(f"{DEMO_CLINIC} is already loaded.")
        else:
            self.stdout.write(f"Loading {DEMO_CLINIC}...")
            load_demo()
            self.stdout.write(self.style.SUCCESS(f"Loaded {DEMO_CLINIC}."))
        self.stdout.write("\nDemo logins (password for all: " + DEMO_PASSWORD + "):")
        for username, role, first, last, _ in DEMO_STAFF:
            self.stdout.write(f"  {username:<11} {role.label} ({first} {last})")
        self.stdout.write("  Two-factor sign-in is waived for these demo users only.\n")
        if o["no_serve"]:
            return
        self.stdout.write(self.style.SUCCESS(f"Open http://127.0.0.1:{o['port']}/ in a browser."))
        self.stdout.flush()
        worker = subprocess.Popen([sys.executable, "-m", "ketaclinic.site.cli", "worker"])  # noqa: S603
        try:
            call_command("serve", port=o["port"])
        finally:
            worker.terminate()
