from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from django.http import HttpRequest

    from ketaclinic.accounts.models import Clinic, User


@dataclass(frozen=True)
class Actor:
    """Who is acting, for which clinic, from where: the first argument of every service."""

    user: User | None
    clinic: Clinic
    ip: str | None = None
    user_agent: str = ""
    request_id: str = ""

    @classmethod
    def from_request(cls, request: HttpRequest) -> Actor:
        clinic: Any = getattr(request, "clinic", None)
        if clinic is None:
            raise ValueError("This request has no current clinic.")
        return cls(
            user=request.user if request.user.is_authenticated else None,  # type: ignore[arg-type]
            clinic=clinic,
            ip=request.META.get("REMOTE_ADDR") or None,
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:300],
            request_id=getattr(request, "request_id", ""),
        )

    @classmethod
    def system(cls, clinic: Clinic, user: User | None = None, label: str = "cli") -> Actor:
        return cls(user=user, clinic=clinic, user_agent=f"ketaclinic {label}")
