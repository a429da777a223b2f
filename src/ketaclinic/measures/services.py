"""Writes for rating scales: store a scored response, raise alerts, send and complete
self-report requests, acknowledge and escalate alerts. Each write is one transaction with its
audit entry."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from ketaclinic import notifications
from ketaclinic.accounts.models import Membership
from ketaclinic.accounts.roles import Role
from ketaclinic.audit import services as audit
from ketaclinic.audit.context import Actor
from ketaclinic.audit.models import AuditAction
from ketaclinic.clinical.instruments import get_instrument, score
from ketaclinic.clinical.instruments.model import Instrument, ScoreResult
from ketaclinic.measures.models import (
    Alert,
    AlertSeverity,
    RequestStatus,
    ResponseSource,
    ScaleAnswer,
    ScaleResponse,
    SelfReportRequest,
)
from ketaclinic.patients.models import Patient

# A rise of this many PHQ-9 points over the baseline opens an alert (the PHQ-9 minimal
# clinically important difference, Löwe 2004; instruments.md §2).
PHQ9_RISE_ALERT_POINTS = 5
SELF_REPORT_CODES = ("phq9", "phq2", "gad7", "qids_sr16", "pcl5", "pain_nrs", "peg", "cssrs_screen")


class ScaleAnswerError(ValidationError):
    """The answers break a scoring rule: nothing was stored. `messages` name each item."""


def answers_by_item(instrument: Instrument, answers: Any) -> dict[str, Any]:
    """Answers as {item id: value} in item order (unknown keys are left for score() to name)."""
    if isinstance(answers, Mapping):
        out: dict[str, Any] = {}
        for key, value in answers.items():
            out[instrument.resolve_item_id(key) or str(key)] = value
        return out
    if isinstance(answers, Sequence) and not isinstance(answers, str | bytes):
        return {
            item_id: value for item_id, value in zip(instrument.item_ids, answers, strict=False)
        }
    raise ScaleAnswerError("Answers must be a list in item order or a mapping of item ids.")


def _decimal(total: int | float | None) -> Decimal | None:
    return None if total is None else Decimal(str(total)).quantize(Decimal("0.01"))


@transaction.atomic
def record_response(
    actor: Actor,
    patient: Patient,
    code: str,
    answers: Any,
    *,
    administered_at: datetime | None = None,
    source: str = ResponseSource.STAFF,
    visit_id: int | None = None,
    self_report_request: SelfReportRequest | None = None,
) -> ScaleResponse:
    """Score and store one response item by item, then open any alert it calls for."""
    if patient.clinic_id != actor.clinic.pk:
        raise PermissionError("Patient belongs to another clinic.")
    try:
        instrument = get_instrument(code)
    except (KeyError, ValueError) as exc:
        raise ScaleAnswerError(str(exc).strip("'\"")) from None
    code = instrument.code  # "PHQ-9" and "phq9" are stored, trended and alerted alike
    by_item = answers_by_item(instrument, answers)
    # Score the answers as given: an item named twice or a list longer than the scale is an
    # error there, where the by-item copy would silently keep one value or drop the extras.
    result = score(code, answers)
    if result.errors:
        raise ScaleAnswerError(list(result.errors))
    if all(value is None for value in by_item.values()):
        raise ScaleAnswerError("No question was answered: there is nothing to score or store.")
    when = administered_at or timezone.now()
    if when > timezone.now() + timedelta(minutes=5):
        raise ScaleAnswerError("A scale cannot be administered in the future.")
    response = ScaleResponse.objects.create(
        clinic=actor.clinic,
        patient=patient,
        instrument_code=code,
        instrument_version=instrument.version,
        administered_at=when,
        source=source,
        recorded_by=actor.user,
        visit_id=visit_id,
        self_report_request=self_report_request,
        total=_decimal(result.total),
        band=result.band or "",
        flags=sorted(result.flags),
        subscales={k: v for k, v in result.subscales.items()},
        convention=dict(result.convention),
        complete=result.complete,
        prorated=result.prorated,
    )
    ScaleAnswer.objects.bulk_create(
        ScaleAnswer(response=response, item_id=item.id, position=index, value=by_item.get(item.id))
        for index, item in enumerate(instrument.items)
    )
    audit.record(
        actor,
        AuditAction.CREATE,
        "scale_response",
        response.pk,
        patient_id=patient.pk,
        detail={"instrument": code, "source": source},
    )
    _open_alert_if_needed(actor, patient, response, result)
    return response


@dataclass(frozen=True)
class AlertReason:
    code: str
    severity: str
    text: str


def alert_reasons(
    code: str, result: ScoreResult, baseline_phq9: Decimal | None
) -> list[AlertReason]:
    """Why a response needs a clinician: the alert rules in one place."""
    reasons: list[AlertReason] = []
    name = get_instrument(code).short_name
    if "suicidality" in result.flags:
        reasons.append(
            AlertReason(
                "suicidality", AlertSeverity.HIGH, f"{name}: positive answer on the suicide item."
            )
        )
    if "suicidality_unknown" in result.flags:
        # Missing is not "no" (instruments.md §15.3): a person must look.
        reasons.append(
            AlertReason(
                "suicidality_unknown",
                AlertSeverity.MODERATE,
                f"{name}: the suicide item was not answered.",
            )
        )
    if code == "cssrs_screen" and result.band in ("moderate", "high"):
        severity = AlertSeverity.HIGH if result.band == "high" else AlertSeverity.MODERATE
        reasons.append(
            AlertReason(f"cssrs_{result.band}", severity, f"C-SSRS screener: {result.band} risk.")
        )
    if (
        code == "phq9"
        and baseline_phq9 is not None
        and result.total is not None
        and Decimal(str(result.total)) - baseline_phq9 >= PHQ9_RISE_ALERT_POINTS
    ):
        rise = float(Decimal(str(result.total)) - baseline_phq9)
        reasons.append(
            AlertReason(
                "phq9_rise",
                AlertSeverity.MODERATE,
                f"PHQ-9 rose {rise:g} points over the baseline of {float(baseline_phq9):g}.",
            )
        )
    return reasons


def baseline_total(patient: Patient, code: str, before: ScaleResponse) -> Decimal | None:
    """The baseline: the patient's first complete response to `code`.

    Once treatment courses exist, the course's own baseline takes over.
    """
    first = (
        ScaleResponse.objects.filter(patient=patient, instrument_code=code, total__isnull=False)
        .exclude(pk=before.pk)
        .order_by("administered_at", "pk")
        .first()
    )
    return (
        first.total
        if first is not None and first.administered_at <= before.administered_at
        else None
    )


def _responsible_prescriber(patient: Patient):  # type: ignore[no-untyped-def]
    if patient.responsible_prescriber_id:
        return patient.responsible_prescriber
    membership = (
        Membership.objects.filter(clinic_id=patient.clinic_id, role=Role.PRESCRIBER, is_active=True)
        .select_related("user")
        .order_by("pk")
        .first()
    )
    return membership.user if membership else None


def _open_alert_if_needed(
    actor: Actor, patient: Patient, response: ScaleResponse, result: ScoreResult
) -> Alert | None:
    baseline = (
        baseline_total(patient, "phq9", response) if response.instrument_code == "phq9" else None
    )
    reasons = alert_reasons(response.instrument_code, result, baseline)
    if not reasons:
        return None
    severity = (
        AlertSeverity.HIGH
        if any(r.severity == AlertSeverity.HIGH for r in reasons)
        else AlertSeverity.MODERATE
    )
    alert = Alert.objects.create(
        clinic=actor.clinic,
        patient=patient,
        response=response,
        severity=severity,
        reasons=[{"code": r.code, "text": r.text} for r in reasons],
        assigned_to=_responsible_prescriber(patient),
        opened_at=timezone.now(),
    )
    audit.record(
        actor,
        AuditAction.CREATE,
        "alert",
        alert.pk,
        patient_id=patient.pk,
        detail={"reasons": [r.code for r in reasons], "severity": severity},
    )
    transaction.on_commit(lambda: _notify_alert(alert.pk))
    return alert


def _notify_alert(alert_id: int) -> None:
    from ketaclinic.measures.tasks import notify_alert_opened

    notify_alert_opened(alert_id)


def alert_link(alert: Alert) -> str:
    return settings.SITE_URL + reverse("measures:alert", kwargs={"alert_id": alert.pk})


@transaction.atomic
def acknowledge_alert(actor: Actor, alert: Alert, note: str) -> Alert:
    note = note.strip()
    if not note:
        raise ValidationError({"note": "Write what you did or decided; the note is required."})
    locked = Alert.objects.select_for_update().get(pk=alert.pk, clinic=actor.clinic)
    if locked.acknowledged_at is not None:
        raise ValidationError(
            "This alert was already acknowledged by "
            f"{locked.acknowledged_by.display_name if locked.acknowledged_by else 'someone'}."
        )
    locked.acknowledged_at = timezone.now()
    locked.acknowledged_by = actor.user
    locked.acknowledgement_note = note
    locked.save(update_fields=["acknowledged_at", "acknowledged_by", "acknowledgement_note"])
    audit.record(
        actor,
        AuditAction.UPDATE,
        "alert",
        locked.pk,
        patient_id=locked.patient_id,
        reason=note,
        detail={"acknowledged": True},
    )
    return locked


def escalate_overdue_alerts(now: datetime | None = None) -> list[Alert]:
    """High-severity alerts open past the clinic's limit go to its admins, once."""
    now = now or timezone.now()
    escalated = []
    candidates = Alert.objects.filter(
        severity=AlertSeverity.HIGH, acknowledged_at__isnull=True, escalated_at__isnull=True
    ).select_related("clinic")
    for alert in candidates:
        if alert.opened_at + timedelta(minutes=alert.clinic.alert_escalation_minutes) > now:
            continue
        with transaction.atomic():
            locked = Alert.objects.select_for_update().get(pk=alert.pk)
            if locked.escalated_at is not None or locked.acknowledged_at is not None:
                continue
            locked.escalated_at = now
            locked.save(update_fields=["escalated_at"])
            audit.record(
                Actor.system(alert.clinic, label="worker"),
                AuditAction.UPDATE,
                "alert",
                locked.pk,
                patient_id=locked.patient_id,
                detail={"escalated": True},
            )
            admins = list(
                Membership.objects.filter(
                    clinic=alert.clinic, role=Role.CLINIC_ADMIN, is_active=True
                ).select_related("user")
            )
            link = alert_link(locked)
            transaction.on_commit(
                lambda admins=admins, link=link: [
                    notifications.send_email(
                        m.user.email,
                        "ketaclinic: a high-risk alert is still open",
                        "A high-risk alert has not been acknowledged within the clinic's time "
                        f"limit. Review it now:\n{link}\n",
                    )
                    for m in admins
                    if m.user.email
                ]
            )
            escalated.append(locked)
    return escalated


# --- self-report requests ------------------------------------------------------------------


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class SentRequest:
    request: SelfReportRequest
    link: str  # shown once to the sender's backend; never stored


def create_self_report_request(
    actor: Actor,
    patient: Patient,
    codes: Sequence[str],
    *,
    channel: str,
    visit_id: int | None = None,
    deliver: bool = True,
) -> SentRequest:
    """Create a one-time link and deliver it (unless the caller sends its own message)."""
    if patient.clinic_id != actor.clinic.pk:
        raise PermissionError("Patient belongs to another clinic.")
    codes = list(dict.fromkeys(codes))  # a scale chosen twice is answered and stored once
    errors = {}
    unknown = [c for c in codes if c not in SELF_REPORT_CODES]
    if not codes:
        errors["instruments"] = "Choose at least one scale."
    elif unknown:
        errors["instruments"] = f"Not a self-report scale: {', '.join(unknown)}."
    address = patient.email if channel == "email" else patient.phone
    if channel not in ("email", "sms"):
        errors["channel"] = "Send by email or SMS."
    elif not address:
        errors["channel"] = (
            f"The patient has no {'email address' if channel == 'email' else 'phone number'}"
            " on record; add one or choose the other channel."
        )
    if errors:
        raise ValidationError(errors)
    token = secrets.token_urlsafe(32)
    with transaction.atomic():
        request = SelfReportRequest.objects.create(
            clinic=actor.clinic,
            patient=patient,
            instrument_codes=list(codes),
            token_hash=token_digest(token),
            channel=channel,
            sent_to=notifications.mask_address(address),
            created_by=actor.user,
            expires_at=timezone.now() + timedelta(hours=actor.clinic.self_report_link_hours),
            visit_id=visit_id,
        )
        audit.record(
            actor,
            AuditAction.CREATE,
            "self_report_request",
            request.pk,
            patient_id=patient.pk,
            detail={"instruments": list(codes), "channel": channel},
        )
    link = settings.SITE_URL + reverse("portal:open", kwargs={"token": token})
    body = (
        f"{actor.clinic.name} asks you to answer {len(codes)} short questionnaire"
        f"{'s' if len(codes) != 1 else ''} before your visit. Open: {link}\n"
        f"The link works once and expires in {actor.clinic.self_report_link_hours} hours."
    )
    if deliver:
        transaction.on_commit(lambda: _deliver(channel, address, actor.clinic.name, body))
    return SentRequest(request, link)


def _deliver(channel: str, address: str, clinic_name: str, body: str) -> None:
    if channel == "email":
        notifications.send_email(address, f"{clinic_name}: questionnaires before your visit", body)
    else:
        notifications.send_sms(address, body)


class LinkProblem(Exception):
    """The link cannot be used; `kind` picks the page the patient sees."""

    def __init__(self, kind: str):
        super().__init__(kind)
        self.kind = kind


def open_request(token: str) -> SelfReportRequest:
    request = (
        SelfReportRequest.objects.select_related("clinic", "patient")
        .filter(token_hash=token_digest(token))
        .first()
    )
    if request is None:
        raise LinkProblem("invalid")
    return check_usable(request)


def check_usable(request: SelfReportRequest) -> SelfReportRequest:
    if request.status == RequestStatus.COMPLETED:
        raise LinkProblem("used")
    if request.status in (RequestStatus.LOCKED, RequestStatus.CANCELLED):
        raise LinkProblem("locked")
    if request.expires_at <= timezone.now():
        raise LinkProblem("expired")
    return request


MAX_BIRTH_DATE_TRIES = 5


def check_birth_date(request: SelfReportRequest, answer: Any) -> bool:
    """True when `answer` is the patient's birth date; locks the link after 5 wrong tries."""
    if answer == request.patient.date_of_birth:
        return True
    with transaction.atomic():
        locked = SelfReportRequest.objects.select_for_update().get(pk=request.pk)
        locked.failed_birth_date_checks += 1
        if locked.failed_birth_date_checks >= MAX_BIRTH_DATE_TRIES:
            locked.status = RequestStatus.LOCKED
        locked.save(update_fields=["failed_birth_date_checks", "status"])
    request.refresh_from_db()
    return False


@dataclass(frozen=True)
class Submission:
    responses: list[ScaleResponse]
    suicidality: bool
    already_submitted: bool = False


def submit_self_report(
    request_id: int, answers_by_code: Mapping[str, Any], ip: str | None = None, user_agent: str = ""
) -> Submission:
    """Store every scale of the request at once; a second submit stores nothing."""
    with transaction.atomic():
        request = (
            SelfReportRequest.objects.select_for_update()
            .select_related("clinic", "patient")
            .get(pk=request_id)
        )
        if request.status == RequestStatus.COMPLETED:
            return Submission([], suicidality=False, already_submitted=True)
        check_usable(request)
        missing = [c for c in request.instrument_codes if c not in answers_by_code]
        if missing:
            raise ScaleAnswerError(f"Not answered yet: {', '.join(missing)}.")
        actor = Actor(
            user=None, clinic=request.clinic, ip=ip, user_agent=user_agent[:300], request_id=""
        )
        responses = [
            record_response(
                actor,
                request.patient,
                code,
                answers_by_code[code],
                source=ResponseSource.SELF_REPORT,
                visit_id=request.visit_id,
                self_report_request=request,
            )
            for code in request.instrument_codes
        ]
        request.status = RequestStatus.COMPLETED
        request.completed_at = timezone.now()
        request.save(update_fields=["status", "completed_at"])
    suicidality = any("suicidality" in r.flags for r in responses)
    return Submission(responses, suicidality=suicidality)
