"""Periodic housekeeping run by `ketaclinic worker` (huey)."""

from __future__ import annotations

from django.core.management import call_command
from huey import crontab
from huey.contrib.djhuey import db_periodic_task


@db_periodic_task(crontab(minute="17"))
def clear_expired_sessions() -> None:
    """Drop expired sessions hourly so the session table stays small."""
    call_command("clearsessions")
