"""Reads shared by the dosing pages and services: the pre-dose gate, the dose plan, vitals due,
discharge readiness, the chair board and the REMS monitoring form's fields."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Prefetch
from django.utils import timezone

from ketaclinic.accounts.models import Clinic
from ketaclinic.clinical import dosing as dose_rules
from ketaclinic.clinical import monitoring, protocols
from ketaclinic.dosing.models import (
    Amendment,
    BpDecision,
    DosingSession,
    DosingSettings,
    PmfStatus,
    PregnancyStatus,
    RemsMonitoringForm,
    ScalePurpose,
    SessionScale,
    SessionState,
    SideEffectKind,
    VitalsReading,
)
from ketaclinic.inventory.models import Container
from ketaclinic.measures.models import ScaleResponse
from ketaclinic.treatment.models import Appointment, AppointmentKind, AppointmentStatus

ESKETAMINE_PREDOSE_LIMIT = (140, 90)  # Spravato USPI general guide (clinical.md §2.4)
DEVICE_UG = 28_000


def zone(clinic: Clinic) -> ZoneInfo:
    return ZoneInfo(clinic.time_zone)


def settings_for(clinic: Clinic) -> DosingSettings:
    return settings_for_id(clinic.pk)


def settings_for_id(clinic_id: int) -> DosingSettings:
    found, _ = DosingSettings.objects.get_or_create(clinic_id=clinic_id)
    return found


def aftercare_text(clinic: Clinic) -> str:
    return settings_for(clinic).aftercare_text


def session_for_clinic(clinic: Clinic, pk: int) -> DosingSession:
    """The session, only if it belongs to this clinic (DoesNotExist otherwise: a 404)."""
    return DosingSession.objects.select_related(
        "appointment__chair", "course", "patient", "signed_by", "cosigned_by", "rems_form"
    ).get(pk=pk, clinic=clinic)


def session_detail(clinic: Clinic, pk: int) -> DosingSession:
    """The session with its rows prefetched for the session page (fixed number of queries)."""
    return (
        DosingSession.objects.select_related(
            "appointment__chair",
            "course",
            "patient",
            "signed_by",
            "cosigned_by",
            "checked_in_by",
            "predose_by",
            "bp_decision_by",
            "dose_changed_by",
            "stability_confirmed_by",
            "discharged_by",
        )
        .prefetch_related(
            Prefetch("vitals", queryset=VitalsReading.objects.select_related("recorded_by")),
            "doses__given_by",
            "events__by",
            "side_effects__recorded_by",
            Prefetch("scales", queryset=SessionScale.objects.select_related("response")),
            "amendments__by",
        )
        .get(pk=pk, clinic=clinic)
    )


# --- the pre-dose gate ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    code: str
    message: str
    overridable: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Gate:
    blocks: list[Block]
    warnings: list[str]
    bp_ok: bool | None
    overridden: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.blocks

    @property
    def overridable_codes(self) -> list[str]:
        return [b.code for b in self.blocks if b.overridable] + list(self.overridden)

    @property
    def needs_decision(self) -> bool:
        return any(b.overridable for b in self.blocks)


def predose_reading(session: DosingSession) -> VitalsReading | None:
    readings = [r for r in session.vitals.all() if r.phase == "predose"]
    return max(readings, key=lambda r: (r.taken_at, r.pk)) if readings else None


def predose_limit(session: DosingSession, config: DosingSettings | None = None) -> tuple[int, int]:
    if session.drug == "esketamine":
        return ESKETAMINE_PREDOSE_LIMIT
    config = config or settings_for_id(session.clinic_id)
    return (config.predose_sbp_limit, config.predose_dbp_limit)


def usable_containers(session: DosingSession, today: date | None = None) -> list[Container]:
    """Unexpired containers of the session's drug holding at least one device (esketamine) or
    the whole dose, first-expiring lot first, open containers before sealed ones."""
    today = today or session.clinic.today()
    if session.drug == "esketamine":
        needed = DEVICE_UG
    else:
        needed = int((session.dose_mg or Decimal(0)) * 1000) or 1
    found = Container.objects.filter(
        clinic_id=session.clinic_id,
        lot__product__drug=session.drug,
        balance_ug__gte=needed,
        lot__expiry__gt=today,
    ).select_related("lot__product", "location")
    return sorted(found, key=lambda c: (c.lot.expiry, c.opened_at is None, c.pk))


def _history(session: DosingSession, before: datetime) -> list[protocols.SessionRecord]:
    """The course's doses before this one: its dosed sessions, and the visits marked attended
    without a session record here (given before the clinic charted sessions in ketaclinic),
    taken at their planned dose. Without the latter a patient in maintenance would be judged
    as on day 1 (esketamine: 56 mg only)."""
    dosed = list(
        DosingSession.objects.filter(course_id=session.course_id, first_dose_at__lt=before)
        .exclude(pk=session.pk)
        .values_list("appointment_id", "first_dose_at", "dose_mg")
    )
    history = [protocols.SessionRecord(at=at, dose_mg=dose) for _, at, dose in dosed]
    # A visit marked attended without a booked time counts on its target day, at noon.
    noon = time(12, tzinfo=zone(session.clinic))
    for starts_at, target, dose in (
        Appointment.objects.filter(
            course_id=session.course_id,
            kind=AppointmentKind.DOSING,
            status=AppointmentStatus.COMPLETED,
        )
        .exclude(pk=session.appointment_id)
        .exclude(pk__in=[appointment_id for appointment_id, _, _ in dosed])
        .values_list("starts_at", "target", "dose_mg")
    ):
        at = starts_at or datetime.combine(target, noon)
        if at < before:
            history.append(protocols.SessionRecord(at=at, dose_mg=dose))
    return sorted(history, key=lambda record: record.at)


def _protocol_blocks(session: DosingSession, now: datetime) -> list[Block]:
    course = session.course
    options: dict[str, object] = dict(course.typed_protocol_options())
    if session.drug != "esketamine":
        options["clinic_max_mg_per_kg"] = session.clinic.max_iv_mg_per_kg
    mg_per_kg = None
    if session.drug != "esketamine" and session.planned_mg_per_kg and (
        session.dose_mg is None or session.dose_mg == session.planned_dose_mg
    ):
        # The planned dose: judge the prescribed mg/kg, not one worked back from the dose
        # rounded to 0.1 mg (77.5 kg x 0.5 = 38.75 -> 38.8 mg would read as 0.501 mg/kg).
        mg_per_kg = Decimal(session.planned_mg_per_kg)
    elif session.dosing_weight_kg and session.dose_mg and session.drug != "esketamine":
        # A changed dose: per kg to the 0.01 mg/kg a prescriber writes.
        mg_per_kg = (Decimal(session.dose_mg) / Decimal(session.dosing_weight_kg)).quantize(
            Decimal("0.01"), ROUND_HALF_UP
        )
    try:
        proposed = protocols.SessionRecord(
            at=now,
            dose_mg=session.dose_mg,
            mg_per_kg=mg_per_kg,
            weight_kg=session.dosing_weight_kg,
            prescriber_reason=(session.dose_change_reason or course.dose_reason or None),
        )
        history = _history(session, now)
        violations = protocols.validate(course.protocol, history, proposed, **options)
    except (ValueError, TypeError) as exc:
        return [Block("protocol_error", f"The protocol check could not run: {exc}")]
    return [
        Block(f"protocol_{v.code}", f"Protocol: {v.message}.", v.overridable) for v in violations
    ]


def gate(session: DosingSession, *, now: datetime | None = None) -> Gate:
    """What stands between this session and the dose. Overridable blocks clear with the
    prescriber's 'proceed' decision; the others must be fixed."""
    now = now or timezone.now()
    today = timezone.localtime(now, zone(session.clinic)).date()
    blocks: list[Block] = []
    warnings: list[str] = []
    bp_ok: bool | None = None
    if session.state in (SessionState.ABORTED, SessionState.DISCHARGED):
        return Gate([Block("closed", "The session is closed.")], [], None)
    if session.predose_at is None:
        blocks.append(Block("predose_missing", "Record the pre-dose checks first."))
    else:
        reading = predose_reading(session)
        if reading is None or reading.sbp is None or reading.dbp is None:
            blocks.append(Block("predose_missing", "Record the pre-dose blood pressure."))
        else:
            limit = predose_limit(session)
            bp_ok = monitoring.predose_bp_ok(reading.sbp, reading.dbp, limit)
            if not bp_ok:
                # Spravato USPI: > 140/90 -> weigh delaying; prescriber decides (clinical.md §2.4)
                blocks.append(
                    Block(
                        "bp_high",
                        f"Pre-dose BP {reading.sbp}/{reading.dbp} is above {limit[0]}/{limit[1]}: "
                        "the prescriber must decide whether to proceed.",
                        True,
                    )
                )
        if session.fasting is False:
            blocks.append(Block("not_fasting", "The patient has not fasted as instructed.", True))
        if session.pregnancy_status == PregnancyStatus.PREGNANT:
            blocks.append(Block("pregnant", "The patient is pregnant.", True))
        elif session.pregnancy_status == PregnancyStatus.UNKNOWN:
            warnings.append("Pregnancy status is unknown.")
        cssrs = session.cssrs_response
        flags = [
            f for f in (cssrs.flags if cssrs is not None else []) if not f.endswith("_unknown")
        ]
        if flags:
            # Not a block: MDSI patients are treated because of suicidal ideation. The
            # prescriber sees it; the measures app has raised its own alert.
            warnings.append(
                "Today's C-SSRS is positive (" + ", ".join(flags) + "): make sure the "
                "prescriber has seen it before the dose."
            )
        meds = session.medicines or {}
        if meds.get("benzodiazepines") or meds.get("sedative_hypnotics") or meds.get("opioids"):
            warnings.append("CNS depressant on board: watch sedation closely.")
        if meds.get("psychostimulants") or meds.get("maois"):
            warnings.append("Psychostimulant or MAOI: watch blood pressure closely.")
    if session.course.status in ("paused", "stopped"):
        blocks.append(
            Block("course_not_active", f"The course is {session.course.status}: no dose.")
        )
    if session.drug == "esketamine":
        patient = session.patient
        if not patient.rems_patient_id or patient.rems_enrolled_on is None:
            blocks.append(
                Block("rems_not_enrolled", "No Spravato REMS patient enrolment on record.")
            )
        elif patient.rems_enrolled_on > today:
            blocks.append(Block("rems_not_enrolled", "The REMS enrolment date is after today."))
        if not session.clinic.rems_setting_id:
            blocks.append(
                Block(
                    "rems_setting_missing",
                    "This clinic has no Spravato REMS healthcare-setting id on record.",
                )
            )
    if session.first_dose_at is None:
        if session.dose_mg is None:
            blocks.append(Block("no_dose", "No dose is planned for this session."))
        elif not usable_containers(session, today):
            blocks.append(
                Block("no_stock", f"No unexpired {session.drug} stock holds today's dose.")
            )
        if session.dose_mg is not None:
            blocks += _protocol_blocks(session, now)
    overridden: list[str] = []
    if session.bp_decision == BpDecision.PROCEED:
        covered = set(session.bp_decision_codes or [])
        overridden = [b.code for b in blocks if b.overridable and b.code in covered]
        blocks = [b for b in blocks if not (b.overridable and b.code in covered)]
    elif session.bp_decision == BpDecision.DEFER:
        blocks.append(Block("decision_deferred", "The prescriber deferred this dose."))
    return Gate(blocks, warnings, bp_ok, overridden)


def missing_scales_today(session: DosingSession, now: datetime | None = None) -> list[str]:
    """Scales the course's plan asks for before every session that are not recorded today."""
    wanted = [
        item.get("scale", "")
        for item in (session.course.measurement_plan or [])
        if item.get("when") == "before_every_session"
    ]
    if not wanted:
        return []
    tz = zone(session.clinic)
    now = now or timezone.now()
    start = datetime.combine(timezone.localtime(now, tz).date(), datetime.min.time(), tzinfo=tz)
    done = set(
        ScaleResponse.objects.filter(
            patient_id=session.patient_id,
            instrument_code__in=wanted,
            administered_at__gte=start,
            administered_at__lt=start + timedelta(days=1),
        ).values_list("instrument_code", flat=True)
    )
    return [code for code in wanted if code not in done]


def latest_cssrs_today(session: DosingSession, now: datetime | None = None) -> ScaleResponse | None:
    tz = zone(session.clinic)
    now = now or timezone.now()
    start = datetime.combine(timezone.localtime(now, tz).date(), datetime.min.time(), tzinfo=tz)
    return (
        ScaleResponse.objects.filter(
            patient_id=session.patient_id,
            instrument_code__startswith="cssrs",
            administered_at__gte=start,
            administered_at__lt=start + timedelta(days=1),
        )
        .order_by("-administered_at", "-pk")
        .first()
    )


# --- the dose plan -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DosePlan:
    dose_mg: Decimal
    devices: int | None = None
    concentration_mg_per_ml: Decimal | None = None
    volume_ml: Decimal | None = None
    rate_ml_per_h: Decimal | None = None
    rate_mg_per_h: Decimal | None = None
    minutes: int | None = None


def dose_plan(session: DosingSession, concentration: Any = None) -> DosePlan:
    """Today's dose; for esketamine the number of 28 mg devices; for an infusion the volume and
    pump rate from the course's dose plan (clinical.dosing.iv_infusion). ValueError if the
    plan is incomplete."""
    if session.dose_mg is None:
        raise ValueError("No dose is planned for this session.")
    dose = Decimal(session.dose_mg)
    if session.drug == "esketamine":
        return DosePlan(dose_mg=dose, devices=dose_rules.esketamine_devices(dose))
    if concentration is None:
        return DosePlan(dose_mg=dose, minutes=session.infusion_minutes)
    minutes = session.infusion_minutes
    if session.route != "iv" or not minutes:
        conc = dose_rules.to_decimal(concentration, "concentration")
        return DosePlan(
            dose_mg=dose,
            concentration_mg_per_ml=conc,
            volume_ml=(dose / conc).quantize(Decimal("0.01"), ROUND_HALF_UP),
        )
    unchanged = session.dose_changed_at is None
    if unchanged and session.planned_mg_per_kg and session.dosing_weight_kg:
        plan = dose_rules.iv_infusion(
            session.dosing_weight_kg, session.planned_mg_per_kg, minutes, concentration
        )
        if plan.dose_mg == dose:
            return DosePlan(
                dose_mg=plan.dose_mg,
                concentration_mg_per_ml=plan.concentration_mg_per_ml,
                volume_ml=plan.volume_ml,
                rate_ml_per_h=plan.rate_ml_per_h,
                rate_mg_per_h=plan.rate_mg_per_h,
                minutes=minutes,
            )
    # A changed (or fixed-mg) dose: the same arithmetic as iv_infusion on the ordered mg
    # (clinical.md §1.1: volume = dose / concentration; rate = volume / duration).
    conc = dose_rules.to_decimal(concentration, "concentration")
    if not 0 < conc <= 50:
        raise ValueError("concentration must be more than 0 and at most 50 mg/mL")
    volume = (dose / conc).quantize(Decimal("0.01"), ROUND_HALF_UP)
    return DosePlan(
        dose_mg=dose,
        concentration_mg_per_ml=conc,
        volume_ml=volume,
        rate_ml_per_h=(volume * 60 / minutes).quantize(Decimal("0.01"), ROUND_HALF_UP),
        rate_mg_per_h=(dose * 60 / minutes).quantize(Decimal("0.01"), ROUND_HALF_UP),
        minutes=minutes,
    )


def current_pump_rate(session: DosingSession) -> Decimal | None:
    """The running infusion's pump rate now: the last change recorded, else the planned one."""
    row = session.doses.filter(ended_at__isnull=True).first()
    if row is None:
        return None
    change = session.events.filter(detail__has_key="rate_ml_per_h").order_by("-at", "-pk").first()
    if change is not None:
        return Decimal(change.detail["rate_ml_per_h"])
    return row.pump_rate_ml_per_h


# --- vitals due and discharge readiness -----------------------------------------------------------


def earliest_discharge(
    session: DosingSession, config: DosingSettings | None = None
) -> datetime | None:
    if session.first_dose_at is None:
        return None
    if session.drug == "esketamine":
        return monitoring.earliest_discharge("esketamine", session.first_dose_at)
    if session.dose_ended_at is None:
        return None
    config = config or settings_for_id(session.clinic_id)
    return monitoring.earliest_discharge(
        session.drug,
        session.first_dose_at,
        session.dose_ended_at,
        config.min_observation_minutes,
    )


@dataclass(frozen=True)
class VitalsDue:
    schedule: list[datetime]
    next_due: datetime | None
    overdue: bool


def vitals_due(
    session: DosingSession, now: datetime | None = None, config: DosingSettings | None = None
) -> VitalsDue:
    """The protocol's reading times and the next one not yet covered (monitoring rules)."""
    now = now or timezone.now()
    if session.first_dose_at is None or session.state in (
        SessionState.DISCHARGED,
        SessionState.ABORTED,
    ):
        return VitalsDue([], None, False)
    if session.drug == "esketamine":
        schedule = monitoring.vitals_schedule(
            "esketamine", session.first_dose_at, session.dose_ended_at
        )
    else:
        ended = session.dose_ended_at or (
            session.first_dose_at + timedelta(minutes=session.infusion_minutes or 0)
        )
        config = config or settings_for_id(session.clinic_id)
        schedule = monitoring.vitals_schedule(
            session.drug,
            session.first_dose_at,
            ended,
            ended + timedelta(minutes=config.min_observation_minutes),
        )
    taken = [r.taken_at for r in session.vitals.all() if r.taken_at <= now]
    if any(t <= session.first_dose_at for t in taken):
        # The pre-dose reading is the "before the dose" reading of the schedule.
        schedule = [t for t in schedule if t > session.first_dose_at]
    due = monitoring.next_vitals_due(schedule, taken, now)
    return VitalsDue(schedule, due, due is not None and due < now)


@dataclass(frozen=True)
class Readiness:
    ready: bool
    unmet: list[str]
    earliest: datetime | None


def _local(value: datetime, clinic: Clinic) -> str:
    return timezone.localtime(value, zone(clinic)).strftime("%H:%M")


def latest_discharge_score(session: DosingSession) -> ScaleResponse | None:
    scores = [s.response for s in session.scales.all() if s.purpose == ScalePurpose.DISCHARGE]
    return max(scores, key=lambda r: (r.administered_at, r.pk)) if scores else None


def discharge_readiness(
    session: DosingSession,
    now: datetime | None = None,
    *,
    ride_present: bool | None = None,
    config: DosingSettings | None = None,
) -> Readiness:
    """Every unmet discharge criterion, in words. ``ride_present`` None skips that check."""
    now = now or timezone.now()
    config = config or settings_for_id(session.clinic_id)
    unmet: list[str] = []
    if session.first_dose_at is None:
        return Readiness(False, ["No dose has been given."], None)
    if session.dose_ended_at is None:
        unmet.append("The dose is still being given (stop the infusion / record every device).")
    earliest = earliest_discharge(session, config)
    if earliest is not None and now < earliest:
        left = -int(-(earliest - now).total_seconds() // 60)
        what = (
            "120 minutes from the first device"
            if session.drug == "esketamine"
            else f"{config.min_observation_minutes} minutes after the dose ended"
        )
        unmet.append(
            f"Observation is not complete: earliest discharge {_local(earliest, session.clinic)} "
            f"({what}; {left} min to go)."
        )
    score = latest_discharge_score(session)
    label = dict(config._meta.get_field("discharge_instrument").choices)[
        config.discharge_instrument
    ]
    if score is None or score.total is None:
        unmet.append(f"No {label} score recorded (at least {config.discharge_cutoff} needed).")
    elif score.total < config.discharge_cutoff:
        unmet.append(
            f"{label} score {score.total.normalize():f} is below {config.discharge_cutoff}."
        )
    readings = sorted(session.vitals.all(), key=lambda r: (r.taken_at, r.pk))
    after = [r for r in readings if session.dose_ended_at and r.taken_at >= session.dose_ended_at]
    if not after:
        unmet.append("No vital signs recorded since the dose ended.")
    elif after[-1].alerts:
        last = after[-1]
        unmet.append(
            f"The latest vital signs ({_local(last.taken_at, session.clinic)}) are outside the "
            f"limits: {', '.join(last.alerts)}."
        )
    if not session.ride_name:
        unmet.append("No ride home is recorded.")
    elif ride_present is False:
        unmet.append(f"The ride home ({session.ride_name}) is not here yet.")
    if session.drug == "esketamine" and session.stability_confirmed_at is None:
        unmet.append("A clinician must confirm the patient is clinically stable (esketamine).")
    return Readiness(not unmet, unmet, earliest)


# --- amendments -----------------------------------------------------------------------------------


def amendment_map(session: DosingSession) -> dict[tuple[str, int, str], Amendment]:
    """The latest amendment of each (object_type, object_id, field)."""
    latest: dict[tuple[str, int, str], Amendment] = {}
    for a in session.amendments.all():
        latest[(a.object_type, a.object_id, a.field)] = a
    return latest


def effective_value(
    session: DosingSession, object_type: str, object_id: int, field_name: str, original: Any
) -> Any:
    found = (
        session.amendments.filter(object_type=object_type, object_id=object_id, field=field_name)
        .order_by("-at", "-pk")
        .first()
    )
    return found.new_value if found is not None else original


def _eff(amends: dict[tuple[str, int, str], Amendment], kind: str, row: Any, name: str) -> Any:
    found = amends.get((kind, row.pk, name))
    if found is None:
        return getattr(row, name)
    value = found.new_value
    if name in ("sbp", "dbp", "hr", "spo2", "rr", "moaas", "ready_to_leave_minutes"):
        return int(value) if value != "" else None
    return value


# --- the REMS Patient Monitoring Form -------------------------------------------------------------


def _bp(amends: dict[tuple[str, int, str], Amendment], reading: VitalsReading | None) -> str:
    if reading is None:
        return ""
    sbp, dbp = _eff(amends, "vitals", reading, "sbp"), _eff(amends, "vitals", reading, "dbp")
    return f"{sbp}/{dbp}" if sbp is not None and dbp is not None else ""


def pmf_data(session: DosingSession) -> dict[str, Any]:
    """The Spravato REMS Patient Monitoring Form's fields (clinical.md §2.6), built from the
    session with any amendments applied."""
    session = (
        DosingSession.objects.select_related(
            "patient", "clinic", "stability_confirmed_by", "signed_by", "discharged_by"
        )
        .prefetch_related(
            "vitals",
            "doses",
            "side_effects",
            "amendments",
            Prefetch("scales", queryset=SessionScale.objects.select_related("response")),
        )
        .get(pk=session.pk)
    )
    amends = amendment_map(session)
    patient = session.patient
    clinic = session.clinic
    readings = sorted(session.vitals.all(), key=lambda r: (r.taken_at, r.pk))
    predose = predose_reading(session)
    doses = list(session.doses.all())
    first = session.first_dose_at
    last_device = session.dose_ended_at
    at_40 = None
    if first is not None:
        target = (last_device or first) + timedelta(minutes=40)
        window = [r for r in readings if r.phase != "predose" and r.taken_at >= first]
        if window:
            at_40 = min(window, key=lambda r: abs((r.taken_at - target).total_seconds()))
    end_reading = readings[-1] if readings and readings[-1] is not predose else None
    effects = list(session.side_effects.all())
    kinds = {e.kind for e in effects}
    moaas = [_eff(amends, "vitals", r, "moaas") for r in readings]
    dissociation_scores = [
        {"code": s.response.instrument_code, "total": str(s.response.total)}
        for s in session.scales.all()
        if s.purpose == ScalePurpose.DISSOCIATION
    ]
    clinician = session.stability_confirmed_by or session.signed_by or session.discharged_by
    total_minutes = None
    if first is not None and session.discharged_at is not None:
        total_minutes = int((session.discharged_at - first).total_seconds() // 60)
    limit = ESKETAMINE_PREDOSE_LIMIT
    vitals_ok_before = None
    if predose is not None and predose.sbp is not None and predose.dbp is not None:
        vitals_ok_before = (
            monitoring.predose_bp_ok(
                _eff(amends, "vitals", predose, "sbp"),
                _eff(amends, "vitals", predose, "dbp"),
                limit,
            )
            and not predose.alerts
        )
    earlier_esk = DosingSession.objects.filter(
        patient_id=patient.pk, drug="esketamine", first_dose_at__isnull=False
    )
    if first is not None:
        earlier_esk = earlier_esk.filter(first_dose_at__lt=first)
    return {
        "patient_first_name": patient.given_name,
        "patient_last_name": patient.family_name,
        "patient_dob": patient.date_of_birth.isoformat(),
        "patient_sex": patient.sex_at_birth,
        "rems_patient_id": patient.rems_patient_id,
        "first_treatment": not earlier_esk.exclude(pk=session.pk).exists(),
        "medicines": dict(session.medicines or {}),
        "monitoring_clinician": clinician.display_name if clinician else "",
        "monitoring_clinician_email": clinician.email if clinician else "",
        "monitoring_clinician_phone": clinic.phone,
        "setting_name": clinic.name,
        "setting_address": clinic.address,
        "rems_setting_id": clinic.rems_setting_id,
        "treatment_date": (
            timezone.localtime(first, zone(clinic)).date().isoformat() if first else ""
        ),
        "dose_mg": sum(int(d.administered_ug or 0) for d in doses) // 1000,
        "devices": len([d for d in doses if d.device_number]),
        "lot_numbers": sorted({d.lot_number for d in doses}),
        "total_minutes": total_minutes,
        "ready_to_leave_minutes": _eff(amends, "session", session, "ready_to_leave_minutes"),
        "vitals_ok_before": vitals_ok_before,
        "vitals_ok_after": (not end_reading.alerts) if end_reading is not None else None,
        "bp_before": _bp(amends, predose),
        "bp_40_min": _bp(amends, at_40),
        "bp_40_min_at": at_40.taken_at.isoformat() if at_40 else "",
        "bp_before_discharge": _bp(amends, end_reading),
        "sedation": SideEffectKind.SEDATION in kinds or any(m is not None and m < 5 for m in moaas),
        "lowest_moaas": min((m for m in moaas if m is not None), default=None),
        "dissociation": SideEffectKind.DISSOCIATION in kinds,
        "dissociation_scores": dissociation_scores,
        "respiratory_depression": SideEffectKind.RESPIRATORY_DEPRESSION in kinds
        or any("spo2_low" in r.alerts for r in readings),
        "adverse_events": [
            {
                "kind": e.kind,
                "other": _eff(amends, "side_effect", e, "other_text"),
                "severity": _eff(amends, "side_effect", e, "severity"),
                "onset": e.onset_at.isoformat(),
                "action": _eff(amends, "side_effect", e, "action"),
                "outcome": _eff(amends, "side_effect", e, "outcome"),
                "reportable": e.reportable,
            }
            for e in effects
        ],
        "discharge_kind": session.discharge_kind,
        "discharge_reason": _eff(amends, "session", session, "discharge_reason"),
    }


def pmf_forms_due(
    clinic: Clinic, today: date | None = None, within_days: int = 7
) -> list[RemsMonitoringForm]:
    """Draft forms due within ``within_days`` (overdue ones first), each with ``days_left``."""
    today = today or clinic.today()
    forms = list(
        RemsMonitoringForm.objects.filter(
            clinic=clinic, status=PmfStatus.DRAFT, due_on__lte=today + timedelta(days=within_days)
        )
        .select_related("session__patient")
        .order_by("due_on", "pk")
    )
    for form in forms:
        form.days_left = (form.due_on - today).days  # type: ignore[attr-defined]
    return forms


# --- the chair board ------------------------------------------------------------------------------


@dataclass
class BoardRow:
    appointment: Appointment
    session: DosingSession | None
    chair_name: str
    state: str
    state_label: str
    minutes_since_dose: int | None
    next_vitals_due: datetime | None
    vitals_overdue: bool
    ready: bool
    unmet: list[str]
    earliest_discharge: datetime | None
    alerts: list[str]


def chair_board(clinic: Clinic, now: datetime | None = None) -> list[BoardRow]:
    """Today's dosing appointments by chair, with each session's state, minutes since the dose,
    the next vitals due and discharge readiness. Five queries, whatever the number of
    sessions."""
    now = now or timezone.now()
    tz = zone(clinic)
    day = timezone.localtime(now, tz).date()
    start = datetime.combine(day, datetime.min.time(), tzinfo=tz)
    config = settings_for_id(clinic.pk)
    appointments = list(
        Appointment.objects.filter(
            clinic=clinic,
            kind=AppointmentKind.DOSING,
            starts_at__gte=start,
            starts_at__lt=start + timedelta(days=1),
            status__in=[
                AppointmentStatus.BOOKED,
                AppointmentStatus.CHECKED_IN,
                AppointmentStatus.IN_SESSION,
                AppointmentStatus.COMPLETED,
            ],
        )
        .select_related("chair", "patient", "dosing_session")
        .order_by("chair__name", "starts_at", "pk")
    )
    sessions = [a.dosing_session for a in appointments if _has_session(a)]
    if sessions:
        from django.db.models import prefetch_related_objects

        prefetch_related_objects(
            sessions,
            Prefetch(
                "vitals",
                queryset=VitalsReading.objects.only(
                    "id", "session_id", "taken_at", "phase", "alerts"
                ),
            ),
            Prefetch(
                "scales",
                queryset=SessionScale.objects.filter(purpose=ScalePurpose.DISCHARGE).select_related(
                    "response"
                ),
            ),
        )
    rows = []
    for appt in appointments:
        session = appt.dosing_session if _has_session(appt) else None
        if session is not None:
            session.clinic = clinic
            minutes = (
                int((now - session.first_dose_at).total_seconds() // 60)
                if session.first_dose_at
                else None
            )
            active = session.state not in (SessionState.DISCHARGED, SessionState.ABORTED)
            due = vitals_due(session, now, config) if active else VitalsDue([], None, False)
            readiness = (
                discharge_readiness(session, now, config=config)
                if active and session.first_dose_at
                else Readiness(False, [], None)
            )
            latest = max(session.vitals.all(), key=lambda r: (r.taken_at, r.pk), default=None)
            rows.append(
                BoardRow(
                    appointment=appt,
                    session=session,
                    chair_name=appt.chair.name if appt.chair else "",
                    state=session.state,
                    state_label=SessionState(session.state).label,
                    minutes_since_dose=minutes,
                    next_vitals_due=due.next_due,
                    vitals_overdue=due.overdue,
                    ready=readiness.ready,
                    unmet=readiness.unmet,
                    earliest_discharge=readiness.earliest,
                    alerts=list(latest.alerts) if latest is not None else [],
                )
            )
        else:
            rows.append(
                BoardRow(
                    appointment=appt,
                    session=None,
                    chair_name=appt.chair.name if appt.chair else "",
                    state=SessionState.BOOKED,
                    state_label=SessionState.BOOKED.label,
                    minutes_since_dose=None,
                    next_vitals_due=None,
                    vitals_overdue=False,
                    ready=False,
                    unmet=[],
                    earliest_discharge=None,
                    alerts=[],
                )
            )
    return rows


def _has_session(appointment: Appointment) -> bool:
    try:
        return appointment.dosing_session is not None
    except DosingSession.DoesNotExist:
        return False


def effective(session: DosingSession) -> dict[tuple[str, int, str], str]:
    """{(object_type, object_id, field): amended value} for every amended field."""
    return {key: a.new_value for key, a in amendment_map(session).items()}
