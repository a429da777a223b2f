from __future__ import annotations

from base64 import b32encode
from collections.abc import Callable

import segno
from django import forms
from django.contrib import messages
from django.contrib.auth import authenticate, login, logout
from django.contrib.auth import views as auth_views
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import login as otp_login
from django_otp.plugins.otp_totp.models import TOTPDevice

from ketaclinic.accounts import selectors, services
from ketaclinic.accounts.access import SESSION_TWO_FACTOR_PENDING, has_perm, public, requires
from ketaclinic.accounts.forms import (
    ClinicSettingsForm,
    ExistingStaffForm,
    LoginForm,
    NewStaffForm,
    RoleForm,
    TokenForm,
)
from ketaclinic.accounts.middleware import SESSION_CLINIC
from ketaclinic.accounts.models import Clinic, Membership
from ketaclinic.accounts.roles import Perm
from ketaclinic.audit.context import Actor

SESSION_NEXT = "ketaclinic.after_login"


def _safe_next(request: HttpRequest, candidate: str | None) -> str:
    if candidate and url_has_allowed_host_and_scheme(candidate, {request.get_host()}):
        return candidate
    return str(reverse_lazy("home"))


@public
@require_http_methods(["GET", "POST"])
def login_view(request: HttpRequest) -> HttpResponse:
    form = LoginForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = authenticate(
            request, username=form.cleaned_data["username"], password=form.cleaned_data["password"]
        )
        if getattr(request, "axes_locked_out", False):
            return render(request, "accounts/locked_out.html", status=403)
        if user is None:
            form.add_error(
                None,
                "That username and password do not match. Check both and "
                "try again; after 5 failures the account is locked for 15 minutes.",
            )
        else:
            login(request, user)
            request.session[SESSION_NEXT] = _safe_next(request, request.GET.get("next"))
            has_device = TOTPDevice.objects.filter(user=user, confirmed=True).exists()
            needs = Membership.objects.filter(user=user, is_active=True).select_related("clinic")
            required = not user.two_factor_waived and any(m.requires_two_factor for m in needs)
            if has_device and not user.two_factor_waived:
                request.session[SESSION_TWO_FACTOR_PENDING] = "verify"
                return redirect("accounts:two_factor_verify")
            if required:
                request.session[SESSION_TWO_FACTOR_PENDING] = "setup"
                return redirect("accounts:two_factor_setup")
            return redirect(request.session.pop(SESSION_NEXT))
    return render(request, "accounts/login.html", {"form": form})


@require_POST
@public
def logout_view(request: HttpRequest) -> HttpResponse:
    logout(request)
    messages.info(request, "You are signed out.")
    return redirect("accounts:login")


def _finish_two_factor(request: HttpRequest, device: TOTPDevice) -> HttpResponse:
    otp_login(request, device)
    request.session.pop(SESSION_TWO_FACTOR_PENDING, None)
    return redirect(request.session.pop(SESSION_NEXT, str(reverse_lazy("home"))))


@public
@require_http_methods(["GET", "POST"])
def two_factor_verify(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect("accounts:login")
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        token = form.cleaned_data["token"].strip()
        for device in TOTPDevice.objects.filter(user=request.user, confirmed=True):
            if device.verify_token(token):
                return _finish_two_factor(request, device)
        form.add_error(
            "token", "That code is wrong or has expired. Wait for the next code and enter it."
        )
    return render(request, "accounts/two_factor_verify.html", {"form": form})


@public
@require_http_methods(["GET", "POST"])
def two_factor_setup(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect("accounts:login")
    if TOTPDevice.objects.filter(user=request.user, confirmed=True).exists():
        if not request.user.is_verified():  # type: ignore[union-attr]
            return redirect("accounts:two_factor_verify")
    device, _ = TOTPDevice.objects.get_or_create(
        user=request.user, confirmed=False, defaults={"name": "Authenticator app"}
    )
    form = TokenForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        if device.verify_token(form.cleaned_data["token"].strip()):
            device.confirmed = True
            device.save(update_fields=["confirmed"])
            messages.success(request, "Two-factor sign-in is set up.")
            return _finish_two_factor(request, device)
        form.add_error(
            "token",
            "That code does not match. Check the phone's clock is right and enter the newest code.",
        )
    qr = segno.make(device.config_url, error="m")
    secret = b32encode(device.bin_key).decode().rstrip("=")
    return render(
        request,
        "accounts/two_factor_setup.html",
        {
            "form": form,
            "qr_data_uri": qr.svg_data_uri(scale=5, dark="#111"),
            "secret_groups": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
        },
    )


@requires(None, clinic=False)
@require_http_methods(["GET", "POST"])
def choose_clinic(request: HttpRequest) -> HttpResponse:
    memberships = request.memberships  # type: ignore[attr-defined]
    if request.method == "POST":
        wanted = request.POST.get("clinic_id", "")
        chosen = next((m for m in memberships if str(m.clinic_id) == wanted), None)
        if chosen is None:
            messages.error(request, "Choose one of your clinics.")
        else:
            request.session[SESSION_CLINIC] = chosen.clinic_id
            messages.success(request, f"Now working in {chosen.clinic.name}.")
            return redirect("home")
    return render(request, "accounts/choose_clinic.html", {"choices": memberships})


@requires(Perm.STAFF_VIEW)
@require_http_methods(["GET"])
def staff_list(request: HttpRequest) -> HttpResponse:
    page = selectors.staff_page(request.clinic, request.GET.get("page"))  # type: ignore[attr-defined]
    return render(
        request,
        "accounts/staff.html",
        {
            "page": page,
            "members": page.object_list,
            "can_manage": has_perm(request, Perm.STAFF_MANAGE),
        },
    )


def _field_errors(form: forms.Form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


@requires(Perm.STAFF_MANAGE)
@require_http_methods(["GET", "POST"])
def staff_add(request: HttpRequest) -> HttpResponse:
    """Add a new staff account, or someone's existing account from another clinic."""
    kind = request.POST.get("kind", "new") if request.method == "POST" else None
    new_form = NewStaffForm(request.POST if kind == "new" else None, prefix="new")
    existing_form = ExistingStaffForm(
        request.POST if kind == "existing" else None, prefix="existing"
    )
    form = existing_form if kind == "existing" else new_form
    if request.method == "POST" and form.is_valid():
        actor = Actor.from_request(request)
        try:
            if kind == "existing":
                membership = services.add_existing_user(actor, **form.cleaned_data)
            else:
                membership = services.add_staff_member(actor, **form.cleaned_data)
        except ValidationError as exc:
            _field_errors(form, exc)
        else:
            user = membership.user
            if kind == "existing":
                done = f"{user.display_name} now works here as {membership.get_role_display()}."
            else:
                done = (
                    f"Added {user.display_name} as {membership.get_role_display()}. "
                    f"An email to {user.email} has a link to choose their password."
                )
            messages.success(request, done)
            return redirect("accounts:staff_member", membership_id=membership.pk)
    return render(
        request,
        "accounts/staff_add.html",
        {"new_form": new_form, "existing_form": existing_form, "kind": kind},
        status=200,
    )


def _member_page(
    request: HttpRequest, member: Membership, role_form: RoleForm | None = None
) -> HttpResponse:
    return render(
        request,
        "accounts/staff_member.html",
        {
            "member": member,
            "role_form": role_form or RoleForm(initial={"role": member.role}),
            "is_self": member.user_id == request.user.pk,
        },
    )


@requires(Perm.STAFF_MANAGE)
@require_http_methods(["GET"])
def staff_member(request: HttpRequest, membership_id: int) -> HttpResponse:
    member = selectors.get_member(request.clinic, membership_id)  # type: ignore[attr-defined]
    return _member_page(request, member)


@requires(Perm.STAFF_MANAGE)
@require_POST
def staff_change_role(request: HttpRequest, membership_id: int) -> HttpResponse:
    member = selectors.get_member(request.clinic, membership_id)  # type: ignore[attr-defined]
    form = RoleForm(request.POST)
    if form.is_valid():
        before = member.get_role_display()
        try:
            changed = services.change_role(
                Actor.from_request(request), member, form.cleaned_data["role"]
            )
        except ValidationError as exc:
            _field_errors(form, exc)
        else:
            if changed.get_role_display() == before:
                messages.info(request, f"{member.user.display_name} is already {before}.")
            else:
                messages.success(
                    request,
                    f"{member.user.display_name} is now {changed.get_role_display()} "
                    f"(was {before}).",
                )
            return redirect("accounts:staff_member", membership_id=member.pk)
    return _member_page(request, member, form)


def _member_action(
    request: HttpRequest,
    membership_id: int,
    act: Callable[[Actor, Membership], object],
    done: Callable[[Membership, object], str],
) -> HttpResponse:
    """Run one POST action on a member: a refusal is shown as a message, nothing changes."""
    member = selectors.get_member(request.clinic, membership_id)  # type: ignore[attr-defined]
    try:
        result = act(Actor.from_request(request), member)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, done(member, result))
    return redirect("accounts:staff_member", membership_id=member.pk)


@requires(Perm.STAFF_MANAGE)
@require_POST
def staff_deactivate(request: HttpRequest, membership_id: int) -> HttpResponse:
    return _member_action(
        request,
        membership_id,
        services.deactivate_membership,
        lambda m, _: f"{m.user.display_name} can no longer work in this clinic.",
    )


@requires(Perm.STAFF_MANAGE)
@require_POST
def staff_reactivate(request: HttpRequest, membership_id: int) -> HttpResponse:
    return _member_action(
        request,
        membership_id,
        services.reactivate_membership,
        lambda m, _: f"{m.user.display_name} can work in this clinic again.",
    )


@requires(Perm.STAFF_MANAGE)
@require_POST
def staff_reset_two_factor(request: HttpRequest, membership_id: int) -> HttpResponse:
    return _member_action(
        request,
        membership_id,
        services.reset_two_factor,
        lambda m, _: (
            f"Two-factor sign-in of {m.user.display_name} is reset: they set up "
            "their authenticator app again when they next sign in."
        ),
    )


@requires(Perm.STAFF_MANAGE)
@require_POST
def staff_unlock(request: HttpRequest, membership_id: int) -> HttpResponse:
    return _member_action(
        request,
        membership_id,
        services.unlock_account,
        lambda m, cleared: (
            f"{m.user.display_name} can sign in again."
            if cleared
            else f"{m.user.display_name} was not locked out; nothing to unlock."
        ),
    )


@requires(Perm.STAFF_MANAGE)
@require_POST
def staff_send_link(request: HttpRequest, membership_id: int) -> HttpResponse:
    return _member_action(
        request,
        membership_id,
        services.send_password_link,
        lambda m, _: f"Sent {m.user.email} a link to choose a password.",
    )


@requires(Perm.CLINIC_CONFIGURE)
@require_http_methods(["GET", "POST"])
def clinic_settings(request: HttpRequest) -> HttpResponse:
    clinic = Clinic.objects.get(pk=request.clinic.pk)  # type: ignore[attr-defined]
    form = ClinicSettingsForm(request.POST or None, instance=clinic)
    if request.method == "POST" and form.is_valid():
        try:
            changed = services.update_clinic_settings(
                Actor.from_request(request),
                {name: form.cleaned_data[name] for name in services.CLINIC_SETTING_FIELDS},
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            labels = [str(form.fields[name].label) for name in changed]
            messages.success(
                request, "Saved: " + ", ".join(labels) + "." if changed else "No changes to save."
            )
            return redirect("accounts:clinic_settings")
    return render(request, "accounts/clinic_settings.html", {"form": form})


@requires(None, clinic=False)
@require_http_methods(["GET"])
def home(request: HttpRequest) -> HttpResponse:
    return redirect("patients:list")


password_reset = public(
    auth_views.PasswordResetView.as_view(
        template_name="accounts/password_reset.html",
        email_template_name="accounts/password_reset_email.txt",
        subject_template_name="accounts/password_reset_subject.txt",
        success_url=reverse_lazy("accounts:password_reset_done"),
    )
)
password_reset_done = public(
    auth_views.PasswordResetDoneView.as_view(template_name="accounts/password_reset_done.html")
)
password_reset_confirm = public(
    auth_views.PasswordResetConfirmView.as_view(
        template_name="accounts/password_reset_confirm.html",
        success_url=reverse_lazy("accounts:password_reset_complete"),
    )
)
password_reset_complete = public(
    auth_views.PasswordResetCompleteView.as_view(
        template_name="accounts/password_reset_complete.html"
    )
)
