"""Bad input through the browser: errors sit next to their fields and nothing is stored."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from ketaclinic.accounts.roles import Role
from ketaclinic.accounts.services import create_clinic, create_staff
from ketaclinic.audit.models import AuditEntry
from ketaclinic.patients.models import Patient
from tests.conftest import PASSWORD
from tests.e2e.conftest import DESKTOP, PHONE, log_in, no_horizontal_overflow, shot

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_future_birth_date_and_bad_icd10_code_are_refused_next_to_their_fields(
    page, console_errors, viewport
):  # type: ignore[no-untyped-def]
    page.set_viewport_size({"desktop": DESKTOP, "phone": PHONE}[viewport])
    clinic = create_clinic(name="Clinic A", time_zone="America/New_York")
    create_staff(
        clinic=clinic,
        username="nurse",
        password=PASSWORD,
        role=Role.NURSE,
        first_name="Nadia",
        last_name="Tester",
        check_password=False,
        two_factor_waived=True,
    )
    log_in(page, "nurse", PASSWORD)
    expect(page).to_have_url(re.compile(r"/patients/$"))
    page.locator("main").get_by_role("link", name="New patient").click()

    # A week ahead is in the future in every time zone, whatever the clinic's today is.
    future = (timezone.now() + timedelta(days=7)).date().isoformat()
    page.fill("#id_given_name", "Future")
    page.fill("#id_family_name", "Person")
    page.fill("#id_date_of_birth", future)
    page.select_option("#id_sex_at_birth", "male")
    page.fill("#id_diagnosis_codes_text", "XYZ")
    before = AuditEntry.objects.count()
    with page.expect_response(
        lambda r: r.url.endswith("/patients/new/") and r.request.method == "POST"
    ) as answer:
        page.get_by_role("button", name="Register patient").click()
    assert answer.value.status == 200  # the form again, not a redirect to a chart
    expect(page).to_have_url(re.compile(r"/patients/new/$"))

    expect(page.locator(".form-errors")).to_contain_text("Nothing was saved.")
    dob_field = page.locator(".field.has-error", has=page.locator("#id_date_of_birth"))
    expect(dob_field.locator(".errorlist")).to_have_text("Date of birth cannot be in the future.")
    icd_field = page.locator(".field.has-error", has=page.locator("#id_diagnosis_codes_text"))
    expect(icd_field.locator(".errorlist")).to_contain_text("'XYZ' is not an ICD-10-CM code")
    expect(icd_field.locator(".errorlist")).to_contain_text("for example F33.2")
    # Exactly those two fields are marked, and what was typed is still there to fix.
    expect(page.locator(".field.has-error")).to_have_count(2)
    expect(page.locator("#id_given_name")).to_have_value("Future")
    expect(page.locator("#id_date_of_birth")).to_have_value(future)
    expect(page.locator("#id_diagnosis_codes_text")).to_have_value("XYZ")
    # Each message sits right under its own input, not somewhere else on the page.
    for field_id in ("id_date_of_birth", "id_diagnosis_codes_text"):
        gap = page.evaluate(
            """(id) => {
                const input = document.getElementById(id).getBoundingClientRect();
                const err = document.getElementById(id + '-errors').getBoundingClientRect();
                return [err.top - input.bottom, err.left - input.left];
            }""",
            field_id,
        )
        assert 0 <= gap[0] <= 60 and abs(gap[1]) <= 2, (field_id, gap)

    fits, scroll, inner = no_horizontal_overflow(page)
    shot(page, f"bad-input-new-patient-errors-{viewport}")
    assert fits, f"{scroll}px wide in a {inner}px window"
    assert not console_errors, list(console_errors)
    assert Patient.objects.count() == 0
    assert Patient.history.count() == 0  # type: ignore[attr-defined]
    assert AuditEntry.objects.count() == before
