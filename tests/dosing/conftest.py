"""Dosing-session fixtures, built through the services the pages use.

Sessions run on a fixed day in the past (``DAY``) at explicit clinic times, so the clock of a
session (check-in 08:30, first device 09:00, discharge 11:05 ...) never depends on when the
suite runs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from ketaclinic.accounts.roles import Role
from ketaclinic.audit.context import Actor
from ketaclinic.dosing import services
from ketaclinic.dosing.models import DosingSession
from ketaclinic.inventory.models import Container
from ketaclinic.measures.services import record_response
from ketaclinic.patients.models import Patient
from ketaclinic.treatment import services as treatment
from ketaclinic.treatment.models import Appointment, TreatmentCourse
from tests.conftest import PASSWORD, measure
from tests.inventory.conftest import Stock, stock  # noqa: F401  (fixture)
from tests.treatment.helpers import assessment, chair

ALDRETE_10 = [2, 2, 2, 2, 2]
ALDRETE_8 = [2, 2, 1, 1, 2]
MEDS_NONE = {
    "benzodiazepines": False,
    "sedative_hypnotics": False,
    "opioids": False,
    "psychostimulants": False,
    "maois": False,
}


def day() -> date:
    return timezone.localdate() - timedelta(days=10)


@dataclass
class Clinic:
    stock: Stock
    tz: ZoneInfo

    @property
    def nurse(self) -> Actor:
        return self.stock.nurse

    @property
    def prescriber(self) -> Actor:
        return self.stock.prescriber

    @property
    def front_desk(self) -> Actor:
        return self.stock.actor(Role.FRONT_DESK)

    def at(self, when: date, hh: int, mm: int = 0) -> datetime:
        return datetime.combine(when, time(hh, mm), tzinfo=self.tz)

    def kits(self, count: int = 2, lot: str = "ESK1", **kw: Any) -> list[Container]:
        return self.stock.receive(
            count, lot_number=lot, product=self.stock.spray, received_on=day() - timedelta(30), **kw
        )

    def vials(self, count: int = 1, lot: str = "K100", **kw: Any) -> list[Container]:
        return self.stock.receive(
            count,
            lot_number=lot,
            product=self.stock.ketamine,
            received_on=day() - timedelta(30),
            **kw,
        )

    def witness(self) -> dict[str, str]:
        return {
            "witness_username": self.stock.world.prescriber.username,
            "witness_secret": PASSWORD,
        }


@pytest.fixture
def clinic(stock: Stock) -> Clinic:  # noqa: F811
    c = stock.clinic
    c.rems_setting_id = "HCS-000123"
    c.phone = "555-0100"
    c.address = "1 Main St, Springfield"
    c.save(update_fields=["rems_setting_id", "phone", "address"])
    return Clinic(stock, ZoneInfo(c.time_zone))


def esketamine_course(clinic: Clinic, patient: Patient, start: date, dose: int = 84):
    patient.rems_patient_id = "REMS-P-42"
    patient.rems_enrolled_on = start - timedelta(days=30)
    patient.save(update_fields=["rems_patient_id", "rems_enrolled_on"])
    signed = assessment(patient, clinic.stock.world.prescriber)
    return treatment.start_course(
        clinic.prescriber,
        patient,
        signed,
        protocol="esketamine_trd",
        start_date=start,
        indication="trd",
        responsible_prescriber=clinic.stock.world.prescriber,
        dose_mg=dose,
    )


def iv_course(clinic: Clinic, patient: Patient, start: date) -> TreatmentCourse:
    measure(patient, clinic.stock.world.nurse, weight="70.0")
    signed = assessment(patient, clinic.stock.world.prescriber, drug="ketamine")
    return treatment.start_course(
        clinic.prescriber,
        patient,
        signed,
        protocol="iv_ketamine_standard",
        start_date=start,
        indication="trd",
        responsible_prescriber=clinic.stock.world.prescriber,
        mg_per_kg=Decimal("0.5"),
        infusion_minutes=40,
    )


def booked(
    clinic: Clinic, course: TreatmentCourse, number: int, when: datetime, chair_name: str = ""
) -> Appointment:
    appt = course.appointments.get(number=number)
    treatment.book(
        clinic.nurse,
        appt,
        starts_at=when,
        chair=chair(clinic.stock.clinic, chair_name or f"Chair {number % 3 + 1}"),
        reason="test: session on a fixed day",
    )
    appt.refresh_from_db()
    return appt


def predose(
    clinic: Clinic, session: DosingSession, when: datetime, **overrides: Any
) -> services.selectors.Gate:
    values: dict[str, Any] = {
        "sbp": 128,
        "dbp": 82,
        "hr": 74,
        "spo2": 98,
        "rr": 14,
        "fasting": True,
        "ride_name": "Sam Carter",
        "ride_phone": "555-0199",
        "pregnancy_status": "not_pregnant",
        "medicines": dict(MEDS_NONE),
        "scales_done": False,
        "scales_skip_reason": "patient declined the questionnaires today",
        "cssrs_reviewed": True,
        "taken_at": when,
    }
    values.update(overrides)
    session.refresh_from_db()
    return services.record_predose(
        clinic.nurse, session, expected_version=session.version, **values
    )


def checked_in(clinic: Clinic, appt: Appointment, when: datetime) -> DosingSession:
    return services.check_in(clinic.nurse, appt, at=when)


def fresh(session: DosingSession) -> DosingSession:
    session.refresh_from_db()
    return session


def run_esketamine(
    clinic: Clinic,
    appt: Appointment,
    when: date,
    *,
    kit: Container,
    discharge_at: tuple[int, int] | None = (11, 5),
) -> DosingSession:
    """A whole esketamine session on ``when``: check-in 08:30, devices 09:00/09:05(/09:10),
    vitals, Aldrete 10, clinician stability and discharge."""
    session = checked_in(clinic, appt, clinic.at(when, 8, 30))
    predose(clinic, session, clinic.at(when, 8, 45))
    devices = int(fresh(session).dose_mg) // 28
    for n in range(devices):
        services.record_device(clinic.nurse, session, container=kit, at=clinic.at(when, 9, 5 * n))
    end = 5 * (devices - 1)
    services.record_vitals(
        clinic.nurse,
        session,
        sbp=138,
        dbp=86,
        hr=80,
        spo2=97,
        moaas=5,
        taken_at=clinic.at(when, 9, end + 40),
    )
    services.record_vitals(
        clinic.nurse,
        session,
        sbp=126,
        dbp=80,
        hr=72,
        spo2=98,
        moaas=5,
        taken_at=clinic.at(when, 10, 55),
    )
    services.record_discharge_score(
        clinic.nurse, session, answers=ALDRETE_10, administered_at=clinic.at(when, 10, 56)
    )
    services.confirm_stability(
        clinic.prescriber, session, expected_version=fresh(session).version, note="stable"
    )
    if discharge_at is not None:
        services.discharge(
            clinic.nurse,
            session,
            expected_version=fresh(session).version,
            ride_present=True,
            ready_to_leave_minutes=90,
            at=clinic.at(when, *discharge_at),
        )
    return fresh(session)


def scales_today(clinic: Clinic, patient: Patient, when: datetime) -> None:
    record_response(clinic.nurse, patient, "phq9", [1] * 9, administered_at=when)
    record_response(clinic.nurse, patient, "cssrs_screen", [False, False], administered_at=when)
