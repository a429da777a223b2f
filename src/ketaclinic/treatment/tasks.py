"""Reminders before visits, sent by `ketaclinic worker` (huey) every minute."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task

from ketaclinic.treatment import services


@db_periodic_task(crontab(minute="*"))
def send_due_reminders() -> None:
    services.send_due_reminders()
