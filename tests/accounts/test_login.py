"""Signing in: passwords, two-factor, lockout, idle logoff, clinic switching, password reset and
the commands that create clinics and staff."""

from __future__ import annotations

import io
import re
import time
from datetime import timedelta
from pathlib import Path

import pytest
from axes.models import AccessAttempt
from django.contrib.messages import get_messages
from django.core import mail
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import F
from django.test import Client
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from ketaclinic.accounts.middleware import SESSION_LAST_SEEN
from ketaclinic.accounts.models import Clinic, Membership, User
from ketaclinic.accounts.roles import Role, permissions_markdown
from ketaclinic.patients.models import Patient
from tests.conftest import PASSWORD, register, signed_in

LOGIN = reverse("accounts:login")
SETUP = reverse("accounts:two_factor_setup")
VERIFY = reverse("accounts:two_factor_verify")


def sign_in(username: str, password: str = PASSWORD, client: Client | None = None):  # type: ignore[no-untyped-def]
    client = client or Client()
    response = client.post(LOGIN, {"username": username, "password": password})
    return client, response


def code_for(device: TOTPDevice, offset_steps: int = 0) -> str:
    token = totp(
        device.bin_key,
        step=device.step,
        t0=device.t0,
        digits=device.digits,
        drift=device.drift + offset_steps,
    )
    return f"{token:0{device.digits}d}"


def signed_in_user(client: Client) -> int | None:
    user_id = client.session.get("_auth_user_id")
    return int(user_id) if user_id else None


# --- the login page and passwords ---------------------------------------------------------------


def test_the_login_page_shows_the_form(db):  # type: ignore[no-untyped-def]
    response = Client().get(LOGIN)
    assert response.status_code == 200
    body = response.content.decode()
    assert 'name="username"' in body and 'name="password"' in body
    assert 'autocomplete="current-password"' in body


def test_a_nurse_signs_in_with_a_password_alone(world):  # type: ignore[no-untyped-def]
    client, response = sign_in("nurse_a")
    assert response.status_code == 302 and response["Location"] == reverse("home")
    assert client.get(reverse("patients:list")).status_code == 200


def test_a_wrong_password_says_so_and_signs_nobody_in(world):  # type: ignore[no-untyped-def]
    client, response = sign_in("nurse_a", "not-the-password")
    assert response.status_code == 200
    assert "That username and password do not match" in response.content.decode()
    assert signed_in_user(client) is None


def test_it_returns_to_the_page_asked_for_but_never_to_another_site(world):  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.nurse)
    chart = reverse("patients:chart", args=[patient.pk])
    client = Client()
    response = client.post(f"{LOGIN}?next={chart}", {"username": "nurse_a", "password": PASSWORD})
    assert response["Location"] == chart
    client = Client()
    response = client.post(
        f"{LOGIN}?next=https://evil.example/", {"username": "nurse_a", "password": PASSWORD}
    )
    assert response["Location"] == reverse("home")


# --- two-factor ----------------------------------------------------------------------------------


def test_a_prescriber_without_a_device_must_set_one_up_before_any_page(world):  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.nurse)
    client, response = sign_in("prescriber_a")
    assert response["Location"] == SETUP
    for url in [
        reverse("home"),
        reverse("patients:list"),
        reverse("patients:chart", args=[patient.pk]),
        reverse("accounts:choose_clinic"),
    ]:
        page = client.get(url)
        assert page.status_code == 302 and page["Location"] == SETUP, url
    assert client.post(reverse("patients:create"), {})["Location"] == SETUP

    setup = client.get(SETUP)
    assert setup.status_code == 200
    assert "data:image/svg+xml" in setup.content.decode()
    device = TOTPDevice.objects.get(user=world.prescriber, confirmed=False)
    response = client.post(SETUP, {"token": code_for(device)})
    assert response.status_code == 302
    device.refresh_from_db()
    assert device.confirmed
    assert client.get(reverse("patients:list")).status_code == 200


def test_a_wrong_code_at_setup_leaves_the_device_unconfirmed(world):  # type: ignore[no-untyped-def]
    client, _ = sign_in("prescriber_a")
    client.get(SETUP)
    device = TOTPDevice.objects.get(user=world.prescriber)
    response = client.post(SETUP, {"token": code_for(device, offset_steps=50)})
    assert response.status_code == 200
    assert "That code does not match" in response.content.decode()
    device.refresh_from_db()
    assert not device.confirmed
    assert client.get(reverse("patients:list"))["Location"] == SETUP


@pytest.fixture
def prescriber_device(world) -> TOTPDevice:  # type: ignore[no-untyped-def]
    return TOTPDevice.objects.create(user=world.prescriber, name="phone", confirmed=True)


def test_a_prescriber_with_a_device_is_sent_to_verify(world, prescriber_device):  # type: ignore[no-untyped-def]
    client, response = sign_in("prescriber_a")
    assert response["Location"] == VERIFY
    assert client.get(reverse("patients:list"))["Location"] == VERIFY
    # Setting up another device is no way round the check.
    assert client.get(SETUP)["Location"] == VERIFY


def test_the_right_code_passes_two_factor(world, prescriber_device):  # type: ignore[no-untyped-def]
    client, _ = sign_in("prescriber_a")
    response = client.post(VERIFY, {"token": code_for(prescriber_device)})
    assert response.status_code == 302 and response["Location"] == reverse("home")
    assert client.get(reverse("patients:list")).status_code == 200


def test_a_wrong_code_shows_an_error_and_keeps_the_door_shut(world, prescriber_device):  # type: ignore[no-untyped-def]
    client, _ = sign_in("prescriber_a")
    response = client.post(VERIFY, {"token": code_for(prescriber_device, offset_steps=50)})
    assert response.status_code == 200
    assert "That code is wrong or has expired" in response.content.decode()
    assert client.get(reverse("patients:list"))["Location"] == VERIFY
    response = client.post(VERIFY, {"token": "12345"})
    assert "Enter the 6 digits your authenticator app shows." in response.content.decode()


def test_nurses_enrol_too_when_the_clinic_asks_all_staff(world):  # type: ignore[no-untyped-def]
    Clinic.objects.filter(pk=world.clinic_a.pk).update(two_factor_for_all_staff=True)
    client, response = sign_in("nurse_a")
    assert response["Location"] == SETUP
    assert client.get(reverse("patients:list"))["Location"] == SETUP


def test_a_signed_in_nurse_must_enrol_once_the_clinic_asks_all_staff(world):  # type: ignore[no-untyped-def]
    client, _ = sign_in("nurse_a")
    assert client.get(reverse("patients:list")).status_code == 200
    Clinic.objects.filter(pk=world.clinic_a.pk).update(two_factor_for_all_staff=True)
    assert client.get(reverse("patients:list"))["Location"] == SETUP


def test_waived_users_skip_two_factor(world):  # type: ignore[no-untyped-def]
    User.objects.filter(pk=world.prescriber.pk).update(two_factor_waived=True)
    client, response = sign_in("prescriber_a")
    assert response["Location"] == reverse("home")
    assert client.get(reverse("patients:list")).status_code == 200


# --- lockout -------------------------------------------------------------------------------------


def locked(response) -> bool:  # type: ignore[no-untyped-def]
    # django-axes answers 429 Too Many Requests with the project's lockout page.
    return response.status_code in (403, 429) and "Account locked" in response.content.decode()


def test_five_failures_lock_the_account_for_15_minutes(world):  # type: ignore[no-untyped-def]
    client = Client()
    for attempt in range(1, 6):
        _, response = sign_in("nurse_a", f"wrong-{attempt}", client)
    assert locked(response)
    # The sixth attempt, with the right password, is refused too.
    _, response = sign_in("nurse_a", PASSWORD, client)
    assert locked(response)
    assert signed_in_user(client) is None
    # ...from another browser as well: the lock is on the account.
    other, response = sign_in("nurse_a")
    assert locked(response) and signed_in_user(other) is None
    # A colleague behind the same address is not locked.
    colleague, response = sign_in("front_desk_a")
    assert response.status_code == 302 and signed_in_user(colleague) is not None

    # Still locked just inside the 15 minutes, open again once they have passed.
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=14))
    assert locked(sign_in("nurse_a")[1])
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - timedelta(minutes=16))
    client, response = sign_in("nurse_a")
    assert response.status_code == 302 and signed_in_user(client) == world.nurse.pk


def test_four_failures_do_not_lock_and_a_success_resets_the_count(world):  # type: ignore[no-untyped-def]
    for attempt in range(4):
        assert sign_in("nurse_a", f"wrong-{attempt}")[1].status_code == 200
    assert sign_in("nurse_a")[1].status_code == 302
    for attempt in range(4):
        assert sign_in("nurse_a", f"wrong-{attempt}")[1].status_code == 200
    assert sign_in("nurse_a")[1].status_code == 302


# --- idle logoff ---------------------------------------------------------------------------------


def idle_for(client: Client, seconds: float) -> None:
    session = client.session
    session[SESSION_LAST_SEEN] = time.time() - seconds
    session.save()


def test_an_idle_session_is_signed_out_with_a_message(world, settings):  # type: ignore[no-untyped-def]
    settings.IDLE_TIMEOUT_SECONDS = 60
    client = signed_in(world.nurse)
    assert client.get(reverse("patients:list")).status_code == 200
    idle_for(client, 61)
    response = client.get(reverse("patients:list"))
    assert response.status_code == 302 and response["Location"] == LOGIN
    assert signed_in_user(client) is None
    page = client.get(LOGIN)
    assert "You were signed out after 1 minute without activity." in page.content.decode()
    assert client.get(reverse("patients:list"))["Location"].startswith(LOGIN)


def test_activity_within_the_timeout_keeps_the_session(world, settings):  # type: ignore[no-untyped-def]
    settings.IDLE_TIMEOUT_SECONDS = 60
    client = signed_in(world.nurse)
    client.get(reverse("patients:list"))
    idle_for(client, 50)
    assert client.get(reverse("patients:list")).status_code == 200
    # The request counted as activity: the clock starts again.
    assert time.time() - client.session[SESSION_LAST_SEEN] < 5


def test_an_idle_post_is_not_carried_out(world, settings):  # type: ignore[no-untyped-def]
    settings.IDLE_TIMEOUT_SECONDS = 30
    client = signed_in(world.nurse)
    client.get(reverse("patients:list"))
    idle_for(client, 31)
    response = client.post(
        reverse("patients:create"),
        {
            "given_name": "Idle",
            "family_name": "Post",
            "date_of_birth": "1970-01-01",
            "sex_at_birth": "male",
            "status": "referred",
        },
    )
    assert response["Location"] == LOGIN
    assert not Patient.objects.filter(family_name="Post").exists()


# --- clinic switcher -----------------------------------------------------------------------------


def test_a_user_of_two_clinics_chooses_and_switches(world):  # type: ignore[no-untyped-def]
    Membership.objects.create(user=world.nurse, clinic=world.clinic_b, role=Role.NURSE)
    patient_a = register(world.clinic_a, world.nurse, given_name="Alpha")
    patient_b = register(world.clinic_b, world.prescriber_b, given_name="Bravo")
    client = signed_in(world.nurse)
    assert client.get(reverse("patients:list"))["Location"] == reverse("accounts:choose_clinic")

    chooser = client.get(reverse("accounts:choose_clinic")).content.decode()
    assert "Clinic A" in chooser and "Clinic B" in chooser

    def switch(clinic: Clinic) -> None:
        response = client.post(reverse("accounts:choose_clinic"), {"clinic_id": clinic.pk})
        assert response.status_code == 302
        assert f"Now working in {clinic.name}." in [
            m.message for m in get_messages(response.wsgi_request)
        ]

    switch(world.clinic_b)
    page = client.get(reverse("patients:chart", args=[patient_b.pk]))
    assert page.status_code == 200 and page.wsgi_request.clinic == world.clinic_b
    assert "Clinic B ▾" in page.content.decode()  # the switcher in the top bar
    assert client.get(reverse("patients:chart", args=[patient_a.pk])).status_code == 404
    listed = client.get(reverse("patients:list")).context["page"].object_list
    assert [p.pk for p in listed] == [patient_b.pk]

    switch(world.clinic_a)
    page = client.get(reverse("patients:chart", args=[patient_a.pk]))
    assert page.status_code == 200 and page.wsgi_request.clinic == world.clinic_a
    assert client.get(reverse("patients:chart", args=[patient_b.pk])).status_code == 404


def test_nobody_can_switch_into_a_clinic_they_do_not_belong_to(world):  # type: ignore[no-untyped-def]
    patient_b = register(world.clinic_b, world.prescriber_b)
    client = signed_in(world.nurse)
    response = client.post(reverse("accounts:choose_clinic"), {"clinic_id": world.clinic_b.pk})
    assert response.status_code == 200
    assert "Choose one of your clinics." in response.content.decode()
    page = client.get(reverse("patients:chart", args=[patient_b.pk]))
    assert page.status_code == 404 and page.wsgi_request.clinic == world.clinic_a


def test_an_inactive_membership_gives_no_access(world):  # type: ignore[no-untyped-def]
    patient = register(world.clinic_a, world.nurse)
    Membership.objects.filter(user=world.nurse).update(is_active=False)
    client = signed_in(world.nurse)
    response = client.get(reverse("patients:chart", args=[patient.pk]))
    assert response["Location"] == reverse("accounts:choose_clinic")


# --- password reset ------------------------------------------------------------------------------


def test_password_reset_mails_a_link_that_works_once(world):  # type: ignore[no-untyped-def]
    User.objects.filter(pk=world.nurse.pk).update(email="nurse@example.test")
    client = Client()
    response = client.post(reverse("accounts:password_reset"), {"email": "nurse@example.test"})
    assert response["Location"] == reverse("accounts:password_reset_done")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["nurse@example.test"]
    link = re.search(r"https?://\S+", message.body)
    assert link is not None
    path = link.group(0).split("testserver", 1)[1]

    form = client.get(path, follow=True)
    assert form.status_code == 200 and 'name="new_password1"' in form.content.decode()
    new = "a-brand-new-passphrase-2024"
    done = client.post(form.redirect_chain[-1][0], {"new_password1": new, "new_password2": new})
    assert done["Location"] == reverse("accounts:password_reset_complete")
    assert sign_in("nurse_a", new)[1].status_code == 302
    assert sign_in("nurse_a", PASSWORD)[1].status_code == 200

    again = Client().get(path, follow=True)
    assert "This reset link is not valid" in again.content.decode()
    assert 'name="new_password1"' not in again.content.decode()


def test_password_reset_for_an_unknown_address_looks_the_same_and_sends_nothing(world):  # type: ignore[no-untyped-def]
    response = Client().post(reverse("accounts:password_reset"), {"email": "nobody@example.test"})
    assert response["Location"] == reverse("accounts:password_reset_done")
    assert mail.outbox == []


# --- commands ------------------------------------------------------------------------------------


def run(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_createclinic_creates_a_clinic(db):  # type: ignore[no-untyped-def]
    out = run("createclinic", "Clinic C", "--time-zone", "America/Denver", "--dea", "bk1234563")
    clinic = Clinic.objects.get(name="Clinic C")
    assert f"Created clinic {clinic.pk}: Clinic C" in out
    assert clinic.time_zone == "America/Denver" and clinic.dea_registration_number == "BK1234563"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--time-zone", "America/Denver", "--dea", "BK1234564"], "check digit"),
        (["--time-zone", "America/Denver", "--dea", "12345"], "2 letters followed by 7 digits"),
        (["--time-zone", "Mars/Olympus_Mons"], "is not a time zone name"),
    ],
)
def test_createclinic_rejects_bad_input_clearly(db, args, message):  # type: ignore[no-untyped-def]
    with pytest.raises(CommandError, match=message):
        run("createclinic", "Clinic C", *args)
    assert not Clinic.objects.filter(name="Clinic C").exists()


def test_createstaff_creates_a_user_with_a_role(world, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("KETACLINIC_NEW_PASSWORD", "a-long-enough-passphrase-7")
    out = run(
        "createstaff",
        "newnurse",
        "--clinic",
        str(world.clinic_a.pk),
        "--role",
        "nurse",
        "--first-name",
        "Nia",
        "--last-name",
        "Newman",
        "--credentials",
        "RN",
    )
    assert "newnurse is now Nurse / CRNA at Clinic A." in out
    user = User.objects.get(username="newnurse")
    assert user.check_password("a-long-enough-passphrase-7") and user.initials == "NN"
    assert Membership.objects.get(user=user).role == "nurse"
    # By name, adding the same person to a second clinic.
    run("createstaff", "newnurse", "--clinic", "Clinic B", "--role", "front_desk")
    assert Membership.objects.filter(user=user).count() == 2


@pytest.mark.parametrize(
    ("clinic", "role", "password", "message"),
    [
        ("Nowhere", "nurse", "a-long-enough-passphrase-7", "No clinic 'Nowhere'"),
        ("99999", "nurse", "a-long-enough-passphrase-7", "No clinic '99999'"),
        ("Clinic A", "nurse", "short", "too short"),
        ("Clinic A", "surgeon", "a-long-enough-passphrase-7", "invalid choice"),
    ],
)
def test_createstaff_rejects_bad_input_clearly(world, monkeypatch, clinic, role, password, message):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("KETACLINIC_NEW_PASSWORD", password)
    with pytest.raises(CommandError, match=message):
        run("createstaff", "someone", "--clinic", clinic, "--role", role)
    assert not User.objects.filter(username="someone").exists()


def test_createstaff_refuses_a_second_role_in_the_same_clinic(world, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("KETACLINIC_NEW_PASSWORD", "a-long-enough-passphrase-7")
    with pytest.raises(CommandError, match="already has a role in Clinic A"):
        run("createstaff", "nurse_a", "--clinic", "Clinic A", "--role", "auditor")
    assert Membership.objects.get(user=world.nurse).role == "nurse"


# --- the permissions document --------------------------------------------------------------------

PERMISSIONS_DOC = Path(__file__).resolve().parents[2] / "docs" / "permissions.md"


def test_the_permissions_command_prints_the_matrix(db):  # type: ignore[no-untyped-def]
    assert run("permissions") == permissions_markdown()


def test_docs_permissions_md_matches_the_code():
    if not PERMISSIONS_DOC.exists():
        pytest.skip("docs/permissions.md does not exist yet")
    text = PERMISSIONS_DOC.read_text()
    assert permissions_markdown() in text, (
        "docs/permissions.md is out of date: paste the output of `ketaclinic permissions`"
    )
    # Exactly one table, and it is the generated one.
    table_lines = [line for line in text.splitlines() if line.startswith("|")]
    assert "\n".join(table_lines) + "\n" == permissions_markdown()
