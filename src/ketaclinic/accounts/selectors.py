"""Reads for the staff pages: a clinic's members with their sign-in state."""

from __future__ import annotations

from django.conf import settings
from django.core.paginator import Page, Paginator
from django.db.models import Exists, OuterRef
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from ketaclinic.accounts.models import Clinic, Membership

STAFF_PAGE_SIZE = 100


def _with_sign_in_state(memberships):  # type: ignore[no-untyped-def]
    return memberships.select_related("user", "clinic").annotate(
        two_factor_enrolled=Exists(
            TOTPDevice.objects.filter(user_id=OuterRef("user_id"), confirmed=True)
        )
    )


def locked_usernames(usernames: list[str]) -> set[str]:
    """Which of these accounts django-axes locks out right now (one query, whatever the count)."""
    from axes.models import AccessAttempt

    if not usernames:
        return set()
    cooloff = settings.AXES_COOLOFF_TIME
    attempts = AccessAttempt.objects.filter(
        username__in=usernames, failures_since_start__gte=settings.AXES_FAILURE_LIMIT
    )
    if cooloff is not None:
        attempts = attempts.filter(attempt_time__gt=timezone.now() - cooloff)
    return set(attempts.values_list("username", flat=True))


def staff_page(clinic: Clinic, page_number: object) -> Page:
    """The clinic's members, active first, each with `two_factor_enrolled` and `locked_out`.

    Four queries whatever the number of staff: the count, the page, the lockouts (and the
    session's own)."""
    members = _with_sign_in_state(Membership.objects.filter(clinic=clinic)).order_by(
        "-is_active", "user__last_name", "user__first_name", "pk"
    )
    page = Paginator(members, STAFF_PAGE_SIZE).get_page(page_number)
    rows = list(page.object_list)
    locked = locked_usernames([m.user.username for m in rows])
    for m in rows:
        m.locked_out = m.user.username in locked  # type: ignore[attr-defined]
    page.object_list = rows
    return page


def get_member(clinic: Clinic, membership_id: int) -> Membership:
    """One membership of this clinic; another clinic's id answers 404."""
    member = get_object_or_404(
        _with_sign_in_state(Membership.objects.filter(clinic=clinic)), pk=membership_id
    )
    member.locked_out = bool(locked_usernames([member.user.username]))  # type: ignore[attr-defined]
    return member
