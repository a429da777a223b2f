"""The staff pages: a clinic admin adds staff, changes roles, deactivates and reactivates
memberships, resets two-factor and unlocks accounts; every change is audited and stays inside
the admin's clinic."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import urlparse

import pytest
from axes.models import AccessAttempt
from django.contrib.messages import get_messages
from django.core import mail
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django_otp.plugins.otp_totp.models import TOTPDevice

from ketaclinic.accounts import services
from ketaclinic.accounts.models import Membership, User
from ketaclinic.accounts.roles import Role
from ketaclinic.audit.context import Actor
from ketaclinic.audit.models import AuditEntry
from tests.conftest import PASSWORD, make_staff, signed_in

STAFF = reverse("accounts:staff")
ADD = reverse("accounts:staff_add")
LOGIN = reverse("accounts:login")


def url(name: str, membership: Membership) -> str:
    return reverse(f"accounts:{name}", kwargs={"membership_id": membership.pk})


def membership(user: User, clinic) -> Membership:  # type: ignore[no-untyped-def]
    return Membership.objects.get(user=user, clinic=clinic)


def staff_entries(clinic) -> list[AuditEntry]:  # type: ignore[no-untyped-def]
    return list(
        AuditEntry.objects.filter(clinic=clinic, object_type="membership").order_by("sequence")
    )


def flashed(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def admin(world) -> User:  # type: ignore[no-untyped-def]
    return world.staff_a[Role.CLINIC_ADMIN]


@pytest.fixture
def as_admin(admin) -> Client:  # type: ignore[no-untyped-def]
    return signed_in(admin)


NEW = {
    "kind": "new",
    "new-username": "rgarcia",
    "new-first_name": "Rosa",
    "new-last_name": "Garcia",
    "new-email": "rosa.garcia@example.test",
    "new-credentials": "RN",
    "new-role": "nurse",
}


# --- the list ------------------------------------------------------------------------------------


def test_the_list_shows_role_status_two_factor_and_last_sign_in(world, as_admin):  # type: ignore[no-untyped-def]
    TOTPDevice.objects.create(user=world.prescriber, name="phone", confirmed=True)
    User.objects.filter(pk=world.prescriber.pk).update(
        last_login=datetime(2026, 3, 4, 15, 30, tzinfo=UTC)
    )
    Membership.objects.filter(user=world.staff_a[Role.AUDITOR]).update(is_active=False)
    response = as_admin.get(STAFF)
    assert response.status_code == 200
    rows = {m.user.username: m for m in response.context["members"]}
    assert set(rows) == {f"{r.value}_a" for r in Role}  # clinic A only
    assert rows["prescriber_a"].two_factor_enrolled
    assert not rows["nurse_a"].two_factor_enrolled
    body = response.content.decode()
    assert "Mar 4, 2026 10:30" in body  # in the clinic's time zone (New York)
    assert "deactivated" in body and "enrolled" in body and "never" in body
    assert "Add staff member" in body
    assert url("staff_member", membership(world.nurse, world.clinic_a)) in body
    assert "admin_b" not in body


def test_it_marks_a_prescriber_who_has_not_set_up_two_factor(world, as_admin):  # type: ignore[no-untyped-def]
    body = as_admin.get(STAFF).content.decode()
    # The prescriber must use two-factor and has no device; the nurse need not; the signed-in
    # admin has enrolled.
    assert body.count("required, not set up") == 1
    assert body.count("not set up") == 4  # the prescriber, nurse, front desk and auditor


def test_auditors_see_the_list_but_cannot_manage(world):  # type: ignore[no-untyped-def]
    auditor = signed_in(world.staff_a[Role.AUDITOR])
    body = auditor.get(STAFF).content.decode()
    assert "nurse_a" in body
    assert "Add staff member" not in body
    assert url("staff_member", membership(world.nurse, world.clinic_a)) not in body
    assert auditor.get(ADD).status_code == 403


def test_the_list_costs_the_same_queries_with_more_staff(world, as_admin):  # type: ignore[no-untyped-def]
    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert as_admin.get(STAFF).status_code == 200
        # Leave out the session's last-seen write: it comes at most every few seconds.
        return sum(
            1
            for q in ctx.captured_queries
            if not q["sql"].startswith(("UPDATE \"django_session\"", "SAVEPOINT", "RELEASE"))
        )

    few = queries()
    for n in range(20):
        user = make_staff(world.clinic_a, f"extra_{n}", Role.NURSE if n % 2 else Role.PRESCRIBER)
        if n % 3 == 0:
            TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    AccessAttempt.objects.create(
        username="extra_3",
        ip_address="127.0.0.1",
        user_agent="t",
        failures_since_start=9,
        get_data="",
        post_data="",
        http_accept="",
        path_info="/",
    )
    assert queries() == few


def test_it_shows_who_is_locked_out(world, as_admin):  # type: ignore[no-untyped-def]
    for attempt in range(5):
        Client().post(LOGIN, {"username": "nurse_a", "password": f"wrong-{attempt}"})
    response = as_admin.get(STAFF)
    rows = {m.user.username: m for m in response.context["members"]}
    assert rows["nurse_a"].locked_out and not rows["front_desk_a"].locked_out
    assert "locked out" in response.content.decode()


# --- adding staff --------------------------------------------------------------------------------


def test_it_adds_a_new_member_and_emails_a_link_to_choose_a_password(  # type: ignore[no-untyped-def]
    world, as_admin, admin, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = as_admin.post(ADD, NEW)
    user = User.objects.get(username="rgarcia")
    added = membership(user, world.clinic_a)
    assert response.status_code == 302 and response["Location"] == url("staff_member", added)
    assert added.role == Role.NURSE and added.is_active
    assert (user.first_name, user.last_name, user.credentials, user.initials) == (
        "Rosa",
        "Garcia",
        "RN",
        "RG",
    )
    # Nobody typed a password: the account has one nobody knows.
    assert user.has_usable_password() and not user.check_password("")
    [entry] = staff_entries(world.clinic_a)
    assert (entry.action, entry.actor_id, entry.object_id) == ("create", admin.pk, str(added.pk))
    assert entry.detail["role"] == "nurse" and entry.detail["new_account"] is True

    [message] = mail.outbox
    assert message.to == ["rosa.garcia@example.test"]
    assert "Clinic A" in message.subject and "rgarcia" in message.body
    link = re.search(r"https?://\S+", message.body)
    assert link is not None
    # The link is Django's password-reset flow: choose a password, then sign in with it.
    client = Client()
    form = client.get(urlparse(link.group(0)).path, follow=True)
    assert 'name="new_password1"' in form.content.decode()
    new = "rosas-own-passphrase-77"
    done = client.post(form.redirect_chain[-1][0], {"new_password1": new, "new_password2": new})
    assert done["Location"] == reverse("accounts:password_reset_complete")
    signed = Client()
    assert signed.post(LOGIN, {"username": "rgarcia", "password": new}).status_code == 302
    assert signed.get(reverse("patients:list")).status_code == 200


def test_a_new_prescriber_is_told_about_two_factor(
    world, as_admin, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    with django_capture_on_commit_callbacks(execute=True):
        as_admin.post(ADD, NEW | {"new-role": "prescriber"})
    assert "two-factor" in mail.outbox[0].body


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"new-username": "admin_b"}, "username", "That username is taken"),
        ({"new-username": "Nurse_A"}, "username", "That username is taken"),
        ({"new-username": "rosa garcia"}, "username", "no spaces"),
        ({"new-username": ""}, "username", "required"),
        ({"new-email": "rosa@"}, "email", "Enter a valid email address"),
        ({"new-email": ""}, "email", "required"),
        ({"new-role": "surgeon"}, "role", "Choose one of the roles listed"),
        ({"new-role": ""}, "role", "required"),
        ({"new-first_name": "  "}, "first_name", "required"),
    ],
)
def test_bad_input_gets_a_field_error_and_stores_nothing(  # type: ignore[no-untyped-def]
    world, as_admin, change, field, message, django_capture_on_commit_callbacks
):
    users, members = User.objects.count(), Membership.objects.count()
    with django_capture_on_commit_callbacks(execute=True):
        response = as_admin.post(ADD, NEW | change)
    assert response.status_code == 200
    errors = response.context["new_form"].errors
    assert message in " ".join(errors[field]), errors
    assert "Nothing was saved" in response.content.decode()
    assert (User.objects.count(), Membership.objects.count()) == (users, members)
    assert staff_entries(world.clinic_a) == [] and mail.outbox == []


def test_it_refuses_an_email_another_account_uses(world, as_admin):  # type: ignore[no-untyped-def]
    User.objects.filter(pk=world.admin_b.pk).update(email="Rosa.Garcia@example.test")
    response = as_admin.post(ADD, NEW)
    assert "add their existing account instead" in " ".join(
        response.context["new_form"].errors["email"]
    )
    assert not User.objects.filter(username="rgarcia").exists()


def test_it_adds_an_existing_user_of_another_clinic_by_username(  # type: ignore[no-untyped-def]
    world, as_admin, django_capture_on_commit_callbacks
):
    User.objects.filter(pk=world.prescriber_b.pk).update(email="pb@example.test")
    with django_capture_on_commit_callbacks(execute=True):
        response = as_admin.post(
            ADD,
            {"kind": "existing", "existing-username": "prescriber_b", "existing-role": "auditor"},
        )
    added = membership(world.prescriber_b, world.clinic_a)
    assert response.status_code == 302 and added.role == Role.AUDITOR
    # Their clinic B role is untouched, and they keep one account.
    assert membership(world.prescriber_b, world.clinic_b).role == Role.PRESCRIBER
    assert User.objects.filter(username="prescriber_b").count() == 1
    [entry] = staff_entries(world.clinic_a)
    assert entry.detail["new_account"] is False
    assert mail.outbox[0].to == ["pb@example.test"] and "Clinic A" in mail.outbox[0].body
    assert "http" not in mail.outbox[0].body  # no password link for an existing account
    # They can now choose clinic A.
    client = signed_in(world.prescriber_b)
    chosen = client.post(reverse("accounts:choose_clinic"), {"clinic_id": world.clinic_a.pk})
    assert chosen.status_code == 302
    assert client.get(reverse("patients:list")).status_code == 200


@pytest.mark.parametrize(
    ("username", "message"),
    [
        ("nobody_here", "No account has this username"),
        ("nurse_a", "already has a role here"),
        ("", "required"),
    ],
)
def test_it_refuses_an_unknown_or_existing_member(world, as_admin, username, message):  # type: ignore[no-untyped-def]
    members = Membership.objects.count()
    response = as_admin.post(
        ADD, {"kind": "existing", "existing-username": username, "existing-role": "nurse"}
    )
    assert response.status_code == 200
    assert message in " ".join(response.context["existing_form"].errors["username"])
    assert Membership.objects.count() == members and staff_entries(world.clinic_a) == []


def test_it_points_to_reactivation_for_a_deactivated_member(world, as_admin):  # type: ignore[no-untyped-def]
    Membership.objects.filter(user=world.nurse).update(is_active=False)
    response = as_admin.post(
        ADD, {"kind": "existing", "existing-username": "nurse_a", "existing-role": "nurse"}
    )
    assert "reactivate them" in " ".join(response.context["existing_form"].errors["username"])


# --- roles ---------------------------------------------------------------------------------------


def test_it_changes_a_role_and_audits_old_and_new(world, as_admin, admin):  # type: ignore[no-untyped-def]
    nurse = membership(world.nurse, world.clinic_a)
    response = as_admin.post(url("staff_change_role", nurse), {"role": "prescriber"})
    assert response.status_code == 302
    nurse.refresh_from_db()
    assert nurse.role == Role.PRESCRIBER
    [entry] = staff_entries(world.clinic_a)
    assert entry.action == "update" and entry.actor_id == admin.pk
    assert entry.detail["role"] == {"from": "nurse", "to": "prescriber"}
    # A prescriber must use two-factor: the former nurse is sent to enrol at their next click.
    client = Client()
    client.force_login(world.nurse)
    assert client.get(reverse("patients:list"))["Location"] == reverse("accounts:two_factor_setup")


def test_an_unknown_role_gets_a_field_error(world, as_admin):  # type: ignore[no-untyped-def]
    nurse = membership(world.nurse, world.clinic_a)
    response = as_admin.post(url("staff_change_role", nurse), {"role": "surgeon"})
    assert response.status_code == 200
    assert "Choose one of the roles listed" in " ".join(
        response.context["role_form"].errors["role"]
    )
    nurse.refresh_from_db()
    assert nurse.role == Role.NURSE and staff_entries(world.clinic_a) == []


def test_it_refuses_to_change_your_own_role(world, as_admin, admin):  # type: ignore[no-untyped-def]
    own = membership(admin, world.clinic_a)
    response = as_admin.post(url("staff_change_role", own), {"role": "nurse"})
    assert response.status_code == 200
    assert "your own membership" in response.content.decode()
    own.refresh_from_db()
    assert own.role == Role.CLINIC_ADMIN and staff_entries(world.clinic_a) == []
    assert "This is you" in as_admin.get(url("staff_member", own)).content.decode()


def test_the_clinic_keeps_one_active_clinic_admin(world, admin):  # type: ignore[no-untyped-def]
    # From the command line (no acting admin), the rule alone stops the last admin going.
    cli = Actor.system(world.clinic_a)
    own = membership(admin, world.clinic_a)
    with pytest.raises(services.ValidationError, match="only active clinic admin"):
        services.change_role(cli, own, Role.NURSE)
    with pytest.raises(services.ValidationError, match="only active clinic admin"):
        services.deactivate_membership(cli, own)
    own.refresh_from_db()
    assert own.role == Role.CLINIC_ADMIN and own.is_active
    # With a second admin, the first may go.
    second = make_staff(world.clinic_a, "admin2_a", Role.CLINIC_ADMIN)
    services.change_role(cli, own, Role.NURSE)
    # ...but not the second as well.
    with pytest.raises(services.ValidationError, match="only active clinic admin"):
        services.deactivate_membership(cli, membership(second, world.clinic_a))
    assert staff_entries(world.clinic_a)[-1].detail["role"] == {
        "from": "clinic_admin",
        "to": "nurse",
    }


def test_two_admins_cannot_demote_each_other_at_once(world, admin):  # type: ignore[no-untyped-def]
    """Both pages were open while both were admins; the later click finds itself demoted."""
    second = make_staff(world.clinic_a, "admin2_a", Role.CLINIC_ADMIN)
    services.change_role(
        Actor.system(world.clinic_a, user=admin), membership(second, world.clinic_a), Role.NURSE
    )
    with pytest.raises(services.ValidationError, match="no longer manages staff"):
        services.change_role(
            Actor.system(world.clinic_a, user=second), membership(admin, world.clinic_a), Role.NURSE
        )
    assert membership(admin, world.clinic_a).role == Role.CLINIC_ADMIN
    assert signed_in(second).get(STAFF).status_code == 403


# --- deactivation --------------------------------------------------------------------------------


def test_it_deactivates_and_reactivates_a_membership(world, as_admin, admin):  # type: ignore[no-untyped-def]
    nurse = membership(world.nurse, world.clinic_a)
    response = as_admin.post(url("staff_deactivate", nurse))
    assert response.status_code == 302
    nurse.refresh_from_db()
    assert not nurse.is_active
    assert as_admin.post(url("staff_reactivate", nurse)).status_code == 302
    nurse.refresh_from_db()
    assert nurse.is_active
    entries = staff_entries(world.clinic_a)
    assert [e.detail["is_active"] for e in entries] == [
        {"from": True, "to": False},
        {"from": False, "to": True},
    ]
    assert all(e.actor_id == admin.pk and e.object_id == str(nurse.pk) for e in entries)


def test_a_deactivated_member_cannot_work_in_the_clinic(world, as_admin):  # type: ignore[no-untyped-def]
    nurse_client = signed_in(world.nurse)
    assert nurse_client.get(reverse("patients:list")).status_code == 200
    as_admin.post(url("staff_deactivate", membership(world.nurse, world.clinic_a)))
    # The very next request finds no clinic: sent to choose one, and clinic A is not offered.
    response = nurse_client.get(reverse("patients:list"))
    assert response["Location"] == reverse("accounts:choose_clinic")
    chooser = nurse_client.get(reverse("accounts:choose_clinic")).content.decode()
    assert "not a member of any clinic" in chooser
    nurse_client.post(reverse("accounts:choose_clinic"), {"clinic_id": world.clinic_a.pk})
    assert nurse_client.get(reverse("patients:list")).status_code == 302
    # Signing in again does not bring clinic A back.
    TOTPDevice.objects.filter(user=world.nurse).delete()
    fresh = Client()
    fresh.post(LOGIN, {"username": "nurse_a", "password": PASSWORD})
    assert fresh.get(reverse("patients:list"))["Location"] == reverse("accounts:choose_clinic")


def test_a_member_deactivated_here_keeps_their_other_clinic(world, admin):  # type: ignore[no-untyped-def]
    services.add_existing_user(
        Actor.system(world.clinic_a, user=admin), username="prescriber_b", role=Role.NURSE
    )
    client = signed_in(world.prescriber_b)
    client.post(reverse("accounts:choose_clinic"), {"clinic_id": world.clinic_a.pk})
    signed_in(admin).post(url("staff_deactivate", membership(world.prescriber_b, world.clinic_a)))
    client.get(reverse("patients:list"))
    assert client.session["ketaclinic.clinic_id"] == world.clinic_b.pk
    assert membership(world.prescriber_b, world.clinic_b).is_active


def test_it_refuses_to_deactivate_yourself(world, as_admin, admin):  # type: ignore[no-untyped-def]
    own = membership(admin, world.clinic_a)
    response = as_admin.post(url("staff_deactivate", own), follow=True)
    assert any("your own membership" in m for m in flashed(response))
    own.refresh_from_db()
    assert own.is_active and staff_entries(world.clinic_a) == []


# --- two-factor, lockout, password link ----------------------------------------------------------


def test_it_resets_two_factor_and_the_member_enrols_again(world, as_admin):  # type: ignore[no-untyped-def]
    prescriber_client = signed_in(world.prescriber)  # signed in with a confirmed device
    assert prescriber_client.get(reverse("patients:list")).status_code == 200
    target = membership(world.prescriber, world.clinic_a)
    assert as_admin.post(url("staff_reset_two_factor", target)).status_code == 302
    assert not TOTPDevice.objects.filter(user=world.prescriber).exists()
    # The session's device is gone: the next click goes to enrolment.
    response = prescriber_client.get(reverse("patients:list"))
    assert response["Location"] == reverse("accounts:two_factor_setup")
    [entry] = staff_entries(world.clinic_a)
    assert entry.detail["two_factor"] == "reset" and entry.detail["devices"] == 1


def test_it_refuses_to_reset_your_own_two_factor(world, as_admin, admin):  # type: ignore[no-untyped-def]
    as_admin.post(url("staff_reset_two_factor", membership(admin, world.clinic_a)))
    assert TOTPDevice.objects.filter(user=admin).exists()
    assert staff_entries(world.clinic_a) == []


def test_it_unlocks_a_locked_out_account(world, as_admin):  # type: ignore[no-untyped-def]
    for attempt in range(5):
        Client().post(LOGIN, {"username": "nurse_a", "password": f"wrong-{attempt}"})
    Client().post(LOGIN, {"username": "front_desk_a", "password": "wrong"})
    assert Client().post(LOGIN, {"username": "nurse_a", "password": PASSWORD}).status_code != 302
    response = as_admin.post(url("staff_unlock", membership(world.nurse, world.clinic_a)))
    assert response.status_code == 302
    assert Client().post(LOGIN, {"username": "nurse_a", "password": PASSWORD}).status_code == 302
    # Only that account's failures are cleared.
    assert AccessAttempt.objects.filter(username="front_desk_a").exists()
    [entry] = staff_entries(world.clinic_a)
    assert entry.detail["unlocked"] is True and entry.detail["attempts_cleared"] >= 1


def test_it_emails_a_fresh_password_link(world, as_admin, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    User.objects.filter(pk=world.nurse.pk).update(email="nurse@example.test")
    with django_capture_on_commit_callbacks(execute=True):
        response = as_admin.post(url("staff_send_link", membership(world.nurse, world.clinic_a)))
    assert response.status_code == 302
    assert mail.outbox[0].to == ["nurse@example.test"]
    assert "/accounts/password-reset/" in mail.outbox[0].body


def test_it_says_so_when_there_is_no_email_to_send_a_link_to(world, as_admin):  # type: ignore[no-untyped-def]
    response = as_admin.post(
        url("staff_send_link", membership(world.nurse, world.clinic_a)), follow=True
    )
    assert any("no email address" in m for m in flashed(response))
    assert mail.outbox == [] and staff_entries(world.clinic_a) == []


# --- who may do it, and where --------------------------------------------------------------------

ACTIONS = [
    ("staff_change_role", {"role": "auditor"}),
    ("staff_deactivate", {}),
    ("staff_reactivate", {}),
    ("staff_reset_two_factor", {}),
    ("staff_unlock", {}),
    ("staff_send_link", {}),
]


@pytest.mark.parametrize(("name", "data"), ACTIONS, ids=[a[0] for a in ACTIONS])
def test_clinic_b_admins_get_404_for_clinic_a_members(world, name, data):  # type: ignore[no-untyped-def]
    TOTPDevice.objects.create(user=world.nurse, name="phone", confirmed=True)
    target = membership(world.nurse, world.clinic_a)
    client = signed_in(world.admin_b)
    assert client.get(url("staff_member", target)).status_code == 404
    assert client.post(url(name, target), data).status_code == 404
    target.refresh_from_db()
    assert target.role == Role.NURSE and target.is_active
    assert TOTPDevice.objects.filter(user=world.nurse).exists()
    assert AuditEntry.objects.filter(object_type="membership").count() == 0


@pytest.mark.parametrize("role", [r for r in Role if r != Role.CLINIC_ADMIN])
def test_only_clinic_admins_manage_staff(world, role):  # type: ignore[no-untyped-def]
    client = signed_in(world.staff_a[role])
    target = membership(world.nurse if role != Role.NURSE else world.prescriber, world.clinic_a)
    assert client.post(ADD, NEW).status_code == 403
    assert client.get(url("staff_member", target)).status_code == 403
    for name, data in ACTIONS:
        assert client.post(url(name, target), data).status_code == 403, name
    target.refresh_from_db()
    assert target.is_active and not User.objects.filter(username="rgarcia").exists()
    assert staff_entries(world.clinic_a) == []
