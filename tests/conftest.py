"""Shared personas, as in Healthchecks: a prescriber and a nurse of clinic A, every other role of
clinic A, and a clinic admin of clinic B. Data is made through the same services the app uses."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from ketaclinic.accounts.models import Clinic, User
from ketaclinic.accounts.roles import Role
from ketaclinic.accounts.services import create_clinic, create_staff
from ketaclinic.audit.context import Actor
from ketaclinic.patients import services as patient_services

PASSWORD = "correct-horse-battery-staple"


def pytest_report_header(config):  # type: ignore[no-untyped-def]
    url = os.environ.get("KETACLINIC_TEST_DATABASE_URL")
    return f"ketaclinic database: {'PostgreSQL ' + url if url else 'SQLite'}"


@dataclass
class World:
    clinic_a: Clinic
    clinic_b: Clinic
    staff_a: dict[str, User]
    admin_b: User
    prescriber_b: User

    @property
    def prescriber(self) -> User:
        return self.staff_a[Role.PRESCRIBER]

    @property
    def nurse(self) -> User:
        return self.staff_a[Role.NURSE]


def make_staff(clinic: Clinic, username: str, role: str) -> User:
    return create_staff(
        clinic=clinic,
        username=username,
        password=PASSWORD,
        role=role,
        first_name=username.title(),
        last_name="Tester",
        check_password=False,
    )


@pytest.fixture
def world(db) -> World:  # type: ignore[no-untyped-def]
    clinic_a = create_clinic(
        name="Clinic A", time_zone="America/New_York", dea_registration_number="BK1234563"
    )
    clinic_b = create_clinic(name="Clinic B", time_zone="America/Chicago")
    staff_a = {role: make_staff(clinic_a, f"{role.value}_a", role) for role in Role}
    return World(
        clinic_a,
        clinic_b,
        staff_a,
        make_staff(clinic_b, "admin_b", Role.CLINIC_ADMIN),
        make_staff(clinic_b, "prescriber_b", Role.PRESCRIBER),
    )


def signed_in(user: User) -> Client:
    """A test client signed in as `user`, past two-factor (a confirmed TOTP device)."""
    client = Client()
    client.force_login(user)
    device = TOTPDevice.objects.filter(
        user=user, confirmed=True
    ).first() or TOTPDevice.objects.create(user=user, name="test", confirmed=True)
    session = client.session
    session["otp_device_id"] = device.persistent_id
    session.save()
    return client


def register(clinic: Clinic, user: User, **overrides) -> object:  # type: ignore[no-untyped-def]
    data = {
        "given_name": "Ann",
        "family_name": "Smith",
        "date_of_birth": date(1980, 5, 17),
        "sex_at_birth": "female",
        "status": "active",
        "phone": "555-000-1111",
        "address_line1": "1 Elm St",
        "city": "Springfield",
        "state": "IL",
    }
    data.update(overrides)
    return patient_services.register_patient(Actor.system(clinic, user=user, label="test"), data)


def measure(patient, user: User, weight: str = "70.0", height: str | None = "170.0"):  # type: ignore[no-untyped-def]
    return patient_services.record_measurement(
        Actor.system(patient.clinic, user=user, label="test"),
        patient,
        weight_kg=Decimal(weight),
        height_cm=Decimal(height) if height else None,
        measured_at=timezone.now(),
    )
