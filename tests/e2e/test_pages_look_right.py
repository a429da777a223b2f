"""Every staff page at desktop and phone size: renders, no console or CSP errors, no sideways
scrolling on a phone. Screenshots go to test-artifacts/e2e/ for a human to look at."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from ketaclinic.accounts.roles import Role
from ketaclinic.accounts.services import create_clinic, create_staff
from ketaclinic.audit.context import Actor
from ketaclinic.patients import services as patient_services
from tests.conftest import PASSWORD, measure, register
from tests.e2e.conftest import DESKTOP, PHONE, log_in, no_horizontal_overflow, shot

pytestmark = pytest.mark.e2e

VIEWPORTS = {"desktop": DESKTOP, "phone": PHONE}


def _demo_like_clinic():  # type: ignore[no-untyped-def]
    clinic = create_clinic(
        name="Riverside Ketamine & Esketamine Clinic", time_zone="America/New_York"
    )
    people = {}
    for username, role, first, last, creds in [
        ("nurse", Role.NURSE, "Nadia", "Okonkwo-Hernández", "RN"),
        ("admin", Role.CLINIC_ADMIN, "Adam", "Ministrator", ""),
        ("prescriber", Role.PRESCRIBER, "Priya", "Raghunathan", "MD"),
    ]:
        people[role] = create_staff(
            clinic=clinic,
            username=username,
            password=PASSWORD,
            role=role,
            first_name=first,
            last_name=last,
            credentials=creds,
            check_password=False,
            two_factor_waived=True,  # as `ketaclinic demo` does
        )
    nurse = people[Role.NURSE]
    patient = register(
        clinic,
        nurse,
        given_name="Maximiliana",
        family_name="Vandenberghe-Castellanos",
        preferred_name="Max",
        email="maximiliana.vandenberghe-castellanos@example.org",
        address_line2="Apartment 12B, Building North",
        emergency_contact_name="Joaquín Vandenberghe",
        emergency_contact_phone="555-010-2233",
        emergency_contact_relationship="brother",
        referring_clinician="Dr. Evelyn Abernathy-Whitcombe",
        referring_clinician_contact="evelyn.abernathy-whitcombe@psychiatry.example.org",
        diagnosis_codes=["F33.2", "F41.1", "F43.10"],
    )
    for weight, height in [("101.3", "182.0"), ("99.8", None), ("98.6", None)]:
        measure(patient, nurse, weight=weight, height=height)
    patient_services.update_patient(
        Actor.system(clinic, user=nurse, label="test"),
        patient,
        {"phone": "555-000-9999", "status": "paused", "city": "Springfield Gardens"},
    )
    for given, family in [("Ann", "Smith"), ("Bo", "Smithers"), ("Li", "Wu")]:
        register(clinic, nurse, given_name=given, family_name=family)
    return clinic, people, patient


def _check(page, console_errors, label: str, viewport: str, heading: str) -> None:  # type: ignore[no-untyped-def]
    expect(page.locator("h1").first).to_contain_text(heading)
    page.wait_for_load_state("load")
    fits, scroll, inner = no_horizontal_overflow(page)
    shot(page, f"look-{label}-{viewport}")
    assert fits, f"{label} at {viewport}: page is {scroll}px wide in a {inner}px window"
    assert not console_errors, f"{label} at {viewport}: {list(console_errors)}"


def _visit(page, console_errors, path, label, viewport, heading) -> None:  # type: ignore[no-untyped-def]
    response = page.goto(path)
    assert response is not None and response.status == 200, (label, response and response.status)
    _check(page, console_errors, label, viewport, heading)


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_staff_pages_render_cleanly(page, console_errors, viewport):  # type: ignore[no-untyped-def]
    page.set_viewport_size(VIEWPORTS[viewport])
    _clinic, _people, patient = _demo_like_clinic()
    pid = patient.pk

    page.goto("/accounts/login/")
    _check(page, console_errors, "login", viewport, "Sign in")
    log_in(page, "nurse", PASSWORD)
    expect(page).to_have_url(re.compile(r"/patients/$"))
    expect(page.locator(".who .user")).to_have_text("Nadia Okonkwo-Hernández, RN")
    _check(page, console_errors, "patient-list", viewport, "Patients")
    expect(page.locator("#patient-table tbody tr")).to_have_count(4)

    _visit(page, console_errors, f"/patients/{pid}/", "chart", viewport, "Maximiliana")
    expect(page.locator("#latest-weight")).to_have_text("98.6 kg")
    _visit(page, console_errors, f"/patients/{pid}/edit/", "edit-form", viewport, "Edit")
    _visit(page, console_errors, "/patients/new/", "new-patient", viewport, "New patient")
    _visit(
        page,
        console_errors,
        f"/patients/{pid}/measurements/",
        "measurements",
        viewport,
        "Weight and height",
    )
    expect(page.locator("#measurements tbody tr")).to_have_count(3)
    _visit(page, console_errors, f"/patients/{pid}/history/", "history", viewport, "Edit history")
    expect(page.locator("#edit-history > li")).to_have_count(2)

    page.goto("/patients/")
    page.fill("#id_q", "smi")
    with page.expect_navigation():
        page.get_by_role("button", name="Search").click()
    _check(page, console_errors, "search-results", viewport, "Find a patient")
    expect(page.locator("#patient-table tbody tr")).to_have_count(2)

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    log_in(page, "admin", PASSWORD)
    expect(page).to_have_url(re.compile(r"/patients/$"))
    page.locator(".mainnav").get_by_role("link", name="Audit log").click()
    _check(page, console_errors, "audit-log", viewport, "Audit log")
    expect(page.locator("#audit-table tbody tr").first).to_be_visible()
    page.locator(".mainnav").get_by_role("link", name="Staff").click()
    _check(page, console_errors, "staff", viewport, "Staff of Riverside")
    expect(page.locator("table tbody tr")).to_have_count(3)
