"""Background work for alerts, run by `ketaclinic worker` (huey)."""

from __future__ import annotations

from huey import crontab
from huey.contrib.djhuey import db_periodic_task, db_task

from ketaclinic import notifications
from ketaclinic.measures import services
from ketaclinic.measures.models import Alert


@db_task()
def notify_alert_opened(alert_id: int) -> None:
    """Email the responsible prescriber: a link to the alert, no clinical detail."""
    alert = Alert.objects.select_related("assigned_to").filter(pk=alert_id).first()
    if alert is None or alert.acknowledged_at is not None:
        # Acknowledged before the worker got to it (a queue backlog, a retry): nothing to do.
        return
    if alert.assigned_to is None or not alert.assigned_to.email:
        return
    notifications.send_email(
        alert.assigned_to.email,
        f"ketaclinic: new {alert.get_severity_display().lower()}-priority alert",
        f"A patient's rating scale needs your review:\n{services.alert_link(alert)}\n",
    )


@db_periodic_task(crontab(minute="*"))
def escalate_overdue_alerts() -> None:
    services.escalate_overdue_alerts()
