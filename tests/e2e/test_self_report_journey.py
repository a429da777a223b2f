"""The self-report journey in a real browser: a nurse sends a PHQ-9, the patient answers it on
their phone, the prescriber acknowledges the alert it raised, and the link cannot be used again."""

from __future__ import annotations

import re
from datetime import date

import pytest
from django.core import mail
from django_otp.plugins.otp_totp.models import TOTPDevice
from playwright.sync_api import expect

from ketaclinic.accounts.roles import Role
from ketaclinic.accounts.services import create_clinic, create_staff
from ketaclinic.audit.models import AuditEntry
from ketaclinic.measures.models import Alert, ScaleAnswer, ScaleResponse, SelfReportRequest
from tests.conftest import PASSWORD, register
from tests.e2e.conftest import DESKTOP, PHONE, log_in, no_horizontal_overflow, shot, totp_code

pytestmark = pytest.mark.e2e

LINK = re.compile(r"https?://[^/\s]+(/p/[A-Za-z0-9_-]+/)")
NOTE = "Phoned her at 14:10: passive thoughts, no plan or intent. Safety plan reviewed."
# Items 1-8 as a person would tick them, then item 9 "Several days" and the difficulty item.
PHQ9_CHOICES = [
    "Several days",
    "More than half the days",
    "Several days",
    "Not at all",
    "Several days",
    "Not at all",
    "Several days",
    "Not at all",
    "Several days",  # item 9 = 1
    "Somewhat difficult",
]


def _new_page(browser, live_server, viewport, console_errors):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport=viewport, base_url=live_server.url)
    context.set_default_timeout(10_000)
    pg = context.new_page()
    console_errors.watch(pg)
    return context, pg


def _stored() -> tuple[int, int, int]:
    return ScaleResponse.objects.count(), ScaleAnswer.objects.count(), Alert.objects.count()


def test_a_nurse_sends_a_phq9_the_patient_answers_on_a_phone_and_the_prescriber_acknowledges(
    page, browser, live_server, console_errors
):  # type: ignore[no-untyped-def]
    clinic = create_clinic(name="Clinic A", time_zone="America/New_York")
    nurse = create_staff(
        clinic=clinic,
        username="nurse",
        password=PASSWORD,
        role=Role.NURSE,
        first_name="Nadia",
        last_name="Tester",
        check_password=False,
        two_factor_waived=True,
    )
    prescriber = create_staff(
        clinic=clinic,
        username="prescriber",
        password=PASSWORD,
        role=Role.PRESCRIBER,
        first_name="Priya",
        last_name="Tester",
        email="priya@clinic-a.example",
        check_password=False,
    )
    device = TOTPDevice.objects.create(user=prescriber, name="phone", confirmed=True)
    patient = register(
        clinic,
        nurse,
        given_name="Iris",
        family_name="Vantongeren",
        date_of_birth=date(1980, 5, 17),
        email="iris@example.org",
    )
    patient.responsible_prescriber = prescriber
    patient.save()
    chart_url = f"/patients/{patient.pk}/"

    # --- The nurse sends a PHQ-9 by email from the chart. ---------------------------------
    log_in(page, "nurse", PASSWORD)
    page.goto(chart_url)
    page.get_by_role("link", name="Send questionnaires").click()
    expect(page.get_by_role("heading", name=re.compile("Send questionnaires"))).to_be_visible()
    page.get_by_label(re.compile(r"^\s*PHQ-9 —")).check()
    page.get_by_label(re.compile(r"^\s*C-SSRS Screener —")).uncheck()  # ticked by default
    page.get_by_label("Email", exact=True).check()
    with page.expect_navigation():
        page.get_by_role("button", name="Send").click()
    expect(page).to_have_url(re.compile(rf"{chart_url}$"))
    expect(page.locator(".messages")).to_contain_text("Sent by Email to i***@example.org")
    request = SelfReportRequest.objects.get()
    assert request.instrument_codes == ["phq9"]
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["iris@example.org"]
    found = LINK.search(mail.outbox[0].body)
    assert found, mail.outbox[0].body
    link = found.group(1)

    # --- The patient opens the link on a phone, in a browser of their own. --------------------
    phone_context, phone = _new_page(browser, live_server, PHONE, console_errors)
    try:
        phone.goto(link)
        expect(phone).to_have_url(re.compile(r"/portal/verify/$"))  # the token left the bar
        expect(phone.get_by_role("heading", name="Before you start")).to_be_visible()
        expect(phone.locator("body")).not_to_contain_text("Vantongeren")
        phone.get_by_label("Your date of birth").fill("1980-05-17")
        phone.get_by_role("button", name="Continue").click()

        expect(phone).to_have_url(re.compile(r"/portal/scale/1/$"))
        expect(phone.locator(".progress")).to_contain_text("Questionnaire 1 of 1")
        items = phone.locator("fieldset.item")
        expect(items).to_have_count(10)
        for number, choice in enumerate(PHQ9_CHOICES, start=1):
            item = phone.locator(f"#item-q{number}")
            item.scroll_into_view_if_needed()
            item.locator("label.option").filter(has=phone.get_by_text(choice, exact=True)).click()
            expect(item.get_by_label(choice, exact=True)).to_be_checked()
        fits, scroll, inner = no_horizontal_overflow(phone)
        shot(phone, "self-report-phq9-answered-phone")
        assert fits, f"{scroll}px wide in a {inner}px window"
        assert _stored() == (0, 0, 0)  # nothing is kept before the patient sends
        phone.get_by_role("button", name="Send my answers").click()

        expect(phone).to_have_url(re.compile(r"/portal/done/$"))
        expect(phone.get_by_role("heading", name="Thank you")).to_be_visible()
        crisis = phone.locator("#crisis-resources")
        expect(crisis).to_be_visible()
        expect(crisis).to_contain_text("988")
        shot(phone, "self-report-done-with-crisis-resources-phone")
        # The patient never sees an interpretation of their answers.
        response = ScaleResponse.objects.get()
        assert response.total == 7 and response.band == "mild"
        assert response.flags == ["suicidality"]
        done_text = phone.locator("body").inner_text()
        assert not re.search(r"\b7\b", done_text), done_text
        for word in ("mild", "score", "total", "severity", "band"):
            assert word not in done_text.lower(), word
        stored = [a.value for a in response.answers.order_by("position")]
        assert stored == [1, 2, 1, 0, 1, 0, 1, 0, 1, 1]
        assert response.source == "self_report" and response.self_report_request == request
    finally:
        phone_context.close()

    # --- The prescriber sees the alert, acknowledges it, and the chart shows the new point. ---
    alert = Alert.objects.get()
    assert alert.severity == "high" and alert.assigned_to == prescriber and alert.is_open
    doctor_context, doctor = _new_page(browser, live_server, DESKTOP, console_errors)
    try:
        log_in(doctor, "prescriber", PASSWORD)
        expect(doctor).to_have_url(re.compile(r"/accounts/two-factor/$"))
        code, _ = totp_code(device.bin_key)
        doctor.fill("#id_token", code)
        doctor.get_by_role("button", name="Verify").click()
        expect(doctor).to_have_url(re.compile(r"/patients/$"))

        doctor.locator(".mainnav").get_by_role("link", name="Alerts").click()
        expect(doctor).to_have_url(re.compile(r"/alerts/$"))
        rows = doctor.locator("#alert-table tbody tr")
        expect(rows).to_have_count(1)
        expect(rows.first).to_contain_text("Vantongeren, Iris")
        expect(rows.first).to_contain_text("High")
        expect(rows.first).to_contain_text("positive answer on the suicide item")
        doctor.get_by_role("link", name="Assigned to me").click()
        expect(doctor.locator("#alert-table tbody tr")).to_have_count(1)
        shot(doctor, "self-report-alert-queue")

        doctor.locator("#alert-table").get_by_role("link", name="Vantongeren, Iris").click()
        expect(doctor).to_have_url(re.compile(rf"{chart_url}$"))
        banner = doctor.locator(".alert-banner.high")
        expect(banner).to_have_count(1)
        expect(banner).to_contain_text("High alert")
        expect(doctor.locator(".chart-header")).to_contain_text("1 open alert")
        shot(doctor, "self-report-chart-with-alert-banner")

        banner.get_by_role("link", name="Review and acknowledge").click()
        expect(doctor).to_have_url(re.compile(rf"/alerts/{alert.pk}/$"))
        # Without a note the alert stays open.
        doctor.get_by_role("button", name="Acknowledge alert").click()
        expect(doctor.locator("#id_note-errors")).to_be_visible()
        assert Alert.objects.get().is_open
        doctor.get_by_label("What you did or decided").fill(NOTE)
        doctor.get_by_role("button", name="Acknowledge alert").click()
        expect(doctor).to_have_url(re.compile(r"/alerts/$"))
        expect(doctor.locator(".messages")).to_contain_text("Alert acknowledged.")
        expect(doctor.locator("#alert-table tbody tr", has_text="Vantongeren")).to_have_count(0)

        doctor.goto(chart_url)
        expect(doctor.locator(".alert-banner")).to_have_count(0)
        expect(doctor.locator(".chart-header")).to_contain_text("No open alerts")
        card = doctor.locator(".trend-card", has=doctor.locator("h3", has_text="PHQ-9"))
        expect(card.locator("svg.trend")).to_have_count(1)
        expect(card.locator("svg.trend circle.point")).to_have_count(1)
        expect(card.locator("h3")).to_contain_text("1 response")
        shot(doctor, "self-report-chart-after-acknowledging")
    finally:
        doctor_context.close()

    alert.refresh_from_db()
    assert not alert.is_open and alert.acknowledged_by == prescriber
    assert alert.acknowledgement_note == NOTE
    entry = AuditEntry.objects.get(object_type="alert", object_id=str(alert.pk), action="update")
    assert entry.reason == NOTE and entry.actor == prescriber

    assert not console_errors, list(console_errors)

    # --- The same link again: "already done", and nothing more is stored. -------------------
    before = _stored()
    again_context, again = _new_page(browser, live_server, PHONE, console_errors)
    try:
        with again.expect_response(lambda r: r.url.endswith(link)) as answer:
            again.goto(link)
        assert answer.value.status == 410
        expect(
            again.get_by_role("heading", name="These questionnaires are already done")
        ).to_be_visible()
        shot(again, "self-report-link-already-done-phone")
        again.goto("/portal/scale/1/")
        expect(again.locator("fieldset.item")).to_have_count(0)
    finally:
        again_context.close()
    assert _stored() == before
    assert SelfReportRequest.objects.get().status == "completed"
    # The browser reports the 410 and 404 answers it was meant to get; nothing else went wrong.
    unexpected = [e for e in console_errors if "Failed to load resource" not in e]
    assert not unexpected, unexpected
