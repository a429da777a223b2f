"""How every view declares who may reach it.

`@requires(Perm.X)` on a view: anonymous users go to the login page, users who still owe a
second factor go to verify or enrol, users without a current clinic choose one, and a role
without the permission gets 403. Objects are then looked up inside `request.clinic`, so
another clinic's ids answer 404. `@public` marks the few pages that need no login. A test walks
every URL pattern and fails on a view that declares neither.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from ketaclinic.accounts.roles import Perm, role_has

View = Callable[..., HttpResponse]
SESSION_TWO_FACTOR_PENDING = "ketaclinic.two_factor_pending"


def two_factor_outstanding(request: HttpRequest) -> str | None:
    """The page a signed-in user must visit before anything else ('verify' or 'setup'), if any."""
    user = request.user
    if user.is_verified():  # type: ignore[union-attr]
        return None
    pending = request.session.get(SESSION_TWO_FACTOR_PENDING)
    if pending:
        return str(pending)
    if user.two_factor_waived:  # type: ignore[union-attr]
        return None
    memberships = getattr(request, "memberships", [])
    if any(m.requires_two_factor for m in memberships):
        return "setup"
    return None


def requires(perm: Perm | None, *, clinic: bool = True) -> Callable[[View], View]:
    """Declare what a view needs: a permission in the current clinic (or None: signed in)."""

    def decorate(view: View) -> View:
        @wraps(view)
        def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            outstanding = two_factor_outstanding(request)
            if outstanding is not None:
                return redirect(f"accounts:two_factor_{outstanding}")
            if clinic and getattr(request, "membership", None) is None:
                return redirect("accounts:choose_clinic")
            if perm is not None and not role_has(request.membership.role, perm):  # type: ignore[attr-defined]
                raise PermissionDenied(f"Your role does not allow {perm.value}.")
            return view(request, *args, **kwargs)

        guarded.ketaclinic_access = ("requires", perm, clinic)  # type: ignore[attr-defined]
        return guarded

    return decorate


def public(view: View) -> View:
    """Mark a page that anyone may open (login, password reset, the patient portal's checks)."""
    view.ketaclinic_access = ("public", None, False)  # type: ignore[attr-defined]
    return view


def has_perm(request: HttpRequest, perm: Perm) -> bool:
    membership = getattr(request, "membership", None)
    return membership is not None and role_has(membership.role, perm)
