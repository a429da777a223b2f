"""The clinic settings page: clinic admins change the clinic's details and defaults, audited."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.urls import reverse

from ketaclinic.accounts.models import Clinic
from ketaclinic.accounts.roles import Role
from ketaclinic.accounts.services import CLINIC_SETTING_FIELDS
from ketaclinic.audit.models import AuditEntry
from tests.conftest import signed_in

URL = reverse("accounts:clinic_settings")


def current_values(clinic: Clinic) -> dict[str, object]:
    values: dict[str, object] = {}
    for name in CLINIC_SETTING_FIELDS:
        value = getattr(clinic, name)
        if isinstance(value, bool):
            if value:
                values[name] = "on"
        else:
            values[name] = value
    return values


@pytest.fixture
def admin(world):  # type: ignore[no-untyped-def]
    return world.staff_a[Role.CLINIC_ADMIN]


def test_it_saves_a_change_and_audits_old_and_new(world, admin) -> None:  # type: ignore[no-untyped-def]
    data = current_values(world.clinic_a) | {
        "max_iv_mg_per_kg": "0.80",
        "reminder_hours_before": 48,
    }
    response = signed_in(admin).post(URL, data)
    assert response.status_code == 302
    world.clinic_a.refresh_from_db()
    assert world.clinic_a.max_iv_mg_per_kg == Decimal("0.80")
    assert world.clinic_a.reminder_hours_before == 48
    entry = AuditEntry.objects.get(object_type="clinic_settings", clinic=world.clinic_a)
    assert entry.actor == admin
    assert entry.detail["changes"]["max_iv_mg_per_kg"] == {"from": "0.75", "to": "0.80"}
    assert set(entry.detail["changes"]) == {"max_iv_mg_per_kg", "reminder_hours_before"}


def test_it_refuses_an_iv_maximum_outside_the_studied_range(world, admin) -> None:  # type: ignore[no-untyped-def]
    data = current_values(world.clinic_a) | {"max_iv_mg_per_kg": "5.00", "phone": "555-1"}
    response = signed_in(admin).post(URL, data)
    assert response.status_code == 200
    assert "Enter a value from 0.10 to 1.00" in response.content.decode()
    world.clinic_a.refresh_from_db()
    assert world.clinic_a.max_iv_mg_per_kg == Decimal("0.75")
    assert world.clinic_a.phone != "555-1"
    assert not AuditEntry.objects.filter(object_type="clinic_settings").exists()


def test_it_refuses_an_empty_crisis_text(world, admin) -> None:  # type: ignore[no-untyped-def]
    data = current_values(world.clinic_a) | {"crisis_text": "  "}
    response = signed_in(admin).post(URL, data)
    assert response.status_code == 200
    assert "crisis resources" in response.content.decode()


def test_it_refuses_a_malformed_dea_number(world, admin) -> None:  # type: ignore[no-untyped-def]
    data = current_values(world.clinic_a) | {"dea_registration_number": "BK1234564"}
    response = signed_in(admin).post(URL, data)
    assert response.status_code == 200
    world.clinic_a.refresh_from_db()
    assert world.clinic_a.dea_registration_number == "BK1234563"


def test_an_unchanged_form_writes_no_audit_entry(world, admin) -> None:  # type: ignore[no-untyped-def]
    response = signed_in(admin).post(URL, current_values(world.clinic_a))
    assert response.status_code == 302
    assert not AuditEntry.objects.filter(object_type="clinic_settings").exists()


@pytest.mark.parametrize("role", [r for r in Role if r != Role.CLINIC_ADMIN])
def test_other_roles_cannot_change_settings(world, role) -> None:  # type: ignore[no-untyped-def]
    data = current_values(world.clinic_a) | {"max_iv_mg_per_kg": "0.90"}
    response = signed_in(world.staff_a[role]).post(URL, data)
    assert response.status_code == 403
    world.clinic_a.refresh_from_db()
    assert world.clinic_a.max_iv_mg_per_kg == Decimal("0.75")


def test_it_changes_only_the_admins_own_clinic(world) -> None:  # type: ignore[no-untyped-def]
    data = current_values(world.clinic_b) | {"name": "Clinic B renamed"}
    signed_in(world.admin_b).post(URL, data)
    world.clinic_a.refresh_from_db()
    world.clinic_b.refresh_from_db()
    assert world.clinic_a.name == "Clinic A"
    assert world.clinic_b.name == "Clinic B renamed"
