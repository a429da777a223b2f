from __future__ import annotations

import os
import shutil
import sys

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Serve ketaclinic with granian (WSGI), collecting static files first."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--host", default=os.environ.get("KETACLINIC_HOST", "127.0.0.1"))
        parser.add_argument(
            "--port", type=int, default=int(os.environ.get("KETACLINIC_PORT", "8000"))
        )
        parser.add_argument(
            "--workers", type=int, default=int(os.environ.get("KETACLINIC_WORKERS", "2"))
        )
        parser.add_argument(
            "--threads",
            type=int,
            default=int(os.environ.get("KETACLINIC_THREADS", "8")),
            help="blocking threads per worker",
        )

    def handle(self, *args, **opts):  # type: ignore[no-untyped-def]
        call_command("collectstatic", interactive=False, verbosity=0)
        granian = shutil.which("granian") or os.path.join(
            os.path.dirname(sys.executable), "granian"
        )
        argv = [
            granian,
            "--interface",
            "wsgi",
            "--host",
            opts["host"],
            "--port",
            str(opts["port"]),
            "--workers",
            str(opts["workers"]),
            "--blocking-threads",
            str(opts["threads"]),
            "--static-path-route",
            "/static",
            "--static-path-mount",
            str(settings.STATIC_ROOT),
            "--no-ws",
            "ketaclinic.site.wsgi:application",
        ]
        self.stdout.write(f"Serving on http://{opts['host']}:{opts['port']}/", ending="\n")
        self.stdout.flush()
        os.execv(granian, argv)  # noqa: S606 - replace this process with the server
