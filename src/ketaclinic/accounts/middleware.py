from __future__ import annotations

import time
from collections.abc import Callable
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone

from ketaclinic.accounts.models import Membership

SESSION_CLINIC = "ketaclinic.clinic_id"
SESSION_LAST_SEEN = "ketaclinic.last_seen"
# Write the last-seen time at most this often: saving the session on every request would
# turn every page view into a session write.
LAST_SEEN_GRANULARITY_SECONDS = 5


class IdleLogoutMiddleware:
    """Sign staff out after KETACLINIC_IDLE_TIMEOUT_SECONDS without a request.

    Pages also carry a timer (static/ketaclinic/idle.js) that reloads the page once the same
    time has passed, so this middleware signs the user out and patient data leaves an
    unattended screen.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated:
            now = time.time()
            last_seen = request.session.get(SESSION_LAST_SEEN)
            timeout = settings.IDLE_TIMEOUT_SECONDS
            if last_seen is not None and now - last_seen > timeout:
                logout(request)
                messages.info(
                    request,
                    f"You were signed out after {_human_seconds(timeout)} without activity.",
                )
                return redirect("accounts:login")
            # A stale last-seen time shortens the idle allowance by up to its age, so keep it
            # within a tenth of the timeout (short timeouts would otherwise sign out active users).
            refresh_after = min(LAST_SEEN_GRANULARITY_SECONDS, timeout / 10)
            if last_seen is None or now - last_seen >= refresh_after:
                request.session[SESSION_LAST_SEEN] = now
        return self.get_response(request)


def _human_seconds(seconds: int) -> str:
    if seconds % 60 == 0:
        minutes = seconds // 60
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds} seconds"


class ClinicMiddleware:
    """Attach the user's memberships and the current clinic (kept in the session) to requests."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request.memberships = []  # type: ignore[attr-defined]
        request.membership = None  # type: ignore[attr-defined]
        request.clinic = None  # type: ignore[attr-defined]
        if request.user.is_authenticated:
            memberships = list(
                Membership.objects.filter(user=request.user, is_active=True)
                .select_related("clinic")
                .order_by("clinic__name")
            )
            request.memberships = memberships  # type: ignore[attr-defined]
            chosen = request.session.get(SESSION_CLINIC)
            current = next((m for m in memberships if m.clinic_id == chosen), None)
            if current is None and len(memberships) == 1:
                current = memberships[0]
                request.session[SESSION_CLINIC] = current.clinic_id
            if current is not None:
                request.membership = current  # type: ignore[attr-defined]
                request.clinic = current.clinic  # type: ignore[attr-defined]
                # Times are stored in UTC and shown in the clinic's own time zone.
                timezone.activate(ZoneInfo(current.clinic.time_zone))
        try:
            return self.get_response(request)
        finally:
            timezone.deactivate()
