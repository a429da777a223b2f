"""The dosing-session pages: the nurse's session screen, the chair board, the REMS monitoring
form, after-care instructions and the clinic's dosing settings. Thin: every write goes through
ketaclinic.dosing.services, every read through its selectors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django import forms as django_forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from ketaclinic.accounts.access import has_perm, requires
from ketaclinic.accounts.roles import Perm
from ketaclinic.audit import services as audit
from ketaclinic.audit.context import Actor
from ketaclinic.audit.models import AuditAction
from ketaclinic.clinical.instruments import get_instrument
from ketaclinic.dosing import charts, forms, pmf, selectors, services
from ketaclinic.dosing.models import DosingSession, SessionState
from ketaclinic.measures import selectors as measure_selectors
from ketaclinic.measures.forms import ScaleForm
from ketaclinic.treatment import selectors as treatment_selectors

ACTIVE = {
    SessionState.CHECKED_IN,
    SessionState.PRE_DOSE,
    SessionState.DOSING,
    SessionState.OBSERVATION,
    SessionState.READY_FOR_DISCHARGE,
}
STATE_LABELS = dict(SessionState.choices)
ROUTES = {"iv": "IV infusion", "im": "IM injection", "oral": "oral", "nasal": "nasal spray"}
SCALE_NAMES = {"cadss6": "CADSS-6", "cadss": "CADSS"}
ALERT_TEXT = {
    "sbp_high": "systolic BP at or above {sbp}",
    "dbp_high": "diastolic BP at or above {dbp}",
    "hr_high": "heart rate at or above {hr}",
    "spo2_low": "SpO2 below {spo2}%",
    "moaas_0": "no response (MOAA/S 0)",
}


def _tz(request: HttpRequest) -> ZoneInfo:
    return ZoneInfo(request.clinic.time_zone)  # type: ignore[attr-defined]


def _actor(request: HttpRequest) -> Actor:
    return Actor.from_request(request)


def _session(request: HttpRequest, session_id: int, *, detail: bool = False) -> DosingSession:
    """The session of this clinic (another clinic's id is a 404); with ``detail`` its rows
    come prefetched, so the session screen's query count does not grow with them."""
    find = selectors.session_detail if detail else selectors.session_for_clinic
    try:
        return find(request.clinic, session_id)  # type: ignore[attr-defined]
    except DosingSession.DoesNotExist:
        raise Http404("No such session.") from None


def _session_day(session: DosingSession, tz: ZoneInfo) -> date:
    for moment in (session.checked_in_at, session.appointment.starts_at):
        if moment is not None:
            return moment.astimezone(tz).date()
    return timezone.now().astimezone(tz).date()


def _add_errors(form: django_forms.Form, exc: ValidationError) -> None:
    mapping: dict[str, str] = getattr(form, "service_fields", {})
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            name = mapping.get(field, field)
            form.add_error(name if name in form.fields else None, errors)
    else:
        for message in exc.messages:
            form.add_error(None, message)


def _mg_to_ug(value: Decimal | None) -> int | None:
    return None if value is None else int(value * 1000)


# --- the actions of the session screen ---------------------------------------------------------


@dataclass(frozen=True)
class Action:
    perm: Perm
    form: str  # key in the page's forms
    anchor: str


ACTIONS: dict[str, Action] = {
    "predose": Action(Perm.SESSION_RECORD, "predose", "predose"),
    "decision": Action(Perm.SESSION_DECIDE, "decision", "gate"),
    "dose_change": Action(Perm.SESSION_DECIDE, "dose_change", "dose"),
    "device": Action(Perm.SESSION_RECORD, "device", "dose"),
    "start": Action(Perm.SESSION_RECORD, "start", "dose"),
    "stop": Action(Perm.SESSION_RECORD, "stop", "dose"),
    "vitals": Action(Perm.SESSION_RECORD, "vitals", "vitals"),
    "side_effect": Action(Perm.SESSION_RECORD, "side_effect", "effects"),
    "dissociation": Action(Perm.SESSION_RECORD, "dissociation", "scales"),
    "discharge_score": Action(Perm.SESSION_RECORD, "discharge_score", "discharge"),
    "stability": Action(Perm.SESSION_DECIDE, "stability", "discharge"),
    "discharge": Action(Perm.SESSION_RECORD, "discharge", "discharge"),
    "leave": Action(Perm.SESSION_RECORD, "leave", "discharge"),
    "abort": Action(Perm.SESSION_RECORD, "abort", "top"),
    "note": Action(Perm.SESSION_RECORD, "note", "note"),
    "sign": Action(Perm.SESSION_RECORD, "sign", "sign"),
    "cosign": Action(Perm.SESSION_DECIDE, "cosign", "sign"),
    "amend": Action(Perm.SESSION_RECORD, "amend", "amendments"),
}


class Page:
    """Everything the session screen shows, and its forms (one of them maybe bound)."""

    def __init__(self, request: HttpRequest, session: DosingSession):
        self.request = request
        self.session = session
        self.tz = _tz(request)
        self.now = timezone.now()
        self.day = _session_day(session, self.tz)
        self.clock = {"tz": self.tz, "day": self.day}
        self.settings = services.settings_for(request.clinic)  # type: ignore[attr-defined]
        self.vitals = list(session.vitals.all())
        self.doses = list(session.doses.all())
        self.effects = list(session.side_effects.all())
        self.scale_links = list(session.scales.all())
        self.amendments = list(session.amendments.all())
        self.events = list(session.events.all())
        self.containers: list[Any] | None = None
        self.forms: dict[str, Any] = {}

    # Forms are built on demand so a page only pays for the ones it shows.
    def usable_containers(self) -> list[Any]:
        if self.containers is None:
            self.containers = selectors.usable_containers(self.session, timezone.localdate())
        return self.containers

    def initial(self) -> dict[str, Any]:
        return {"version": self.session.version}

    def build(self, name: str, data: Any = None) -> Any:
        s = self.session
        initial = self.initial()
        if name == "predose":
            # A repeat of the checks starts from what was recorded; the vitals are new.
            yes_no = {True: "yes", False: "no", None: None}
            initial.update(
                ride_name=s.ride_name,
                ride_phone=s.ride_phone,
                pregnancy_status=s.pregnancy_status,
                fasting=yes_no[s.fasting],
                scales_done=yes_no[s.scales_done],
                scales_skip_reason=s.scales_skip_reason,
                cssrs_reviewed=s.cssrs_reviewed,
                **{
                    f"med_{k}": yes_no[bool(v)]
                    for k, v in (s.medicines or {}).items()
                    if s.predose_at is not None
                },
            )
            return forms.PredoseForm(
                data,
                initial=initial,
                pregnancy_relevant=s.patient.sex_at_birth != "male",
                prefix="pre",
                **self.clock,
            )
        if name == "decision":
            return forms.DecisionForm(data, initial=initial, prefix="dec", **self.clock)
        if name == "dose_change":
            initial["dose_mg"] = s.dose_mg
            return forms.DoseChangeForm(data, initial=initial, prefix="chg", **self.clock)
        if name == "device":
            return forms.DeviceForm(
                data,
                initial=initial,
                containers=self.usable_containers(),
                prefix="dev",
                **self.clock,
            )
        if name == "start":
            return forms.InfusionStartForm(
                data,
                initial=initial,
                containers=self.usable_containers(),
                prefix="inf",
                **self.clock,
            )
        if name == "stop":
            initial["waste_reason"] = "residue in syringe"
            return forms.InfusionStopForm(data, initial=initial, prefix="stop", **self.clock)
        if name == "vitals":
            return forms.VitalsForm(data, initial=initial, prefix="vs", **self.clock)
        if name == "side_effect":
            return forms.SideEffectForm(data, initial=initial, prefix="se", **self.clock)
        if name == "dissociation":
            instrument = get_instrument("cadss6")
            texts = measure_selectors.item_texts(self.request.clinic, instrument)  # type: ignore[attr-defined]
            form = ScaleForm(instrument, texts, data, require_all=True, prefix="cadss")
            form.fields["at"] = forms.time_field("Rated at")
            return form
        if name == "discharge_score":
            instrument = get_instrument(self.settings.discharge_instrument)
            texts = measure_selectors.item_texts(self.request.clinic, instrument)  # type: ignore[attr-defined]
            form = ScaleForm(instrument, texts, data, require_all=True, prefix="ds")
            form.fields["at"] = forms.time_field("Scored at")
            return form
        if name == "stability":
            return forms.StabilityForm(data, initial=initial, prefix="stab", **self.clock)
        if name == "discharge":
            initial["ride_present"] = s.ride_present
            return forms.DischargeForm(data, initial=initial, prefix="dis", **self.clock)
        if name == "leave":
            return forms.LeaveForm(data, initial=initial, prefix="ama", **self.clock)
        if name == "abort":
            return forms.AbortForm(data, initial=initial, prefix="abort", **self.clock)
        if name == "note":
            initial["note"] = s.note
            return forms.NoteForm(data, initial=initial, prefix="note", **self.clock)
        if name in ("sign", "cosign"):
            return forms.SignForm(data, initial=initial, prefix=name, **self.clock)
        if name == "amend":
            return forms.AmendForm(
                data, vitals=self.vitals, effects=self.effects, tz=self.tz, prefix="amend"
            )
        raise KeyError(name)

    def form(self, name: str) -> Any:
        if name not in self.forms:
            self.forms[name] = self.build(name)
        return self.forms[name]


def _scale_at(form: ScaleForm, page: Page) -> datetime | None:
    value = form.cleaned_data.get("at")
    return datetime.combine(page.day, value, tzinfo=page.tz) if value else None


def _do(action: str, page: Page, form: Any) -> str:
    """Run one action through the services. Returns the message for the nurse."""
    actor = _actor(page.request)
    s = page.session
    d = form.cleaned_data
    version = d.get("version")
    if action == "predose":
        gate = services.record_predose(
            actor,
            s,
            expected_version=version,
            sbp=d["sbp"],
            dbp=d["dbp"],
            hr=d["hr"],
            spo2=d["spo2"],
            rr=d["rr"],
            temp_c=d.get("temp_c"),
            fasting=d["fasting"],
            ride_name=d["ride_name"],
            ride_phone=d["ride_phone"],
            pregnancy_status=d.get("pregnancy_status", ""),
            medicines=form.medicines(),
            scales_done=d["scales_done"],
            scales_skip_reason=d["scales_skip_reason"],
            cssrs_reviewed=d["cssrs_reviewed"],
            taken_at=form.at(),
        )
        if gate.ok:
            return "Pre-dose checks recorded: the patient may be dosed."
        return "Pre-dose checks recorded. Dosing is blocked: see the banner."
    if action == "decision":
        services.record_prescriber_decision(
            actor, s, expected_version=version, decision=d["decision"], reason=d["reason"]
        )
        return (
            "Decision recorded: proceed."
            if d["decision"] == "proceed"
            else "Dose deferred; the session is aborted."
        )
    if action == "dose_change":
        services.change_dose(
            actor, s, expected_version=version, dose_mg=d["dose_mg"], reason=d["reason"]
        )
        return f"Today's dose changed to {d['dose_mg']:f} mg."
    if action == "device":
        container = form.container_obj()
        if container is None:
            raise ValidationError({"container": "Choose the device to use."})
        dose = services.record_device(actor, s, container=container, at=form.at())
        at = dose.started_at.astimezone(page.tz)
        return f"Device {dose.device_number} recorded at {at:%H:%M} (lot {dose.lot_number})."
    if action == "start":
        container = form.container_obj()
        if container is None:
            raise ValidationError({"container": "Choose the vial to draw from."})
        dose = services.start_infusion(
            actor,
            s,
            expected_version=version,
            container=container,
            concentration_mg_per_ml=d.get("concentration"),
            drawn_ug=_mg_to_ug(d.get("drawn_mg")),
            at=form.at(),
        )
        rate = f" at {dose.pump_rate_ml_per_h:f} mL/h" if dose.pump_rate_ml_per_h else ""
        return f"Infusion started{rate}."
    if action == "stop":
        dose = services.stop_infusion(
            actor,
            s,
            expected_version=version,
            at=form.at(),
            administered_ug=_mg_to_ug(d.get("administered_mg")),
            witness_username=d["witness_username"],
            witness_secret=d["witness_secret"],
            waste_reason=d["waste_reason"],
            stop_reason=d["stop_reason"],
        )
        wasted = (
            f"; {Decimal(dose.wasted_ug) / 1000:f} mg wasted, witnessed" if dose.wasted_ug else ""
        )
        return f"Infusion stopped{wasted}."
    if action == "vitals":
        reading = services.record_vitals(
            actor,
            s,
            sbp=d.get("sbp"),
            dbp=d.get("dbp"),
            hr=d.get("hr"),
            spo2=d.get("spo2"),
            rr=d.get("rr"),
            temp_c=d.get("temp_c"),
            moaas=d.get("moaas"),
            o2_lpm=d.get("o2_lpm"),
            note=d.get("note", ""),
            taken_at=form.at(),
        )
        if reading.alerts:
            return "Vitals recorded. ALERT: " + _alert_text(reading.alerts, page.settings) + "."
        return "Vitals recorded."
    if action == "side_effect":
        effect = services.record_side_effect(
            actor,
            s,
            kind=d["kind"],
            severity=d["severity"],
            onset_at=form.at(),
            action=d["action"],
            outcome=d["outcome"],
            other_text=d["other_text"],
        )
        return f"{effect.get_kind_display()} recorded" + (
            " and flagged for reporting." if effect.reportable else "."
        )
    if action == "dissociation":
        response = services.record_dissociation(
            actor, s, code="cadss6", answers=form.answers(), administered_at=_scale_at(form, page)
        )
        return f"CADSS-6 recorded: total {response.total_display}."
    if action == "discharge_score":
        response = services.record_discharge_score(
            actor, s, answers=form.answers(), administered_at=_scale_at(form, page)
        )
        return f"Discharge score recorded: {response.total_display}."
    if action == "stability":
        services.confirm_stability(actor, s, expected_version=version, note=d["note"])
        return "Clinical stability confirmed."
    if action == "discharge":
        services.discharge(
            actor,
            s,
            expected_version=version,
            ride_present=d["ride_present"],
            ready_to_leave_minutes=d.get("ready_to_leave_minutes"),
            at=form.at(),
        )
        return "Discharged home."
    if action == "leave":
        services.discharge_against_advice(
            actor, s, expected_version=version, reason=d["reason"], at=form.at()
        )
        return "Recorded: the patient left early / against medical advice."
    if action == "abort":
        services.abort(actor, s, expected_version=version, reason=d["reason"])
        return "Session aborted."
    if action == "note":
        services.update_note(actor, s, expected_version=version, note=d["note"])
        return "Note saved."
    if action == "sign":
        services.sign(actor, s, expected_version=version)
        return "Signed. The note is now read-only; corrections are amendments."
    if action == "cosign":
        services.cosign(actor, s, expected_version=version)
        return "Co-signed."
    if action == "amend":
        object_type, object_id, field = form.target_parts(s.pk)
        services.amend(
            actor,
            s,
            object_type=object_type,
            object_id=object_id,
            field=field,
            new_value=d["new_value"],
            reason=d["reason"],
        )
        return "Amendment recorded; the original stays visible."
    raise Http404("Unknown action.")


def _alert_text(codes: list[str], settings: Any) -> str:
    limits = {
        "sbp": settings.alert_sbp,
        "dbp": settings.alert_dbp,
        "hr": settings.alert_hr,
        "spo2": settings.alert_spo2,
    }
    return ", ".join(ALERT_TEXT.get(c, c).format(**limits) for c in codes)


def _post(request: HttpRequest, session: DosingSession) -> HttpResponse | Page:
    name = request.POST.get("action", "")
    action = ACTIONS.get(name)
    if action is None:
        messages.error(request, "That form is not known here. Nothing was saved.")
        return redirect("dosing:session", session_id=session.pk)
    if not has_perm(request, action.perm):
        return HttpResponse("Your role does not allow that.", status=403)
    page = Page(request, session)
    form = page.build(action.form, request.POST)
    page.forms[action.form] = form
    if form.is_valid():
        try:
            message = _do(name, page, form)
        except services.StaleSession as exc:
            # Someone else saved first. Keep what this user typed, show the current session,
            # and carry the new version so a second submit (after reading it) saves.
            fresh = _session(request, session.pk, detail=True)
            page = Page(request, fresh)
            data = request.POST.copy()
            prefix = form.prefix
            data[f"{prefix}-version" if prefix else "version"] = str(fresh.version)
            rebound = page.build(action.form, data)
            rebound.is_valid()
            _add_errors(rebound, exc)
            page.forms[action.form] = rebound
            page.conflict = " ".join(exc.messages)  # type: ignore[attr-defined]
            return page
        except (ValidationError, ValueError) as exc:
            if isinstance(exc, ValueError):
                exc = ValidationError(str(exc))
            _add_errors(form, exc)
        except PermissionError as exc:
            return HttpResponse(str(exc) or "Your role does not allow that.", status=403)
        else:
            messages.success(request, message)
            return redirect(
                reverse("dosing:session", kwargs={"session_id": session.pk}) + f"#{action.anchor}"
            )
    # What the services may have changed meanwhile (nothing, normally: each write is atomic).
    page = Page(request, _session(request, session.pk, detail=True))
    page.forms[action.form] = form
    return page


# --- the session screen ------------------------------------------------------------------------


@requires(Perm.CLINICAL_VIEW)
@require_http_methods(["GET", "POST"])
def session_detail(request: HttpRequest, session_id: int) -> HttpResponse:
    session = _session(request, session_id, detail=True)
    if request.method == "POST":
        outcome = _post(request, session)
        if isinstance(outcome, HttpResponse):
            return outcome
        # The form again, with what was typed and why it was not saved. 200, not 4xx: the
        # browser would log every refused form as a failed resource load.
        page = outcome
    else:
        page = Page(request, session)
        audit.record_read(
            _actor(request), "dosing_session", session.pk, patient_id=session.patient_id
        )
    return render(request, "dosing/session.html", _context(request, page))


def _context(request: HttpRequest, page: Page) -> dict[str, Any]:
    s = page.session
    tz, now = page.tz, page.now
    record = has_perm(request, Perm.SESSION_RECORD)
    decide = has_perm(request, Perm.SESSION_DECIDE)
    state = s.state
    signed = s.is_signed
    gate = selectors.gate(s) if state in (SessionState.CHECKED_IN, SessionState.PRE_DOSE) else None
    plan = _plan(page)
    due = (
        selectors.vitals_due(s, now, page.settings) if s.first_dose_at and state in ACTIVE else None
    )
    readiness = (
        selectors.discharge_readiness(s, now, config=page.settings)
        if s.first_dose_at and state in ACTIVE
        else None
    )
    effective = (
        {k: a.new_value for k, a in selectors.amendment_map(s).items()} if page.amendments else {}
    )

    latest = page.vitals[-1] if page.vitals else None
    alert_banner = (
        _alert_text(latest.alerts, page.settings)
        if latest is not None and latest.alerts and state in ACTIVE
        else ""
    )
    rows = []
    for v in page.vitals:
        alerts = set(v.alerts)

        def cell(*fields: str, v: Any = v, alerts: set[str] = alerts) -> dict[str, Any]:
            original = "/".join(
                "—" if getattr(v, f) is None else str(getattr(v, f)) for f in fields
            )
            changed = any(("vitals", v.pk, f) in effective for f in fields)
            amended = "/".join(
                str(effective.get(("vitals", v.pk, f), getattr(v, f)) or "—") for f in fields
            )
            flag = {"sbp": "sbp_high", "dbp": "dbp_high", "hr": "hr_high", "spo2": "spo2_low"}
            high = any(flag.get(f) in alerts for f in fields) or (
                fields == ("moaas",) and "moaas_0" in alerts
            )
            empty = all(getattr(v, f) is None for f in fields)
            return {
                "value": "—" if empty else original,
                "amended": amended if changed else None,
                "high": high,
            }

        rows.append(
            {
                "reading": v,
                "cells": [
                    cell("sbp", "dbp"),
                    cell("hr"),
                    cell("spo2"),
                    cell("rr"),
                    cell("moaas"),
                ],
                "amended_note": effective.get(("vitals", v.pk, "note")),
            }
        )

    devices_left = 0
    next_device_at = None
    if s.is_esketamine and plan is not None:
        devices_left = max(int(plan.devices) - len(page.doses), 0)
        if page.doses:
            next_device_at = page.doses[-1].started_at + timedelta(minutes=5)
    running = next((d for d in page.doses if d.ended_at is None and not s.is_esketamine), None)

    minutes_since = int((now - s.first_dose_at).total_seconds() // 60) if s.first_dose_at else None
    elapsed_end = s.discharged_at or now
    observed = (
        int((elapsed_end - s.first_dose_at).total_seconds() // 60) if s.first_dose_at else None
    )

    scales = [link for link in page.scale_links]
    dissociation = [x for x in scales if x.purpose == "dissociation"]
    for link in dissociation:
        link.scale_name = SCALE_NAMES.get(link.response.instrument_code, "")  # type: ignore[attr-defined]
    discharge_scores = [x for x in scales if x.purpose == "discharge"]

    can_dose = (
        record and not signed and state == SessionState.PRE_DOSE and gate is not None and gate.ok
    )
    show = {
        "check_in": state == SessionState.BOOKED and has_perm(request, Perm.SCHEDULE_MANAGE),
        "predose": record
        and not signed
        and state in (SessionState.CHECKED_IN, SessionState.PRE_DOSE),
        "decision": decide and gate is not None and gate.needs_decision,
        "dose_change": decide
        and not signed
        and state in (SessionState.CHECKED_IN, SessionState.PRE_DOSE),
        "device": record
        and not signed
        and s.is_esketamine
        and devices_left > 0
        and (can_dose or state == SessionState.DOSING),
        "start": can_dose and not s.is_esketamine and not page.doses,
        "stop": record and not signed and running is not None,
        "vitals": record and not signed and state in ACTIVE,
        "side_effect": record and not signed and state in ACTIVE | {SessionState.DISCHARGED},
        "dissociation": record and not signed and s.first_dose_at is not None and state in ACTIVE,
        "discharge_score": record
        and not signed
        and state in (SessionState.OBSERVATION, SessionState.READY_FOR_DISCHARGE),
        "stability": decide
        and not signed
        and s.is_esketamine
        and s.first_dose_at is not None
        and s.stability_confirmed_at is None
        and state in (SessionState.OBSERVATION, SessionState.READY_FOR_DISCHARGE),
        "discharge": record
        and not signed
        and state in (SessionState.OBSERVATION, SessionState.READY_FOR_DISCHARGE),
        "leave": record
        and not signed
        and state
        in (SessionState.DOSING, SessionState.OBSERVATION, SessionState.READY_FOR_DISCHARGE)
        and running is None,
        "abort": record
        and not signed
        and state in (SessionState.BOOKED, SessionState.CHECKED_IN, SessionState.PRE_DOSE),
        "note": record and not signed and state != SessionState.BOOKED,
        "sign": record and not signed and state in (SessionState.DISCHARGED, SessionState.ABORTED),
        "cosign": decide and signed and s.cosigned_at is None and s.signed_by_id != request.user.pk,
        "amend": record and signed,
    }
    forms_shown = {
        name: page.form(name) for name, visible in show.items() if visible and name in ACTIONS
    }
    return {
        "s": s,
        "session": s,
        "patient": s.patient,
        "course": s.course,
        "tz": tz,
        "now": now,
        "gate": gate,
        "plan": plan,
        "due": due,
        "readiness": readiness,
        "rows": rows,
        "vitals": page.vitals,
        "doses": page.doses,
        "effects": page.effects,
        "events": [
            {
                "e": e,
                "from": STATE_LABELS.get(e.from_state, e.from_state),
                "to": STATE_LABELS.get(e.to_state, e.to_state),
            }
            for e in page.events
        ],
        "alert_events": [e for e in page.events if e.kind in ("alert", "override")],
        "amendments": page.amendments,
        "dissociation": dissociation,
        "discharge_scores": discharge_scores,
        "predose_reading": next((v for v in reversed(page.vitals) if v.phase == "predose"), None)
        if s.predose_at
        else None,
        "medicines_taken": [
            label for key, label in forms.MEDICINES if (s.medicines or {}).get(key)
        ],
        "alert_banner": alert_banner,
        "alert_at": latest.taken_at if latest is not None else None,
        "chart": charts.session_chart(page.vitals, s.first_dose_at, tz, page.settings),
        "minutes_since": minutes_since,
        "observed": observed,
        "devices_left": devices_left,
        "next_device_at": next_device_at,
        "running": running,
        "show": show,
        "f": forms_shown,
        "conflict": getattr(page, "conflict", ""),
        "next_action": _next_action(
            s, gate, due, readiness, devices_left, next_device_at, running, now
        ),
        "settings": page.settings,
        "route_label": ROUTES.get(s.route, s.route),
        "record": record,
        "decide": decide,
    }


def _plan(page: Page) -> Any:
    """Today's dose plan; for an infusion at the concentration in use (the running dose's, or
    the first usable vial's), so the pump rate on the screen is the one to program."""
    s = page.session
    concentration = None
    if not s.is_esketamine:
        given = next(
            (d.concentration_mg_per_ml for d in page.doses if d.concentration_mg_per_ml), None
        )
        if given is not None:
            concentration = given
        elif s.state in (SessionState.CHECKED_IN, SessionState.PRE_DOSE):
            vials = page.usable_containers()
            if vials:
                concentration = vials[0].lot.product.concentration_mg_per_ml
    try:
        return selectors.dose_plan(s, concentration)
    except ValueError:
        return None


def _hhmm(moment: datetime, session: DosingSession) -> str:
    return f"{timezone.localtime(moment, ZoneInfo(session.clinic.time_zone)):%H:%M}"


def _next_action(
    s, gate, due, readiness, devices_left, next_device_at, running, now
) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The one thing to do next, in words, with the part of the page that does it."""
    state = s.state
    if state == SessionState.BOOKED:
        return {"text": "Check the patient in", "anchor": "top", "tone": "go"}
    if state == SessionState.CHECKED_IN:
        return {"text": "Record the pre-dose checks", "anchor": "predose", "tone": "go"}
    if state == SessionState.PRE_DOSE:
        if gate is not None and not gate.ok:
            if gate.needs_decision:
                return {
                    "text": "Dosing blocked: the prescriber must decide",
                    "anchor": "gate",
                    "tone": "stop",
                }
            return {
                "text": "Dosing blocked: fix the pre-dose checks",
                "anchor": "gate",
                "tone": "stop",
            }
        if s.is_esketamine:
            return {"text": "Give device 1", "anchor": "dose", "tone": "go"}
        return {"text": "Start the infusion", "anchor": "dose", "tone": "go"}
    if state == SessionState.DOSING:
        if running is not None:
            return {
                "text": "Infusion running: stop it when it has run in",
                "anchor": "dose",
                "tone": "go",
            }
        if devices_left and next_device_at is not None:
            wait = next_device_at > now
            return {
                "text": f"Next device {'from' if wait else 'now, from'} {_hhmm(next_device_at, s)}",
                "anchor": "dose",
                "tone": "wait" if wait else "go",
            }
    if state in (SessionState.OBSERVATION, SessionState.READY_FOR_DISCHARGE):
        if due is not None and due.next_due is not None and due.overdue:
            return {"text": "Vitals overdue", "anchor": "vitals", "tone": "stop"}
        if readiness is not None and readiness.ready:
            return {"text": "Ready for discharge", "anchor": "discharge", "tone": "go"}
        if due is not None and due.next_due is not None:
            return {
                "text": f"Next vitals at {_hhmm(due.next_due, s)}",
                "anchor": "vitals",
                "tone": "wait",
            }
        return {"text": "Observe", "anchor": "vitals", "tone": "wait"}
    if state in (SessionState.DISCHARGED, SessionState.ABORTED):
        if not s.is_signed:
            return {"text": "Sign the note", "anchor": "sign", "tone": "go"}
        if s.cosigned_at is None:
            return {
                "text": "Awaiting the prescriber's co-signature",
                "anchor": "sign",
                "tone": "wait",
            }
        return {"text": "Complete: signed and co-signed", "anchor": "sign", "tone": "done"}
    return {"text": s.get_state_display(), "anchor": "top", "tone": "wait"}


# --- check-in ----------------------------------------------------------------------------------


@requires(Perm.SCHEDULE_MANAGE)
@require_http_methods(["POST"])
def check_in(request: HttpRequest, appointment_id: int) -> HttpResponse:
    appointment = treatment_selectors.get_appointment(request.clinic, appointment_id)  # type: ignore[attr-defined]
    # The desk may chart when the patient arrived (HH:MM today); blank means now.
    at = None
    raw = request.POST.get("at", "").strip()
    if raw:
        try:
            arrived = time.fromisoformat(raw[:5]) if len(raw) >= 5 and raw[2] == ":" else None
            if arrived is None:
                raise ValueError(raw)
        except ValueError:
            messages.error(request, forms.TIME_ERROR + " Nothing was saved.")
            return redirect("dosing:board")
        tz = _tz(request)
        at = datetime.combine(timezone.now().astimezone(tz).date(), arrived, tzinfo=tz)
    try:
        session = services.check_in(_actor(request), appointment, at=at)
    except (ValidationError, PermissionError) as exc:
        messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
        return redirect("dosing:board")
    messages.success(request, "Checked in.")
    if has_perm(request, Perm.CLINICAL_VIEW):
        return redirect("dosing:session", session_id=session.pk)
    return redirect("dosing:board")


# --- the chair board ---------------------------------------------------------------------------


def _board_context(request: HttpRequest) -> dict[str, Any]:
    now = timezone.now()
    rows = selectors.chair_board(request.clinic, now)  # type: ignore[attr-defined]
    return {
        "rows": rows,
        "now": now,
        "tz": _tz(request),
        "clinical": has_perm(request, Perm.CLINICAL_VIEW),
        "can_check_in": has_perm(request, Perm.SCHEDULE_MANAGE),
    }


@requires(Perm.SCHEDULE_VIEW)
@require_http_methods(["GET"])
def board(request: HttpRequest) -> HttpResponse:
    return render(request, "dosing/board.html", _board_context(request))


@requires(Perm.SCHEDULE_VIEW)
@require_http_methods(["GET"])
def board_rows(request: HttpRequest) -> HttpResponse:
    """The board's table alone, fetched every 15 seconds by board.js."""
    return render(request, "dosing/_board_rows.html", _board_context(request))


# --- the REMS patient monitoring form ----------------------------------------------------------


@requires(Perm.CLINICAL_VIEW)
@require_http_methods(["GET", "POST"])
def pmf_detail(request: HttpRequest, session_id: int) -> HttpResponse:
    session = _session(request, session_id)
    if not session.is_esketamine:
        raise Http404("Only esketamine sessions have a REMS monitoring form.")
    rems_form = getattr(session, "rems_form", None)
    submit_form = forms.PmfSubmitForm(
        request.POST if request.method == "POST" else None,
        initial={"submitted_on": timezone.localdate()},
    )
    if request.method == "POST":
        if not has_perm(request, Perm.SESSION_RECORD):
            return HttpResponse("Your role does not allow that.", status=403)
        if rems_form is None:
            submit_form.add_error(None, "The form is ready once the session has ended.")
        elif submit_form.is_valid():
            try:
                services.mark_pmf_submitted(
                    _actor(request),
                    rems_form,
                    confirmation_number=submit_form.cleaned_data["confirmation_number"],
                    submitted_on=submit_form.cleaned_data["submitted_on"],
                )
            except ValidationError as exc:
                _add_errors(submit_form, exc)
            else:
                messages.success(request, "Marked as submitted to the REMS.")
                return redirect("dosing:pmf", session_id=session.pk)
    data = pmf.data_for(session, rems_form)
    if request.method == "GET" and request.GET.get("format") == "pdf":
        audit.record(
            _actor(request),
            AuditAction.EXPORT,
            "rems_monitoring_form",
            session.pk,
            patient_id=session.patient_id,
            detail={"format": "pdf"},
        )
        body = pmf.render_pdf(request.clinic, session, rems_form, data)  # type: ignore[attr-defined]
        response = HttpResponse(body, content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="pmf-session-{session.pk}.pdf"'
        return response
    audit.record_read(
        _actor(request), "rems_monitoring_form", session.pk, patient_id=session.patient_id
    )
    return render(
        request,
        "dosing/pmf.html",
        {
            "session": session,
            "patient": session.patient,
            "rems_form": rems_form,
            "d": data,
            "fields": pmf.rows(data),
            "submit_form": submit_form,
            "can_submit": has_perm(request, Perm.SESSION_RECORD)
            and rems_form is not None
            and rems_form.status == "draft",
            "today": timezone.localdate(),
        },
    )


@requires(Perm.CLINICAL_VIEW)
@require_http_methods(["GET"])
def pmf_list(request: HttpRequest) -> HttpResponse:
    today = timezone.now().astimezone(_tz(request)).date()
    due = selectors.pmf_forms_due(request.clinic, today, within_days=7)  # type: ignore[attr-defined]
    submitted = pmf.recently_submitted(request.clinic, today)  # type: ignore[attr-defined]
    return render(
        request, "dosing/pmf_list.html", {"forms": due, "submitted": submitted, "today": today}
    )


# --- after-care and settings -------------------------------------------------------------------


def aftercare_blocks(text: str) -> list[dict[str, Any]]:
    """Plain text as the clinic typed it, as paragraphs and bullet lists: a line starting with
    '-' or '*' starts a bullet; other lines continue the paragraph or bullet above (text
    wrapped by hand reads as one sentence on a phone and on paper)."""
    blocks: list[dict[str, Any]] = []
    for chunk in text.replace("\r\n", "\n").split("\n\n"):
        lines = [line.strip() for line in chunk.split("\n") if line.strip()]
        if not lines:
            continue
        items: list[str] = []
        para: list[str] = []
        for line in lines:
            if line[:2] in ("- ", "* ", "• "):
                if para:
                    blocks.append({"kind": "p", "text": " ".join(para)})
                    para = []
                items.append(line[2:].strip())
            elif items:
                items[-1] += " " + line
            else:
                para.append(line)
        if para:
            blocks.append({"kind": "p", "text": " ".join(para)})
        if items:
            blocks.append({"kind": "ul", "items": items})
    return blocks


@requires(Perm.CLINICAL_VIEW)
@require_http_methods(["GET"])
def aftercare(request: HttpRequest, session_id: int) -> HttpResponse:
    session = _session(request, session_id)
    audit.record_read(
        _actor(request), "dosing_aftercare", session.pk, patient_id=session.patient_id
    )
    return render(
        request,
        "dosing/aftercare.html",
        {
            "session": session,
            "patient": session.patient,
            "blocks": aftercare_blocks(selectors.aftercare_text(request.clinic)),  # type: ignore[attr-defined]
            "clinic": request.clinic,  # type: ignore[attr-defined]
        },
    )


@requires(Perm.SESSION_CONFIGURE)
@require_http_methods(["GET", "POST"])
def settings_view(request: HttpRequest) -> HttpResponse:
    current = services.settings_for(request.clinic)  # type: ignore[attr-defined]
    form = forms.SettingsForm(request.POST or None, instance=current)
    if request.method == "POST" and form.is_valid():
        try:
            services.update_settings(
                _actor(request), **{k: form.cleaned_data[k] for k in form.Meta.fields}
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, "Dosing settings saved.")
            return redirect("dosing:settings")
    return render(
        request,
        "dosing/settings.html",
        {"form": form, "settings": current},
    )
