"""The acceptance journey, clicked through in a real browser as a prescriber would."""

from __future__ import annotations

import re
import time
from datetime import date

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import expect

from ketaclinic.accounts.roles import Role
from ketaclinic.accounts.services import create_clinic, create_staff
from ketaclinic.patients.models import BodyMeasurement, Patient
from tests.conftest import PASSWORD, make_staff, register
from tests.e2e.conftest import log_in, shot, totp_code, totp_key

pytestmark = pytest.mark.e2e

SETUP_URL = re.compile(r"/accounts/two-factor/setup/$")
VERIFY_URL = re.compile(r"/accounts/two-factor/$")
LIST_URL = re.compile(r"/patients/$")
LOGIN_URL = re.compile(r"/accounts/login/(\?.*)?$")


def _search(page, query: str) -> None:  # type: ignore[no-untyped-def]
    page.fill("#id_q", query)
    with page.expect_navigation():
        page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"/patients/search/$"))


def _record_measurement(page, weight: str, height: str = "") -> None:  # type: ignore[no-untyped-def]
    details = page.locator("details:has(#measurement-form)")
    if not details.evaluate("el => el.open"):
        details.locator("summary", has_text="Record weight and height").click()
    expect(page.locator("#id_weight_kg")).to_be_visible()
    page.fill("#id_weight_kg", weight)
    page.fill("#id_height_cm", height)
    with page.expect_navigation():
        page.locator("#measurement-form").get_by_role("button", name="Record").click()
    expect(page.locator(".messages")).to_contain_text("Measurement recorded.")


def test_prescriber_signs_up_for_two_factor_registers_measures_and_is_signed_out_when_idle(
    page, settings
):  # type: ignore[no-untyped-def]
    settings.IDLE_TIMEOUT_SECONDS = 5
    clinic = create_clinic(name="Clinic A", time_zone="America/New_York")
    prescriber = make_staff(clinic, "prescriber_a", Role.PRESCRIBER)
    assert not prescriber.two_factor_waived
    # Someone already on the list, so every search below must also leave someone out.
    register(clinic, prescriber, given_name="Ann", family_name="Smith")

    # Password first, then the app insists on setting up a second factor.
    log_in(page, "prescriber_a", PASSWORD)
    expect(page).to_have_url(SETUP_URL)
    page.goto("/patients/")
    expect(page).to_have_url(SETUP_URL)  # no way around it
    secret = page.locator("#totp-secret").inner_text()
    assert re.fullmatch(r"[A-Z2-7]{4}( [A-Z2-7]{1,4})+", secret), secret
    code, setup_step = totp_code(totp_key(secret))
    page.fill("#id_token", code)
    page.get_by_role("button", name="Turn on two-factor").click()
    expect(page).to_have_url(LIST_URL)
    expect(page.locator(".messages")).to_contain_text("Two-factor sign-in is set up.")
    assert TOTPDevice.objects.filter(user=prescriber, confirmed=True).count() == 1

    # Register a patient through the "New patient" form.
    page.locator("main").get_by_role("link", name="New patient").click()
    expect(page.get_by_role("heading", name="New patient")).to_be_visible()
    page.fill("#id_given_name", "Thessaly")
    page.fill("#id_family_name", "Quandt")
    page.fill("#id_date_of_birth", "1979-04-23")
    page.select_option("#id_sex_at_birth", "female")
    page.fill("#id_phone", "555-0100")
    page.fill("#id_diagnosis_codes_text", "f33.2")
    page.get_by_role("button", name="Register patient").click()

    patient = Patient.objects.get(family_name="Quandt")
    assert patient.date_of_birth == date(1979, 4, 23)
    assert patient.diagnosis_codes == ["F33.2"]
    assert re.fullmatch(r"\d{8}", patient.mrn) and patient.mrn != "00000018"
    expect(page).to_have_url(re.compile(rf"/patients/{patient.pk}/$"))
    expect(page.locator(".messages")).to_contain_text(f"Registered with MRN {patient.mrn}.")
    header = page.locator(".chart-header")
    expect(header.locator("h1")).to_have_text("Thessaly Quandt")
    expect(header).to_contain_text(f"MRN {patient.mrn}")
    expect(page.locator("#demographics + dl")).to_contain_text("F33.2")

    # Find the patient again from the list: by name prefix, date of birth and MRN.
    page.locator(".mainnav").get_by_role("link", name="Patients").click()
    expect(page).to_have_url(LIST_URL)
    expect(page.locator("#patient-table")).to_contain_text("Quandt, Thessaly")
    for query in ("quan", "1979-04-23", patient.mrn):
        _search(page, query)
        rows = page.locator("#patient-table tbody tr")
        expect(rows).to_have_count(1)
        expect(rows).to_contain_text("Quandt, Thessaly")
        expect(rows).to_contain_text(patient.mrn)
    _search(page, "smi")
    expect(page.locator("#patient-table tbody tr")).to_have_count(1)
    expect(page.locator("#patient-table")).not_to_contain_text("Quandt")
    _search(page, "qua thes")
    page.get_by_role("link", name="Quandt, Thessaly").click()
    expect(page).to_have_url(re.compile(rf"/patients/{patient.pk}/$"))

    # Weight and height: the form sits in a <details>.
    expect(page.locator("#latest-weight")).to_have_text("none")
    _record_measurement(page, "82.4", "171.5")
    expect(page.locator("#measurements tbody tr")).to_have_count(1)
    expect(page.locator("#measurements")).to_contain_text("82.4")
    expect(page.locator("#measurements")).to_contain_text("171.5")
    expect(page.locator("#latest-weight")).to_have_text("82.4 kg")
    expect(page.locator("details:has(#measurement-form)")).not_to_have_attribute("open", "")
    _record_measurement(page, "81.9")  # closed now: opened through its summary
    expect(page.locator("#latest-weight")).to_have_text("81.9 kg")
    expect(page.locator("#measurements tbody tr")).to_have_count(2)
    expect(page.locator("#measurements tbody tr").first).to_contain_text("81.9")
    assert sorted(
        str(w)
        for w in BodyMeasurement.objects.filter(patient=patient).values_list("weight_kg", flat=True)
    ) == ["81.9", "82.4"]

    # The registration shows in the edit history, the weights in the measurement history.
    history = page.locator("#edit-history")
    expect(history.locator("> li")).to_have_count(1)
    expect(history.locator("> li").first).to_contain_text("Registered")
    expect(history.locator("> li").first).to_contain_text("Prescriber_A Tester")
    page.goto(f"/patients/{patient.pk}/measurements/")
    table = page.locator("#measurements")
    expect(table.locator("tbody tr")).to_have_count(2)
    expect(table).to_contain_text("82.4")
    expect(table).to_contain_text("81.9")
    expect(table).to_contain_text("Prescriber_A Tester")
    page.get_by_role("link", name="Back to the chart").click()

    # Edit a demographic field: the change appears with its old and new value.
    page.get_by_role("link", name="Edit demographics").click()
    expect(page.locator("#id_phone")).to_have_value("555-0100")
    expect(page.locator("#id_diagnosis_codes_text")).to_have_value("F33.2")
    page.fill("#id_phone", "555-0199")
    page.get_by_role("button", name="Save changes").click()
    expect(page).to_have_url(re.compile(rf"/patients/{patient.pk}/$"))
    expect(page.locator(".messages")).to_contain_text("Saved.")
    latest = page.locator("#edit-history > li").first
    expect(latest).to_contain_text("Changed")
    expect(latest.locator("li")).to_have_count(1)
    expect(latest.locator("li")).to_have_text("Phone: 555-0100 → 555-0199")
    expect(latest.locator("li s")).to_have_text("555-0100")
    # Activity keeps the user signed in: pauses shorter than the timeout add up to more.
    time.sleep(3)
    page.get_by_role("link", name="Full edit history").click()
    full = page.locator("#edit-history > li")
    expect(full).to_have_count(2)
    expect(full.nth(0)).to_contain_text("Phone: 555-0100 → 555-0199")
    expect(full.nth(1)).to_contain_text("Registered")
    time.sleep(3)
    with page.expect_navigation():
        page.get_by_role("link", name="Back to the chart").click()
    # Hands off from here: idle.js reloads after 5 + 1 s and the server signs the user out.
    idle_from = time.monotonic()
    expect(page).to_have_url(re.compile(rf"/patients/{patient.pk}/$"))
    expect(page.locator(".chart-header")).to_contain_text(patient.mrn)
    shot(page, "journey-chart-before-idle")
    page.wait_for_url(LOGIN_URL, timeout=12_000)
    waited = time.monotonic() - idle_from
    assert 5 <= waited <= 10, f"signed out after {waited:.1f} s, expected about 6 s"
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.locator(".messages")).to_contain_text(
        "You were signed out after 5 seconds without activity."
    )
    expect(page.locator("body")).not_to_contain_text("Quandt")
    shot(page, "journey-signed-out-when-idle")
    page.goto(f"/patients/{patient.pk}/")
    expect(page).to_have_url(LOGIN_URL)  # the session is really gone, not just the screen

    # Sign in again: the device is confirmed now, so it asks for a code instead of setup.
    log_in(page, "prescriber_a", PASSWORD)
    expect(page).to_have_url(VERIFY_URL)
    key = TOTPDevice.objects.get(user=prescriber).bin_key
    code, _ = totp_code(key, not_before_step=setup_step + 1)
    page.fill("#id_token", code)
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(LIST_URL)
    expect(page.locator("#patient-table")).to_contain_text("Quandt, Thessaly")


def test_wrong_code_keeps_the_user_out_and_five_wrong_passwords_lock_the_account(page):  # type: ignore[no-untyped-def]
    clinic = create_clinic(name="Clinic A", time_zone="America/New_York")
    prescriber = make_staff(clinic, "prescriber_a", Role.PRESCRIBER)
    device = TOTPDevice.objects.create(user=prescriber, name="phone", confirmed=True)
    create_staff(
        clinic=clinic,
        username="nurse_a",
        password=PASSWORD,
        role=Role.NURSE,
        first_name="Nina",
        last_name="Tester",
        check_password=False,
    )

    # A wrong code: a clear error on the same page, and no way into patient pages.
    log_in(page, "prescriber_a", PASSWORD)
    expect(page).to_have_url(VERIFY_URL)
    right, _ = totp_code(device.bin_key)
    wrong = f"{(int(right) + 500_000) % 1_000_000:06d}"
    page.fill("#id_token", wrong)
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(VERIFY_URL)
    expect(page.locator("#id_token-errors")).to_have_text(
        "That code is wrong or has expired. Wait for the next code and enter it."
    )
    expect(page.locator(".field.has-error #id_token")).to_be_visible()
    shot(page, "two-factor-wrong-code")
    page.fill("#id_token", "12ab")
    page.get_by_role("button", name="Verify").click()
    expect(page.locator("#id_token-errors")).to_have_text(
        "Enter the 6 digits your authenticator app shows."
    )
    page.goto("/patients/")
    expect(page).to_have_url(VERIFY_URL)
    expect(page.get_by_role("heading", name="Enter your code")).to_be_visible()
    expect(page.locator("#patient-table")).to_have_count(0)
    # The right code still works once django-otp's one-second throttle has passed.
    time.sleep(1.2)
    right, _ = totp_code(device.bin_key)
    page.fill("#id_token", right)
    page.get_by_role("button", name="Verify").click()
    expect(page).to_have_url(LIST_URL)
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator(".messages")).to_contain_text("You are signed out.")

    # Five wrong passwords lock the account; then even the right password is refused.
    mismatch = "That username and password do not match."
    for attempt in range(1, 5):
        log_in(page, "nurse_a", f"not-the-password-{attempt}")
        expect(page.locator(".form-errors")).to_contain_text(mismatch)
        expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    log_in(page, "nurse_a", "not-the-password-5")
    expect(page.get_by_role("heading", name="Account locked for now")).to_be_visible()

    page.goto("/accounts/login/")
    page.fill("#id_username", "nurse_a")
    page.fill("#id_password", PASSWORD)
    with page.expect_response(
        lambda r: r.url.endswith("/accounts/login/") and r.request.method == "POST"
    ) as answer:
        page.get_by_role("button", name="Sign in").click()
    # The view answers the fifth failure with 403; from then on django-axes refuses with 429.
    assert answer.value.status in (403, 429), answer.value.status
    expect(page.get_by_role("heading", name="Account locked for now")).to_be_visible()
    expect(page.locator("body")).to_contain_text("Wait 15 minutes")
    shot(page, "account-locked")
    page.goto("/patients/")
    expect(page).to_have_url(LOGIN_URL)
