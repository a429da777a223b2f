"""Writes for dosing sessions. Each function is one transaction that locks the session row,
checks the state machine, the actor's role and the session's version, writes, and audits.

Ledger movements (draw, administration, waste) are posted inside the same transaction as the
session record, so a refusal from the ledger leaves neither behind."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from ketaclinic.accounts.models import Clinic
from ketaclinic.accounts.roles import Perm
from ketaclinic.accounts.services import actor_may
from ketaclinic.audit import services as audit
from ketaclinic.audit.context import Actor
from ketaclinic.audit.models import AuditAction
from ketaclinic.clinical import dosing as dose_rules
from ketaclinic.clinical import monitoring
from ketaclinic.dosing import selectors
from ketaclinic.dosing.models import (
    Amendment,
    BpDecision,
    DischargeKind,
    DoseAdministration,
    DosingSession,
    DosingSettings,
    EventKind,
    PmfStatus,
    PregnancyStatus,
    RemsMonitoringForm,
    ScalePurpose,
    SessionEvent,
    SessionScale,
    SessionState,
    Severity,
    SideEffect,
    SideEffectKind,
    VitalsReading,
)
from ketaclinic.inventory import services as ledger
from ketaclinic.inventory.models import Container, Form
from ketaclinic.measures import services as measures
from ketaclinic.measures.models import ScaleResponse
from ketaclinic.treatment import services as treatment
from ketaclinic.treatment.models import Appointment, AppointmentKind, AppointmentStatus

S = SessionState

# The one table of legal steps. A step not listed here is refused.
TRANSITIONS: dict[str, frozenset[str]] = {
    S.BOOKED: frozenset({S.CHECKED_IN, S.ABORTED}),
    S.CHECKED_IN: frozenset({S.PRE_DOSE, S.ABORTED}),
    S.PRE_DOSE: frozenset({S.DOSING, S.ABORTED}),
    # From dosing, discharge is only "left against advice" (the patient walked out).
    S.DOSING: frozenset({S.OBSERVATION, S.DISCHARGED}),
    S.OBSERVATION: frozenset({S.READY_FOR_DISCHARGE, S.DISCHARGED}),
    S.READY_FOR_DISCHARGE: frozenset({S.DISCHARGED, S.OBSERVATION}),
    S.DISCHARGED: frozenset(),
    S.ABORTED: frozenset(),
}

MEDICINE_KEYS = ("benzodiazepines", "sedative_hypnotics", "opioids", "psychostimulants", "maois")
DEVICE_UG = 28_000  # Spravato: 28 mg esketamine per device (clinical.md §2.1)
PMF_DUE_DAYS = 7  # Spravato REMS: PMF within 7 days of the session (clinical.md §2.6)

AMENDABLE: dict[str, tuple[str, ...]] = {
    "session": ("note", "ride_name", "ride_phone", "ready_to_leave_minutes", "discharge_reason"),
    "vitals": ("sbp", "dbp", "hr", "spo2", "rr", "temp_c", "moaas", "note"),
    "side_effect": ("severity", "action", "outcome", "other_text"),
}


class StaleSession(ValidationError):
    """The session changed since the user opened it; nothing was saved."""


SIGNED_MESSAGE = "This session note is signed and read-only; record a correction as an amendment."


# --- helpers ------------------------------------------------------------------------------------


def _now(at: datetime | None = None) -> datetime:
    return at or timezone.now()


def _fail(field: str | None, message: str) -> ValidationError:
    return ValidationError({field: message} if field else message)


def _require(actor: Actor, perm: Perm, what: str) -> None:
    if actor.user is None:
        raise PermissionError(f"{what}: a named member of staff must do this.")
    if not actor_may(actor, perm):
        raise PermissionError(f"{what}: your role may not do this.")


def _lock(
    actor: Actor,
    session: DosingSession,
    expected_version: int | None = None,
    *,
    editable: bool = True,
) -> DosingSession:
    """Re-read the session under a row lock, in the actor's clinic; check version and signing."""
    locked = (
        DosingSession.objects.select_for_update()
        .select_related("course", "patient", "appointment")
        .filter(pk=session.pk, clinic=actor.clinic)
        .first()
    )
    if locked is None:
        raise PermissionError("Session belongs to another clinic.")
    if expected_version is not None and int(expected_version) != locked.version:
        raise StaleSession(
            "Someone else changed this session while you were editing it "
            f"(your copy is version {expected_version}, the session is now version "
            f"{locked.version}). Nothing was saved: reload to see their changes, then enter "
            "yours again."
        )
    if editable and locked.is_signed:
        raise ValidationError(SIGNED_MESSAGE)
    return locked


def _save(session: DosingSession, *fields: str, bump: bool = True) -> None:
    if bump:
        session.version += 1
        fields = (*fields, "version")
    session.save(update_fields=list(dict.fromkeys(fields)))


def _refresh(original: DosingSession) -> None:
    # Keep the caller's object in step with what was stored.
    if original is not None:
        original.refresh_from_db()


def _event(
    session: DosingSession,
    actor: Actor,
    kind: str,
    *,
    at: datetime | None = None,
    message: str = "",
    codes: list[str] | None = None,
    vitals: VitalsReading | None = None,
    from_state: str = "",
    to_state: str = "",
    detail: dict[str, Any] | None = None,
) -> SessionEvent:
    return SessionEvent.objects.create(
        detail=detail or {},
        session=session,
        kind=kind,
        at=_now(at),
        by=actor.user,
        message=message,
        codes=codes or [],
        vitals=vitals,
        from_state=from_state,
        to_state=to_state,
    )


def _move(
    actor: Actor,
    session: DosingSession,
    to: str,
    *,
    at: datetime | None = None,
    reason: str = "",
) -> None:
    """Change state along the table, record who and when, and audit it. Caller saves."""
    current = session.state
    if to not in TRANSITIONS[current]:
        raise ValidationError(
            f"A session that is {SessionState(current).label.lower()} cannot move to "
            f"{SessionState(to).label.lower()}."
        )
    session.state = to
    _event(
        session, actor, EventKind.TRANSITION, at=at, from_state=current, to_state=to, message=reason
    )
    audit.record(
        actor,
        AuditAction.UPDATE,
        "dosing_session",
        session.pk,
        patient_id=session.patient_id,
        reason=reason,
        detail={"from": current, "to": to},
    )


def _appointment_status(session: DosingSession, status: str) -> None:
    Appointment.objects.filter(pk=session.appointment_id).update(status=status)


def _require_state(session: DosingSession, *states: str, doing: str) -> None:
    if session.state not in states:
        allowed = ", ".join(SessionState(s).label.lower() for s in states)
        raise ValidationError(
            f"Cannot {doing}: the session is {SessionState(session.state).label.lower()} "
            f"(only when {allowed})."
        )


def settings_for(clinic: Clinic) -> DosingSettings:
    return selectors.settings_for(clinic)


def _int(value: Any, field: str, low: int, high: int, label: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise _fail(field, f"{label} must be a whole number.") from None
    if isinstance(value, float) and value != number:
        raise _fail(field, f"{label} must be a whole number.")
    if not low <= number <= high:
        raise _fail(field, f"{label} must be from {low} to {high}; got {number}.")
    return number


def _decimal(value: Any, field: str, label: str) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise _fail(field, f"{label} must be a number.") from None


# --- settings -----------------------------------------------------------------------------------

SETTINGS_FIELDS = (
    "alert_sbp",
    "alert_dbp",
    "alert_hr",
    "alert_spo2",
    "predose_sbp_limit",
    "predose_dbp_limit",
    "min_observation_minutes",
    "discharge_instrument",
    "discharge_cutoff",
    "aftercare_text",
)


@transaction.atomic
def update_settings(actor: Actor, **fields: Any) -> DosingSettings:
    _require(actor, Perm.SESSION_CONFIGURE, "Change dosing settings")
    unknown = set(fields) - set(SETTINGS_FIELDS)
    if unknown:
        raise ValidationError(f"Unknown settings: {', '.join(sorted(unknown))}.")
    current = DosingSettings.objects.select_for_update().get(pk=settings_for(actor.clinic).pk)
    before = {name: getattr(current, name) for name in fields}
    for name, value in fields.items():
        setattr(current, name, value)
    current.updated_by = actor.user
    current.full_clean()
    try:
        monitoring.VitalThresholds(
            current.alert_sbp, current.alert_dbp, current.alert_hr, current.alert_spo2
        )
        monitoring.predose_bp_ok(100, 60, (current.predose_sbp_limit, current.predose_dbp_limit))
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
    if not 1 <= current.min_observation_minutes <= 1440:
        raise _fail("min_observation_minutes", "Observation must be 1 to 1440 minutes.")
    if not 1 <= current.discharge_cutoff <= 10:
        raise _fail("discharge_cutoff", "The discharge score cut-off must be 1 to 10.")
    current.save()
    audit.record(
        actor,
        AuditAction.UPDATE,
        "dosing_settings",
        current.pk,
        detail={k: str(v)[:80] for k, v in before.items()},
    )
    return current


# --- opening and checking in --------------------------------------------------------------------


@transaction.atomic
def open_session(actor: Actor, appointment: Appointment) -> DosingSession:
    """The session of a dosing appointment, created (booked) on first use."""
    appt = (
        Appointment.objects.select_for_update()
        .select_related("course", "patient")
        .filter(pk=appointment.pk, clinic=actor.clinic)
        .first()
    )
    if appt is None:
        raise PermissionError("Appointment belongs to another clinic.")
    existing = DosingSession.objects.filter(appointment=appt).first()
    if existing is not None:
        return existing
    if appt.kind != AppointmentKind.DOSING:
        raise ValidationError("Only a dosing appointment has a dosing session.")
    if appt.status in (AppointmentStatus.CANCELLED, AppointmentStatus.NO_SHOW):
        raise ValidationError("This appointment was cancelled; book it again first.")
    course = appt.course
    planned = appt.dose_mg if appt.dose_mg is not None else course.dose_mg
    mg_per_kg = appt.mg_per_kg if appt.mg_per_kg is not None else course.mg_per_kg
    weight = course.dosing_weight_kg
    if planned is None and mg_per_kg is not None and weight is not None:
        # clinical.md §1.1: dose = mg/kg x dosing weight, to 0.1 mg
        planned = (Decimal(weight) * Decimal(mg_per_kg)).quantize(Decimal("0.1"), ROUND_HALF_UP)
    session = DosingSession.objects.create(
        clinic=actor.clinic,
        appointment=appt,
        course=course,
        patient=appt.patient,
        drug=course.drug,
        route=course.route,
        planned_dose_mg=planned,
        planned_mg_per_kg=mg_per_kg,
        dosing_weight_kg=weight,
        infusion_minutes=course.infusion_minutes,
        dose_mg=planned,
    )
    audit.record(
        actor, AuditAction.CREATE, "dosing_session", session.pk, patient_id=session.patient_id
    )
    return session


@transaction.atomic
def check_in(
    actor: Actor, appointment: Appointment, *, at: datetime | None = None
) -> DosingSession:
    _require(actor, Perm.SCHEDULE_MANAGE, "Check in")
    session = open_session(actor, appointment)
    locked = _lock(actor, session)
    appt = locked.appointment
    if appt.status not in (AppointmentStatus.BOOKED, AppointmentStatus.CHECKED_IN):
        raise ValidationError("Only a booked appointment can be checked in; book it first.")
    when = _now(at)
    if appt.starts_at is not None:
        local_day = timezone.localtime(appt.starts_at, selectors.zone(actor.clinic)).date()
        today = timezone.localtime(when, selectors.zone(actor.clinic)).date()
        if local_day != today:
            raise ValidationError(
                f"This appointment is booked for {local_day:%d %b %Y}; check in on that day "
                "(or move the booking)."
            )
    _move(actor, locked, S.CHECKED_IN, at=when)
    locked.checked_in_at = when
    locked.checked_in_by = actor.user
    _save(locked, "state", "checked_in_at", "checked_in_by")
    _appointment_status(locked, AppointmentStatus.CHECKED_IN)
    return locked


# --- pre-dose gate ------------------------------------------------------------------------------


def _check_vitals_input(
    sbp: Any, dbp: Any, hr: Any, spo2: Any, rr: Any, temp_c: Any, moaas: Any, o2_lpm: Any
) -> dict[str, Any]:
    values = {
        "sbp": _int(sbp, "sbp", 40, 300, "Systolic BP"),
        "dbp": _int(dbp, "dbp", 20, 200, "Diastolic BP"),
        "hr": _int(hr, "hr", 20, 250, "Heart rate"),
        "spo2": _int(spo2, "spo2", 50, 100, "SpO2"),
        "rr": _int(rr, "rr", 2, 60, "Respiratory rate"),
        "moaas": _int(moaas, "moaas", 0, 5, "MOAA/S"),
        "temp_c": _decimal(temp_c, "temp_c", "Temperature"),
        "o2_lpm": _decimal(o2_lpm, "o2_lpm", "Oxygen flow"),
    }
    if values["temp_c"] is not None and not Decimal(30) <= values["temp_c"] <= Decimal(43):
        raise _fail("temp_c", "Temperature must be from 30 to 43 °C.")
    if values["sbp"] is not None and values["dbp"] is not None and values["dbp"] >= values["sbp"]:
        raise _fail("dbp", "Diastolic BP must be lower than systolic; check the reading.")
    if (values["sbp"] is None) != (values["dbp"] is None):
        raise _fail("sbp", "Enter both systolic and diastolic BP, or neither.")
    return values


@transaction.atomic
def record_predose(
    actor: Actor,
    session: DosingSession,
    *,
    expected_version: int,
    sbp: Any,
    dbp: Any,
    hr: Any,
    spo2: Any,
    rr: Any,
    temp_c: Any = None,
    fasting: bool | None,
    ride_name: str,
    ride_phone: str,
    pregnancy_status: str = "",
    medicines: dict[str, Any],
    scales_done: bool | None,
    scales_skip_reason: str = "",
    cssrs_reviewed: bool,
    taken_at: datetime | None = None,
) -> selectors.Gate:
    """Record the pre-dose checks; bad input stores nothing. Returns the gate afterwards."""
    _require(actor, Perm.SESSION_RECORD, "Record pre-dose checks")
    locked = _lock(actor, session, expected_version)
    _require_state(locked, S.CHECKED_IN, S.PRE_DOSE, doing="record pre-dose checks")
    errors: dict[str, str] = {}
    when = _now(taken_at)
    if when > timezone.now() + timedelta(minutes=1):
        raise _fail("taken_at", "The pre-dose checks cannot be in the future.")
    values = _check_vitals_input(sbp, dbp, hr, spo2, rr, temp_c, None, None)
    for name, label in (
        ("sbp", "Systolic BP"),
        ("dbp", "Diastolic BP"),
        ("hr", "Heart rate"),
        ("spo2", "SpO2"),
        ("rr", "Respiratory rate"),
    ):
        if values[name] is None:
            errors[name] = f"{label} is needed before the dose."
    if fasting is None:
        errors["fasting"] = "Record whether the patient has fasted as instructed."
    if not (ride_name or "").strip():
        errors["ride_name"] = "Name the adult taking the patient home."
    if not (ride_phone or "").strip():
        errors["ride_phone"] = "Record a phone number for the ride home."
    relevant = locked.patient.sex_at_birth != "male"
    if pregnancy_status and pregnancy_status not in PregnancyStatus.values:
        errors["pregnancy_status"] = "Choose a pregnancy status from the list."
    elif relevant and pregnancy_status in ("", PregnancyStatus.NOT_APPLICABLE):
        errors["pregnancy_status"] = "Record the pregnancy status for this patient."
    medicines = medicines or {}
    missing_meds = [k for k in MEDICINE_KEYS if not isinstance(medicines.get(k), bool)]
    if missing_meds:
        errors["medicines"] = (
            "Answer yes or no for each concomitant medicine: "
            + ", ".join(k.replace("_", " ") for k in missing_meds)
            + "."
        )
    if scales_done is None:
        errors["scales_done"] = "Say whether today's rating scales were done."
    elif not scales_done and not (scales_skip_reason or "").strip():
        errors["scales_skip_reason"] = "Give the reason today's rating scales were skipped."
    elif scales_done:
        missing = selectors.missing_scales_today(locked, when)
        if missing:
            errors["scales_done"] = (
                "Not recorded today: " + ", ".join(missing) + ". Record them or skip with a reason."
            )
    if not cssrs_reviewed:
        errors["cssrs_reviewed"] = "Review today's C-SSRS result before the dose."
    if errors:
        raise ValidationError(errors)
    reading = VitalsReading.objects.create(
        session=locked,
        taken_at=when,
        phase="predose",
        recorded_by=actor.user,
        alerts=sorted(_alerts(locked, values)),
        **{k: v for k, v in values.items() if k not in ("moaas", "o2_lpm")},
    )
    reading.flagged = bool(reading.alerts)
    reading.save(update_fields=["flagged"])
    if locked.state == S.CHECKED_IN:
        _move(actor, locked, S.PRE_DOSE, at=when)
    locked.fasting = fasting
    locked.ride_name = ride_name.strip()
    locked.ride_phone = ride_phone.strip()
    locked.pregnancy_status = pregnancy_status or PregnancyStatus.NOT_APPLICABLE
    locked.medicines = {k: bool(medicines[k]) for k in MEDICINE_KEYS}
    locked.scales_done = scales_done
    locked.scales_skip_reason = "" if scales_done else scales_skip_reason.strip()
    locked.cssrs_reviewed = True
    locked.cssrs_response = selectors.latest_cssrs_today(locked, when)
    locked.predose_by = actor.user
    locked.predose_at = when
    # A decision was made on the readings the prescriber saw: new checks that still need
    # one (a repeat BP still over the limit, say) need a new decision. The earlier one stays
    # in the session's events and the audit log.
    locked.bp_decision = ""
    locked.bp_decision_codes = []
    gate = selectors.gate(locked, now=when)
    locked.predose_blocks = [b.as_dict() for b in gate.blocks]
    _save(
        locked,
        "state",
        "fasting",
        "ride_name",
        "ride_phone",
        "pregnancy_status",
        "medicines",
        "scales_done",
        "scales_skip_reason",
        "cssrs_reviewed",
        "cssrs_response",
        "predose_by",
        "predose_at",
        "predose_blocks",
        "bp_decision",
        "bp_decision_codes",
    )
    audit.record(
        actor,
        AuditAction.UPDATE,
        "dosing_session_predose",
        locked.pk,
        patient_id=locked.patient_id,
        detail={"blocks": [b.code for b in gate.blocks], "bp_ok": gate.bp_ok},
    )
    _refresh(session)
    return gate


@transaction.atomic
def record_prescriber_decision(
    actor: Actor, session: DosingSession, *, expected_version: int, decision: str, reason: str
) -> DosingSession:
    """The prescriber's decision on the overridable blocks (BP over the limit, protocol window,
    not fasting, pregnancy): proceed with a reason (a named, audited override) or defer."""
    _require(actor, Perm.SESSION_DECIDE, "Decide on the pre-dose blocks")
    locked = _lock(actor, session, expected_version)
    _require_state(locked, S.PRE_DOSE, doing="record a pre-dose decision")
    if decision not in BpDecision.values:
        raise _fail("decision", "Choose proceed or defer.")
    if not (reason or "").strip():
        raise _fail("reason", "Give the reason for the decision.")
    gate = selectors.gate(locked)
    codes = list(gate.overridable_codes)
    if not codes and decision == BpDecision.PROCEED:
        raise ValidationError("Nothing is waiting for a prescriber's decision.")
    now = timezone.now()
    locked.bp_decision = decision
    locked.bp_decision_codes = codes
    locked.bp_decision_reason = reason.strip()
    locked.bp_decision_by = actor.user
    locked.bp_decision_at = now
    _event(
        locked,
        actor,
        EventKind.OVERRIDE,
        at=now,
        codes=codes,
        message=f"{BpDecision(decision).label}: {reason.strip()}",
    )
    audit.record(
        actor,
        AuditAction.OVERRIDE if decision == BpDecision.PROCEED else AuditAction.UPDATE,
        "dosing_session_predose",
        locked.pk,
        patient_id=locked.patient_id,
        reason=reason.strip(),
        detail={"decision": decision, "codes": codes, "blocks": [b.message for b in gate.blocks]},
    )
    fields = [
        "bp_decision",
        "bp_decision_codes",
        "bp_decision_reason",
        "bp_decision_by",
        "bp_decision_at",
    ]
    if decision == BpDecision.DEFER:
        _abort(actor, locked, f"Deferred by the prescriber: {reason.strip()}", now)
        fields += ["state", "aborted_at", "aborted_by", "abort_reason"]
    else:
        locked.predose_blocks = [b.as_dict() for b in selectors.gate(locked).blocks]
        fields.append("predose_blocks")
    _save(locked, *fields)
    _refresh(session)
    return locked


@transaction.atomic
def change_dose(
    actor: Actor, session: DosingSession, *, expected_version: int, dose_mg: Any, reason: str
) -> DosingSession:
    """A prescriber changes today's dose from the plan (named, with a reason, audited)."""
    _require(actor, Perm.SESSION_DECIDE, "Change the dose")
    locked = _lock(actor, session, expected_version)
    _require_state(locked, S.BOOKED, S.CHECKED_IN, S.PRE_DOSE, doing="change the dose")
    if not (reason or "").strip():
        raise _fail("reason", "Give the reason for changing the dose from the plan.")
    new = _decimal(dose_mg, "dose_mg", "Dose")
    if new is None or new <= 0:
        raise _fail("dose_mg", "Enter the dose in mg.")
    new = new.quantize(Decimal("0.1"))
    if locked.is_esketamine:
        try:
            dose_rules.esketamine_devices(new)
        except ValueError as exc:
            raise _fail("dose_mg", str(exc)) from None
    else:
        weight = locked.dosing_weight_kg
        if weight:
            check = dose_rules.check_iv_dose(
                new / Decimal(weight), actor.clinic.max_iv_mg_per_kg, reason
            )
            if check.refused:
                raise _fail("dose_mg", check.message)
    old = locked.dose_mg
    locked.dose_mg = new
    locked.dose_change_reason = reason.strip()
    locked.dose_changed_by = actor.user
    locked.dose_changed_at = timezone.now()
    _event(
        locked,
        actor,
        EventKind.OVERRIDE,
        codes=["dose_changed"],
        message=f"Dose {old} mg -> {new} mg: {reason.strip()}",
    )
    audit.record(
        actor,
        AuditAction.OVERRIDE,
        "dosing_session_dose",
        locked.pk,
        patient_id=locked.patient_id,
        reason=reason.strip(),
        detail={"from_mg": str(old), "to_mg": str(new)},
    )
    if locked.state == S.PRE_DOSE:
        locked.predose_blocks = [b.as_dict() for b in selectors.gate(locked).blocks]
    _save(
        locked,
        "dose_mg",
        "dose_change_reason",
        "dose_changed_by",
        "dose_changed_at",
        "predose_blocks",
    )
    _refresh(session)
    return locked


def _gate_or_refuse(locked: DosingSession, now: datetime) -> None:
    gate = selectors.gate(locked, now=now)
    if not gate.ok:
        raise ValidationError(["Dosing is blocked:"] + [b.message for b in gate.blocks])


# --- the dose -----------------------------------------------------------------------------------


def _container(actor: Actor, container: Container, drug: str) -> Container:
    found = (
        Container.objects.select_related("lot__product")
        .filter(pk=getattr(container, "pk", container), clinic=actor.clinic)
        .first()
    )
    if found is None:
        raise PermissionError("Container belongs to another clinic.")
    if found.lot.product.drug != drug:
        raise _fail("container", f"That container holds {found.lot.product.drug}, not {drug}.")
    return found


@transaction.atomic
def record_device(
    actor: Actor, session: DosingSession, *, container: Container, at: datetime | None = None
) -> DoseAdministration:
    """One esketamine device, self-administered under supervision, with its ledger draw and
    administration. The first device starts the dose; the last one starts observation."""
    _require(actor, Perm.SESSION_RECORD, "Record a device")
    locked = _lock(actor, session)
    if not locked.is_esketamine:
        raise ValidationError("Devices are for esketamine sessions; use the infusion record.")
    _require_state(locked, S.PRE_DOSE, S.DOSING, doing="record a device")
    when = _now(at)
    if when > timezone.now() + timedelta(minutes=1):
        raise _fail("at", "A device cannot be recorded in the future.")
    try:
        needed = dose_rules.esketamine_devices(locked.dose_mg)
    except (ValueError, TypeError) as exc:
        raise _fail("dose_mg", f"Today's dose is not a whole number of devices: {exc}") from None
    given = list(locked.doses.order_by("device_number"))
    if len(given) >= needed:
        raise ValidationError(
            f"All {needed} devices of the {locked.dose_mg} mg dose are recorded already."
        )
    if given:
        try:
            monitoring.check_device_interval(given[-1].started_at, when)
        except ValueError as exc:
            raise _fail("at", str(exc)) from None
    else:
        _gate_or_refuse(locked, when)
    found = _container(actor, container, locked.drug)
    product = found.lot.product
    if product.form != Form.NASAL_SPRAY or product.device_ug != DEVICE_UG:
        raise _fail("container", "Choose a kit of 28 mg esketamine nasal spray devices.")
    draw = ledger.draw(
        actor,
        patient=locked.patient,
        quantity_ug=DEVICE_UG,
        container=found,
        at=when,
        dosing_session_id=locked.pk,
    )
    given_entry = ledger.administer(actor, draw, DEVICE_UG, at=when, dosing_session_id=locked.pk)
    number = len(given) + 1
    row = DoseAdministration.objects.create(
        session=locked,
        drug=locked.drug,
        route=locked.route,
        device_number=number,
        container=found,
        lot_number=found.lot.lot_number,
        dose_mg=Decimal(DEVICE_UG) / 1000,
        drawn_ug=DEVICE_UG,
        administered_ug=DEVICE_UG,
        started_at=when,
        ended_at=when,
        draw_entry=draw,
        administration_entry=given_entry,
        given_by=actor.user,
        ended_by=actor.user,
    )
    fields = []
    if number == 1:
        _move(actor, locked, S.DOSING, at=when)
        locked.first_dose_at = when
        fields += ["state", "first_dose_at"]
        _appointment_status(locked, AppointmentStatus.IN_SESSION)
    if number == needed:
        _move(actor, locked, S.OBSERVATION, at=when)
        locked.dose_ended_at = when
        fields += ["state", "dose_ended_at"]
    audit.record(
        actor,
        AuditAction.CREATE,
        "dose_administration",
        row.pk,
        patient_id=locked.patient_id,
        detail={"device": number, "of": needed, "lot": row.lot_number},
    )
    # Devices are appended; only a change of state moves the session's version on.
    _save(locked, *fields, bump=bool(fields))
    _refresh(session)
    return row


def _infusion_numbers(locked: DosingSession, concentration: Decimal | None) -> selectors.DosePlan:
    try:
        return selectors.dose_plan(locked, concentration)
    except ValueError as exc:
        raise _fail("concentration_mg_per_ml", str(exc)) from None


@transaction.atomic
def start_infusion(
    actor: Actor,
    session: DosingSession,
    *,
    expected_version: int,
    container: Container,
    concentration_mg_per_ml: Any = None,
    drawn_ug: int | None = None,
    at: datetime | None = None,
) -> DoseAdministration:
    """Start the IV infusion (or give an IM/oral dose): draw from the container into the
    syringe and set the pump from the dose plan. Administration is posted at the stop."""
    _require(actor, Perm.SESSION_RECORD, "Start the infusion")
    locked = _lock(actor, session, expected_version)
    if locked.is_esketamine:
        raise ValidationError("Esketamine is recorded device by device.")
    _require_state(locked, S.PRE_DOSE, doing="start the dose")
    when = _now(at)
    if when > timezone.now() + timedelta(minutes=1):
        raise _fail("at", "The start cannot be in the future.")
    _gate_or_refuse(locked, when)
    found = _container(actor, container, locked.drug)
    product = found.lot.product
    conc = _decimal(concentration_mg_per_ml, "concentration_mg_per_ml", "Concentration")
    plan = _infusion_numbers(locked, conc or product.concentration_mg_per_ml)
    dose_ug = int(plan.dose_mg * 1000)
    to_draw = dose_ug if drawn_ug is None else drawn_ug
    if isinstance(to_draw, bool) or not isinstance(to_draw, int) or to_draw < dose_ug:
        raise _fail("drawn_ug", f"Draw at least the dose ({plan.dose_mg} mg), in whole µg.")
    draw = ledger.draw(
        actor,
        patient=locked.patient,
        quantity_ug=to_draw,
        container=found,
        at=when,
        dosing_session_id=locked.pk,
    )
    row = DoseAdministration.objects.create(
        session=locked,
        drug=locked.drug,
        route=locked.route,
        container=found,
        lot_number=found.lot.lot_number,
        concentration_mg_per_ml=plan.concentration_mg_per_ml,
        dose_mg=plan.dose_mg,
        drawn_ug=to_draw,
        volume_ml=plan.volume_ml,
        pump_rate_ml_per_h=plan.rate_ml_per_h,
        rate_mg_per_h=plan.rate_mg_per_h,
        started_at=when,
        draw_entry=draw,
        given_by=actor.user,
    )
    _move(actor, locked, S.DOSING, at=when)
    locked.first_dose_at = when
    _appointment_status(locked, AppointmentStatus.IN_SESSION)
    audit.record(
        actor,
        AuditAction.CREATE,
        "dose_administration",
        row.pk,
        patient_id=locked.patient_id,
        detail={
            "dose_mg": str(plan.dose_mg),
            "rate_ml_per_h": str(plan.rate_ml_per_h),
            "lot": row.lot_number,
        },
    )
    _save(locked, "state", "first_dose_at")
    _refresh(session)
    return row


def stop_infusion(
    actor: Actor,
    session: DosingSession,
    *,
    expected_version: int,
    at: datetime | None = None,
    administered_ug: int | None = None,
    witness_username: str = "",
    witness_secret: str = "",
    waste_reason: str = "",
    stop_reason: str = "",
) -> DoseAdministration:
    """End the infusion: post the administration and the witnessed waste of what is left in
    the syringe, then start observation.

    The witness signs in first, in a transaction of its own, so a wrong password is audited
    and counted towards the witness lockout even though the stop is then refused."""
    _require(actor, Perm.SESSION_RECORD, "Stop the infusion")
    proof = (
        ledger.sign_in_witness(actor, witness_username, witness_secret)
        if witness_username and witness_secret
        else None
    )
    return _stop_infusion(
        actor,
        session,
        expected_version=expected_version,
        at=at,
        administered_ug=administered_ug,
        witness_proof=proof,
        waste_reason=waste_reason,
        stop_reason=stop_reason,
    )


@transaction.atomic
def _stop_infusion(
    actor: Actor,
    session: DosingSession,
    *,
    expected_version: int,
    at: datetime | None,
    administered_ug: int | None,
    witness_proof: ledger.WitnessProof | None,
    waste_reason: str,
    stop_reason: str,
) -> DoseAdministration:
    locked = _lock(actor, session, expected_version)
    _require_state(locked, S.DOSING, doing="stop the infusion")
    row = locked.doses.filter(ended_at__isnull=True).select_related("draw_entry").first()
    if row is None:
        raise ValidationError("No infusion is running.")
    when = _now(at)
    if when < row.started_at:
        raise _fail("at", "The infusion cannot end before it started.")
    if when > timezone.now() + timedelta(minutes=1):
        raise _fail("at", "The stop cannot be in the future.")
    dose_ug = int(row.dose_mg * 1000)
    given = dose_ug if administered_ug is None else administered_ug
    if isinstance(given, bool) or not isinstance(given, int) or not 0 < given <= row.drawn_ug:
        raise _fail(
            "administered_ug", f"Enter what was given, in whole µg, up to {row.drawn_ug} µg drawn."
        )
    if given < dose_ug and not stop_reason.strip():
        raise _fail("stop_reason", "Less than the ordered dose was given: say why it stopped.")
    residue = row.drawn_ug - given
    row.administration_entry = ledger.administer(
        actor, row.draw_entry, given, at=when, dosing_session_id=locked.pk
    )
    if residue:
        if witness_proof is None:
            raise _fail(
                "witness",
                f"{residue / 1000:g} mg is left in the syringe: a witness must confirm the waste.",
            )
        row.waste_entry = ledger.waste(
            actor,
            quantity_ug=residue,
            witness_proof=witness_proof,
            draw_entry=row.draw_entry,
            reason=waste_reason or "residue in syringe after the dose",
            at=when,
        )
    row.administered_ug = given
    row.wasted_ug = residue
    row.ended_at = when
    row.ended_by = actor.user
    row.stop_reason = stop_reason.strip()
    row.save()
    _move(actor, locked, S.OBSERVATION, at=when)
    locked.dose_ended_at = when
    audit.record(
        actor,
        AuditAction.UPDATE,
        "dose_administration",
        row.pk,
        patient_id=locked.patient_id,
        detail={"administered_ug": given, "wasted_ug": residue},
    )
    _save(locked, "state", "dose_ended_at")
    _refresh(session)
    return row


@transaction.atomic
def adjust_infusion(
    actor: Actor,
    session: DosingSession,
    *,
    expected_version: int,
    rate_ml_per_h: Any,
    reason: str,
    at: datetime | None = None,
) -> SessionEvent:
    """Slow, pause (0) or resume the running infusion: the new pump rate, who, when and why.
    The rate may not go above the plan's (a faster infusion is a new order)."""
    _require(actor, Perm.SESSION_RECORD, "Change the pump rate")
    locked = _lock(actor, session, expected_version)
    _require_state(locked, S.DOSING, doing="change the pump rate")
    row = locked.doses.filter(ended_at__isnull=True).first()
    if row is None or row.pump_rate_ml_per_h is None:
        raise ValidationError("No infusion with a pump rate is running.")
    rate = _decimal(rate_ml_per_h, "rate_ml_per_h", "Pump rate")
    if rate is None or rate < 0:
        raise _fail("rate_ml_per_h", "Enter the new pump rate in mL/h (0 pauses the pump).")
    if rate > row.pump_rate_ml_per_h:
        raise _fail(
            "rate_ml_per_h",
            f"The planned rate is {row.pump_rate_ml_per_h} mL/h; a faster rate needs a new "
            "order from the prescriber.",
        )
    if not (reason or "").strip():
        raise _fail("reason", "Say why the rate changes (e.g. BP 182/104).")
    when = _now(at)
    if when < row.started_at or when > timezone.now() + timedelta(minutes=1):
        raise _fail("at", "The time must be during the infusion and not in the future.")
    previous = selectors.current_pump_rate(locked)
    rate = rate.quantize(Decimal("0.01"))
    event = _event(
        locked,
        actor,
        EventKind.NOTE,
        at=when,
        codes=["pump_paused" if rate == 0 else "pump_rate"],
        message=f"Pump {previous} -> {rate} mL/h: {reason.strip()}",
        detail={"rate_ml_per_h": str(rate), "previous_ml_per_h": str(previous)},
    )
    audit.record(
        actor,
        AuditAction.UPDATE,
        "dose_administration",
        row.pk,
        patient_id=locked.patient_id,
        reason=reason.strip(),
        detail={"rate_ml_per_h": str(rate), "previous_ml_per_h": str(previous)},
    )
    _save(locked)
    _refresh(session)
    return event


# --- vitals, side effects, scales ---------------------------------------------------------------


def _alerts(session: DosingSession, values: dict[str, Any]) -> set[str]:
    config = selectors.settings_for_id(session.clinic_id)
    thresholds = monitoring.VitalThresholds(
        config.alert_sbp, config.alert_dbp, config.alert_hr, config.alert_spo2
    )
    try:
        found = set(
            monitoring.check_vitals(
                values["sbp"], values["dbp"], values["hr"], values["spo2"], thresholds
            )
        )
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
    if values.get("moaas") == 0:
        # Spravato USPI: MOAA/S 0 is loss of consciousness (clinical.md §4.1)
        found.add("moaas_0")
    return found


ALERT_TEXT = {
    "sbp_high": "Systolic BP {sbp} at or above the alert threshold",
    "dbp_high": "Diastolic BP {dbp} at or above the alert threshold",
    "hr_high": "Heart rate {hr} at or above the alert threshold",
    "spo2_low": "SpO2 {spo2}% below the alert threshold",
    "moaas_0": "MOAA/S 0: no response (loss of consciousness)",
}


@transaction.atomic
def record_vitals(
    actor: Actor,
    session: DosingSession,
    *,
    sbp: Any = None,
    dbp: Any = None,
    hr: Any = None,
    spo2: Any = None,
    rr: Any = None,
    temp_c: Any = None,
    moaas: Any = None,
    o2_lpm: Any = None,
    note: str = "",
    taken_at: datetime | None = None,
) -> VitalsReading:
    """Append one reading. Never conflicts with other edits; a crossed threshold flags the
    reading and raises an alert event."""
    _require(actor, Perm.SESSION_RECORD, "Record vitals")
    locked = _lock(actor, session)
    _require_state(
        locked,
        S.CHECKED_IN,
        S.PRE_DOSE,
        S.DOSING,
        S.OBSERVATION,
        S.READY_FOR_DISCHARGE,
        doing="record vitals",
    )
    values = _check_vitals_input(sbp, dbp, hr, spo2, rr, temp_c, moaas, o2_lpm)
    if all(v is None for v in values.values()):
        raise ValidationError("Enter at least one reading.")
    when = _now(taken_at)
    if when > timezone.now() + timedelta(minutes=1):
        raise _fail("taken_at", "A reading cannot be in the future.")
    if locked.checked_in_at and when < locked.checked_in_at - timedelta(minutes=30):
        raise _fail("taken_at", "That time is before the patient checked in.")
    alerts = _alerts(locked, values)
    if locked.first_dose_at is None:
        phase = "predose"
    elif locked.dose_ended_at is None:
        phase = "during"
    else:
        phase = "after"
    reading = VitalsReading.objects.create(
        session=locked,
        taken_at=when,
        phase=phase,
        recorded_by=actor.user,
        note=(note or "").strip()[:300],
        alerts=sorted(alerts),
        flagged=bool(alerts),
        **values,
    )
    if alerts:
        text = "; ".join(ALERT_TEXT[c].format(**values) for c in sorted(alerts))
        _event(
            locked,
            actor,
            EventKind.ALERT,
            at=when,
            codes=sorted(alerts),
            message=text,
            vitals=reading,
        )
        if locked.state == S.READY_FOR_DISCHARGE:
            _move(actor, locked, S.OBSERVATION, at=when, reason="Vitals alert: " + text)
            _save(locked, "state")
    audit.record(
        actor,
        AuditAction.CREATE,
        "vitals_reading",
        reading.pk,
        patient_id=locked.patient_id,
        detail={"alerts": sorted(alerts)},
    )
    return reading


@transaction.atomic
def record_side_effect(
    actor: Actor,
    session: DosingSession,
    *,
    kind: str,
    severity: str,
    onset_at: datetime | None = None,
    action: str = "",
    outcome: str = "",
    other_text: str = "",
) -> SideEffect:
    _require(actor, Perm.SESSION_RECORD, "Record a side effect")
    locked = _lock(actor, session)
    _require_state(
        locked,
        S.PRE_DOSE,
        S.DOSING,
        S.OBSERVATION,
        S.READY_FOR_DISCHARGE,
        S.DISCHARGED,
        doing="record a side effect",
    )
    errors: dict[str, str] = {}
    if kind not in SideEffectKind.values:
        errors["kind"] = "Choose the kind of side effect."
    elif kind == SideEffectKind.OTHER and not other_text.strip():
        errors["other_text"] = "Describe the side effect."
    if severity not in Severity.values:
        errors["severity"] = "Choose mild, moderate, severe or serious."
    outcome_choices = [c for c, _ in SideEffect._meta.get_field("outcome").choices]
    if outcome and outcome not in outcome_choices:
        errors["outcome"] = "Choose an outcome from the list."
    when = _now(onset_at)
    if when > timezone.now() + timedelta(minutes=1):
        errors["onset_at"] = "The onset cannot be in the future."
    if errors:
        raise ValidationError(errors)
    effect = SideEffect.objects.create(
        session=locked,
        kind=kind,
        other_text=other_text.strip(),
        severity=severity,
        onset_at=when,
        action=action.strip(),
        outcome=outcome,
        reportable=severity == Severity.SERIOUS or kind == SideEffectKind.RESPIRATORY_DEPRESSION,
        recorded_by=actor.user,
    )
    if effect.reportable:
        _event(
            locked,
            actor,
            EventKind.ALERT,
            at=when,
            codes=["serious_adverse_event" if severity == Severity.SERIOUS else kind],
            message=f"{effect.get_kind_display()} ({effect.get_severity_display().lower()}): "
            "report it (REMS / FDA MedWatch).",
        )
    audit.record(
        actor,
        AuditAction.CREATE,
        "side_effect",
        effect.pk,
        patient_id=locked.patient_id,
        detail={"kind": kind, "severity": severity},
    )
    return effect


@transaction.atomic
def update_side_effect(
    actor: Actor, effect: SideEffect, *, action: str | None = None, outcome: str | None = None
) -> SideEffect:
    _require(actor, Perm.SESSION_RECORD, "Update a side effect")
    row = SideEffect.objects.select_related("session").get(pk=effect.pk)
    _lock(actor, row.session)
    outcome_choices = [c for c, _ in SideEffect._meta.get_field("outcome").choices]
    if outcome is not None and outcome and outcome not in outcome_choices:
        raise _fail("outcome", "Choose an outcome from the list.")
    before = {"action": row.action, "outcome": row.outcome}
    if action is not None:
        row.action = action.strip()
    if outcome is not None:
        row.outcome = outcome
    row.save(update_fields=["action", "outcome"])
    audit.record(
        actor,
        AuditAction.UPDATE,
        "side_effect",
        row.pk,
        patient_id=row.session.patient_id,
        detail={"before": before},
    )
    effect.refresh_from_db()
    return row


def _scale(
    actor: Actor,
    session: DosingSession,
    code: str,
    answers: Any,
    purpose: str,
    administered_at: datetime | None,
) -> ScaleResponse:
    _require(actor, Perm.SESSION_RECORD, "Record a scale")
    locked = _lock(actor, session)
    _require_state(
        locked, S.DOSING, S.OBSERVATION, S.READY_FOR_DISCHARGE, doing="record this scale"
    )
    response = measures.record_response(
        actor,
        locked.patient,
        code,
        answers,
        administered_at=administered_at,
        visit_id=locked.appointment_id,
    )
    SessionScale.objects.create(session=locked, response=response, purpose=purpose)
    return response


def record_dissociation(
    actor: Actor,
    session: DosingSession,
    *,
    code: str,
    answers: Any,
    administered_at: datetime | None = None,
) -> ScaleResponse:
    """CADSS or CADSS-6 (usually at about 40 minutes), stored as a scale response."""
    if code not in ("cadss", "cadss6"):
        raise _fail("code", "Dissociation is recorded with the CADSS or the CADSS-6.")
    with transaction.atomic():
        return _scale(actor, session, code, answers, ScalePurpose.DISSOCIATION, administered_at)


def record_discharge_score(
    actor: Actor,
    session: DosingSession,
    *,
    answers: Any,
    administered_at: datetime | None = None,
) -> ScaleResponse:
    """The clinic's discharge score (modified Aldrete or modified PADSS)."""
    code = settings_for(actor.clinic).discharge_instrument
    with transaction.atomic():
        return _scale(actor, session, code, answers, ScalePurpose.DISCHARGE, administered_at)


# --- observation and discharge ------------------------------------------------------------------


@transaction.atomic
def confirm_stability(
    actor: Actor, session: DosingSession, *, expected_version: int, note: str = ""
) -> DosingSession:
    """The clinician's assessment that the patient is clinically stable (esketamine label)."""
    _require(actor, Perm.SESSION_DECIDE, "Confirm clinical stability")
    locked = _lock(actor, session, expected_version)
    _require_state(locked, S.OBSERVATION, S.READY_FOR_DISCHARGE, doing="confirm clinical stability")
    locked.stability_confirmed_by = actor.user
    locked.stability_confirmed_at = timezone.now()
    locked.stability_note = (note or "").strip()
    audit.record(
        actor,
        AuditAction.SIGN,
        "dosing_session_stability",
        locked.pk,
        patient_id=locked.patient_id,
        reason=locked.stability_note,
    )
    _save(locked, "stability_confirmed_by", "stability_confirmed_at", "stability_note")
    _refresh(session)
    return locked


def _refuse_unless_ready(
    locked: DosingSession, now: datetime, *, ride_present: bool | None
) -> None:
    readiness = selectors.discharge_readiness(locked, now, ride_present=ride_present)
    if not readiness.ready:
        raise ValidationError(["Not ready for discharge:"] + readiness.unmet)


@transaction.atomic
def mark_ready(
    actor: Actor, session: DosingSession, *, expected_version: int, now: datetime | None = None
) -> DosingSession:
    _require(actor, Perm.SESSION_RECORD, "Mark ready for discharge")
    locked = _lock(actor, session, expected_version)
    _require_state(locked, S.OBSERVATION, doing="mark the patient ready for discharge")
    when = _now(now)
    _refuse_unless_ready(locked, when, ride_present=None)
    _move(actor, locked, S.READY_FOR_DISCHARGE, at=when)
    _save(locked, "state")
    _refresh(session)
    return locked


def _close_with_form(actor: Actor, locked: DosingSession, when: datetime) -> None:
    if locked.is_esketamine and locked.first_dose_at is not None:
        day = timezone.localtime(when, selectors.zone(actor.clinic)).date()
        RemsMonitoringForm.objects.get_or_create(
            session=locked,
            defaults={"clinic": actor.clinic, "due_on": day + timedelta(days=PMF_DUE_DAYS)},
        )


@transaction.atomic
def discharge(
    actor: Actor,
    session: DosingSession,
    *,
    expected_version: int,
    ride_present: bool,
    ready_to_leave_minutes: Any = None,
    at: datetime | None = None,
) -> DosingSession:
    """The nurse discharges the patient. Refused, naming every unmet criterion, unless the
    earliest discharge time has passed, the discharge score is met, the latest vitals are
    within limits, the ride is present and (esketamine) a clinician confirmed stability."""
    _require(actor, Perm.SESSION_RECORD, "Discharge")
    locked = _lock(actor, session, expected_version)
    _require_state(locked, S.OBSERVATION, S.READY_FOR_DISCHARGE, doing="discharge")
    when = _now(at)
    minutes = _int(
        ready_to_leave_minutes, "ready_to_leave_minutes", 0, 24 * 60, "Minutes until ready to leave"
    )
    _refuse_unless_ready(locked, when, ride_present=bool(ride_present))
    if locked.is_esketamine and minutes is None:
        raise _fail(
            "ready_to_leave_minutes",
            "The REMS form asks when the patient would have been ready to leave without the "
            "2-hour rule (minutes from the first device).",
        )
    if locked.state == S.OBSERVATION:
        _move(actor, locked, S.READY_FOR_DISCHARGE, at=when)
    _move(actor, locked, S.DISCHARGED, at=when)
    locked.ride_present = True
    locked.ready_to_leave_minutes = minutes
    locked.discharged_at = when
    locked.discharged_by = actor.user
    locked.discharge_kind = DischargeKind.ROUTINE
    _appointment_status(locked, AppointmentStatus.COMPLETED)
    _close_with_form(actor, locked, when)
    _save(
        locked,
        "state",
        "ride_present",
        "ready_to_leave_minutes",
        "discharged_at",
        "discharged_by",
        "discharge_kind",
    )
    _refresh(session)
    return locked


@transaction.atomic
def discharge_against_advice(
    actor: Actor,
    session: DosingSession,
    *,
    expected_version: int,
    reason: str,
    ride_present: bool = False,
    at: datetime | None = None,
) -> DosingSession:
    """The patient leaves before the criteria are met: recorded as such, with the reason."""
    _require(actor, Perm.SESSION_RECORD, "Record leaving against advice")
    locked = _lock(actor, session, expected_version)
    _require_state(
        locked,
        S.DOSING,
        S.OBSERVATION,
        S.READY_FOR_DISCHARGE,
        doing="record leaving against advice",
    )
    if not (reason or "").strip():
        raise _fail("reason", "Record why the patient left and what they were told.")
    if locked.doses.filter(ended_at__isnull=True).exists():
        raise ValidationError("Stop the infusion (record what was given) first.")
    when = _now(at)
    readiness = selectors.discharge_readiness(locked, when, ride_present=ride_present)
    _move(actor, locked, S.DISCHARGED, at=when, reason="Left against medical advice: " + reason)
    locked.ride_present = bool(ride_present)
    locked.discharged_at = when
    locked.discharged_by = actor.user
    locked.discharge_kind = DischargeKind.AGAINST_ADVICE
    locked.discharge_reason = reason.strip()
    _event(
        locked,
        actor,
        EventKind.ALERT,
        at=when,
        codes=["against_advice"],
        message="Left against medical advice. Unmet: " + "; ".join(readiness.unmet),
    )
    audit.record(
        actor,
        AuditAction.OVERRIDE,
        "dosing_session_discharge",
        locked.pk,
        patient_id=locked.patient_id,
        reason=reason.strip(),
        detail={"against_advice": True, "unmet": readiness.unmet},
    )
    _appointment_status(locked, AppointmentStatus.COMPLETED)
    _close_with_form(actor, locked, when)
    _save(
        locked,
        "state",
        "ride_present",
        "discharged_at",
        "discharged_by",
        "discharge_kind",
        "discharge_reason",
    )
    _refresh(session)
    return locked


def _abort(actor: Actor, locked: DosingSession, reason: str, when: datetime) -> None:
    _move(actor, locked, S.ABORTED, at=when, reason=reason)
    locked.aborted_at = when
    locked.aborted_by = actor.user
    locked.abort_reason = reason
    appt = Appointment.objects.get(pk=locked.appointment_id)
    treatment.cancel(actor, appt, reason=f"Dosing session aborted: {reason}")


@transaction.atomic
def abort(actor: Actor, session: DosingSession, *, expected_version: int, reason: str) -> None:
    """Stop a session before any drug is given (the appointment is cancelled, its chair freed)."""
    _require(actor, Perm.SESSION_RECORD, "Abort the session")
    locked = _lock(actor, session, expected_version)
    if locked.state in (S.DOSING, S.OBSERVATION, S.READY_FOR_DISCHARGE):
        raise ValidationError(
            "Drug has been given: the patient must be observed and discharged (or recorded as "
            "leaving against advice), not aborted."
        )
    _require_state(locked, S.BOOKED, S.CHECKED_IN, S.PRE_DOSE, doing="abort")
    if not (reason or "").strip():
        raise _fail("reason", "Give the reason the session is stopped.")
    _abort(actor, locked, reason.strip(), timezone.now())
    _save(locked, "state", "aborted_at", "aborted_by", "abort_reason")
    _refresh(session)


# --- the note: edits, signing, amendments -------------------------------------------------------


@transaction.atomic
def update_note(
    actor: Actor, session: DosingSession, *, expected_version: int, note: str
) -> DosingSession:
    _require(actor, Perm.SESSION_RECORD, "Edit the session note")
    locked = _lock(actor, session, expected_version)
    locked.note = (note or "").strip()
    audit.record(
        actor, AuditAction.UPDATE, "dosing_session_note", locked.pk, patient_id=locked.patient_id
    )
    _save(locked, "note")
    _refresh(session)
    return locked


@transaction.atomic
def update_ride(
    actor: Actor, session: DosingSession, *, expected_version: int, ride_name: str, ride_phone: str
) -> DosingSession:
    _require(actor, Perm.SESSION_RECORD, "Edit the ride home")
    locked = _lock(actor, session, expected_version)
    if locked.state in (S.DISCHARGED, S.ABORTED):
        raise ValidationError("The session is closed; amend it after signing instead.")
    errors = {}
    if not (ride_name or "").strip():
        errors["ride_name"] = "Name the adult taking the patient home."
    if not (ride_phone or "").strip():
        errors["ride_phone"] = "Record a phone number for the ride home."
    if errors:
        raise ValidationError(errors)
    locked.ride_name = ride_name.strip()
    locked.ride_phone = ride_phone.strip()
    audit.record(
        actor, AuditAction.UPDATE, "dosing_session_ride", locked.pk, patient_id=locked.patient_id
    )
    _save(locked, "ride_name", "ride_phone")
    _refresh(session)
    return locked


@transaction.atomic
def sign(actor: Actor, session: DosingSession, *, expected_version: int) -> DosingSession:
    """The nurse signs the session note; from now on it is read-only (amendments only)."""
    _require(actor, Perm.SESSION_RECORD, "Sign the session note")
    locked = _lock(actor, session, expected_version)
    _require_state(locked, S.DISCHARGED, S.ABORTED, doing="sign the note")
    locked.signed_by = actor.user
    locked.signed_at = timezone.now()
    audit.record(
        actor,
        AuditAction.SIGN,
        "dosing_session",
        locked.pk,
        patient_id=locked.patient_id,
        detail={"role": "nurse"},
    )
    _save(locked, "signed_by", "signed_at")
    _refresh(session)
    return locked


@transaction.atomic
def cosign(actor: Actor, session: DosingSession, *, expected_version: int) -> DosingSession:
    _require(actor, Perm.SESSION_DECIDE, "Co-sign the session note")
    locked = _lock(actor, session, expected_version, editable=False)
    if not locked.is_signed:
        raise ValidationError("The nurse signs the note first; then the prescriber co-signs.")
    if locked.cosigned_at is not None:
        raise ValidationError("This note is already co-signed.")
    if locked.signed_by_id == getattr(actor.user, "pk", None):
        raise ValidationError("The co-signer must be someone other than the person who signed.")
    locked.cosigned_by = actor.user
    locked.cosigned_at = timezone.now()
    audit.record(
        actor,
        AuditAction.SIGN,
        "dosing_session",
        locked.pk,
        patient_id=locked.patient_id,
        detail={"role": "prescriber", "cosign": True},
    )
    _save(locked, "cosigned_by", "cosigned_at")
    _refresh(session)
    return locked


def _amendable_row(locked: DosingSession, object_type: str, object_id: int) -> Any:
    if object_type == "session":
        if int(object_id) != locked.pk:
            raise _fail("object_id", "That record is not part of this session.")
        return locked
    model = {"vitals": VitalsReading, "side_effect": SideEffect}.get(object_type)
    if model is None:
        raise _fail("object_type", "Only the session, a vitals reading or a side effect.")
    row = model.objects.filter(pk=object_id, session=locked).first()
    if row is None:
        raise _fail("object_id", "That record is not part of this session.")
    return row


@transaction.atomic
def amend(
    actor: Actor,
    session: DosingSession,
    *,
    object_type: str,
    object_id: int,
    field: str,
    new_value: Any,
    reason: str,
) -> Amendment:
    """Correct a signed session: the original stays as it was; the amendment says who, when,
    why and what changed."""
    _require(actor, Perm.SESSION_RECORD, "Amend the session")
    locked = _lock(actor, session, editable=False)
    if not locked.is_signed:
        raise ValidationError("The note is not signed yet: edit it directly.")
    if field not in AMENDABLE.get(object_type, ()):
        raise _fail("field", f"{field!r} cannot be amended on a {object_type}.")
    if not (reason or "").strip():
        raise _fail("reason", "Say why the record is corrected.")
    row = _amendable_row(locked, object_type, object_id)
    current = selectors.effective_value(locked, object_type, row.pk, field, getattr(row, field))
    text = "" if new_value is None else str(new_value).strip()
    if object_type == "vitals" and field in ("sbp", "dbp", "hr", "spo2", "rr", "moaas") and text:
        bounds = {
            "sbp": (40, 300),
            "dbp": (20, 200),
            "hr": (20, 250),
            "spo2": (50, 100),
            "rr": (2, 60),
            "moaas": (0, 5),
        }[field]
        _int(text, "new_value", bounds[0], bounds[1], field)
    if object_type == "side_effect" and field == "severity" and text not in Severity.values:
        raise _fail("new_value", "Choose mild, moderate, severe or serious.")
    old = "" if current is None else str(current)
    if old == text:
        raise _fail("new_value", "That is the value already recorded.")
    amendment = Amendment.objects.create(
        session=locked,
        object_type=object_type,
        object_id=row.pk,
        field=field,
        old_value=old,
        new_value=text,
        reason=reason.strip(),
        by=actor.user,
        at=timezone.now(),
    )
    audit.record(
        actor,
        AuditAction.UPDATE,
        f"dosing_amendment_{object_type}",
        row.pk,
        patient_id=locked.patient_id,
        reason=reason.strip(),
        detail={"field": field, "old": old, "new": text, "amendment": amendment.pk},
    )
    return amendment


# --- REMS Patient Monitoring Form ---------------------------------------------------------------


@transaction.atomic
def mark_pmf_submitted(
    actor: Actor,
    form: RemsMonitoringForm,
    *,
    confirmation_number: str,
    submitted_on: Any,
) -> RemsMonitoringForm:
    _require(actor, Perm.SESSION_RECORD, "Mark the REMS form submitted")
    locked = (
        RemsMonitoringForm.objects.select_for_update()
        .filter(pk=form.pk, clinic=actor.clinic)
        .select_related("session")
        .first()
    )
    if locked is None:
        raise PermissionError("Form belongs to another clinic.")
    if locked.status == PmfStatus.SUBMITTED:
        raise ValidationError("This form is already marked submitted.")
    errors = {}
    if not (confirmation_number or "").strip():
        errors["confirmation_number"] = "Enter the REMS confirmation number."
    if submitted_on is None or submitted_on == "":
        errors["submitted_on"] = "Enter the date it was submitted."
    else:
        from datetime import date as _date

        if isinstance(submitted_on, str):
            try:
                submitted_on = _date.fromisoformat(submitted_on)
            except ValueError:
                errors["submitted_on"] = "Enter a date (YYYY-MM-DD)."
        if isinstance(submitted_on, _date):
            if submitted_on > actor.clinic.today():
                errors["submitted_on"] = "The submission date cannot be in the future."
            session_day = (
                timezone.localtime(
                    locked.session.first_dose_at, selectors.zone(actor.clinic)
                ).date()
                if locked.session.first_dose_at
                else None
            )
            if session_day and submitted_on < session_day:
                errors["submitted_on"] = "The form cannot be submitted before the session."
    if errors:
        raise ValidationError(errors)
    locked.status = PmfStatus.SUBMITTED
    locked.confirmation_number = confirmation_number.strip()
    locked.submitted_on = submitted_on
    locked.submitted_by = actor.user
    locked.submitted_at = timezone.now()
    locked.data = selectors.pmf_data(locked.session)
    locked.save()
    audit.record(
        actor,
        AuditAction.UPDATE,
        "rems_monitoring_form",
        locked.pk,
        patient_id=locked.session.patient_id,
        detail={"status": "submitted", "late": submitted_on > locked.due_on},
    )
    form.refresh_from_db()
    return locked


__all__ = [
    "AMENDABLE",
    "MEDICINE_KEYS",
    "TRANSITIONS",
    "StaleSession",
    "abort",
    "adjust_infusion",
    "amend",
    "change_dose",
    "check_in",
    "confirm_stability",
    "cosign",
    "discharge",
    "discharge_against_advice",
    "mark_pmf_submitted",
    "mark_ready",
    "open_session",
    "record_device",
    "record_discharge_score",
    "record_dissociation",
    "record_predose",
    "record_prescriber_decision",
    "record_side_effect",
    "record_vitals",
    "settings_for",
    "sign",
    "start_infusion",
    "stop_infusion",
    "update_note",
    "update_ride",
    "update_settings",
    "update_side_effect",
]
