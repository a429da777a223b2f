"""Outgoing email and SMS to patients and staff, through pluggable backends.

Email uses Django's backend (console by default). SMS uses KETACLINIC_SMS_BACKEND (a dotted
class path; the console backend by default, the in-memory one in tests). Messages to patients
carry links and clinic names, never results.
"""

from __future__ import annotations

import sys
from typing import Protocol

from django.conf import settings
from django.core.mail import send_mail
from django.utils.module_loading import import_string


class SMSBackend(Protocol):
    def send(self, to: str, body: str) -> None: ...


class ConsoleSMSBackend:
    def send(self, to: str, body: str) -> None:
        sys.stdout.write(f"--- SMS to {to} ---\n{body}\n---\n")
        sys.stdout.flush()


# Tests read what was "sent" here, like django.core.mail.outbox.
sms_outbox: list[tuple[str, str]] = []


class LocmemSMSBackend:
    def send(self, to: str, body: str) -> None:
        sms_outbox.append((to, body))


def send_sms(to: str, body: str) -> None:
    backend: SMSBackend = import_string(settings.SMS_BACKEND)()
    backend.send(to, body)


def send_email(to: str, subject: str, body: str) -> None:
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [to])


def mask_address(address: str) -> str:
    """Keep enough of an address to recognise it in the record: a***@example.org, ***-1234."""
    if "@" in address:
        local, domain = address.split("@", 1)
        return f"{local[:1]}***@{domain}"
    digits = "".join(c for c in address if c.isdigit())
    return f"***-{digits[-4:]}" if len(digits) >= 4 else "***"
