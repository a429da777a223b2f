"""`ketaclinic demo`: the Demo Ketamine Clinic. Each feature adds its own part here, so the
demo always shows everything that works."""

from __future__ import annotations

import random
from datetime import datetime, time, timedelta
from decimal import Decimal
from functools import partial
from zoneinfo import ZoneInfo

from django.db import transaction
from django.utils import timezone

from ketaclinic.accounts.models import Clinic
from ketaclinic.accounts.roles import Role
from ketaclinic.accounts.services import create_clinic, create_staff
from ketaclinic.audit.context import Actor
from ketaclinic.demo.courses_demo import load_courses_demo
from ketaclinic.demo.dosing_demo import Runner as DosingRunner
from ketaclinic.demo.dosing_demo import complete_session, start_today
from ketaclinic.demo.inventory_demo import load_inventory_demo
from ketaclinic.demo.scales import load_scales
from ketaclinic.demo.synthetic import person
from ketaclinic.patients import services as patient_services

DEMO_CLINIC = "Demo Ketamine Clinic"
DOSING_DAYS = 4  # the last days' sessions run in full through the dosing session
DEMO_PASSWORD = "ketaclinic-demo"  # noqa: S105 - printed for the demo on purpose
DEMO_STAFF = [
    # username, role, first, last, credentials
    ("prescriber", Role.PRESCRIBER, "Maya", "Patel", "MD"),
    ("nurse", Role.NURSE, "Sam", "Rivera", "RN"),
    ("frontdesk", Role.FRONT_DESK, "Jordan", "Lee", ""),
    ("admin", Role.CLINIC_ADMIN, "Alex", "Morgan", ""),
    ("auditor", Role.AUDITOR, "Casey", "Brooks", "CPA"),
]


def demo_exists() -> bool:
    return Clinic.objects.filter(name=DEMO_CLINIC).exists()


@transaction.atomic
def load_demo(patients: int = 40, seed: int = 2026) -> Clinic:
    rng = random.Random(seed)
    clinic = create_clinic(
        name=DEMO_CLINIC,
        time_zone="America/New_York",
        dea_registration_number="BK1234563",
        address="100 Main St, Suite 200\nSpringfield, IL 62701",
        phone="555-010-2000",
        rems_setting_id="HCS-DEMO-0001",
    )
    users = {}
    for username, role, first, last, credentials in DEMO_STAFF:
        users[role] = create_staff(
            clinic=clinic,
            username=username,
            password=DEMO_PASSWORD,
            role=role,
            first_name=first,
            last_name=last,
            email=f"{username}@demo.ketaclinic.invalid",
            credentials=credentials,
            check_password=False,
            two_factor_waived=True,
        )
    # A second site so the clinic switcher has something to switch to.
    northside = create_clinic(
        name="Demo Northside Clinic",
        time_zone="America/Chicago",
        dea_registration_number="BM7654329",
    )
    create_staff(
        clinic=northside,
        username="admin",
        password=DEMO_PASSWORD,
        role=Role.CLINIC_ADMIN,
        check_password=False,
    )

    today = timezone.localdate()
    for target, count, registrar, clinician in (
        (clinic, patients, users[Role.FRONT_DESK], users[Role.NURSE]),
        (northside, 5, users[Role.CLINIC_ADMIN], users[Role.CLINIC_ADMIN]),
    ):
        desk = Actor.system(target, user=registrar, label="demo")
        nurse = Actor.system(target, user=clinician, label="demo")
        for _ in range(count):
            p = person(rng, today)
            data = {k: v for k, v in vars(p).items() if k not in {"height_cm", "weight_kg"}}
            patient = patient_services.register_patient(desk, data)
            weight = p.weight_kg
            visits = rng.randint(1, 6)
            for visit in range(visits):
                when = timezone.now() - timedelta(
                    days=14 * (visits - visit), hours=rng.randint(0, 6)
                )
                weight = round(weight + rng.uniform(-1.2, 1.0), 1)
                patient_services.record_measurement(
                    nurse,
                    patient,
                    weight_kg=Decimal(str(weight)),
                    height_cm=Decimal(str(p.height_cm)) if visit == 0 else None,
                    measured_at=when,
                )
    by_name = {
        "nurse": users[Role.NURSE],
        "prescriber": users[Role.PRESCRIBER],
        "admin": users[Role.CLINIC_ADMIN],
        "frontdesk": users[Role.FRONT_DESK],
    }
    # Rating scales: their own random stream, so the people above stay the same.
    plans = load_scales(clinic, by_name, random.Random(seed + 1), today)
    # Courses in every phase that follow those histories, chairs, bookings and reminders.
    tz = ZoneInfo(clinic.time_zone)
    dosing_from = datetime.combine(
        timezone.localdate(timezone=tz) - timedelta(days=DOSING_DAYS), time(0), tzinfo=tz
    )
    courses = load_courses_demo(
        clinic, by_name, plans, random.Random(seed + 2), dosing_from=dosing_from
    )
    # The controlled-substance ledger: a month of entries for the sessions given; the last
    # days' sessions run in full through the dosing session, which posts their entries.
    runner = DosingRunner(clinic, by_name, DEMO_PASSWORD, random.Random(seed + 4))
    load_inventory_demo(
        clinic,
        users,
        password=DEMO_PASSWORD,
        seed=seed + 3,
        visits=courses.visits,
        full_session=partial(complete_session, runner),
    )
    runner.amend_one()
    # Sessions in progress now, on the chair board.
    start_today(runner)
    return clinic
