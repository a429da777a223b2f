"""A clinic admin adds a nurse in the browser; the nurse chooses a password from the emailed
link and signs in; the admin deactivates them and their next click finds no clinic."""

from __future__ import annotations

import re
from urllib.parse import urlparse

import pytest
from django.core import mail
from playwright.sync_api import expect

from ketaclinic.accounts.roles import Role
from ketaclinic.accounts.services import create_clinic, create_staff
from tests.conftest import PASSWORD
from tests.e2e.conftest import PHONE, log_in, no_horizontal_overflow, shot

pytestmark = pytest.mark.e2e


def test_an_admin_adds_a_nurse_who_sets_a_password_and_is_later_deactivated(  # type: ignore[no-untyped-def]
    page, browser, live_server, console_errors
):
    clinic = create_clinic(name="Lakeside Clinic", time_zone="America/Chicago")
    create_staff(
        clinic=clinic,
        username="boss",
        password=PASSWORD,
        role=Role.CLINIC_ADMIN,
        first_name="Bea",
        last_name="Boss",
        check_password=False,
        two_factor_waived=True,
    )
    log_in(page, "boss", PASSWORD)
    page.locator(".mainnav").get_by_role("link", name="Staff").click()
    page.get_by_role("link", name="Add staff member").click()
    page.fill("#id_new-first_name", "Noor")
    page.fill("#id_new-last_name", "Haddad")
    page.fill("#id_new-credentials", "RN")
    page.fill("#id_new-email", "noor@example.test")
    page.fill("#id_new-username", "nhaddad")
    page.select_option("#id_new-role", "nurse")
    page.get_by_role("button", name="Add and send the email").click()
    expect(page.locator(".messages")).to_contain_text("An email to noor@example.test")
    expect(page.locator("h1")).to_have_text("Noor Haddad, RN")

    # The nurse opens the emailed link in their own browser and chooses a password.
    [message] = [m for m in mail.outbox if m.to == ["noor@example.test"]]
    found = re.search(r"https?://\S+", message.body)
    assert found is not None
    nurse = browser.new_context(viewport=PHONE, base_url=live_server.url).new_page()
    nurse.goto(urlparse(found.group(0)).path)
    nurse.fill("#id_new_password1", "noors-own-passphrase-31")
    nurse.fill("#id_new_password2", "noors-own-passphrase-31")
    nurse.get_by_role("button", name="Save password").click()
    expect(nurse.locator("h1")).to_have_text("Password changed")
    log_in(nurse, "nhaddad", "noors-own-passphrase-31")
    expect(nurse).to_have_url(re.compile(r"/patients/$"))

    # The admin sees the sign-in on the list, then deactivates the nurse.
    page.goto("/accounts/staff/")
    row = page.locator("table.staff tbody tr", has_text="nhaddad")
    expect(row).not_to_contain_text("never")
    row.get_by_role("link", name="Noor Haddad, RN").click()
    page.get_by_role("button", name="Deactivate in this clinic").click()
    expect(page.locator(".messages")).to_contain_text("can no longer work in this clinic")

    nurse.goto("/patients/")
    expect(nurse.locator("h1")).to_have_text("Choose a clinic")
    expect(nurse.locator("main")).to_contain_text("not a member of any clinic")

    # The staff pages fit a phone.
    page.set_viewport_size(PHONE)
    for path in ("/accounts/staff/", "/accounts/staff/add/", page.url):
        page.goto(path)
        fits, scroll, inner = no_horizontal_overflow(page)
        assert fits, f"{path}: {scroll}px wide in a {inner}px window"
    shot(page, "staff-member-phone")
    assert not console_errors, list(console_errors)
