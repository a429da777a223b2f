from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

from ketaclinic.accounts.roles import ROLE_PERMISSIONS, Role


def clinic(request: HttpRequest) -> dict[str, Any]:
    membership = getattr(request, "membership", None)
    perms = ROLE_PERMISSIONS[Role(membership.role)] if membership else frozenset()
    return {
        "current_clinic": getattr(request, "clinic", None),
        "current_membership": membership,
        "memberships": getattr(request, "memberships", []),
        # Templates test permissions as {% if "audit.view" in perms_now %}.
        "perms_now": {p.value for p in perms},
        "idle_timeout_seconds": settings.IDLE_TIMEOUT_SECONDS,
    }
