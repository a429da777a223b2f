"""Shared helpers for the rating-scale tests: actors, answers, clients and row counts."""

from __future__ import annotations

import re
from typing import Any

from django.test import Client
from django_otp.plugins.otp_totp.models import TOTPDevice

from ketaclinic.accounts.models import User
from ketaclinic.audit.context import Actor
from ketaclinic.audit.models import AuditEntry
from ketaclinic.measures import services
from ketaclinic.measures.models import (
    Alert,
    ScaleAnswer,
    ScaleResponse,
    SelfReportRequest,
)


def actor(user: User, clinic=None) -> Actor:  # type: ignore[no-untyped-def]
    """The actor a signed-in user is in their (first) clinic."""
    if clinic is None:
        clinic = user.memberships.select_related("clinic").first().clinic  # type: ignore[attr-defined]
    return Actor.system(clinic, user=user, label="test")


def phq9(*items: int | None, q9: int | None = 0, q10: int | None = None) -> list[int | None]:
    """PHQ-9 answers in item order: items 1-8 (zeros unless given), then 9 and 10."""
    first = list(items) + [0] * (8 - len(items))
    return first[:8] + [q9, q10]


def phq9_totalling(total: int, q9: int = 0) -> list[int | None]:
    """PHQ-9 answers whose total is `total`, item 9 included."""
    rest = total - q9
    assert 0 <= rest <= 24
    items = []
    for _ in range(8):
        take = min(3, rest)
        items.append(take)
        rest -= take
    return phq9(*items, q9=q9)


def cssrs(**answers: bool | None) -> dict[str, bool | None]:
    """C-SSRS Screener answers: No to 1, 2 and 6 unless given; 3-5 and 6a not asked."""
    base: dict[str, bool | None] = {
        "q1": False,
        "q2": False,
        "q3": None,
        "q4": None,
        "q5": None,
        "q6": False,
        "q6a": None,
    }
    base.update(answers)
    return base


def record(user: User, patient, code: str, answers: Any, **kwargs: Any) -> ScaleResponse:  # type: ignore[no-untyped-def]
    return services.record_response(actor(user, patient.clinic), patient, code, answers, **kwargs)


def counts() -> dict[str, int]:
    """Rows of everything a scale write can touch."""
    return {
        "responses": ScaleResponse.objects.count(),
        "answers": ScaleAnswer.objects.count(),
        "alerts": Alert.objects.count(),
        "requests": SelfReportRequest.objects.count(),
        "audit": AuditEntry.objects.count(),
    }


def csrf_client(user: User) -> Client:
    """A client that enforces CSRF like a browser, signed in past two-factor, and the token a
    page of the app hands out (the CSRF cookie is HttpOnly, so scripts read it from a page)."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    device = TOTPDevice.objects.filter(
        user=user, confirmed=True
    ).first() or TOTPDevice.objects.create(user=user, name="test", confirmed=True)
    session = client.session
    session["otp_device_id"] = device.persistent_id
    session.save()
    return client


def page_csrf_token(html: str) -> str:
    found = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html)
    assert found, "the page has no CSRF token"
    return found.group(1)
