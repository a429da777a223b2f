"""`ketaclinic demo`: the Demo Ketamine Clinic. Each feature adds its own part here, so the
demo always shows everything that works."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from ketaclinic.accounts.models import Clinic
from ketaclinic.accounts.roles import Role
from ketaclinic.accounts.services import create_clinic, create_staff
from ketaclinic.audit.context import Actor
from ketaclinic.demo.scales import load_scales
from ketaclinic.demo.synthetic import person
from ketaclinic.patients import services as patient_services

DEMO_CLINIC = "Demo Ketamine Clinic"
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
    # Rating scales: their own random stream, so the people above stay the same.
    load_scales(
        clinic,
        {
            "nurse": users[Role.NURSE],
            "prescriber": users[Role.PRESCRIBER],
            "admin": users[Role.CLINIC_ADMIN],
        },
        random.Random(seed + 1),
        today,
    )
    return clinic
