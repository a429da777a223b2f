"""Seed a fresh database for the worker-restart test (run in a subprocess, not by pytest).

    python -m tests.treatment.worker_seed DUE FUTURE_SECONDS

Makes one clinic, one esketamine course and DUE booked visits whose reminders are already
due, one whose reminder falls due FUTURE_SECONDS from now, and one due in an hour. Prints the
reminders as JSON: [{"id", "send_at", "appointment"}]. Visits get distinct start times, so
every reminder's text is distinct in the worker's console output.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta


def main(due: int, future_seconds: float) -> None:
    import django

    django.setup()
    from django.utils import timezone

    from ketaclinic.accounts.roles import Role
    from ketaclinic.accounts.services import create_clinic, create_staff
    from ketaclinic.treatment.models import Appointment, Chair, Reminder
    from tests.conftest import register
    from tests.treatment import helpers

    clinic = create_clinic(name="Worker Clinic", time_zone="America/New_York")
    prescriber = create_staff(
        clinic=clinic,
        username="rx",
        password="x" * 16,
        role=Role.PRESCRIBER,
        check_password=False,
    )
    patient = register(clinic, prescriber, email="ann@example.org", phone="")
    course = helpers.esketamine_course(patient, prescriber, start=timezone.localdate())
    chair = Chair.objects.create(clinic=clinic, name="Chair 1")
    now = timezone.now().replace(microsecond=0)
    visit_day = now + timedelta(days=2)
    send_times = [now - timedelta(minutes=5) - timedelta(seconds=n) for n in range(due)]
    send_times.append(now + timedelta(seconds=future_seconds))
    send_times.append(now + timedelta(hours=1))
    out = []
    for n, send_at in enumerate(send_times):
        visit = Appointment.objects.create(
            clinic=clinic,
            course=course,
            patient=patient,
            number=100 + n,
            phase="maintenance",
            earliest=visit_day.date(),
            target=visit_day.date(),
            latest=visit_day.date(),
            starts_at=visit_day + timedelta(minutes=n),
            chair=chair,
            status="booked",
        )
        reminder = Reminder.objects.create(
            clinic=clinic,
            appointment=visit,
            send_at=send_at,
            channel="email",
            scales=["phq9", "cssrs_screen"],
        )
        out.append({"id": reminder.pk, "send_at": send_at.isoformat(), "appointment": visit.pk})
    print(json.dumps(out))


if __name__ == "__main__":
    main(int(sys.argv[1]), float(sys.argv[2]))
