"""Pages issue a fixed number of SQL queries, however many patients, measurements or audit
entries a clinic has: no query per row."""

from __future__ import annotations

import re
from collections import Counter
from datetime import date, timedelta
from decimal import Decimal

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from ketaclinic.accounts.models import User
from ketaclinic.audit.models import AuditChain, AuditEntry
from ketaclinic.patients.models import BodyMeasurement, Patient
from ketaclinic.patients.search import name_key
from tests.conftest import measure, register, signed_in


def queries(user: User, method: str, url: str, data: dict | None = None) -> list[str]:  # type: ignore[type-arg]
    """The SQL one request runs, from a fresh signed-in client (so session writes match)."""
    client = signed_in(user)
    with CaptureQueriesContext(connection) as captured:
        response = getattr(client, method)(url, data or {})
        assert response.status_code == 200, (url, response.status_code)
        if getattr(response, "streaming", False):
            b"".join(response.streaming_content)
    return [q["sql"] for q in captured.captured_queries]


def shape(sql: str) -> str:
    """The query without its literal values, so repeats of one query look the same."""
    return re.sub(r"\d+", "N", re.sub(r"'[^']*'", "?", sql))


def assert_same_count(small: list[str], large: list[str]) -> None:
    extra = Counter(map(shape, large)) - Counter(map(shape, small))
    assert len(small) == len(large), (
        f"{len(small)} queries with few rows, {len(large)} with many; more often with many:\n"
        + "\n".join(f"{n} x {q}" for q, n in extra.most_common(5))
    )


def add_patients(world, count: int, start: int = 0) -> None:  # type: ignore[no-untyped-def]
    rows = []
    for n in range(start, start + count):
        given, family = f"Given{n:04d}", f"Smith{n:04d}"
        rows.append(
            Patient(
                clinic=world.clinic_a,
                mrn=f"BULK{n:06d}",
                given_name=given,
                family_name=family,
                given_name_key=name_key(given),
                family_name_key=name_key(family),
                date_of_birth=date(1950, 1, 1) + timedelta(days=n),
                sex_at_birth="female" if n % 2 else "male",
                status="active",
                diagnosis_codes=["F33.2"],
            )
        )
    Patient.objects.bulk_create(rows, batch_size=500)


def add_measurements(patient: Patient, users: list[User], count: int) -> None:
    now = timezone.now()
    BodyMeasurement.objects.bulk_create(
        [
            BodyMeasurement(
                clinic=patient.clinic,
                patient=patient,
                measured_at=now - timedelta(hours=n + 1),
                weight_kg=Decimal("70.0") + n % 10,
                height_cm=Decimal("170.0") if n % 3 else None,
                recorded_by=users[n % len(users)],
            )
            for n in range(count)
        ],
        batch_size=500,
    )


def test_the_patient_list_costs_the_same_with_10_and_1000_patients(world):  # type: ignore[no-untyped-def]
    add_patients(world, 10)
    small = queries(world.nurse, "get", reverse("patients:list"))
    add_patients(world, 990, start=10)
    large = queries(world.nurse, "get", reverse("patients:list"))
    assert_same_count(small, large)
    last_page = queries(world.nurse, "get", reverse("patients:list"), {"page": 40})
    assert_same_count(small, last_page)


def test_the_search_costs_the_same_with_10_and_1000_patients(world):  # type: ignore[no-untyped-def]
    add_patients(world, 10)
    searches = [{"q": "smith"}, {"q": "given smi"}, {"q": "1950-01-05"}, {"q": "BULK0000"}]
    small = [queries(world.nurse, "post", reverse("patients:search"), q) for q in searches]
    add_patients(world, 990, start=10)
    large = [queries(world.nurse, "post", reverse("patients:search"), q) for q in searches]
    for s, lg in zip(small, large, strict=True):
        assert_same_count(s, lg)
    page_two = queries(world.nurse, "post", reverse("patients:search"), {"q": "smith", "page": 2})
    assert_same_count(small[0], page_two)


def test_the_chart_costs_the_same_with_10_and_1000_patients(world):  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.nurse)
    measure(patient, world.nurse)
    add_patients(world, 9)
    url = reverse("patients:chart", args=[patient.pk])
    small = queries(world.nurse, "get", url)
    add_patients(world, 990, start=9)
    large = queries(world.nurse, "get", url)
    assert_same_count(small, large)


def test_the_chart_costs_the_same_with_1_and_200_measurements(world):  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.nurse)
    measure(patient, world.nurse)
    url = reverse("patients:chart", args=[patient.pk])
    # Viewers and edits listed on the chart come from many staff, as in a real clinic.
    signed_in(world.prescriber).get(url)
    signed_in(world.staff_a["front_desk"]).get(url)
    small = queries(world.nurse, "get", url)
    add_measurements(patient, list(world.staff_a.values()), 199)
    for user in world.staff_a.values():
        signed_in(user).get(url)
    large = queries(world.nurse, "get", url)
    assert_same_count(small, large)
    # The front desk sees no clinical sections; its chart is cheaper, never dearer.
    assert len(queries(world.staff_a["front_desk"], "get", url)) <= len(large)


def test_the_measurement_list_costs_the_same_with_1_and_200_measurements(world):  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.nurse)
    measure(patient, world.nurse)
    url = reverse("patients:measurements", args=[patient.pk])
    small = queries(world.nurse, "get", url)
    add_measurements(patient, list(world.staff_a.values()), 199)
    large = queries(world.nurse, "get", url)
    assert_same_count(small, large)
    assert_same_count(small, queries(world.nurse, "get", url, {"page": 4}))


def test_the_history_page_costs_the_same_with_1_and_30_versions(world):  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.nurse)
    url = reverse("patients:history", args=[patient.pk])
    small = queries(world.nurse, "get", url)
    staff = list(world.staff_a.values())
    for n in range(29):
        patient.phone = f"555-000-{n:04d}"
        patient._history_user = staff[n % len(staff)]  # type: ignore[attr-defined]
        patient.save()
    large = queries(world.nurse, "get", url)
    assert_same_count(small, large)


def add_audit_entries(world, count: int) -> None:  # type: ignore[no-untyped-def]
    """Rows for the viewer to list (hashes are not checked here)."""
    users = list(world.staff_a.values())
    head, _ = AuditChain.objects.get_or_create(clinic=world.clinic_a)
    start = head.last_sequence
    now = timezone.now()
    AuditEntry.objects.bulk_create(
        [
            AuditEntry(
                clinic=world.clinic_a,
                sequence=start + n + 1,
                at=now - timedelta(minutes=n),
                actor=users[n % len(users)] if n % 7 else None,
                patient_id=n % 50 + 1,
                action="read",
                object_type="patient_chart",
                object_id=str(n % 50 + 1),
                ip="127.0.0.1",
                reason="override reason" if n % 11 == 0 else "",
                previous_hash="0" * 64,
                entry_hash="0" * 64,
            )
            for n in range(count)
        ],
        batch_size=500,
    )
    head.last_sequence = start + count
    head.save(update_fields=["last_sequence"])


def test_the_audit_log_page_costs_the_same_with_few_and_many_entries(world):  # type: ignore[no-untyped-def]
    admin = world.staff_a["clinic_admin"]
    add_audit_entries(world, 5)
    small = queries(admin, "get", reverse("audit:log"))
    add_audit_entries(world, 600)
    large = queries(admin, "get", reverse("audit:log"))
    assert_same_count(small, large)
    filtered = queries(admin, "get", reverse("audit:log"), {"patient": 3, "page": 2})
    assert_same_count(small, filtered)


def test_the_audit_export_costs_the_same_with_few_and_many_entries(world):  # type: ignore[no-untyped-def]
    admin = world.staff_a["clinic_admin"]
    add_audit_entries(world, 5)
    small = queries(admin, "get", reverse("audit:export"))
    add_audit_entries(world, 600)
    large = queries(admin, "get", reverse("audit:export"))
    assert_same_count(small, large)
