"""Writes for eligibility, courses, appointments, bookings and reminders."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from ketaclinic import notifications
from ketaclinic.accounts.models import Membership, User
from ketaclinic.accounts.roles import Perm, Role
from ketaclinic.accounts.services import actor_may
from ketaclinic.audit import services as audit
from ketaclinic.audit.context import Actor
from ketaclinic.audit.models import AuditAction
from ketaclinic.clinical import dosing, eligibility, protocols
from ketaclinic.measures import services as measure_services
from ketaclinic.measures.models import ScaleResponse
from ketaclinic.patients.models import BodyMeasurement, Patient
from ketaclinic.treatment.models import (
    Appointment,
    AppointmentKind,
    AppointmentStatus,
    AssessmentDecision,
    Chair,
    ChairSlot,
    CourseStatus,
    Drug,
    EligibilityAssessment,
    OutboundMessage,
    Reminder,
    Route,
    TreatmentCourse,
    WeightBasis,
)

SLOT = timedelta(minutes=15)
DEPRESSION_BASELINE_CODES = ("phq9", "qids_sr16")
# Default chair time per session: dose plus observation (IV 40 min + recovery; esketamine
# 2 h monitoring after the first device, clinical.md §1.5c, §2.5).
DEFAULT_DURATION = {Route.IV: 120, Route.NASAL: 150, Route.IM: 120, Route.ORAL: 120}
BOOKABLE = (AppointmentStatus.PLANNED, AppointmentStatus.BOOKED)


def _errors(**fields: str) -> ValidationError:
    return ValidationError({k: v for k, v in fields.items()})


# --- eligibility --------------------------------------------------------------------------------


def _findings(
    patient: Patient, data: dict[str, Any], vitals: dict[str, Any], today: date
) -> eligibility.Findings:
    known = {f.name for f in dataclasses.fields(eligibility.Findings)}
    values = {k: v for k, v in data.items() if k in known}
    values.setdefault("age_years", patient.age_on(today))
    values.setdefault(
        "sex", patient.sex_at_birth if patient.sex_at_birth in ("female", "male") else None
    )
    values["systolic_bp"] = vitals.get("systolic_bp")
    values["diastolic_bp"] = vitals.get("diastolic_bp")
    values["heart_rate"] = vitals.get("heart_rate")
    return eligibility.Findings(**values)


@transaction.atomic
def record_assessment(
    actor: Actor,
    patient: Patient,
    *,
    drug: str,
    findings: dict[str, Any],
    vitals: dict[str, Any],
    depression_scale: ScaleResponse | None,
    cssrs: ScaleResponse | None,
) -> EligibilityAssessment:
    """Store an assessment with its computed decision (not yet signed)."""
    if patient.clinic_id != actor.clinic.pk:
        raise PermissionError("Patient belongs to another clinic.")
    errors = {}
    if (
        depression_scale is None
        or depression_scale.instrument_code not in DEPRESSION_BASELINE_CODES
        or depression_scale.patient_id != patient.pk
    ):
        errors["depression_scale"] = "Record a baseline PHQ-9 or QIDS-SR16 for this patient."
    if cssrs is None or cssrs.instrument_code != "cssrs_screen" or cssrs.patient_id != patient.pk:
        errors["cssrs"] = "Record the C-SSRS screener for this patient."
    if errors:
        raise ValidationError(errors)
    try:
        result = eligibility.assess(
            drug, _findings(patient, findings, vitals, actor.clinic.today())
        )
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
    assessment = EligibilityAssessment.objects.create(
        clinic=actor.clinic,
        patient=patient,
        drug=drug,
        findings={k: v for k, v in findings.items()},
        systolic_bp=vitals.get("systolic_bp"),
        diastolic_bp=vitals.get("diastolic_bp"),
        heart_rate=vitals.get("heart_rate"),
        spo2=vitals.get("spo2"),
        depression_scale=depression_scale,
        cssrs=cssrs,
        decision=str(result.decision),
        findings_fired=[
            {"rule_id": f.rule_id, "kind": str(f.kind), "message": f.message, "source": f.source}
            for f in result.findings_fired
        ],
        created_by=actor.user,
    )
    audit.record(
        actor,
        AuditAction.CREATE,
        "eligibility_assessment",
        assessment.pk,
        patient_id=patient.pk,
        detail={"decision": assessment.decision},
    )
    return assessment


@transaction.atomic
def sign_assessment(actor: Actor, assessment: EligibilityAssessment) -> EligibilityAssessment:
    locked = EligibilityAssessment.objects.select_for_update().get(
        pk=assessment.pk, clinic=actor.clinic
    )
    if locked.signed_at is not None:
        raise ValidationError(
            "This assessment is already signed; signed records are not "
            "changed. Record a new assessment instead."
        )
    if not actor_may(actor, Perm.ASSESSMENT_SIGN):
        raise PermissionError("Only a prescriber signs an eligibility assessment.")
    locked.signed_by = actor.user
    locked.signed_at = timezone.now()
    locked.save(update_fields=["signed_by", "signed_at"])
    assessment.refresh_from_db()
    audit.record(
        actor,
        AuditAction.SIGN,
        "eligibility_assessment",
        locked.pk,
        patient_id=locked.patient_id,
        detail={"decision": locked.decision},
    )
    return locked


# --- courses ------------------------------------------------------------------------------------


def route_for(drug: str, protocol: str) -> str:
    if drug == Drug.ESKETAMINE:
        return Route.NASAL
    return {"im_ketamine": Route.IM, "oral_ketamine": Route.ORAL}.get(protocol, Route.IV)


def latest_weight(patient: Patient) -> tuple[Decimal | None, Decimal | None]:
    latest = (
        BodyMeasurement.objects.filter(patient=patient)
        .order_by("-measured_at", "-id")
        .values_list("weight_kg", flat=True)
        .first()
    )
    height = (
        BodyMeasurement.objects.filter(patient=patient, height_cm__isnull=False)
        .order_by("-measured_at", "-id")
        .values_list("height_cm", flat=True)
        .first()
    )
    return latest, height


@transaction.atomic
def start_course(
    actor: Actor,
    patient: Patient,
    assessment: EligibilityAssessment,
    *,
    protocol: str,
    start_date: date,
    indication: str,
    responsible_prescriber: User,
    maintenance_sessions: int = 0,
    protocol_options: dict[str, Any] | None = None,
    mg_per_kg: Decimal | None = None,
    dose_mg: Decimal | None = None,
    weight_basis: str = WeightBasis.ACTUAL,
    infusion_minutes: int | None = 40,
    dose_reason: str = "",
    caution_override_reason: str = "",
    measurement_plan: list[dict[str, str]] | None = None,
    insurance: dict[str, Any] | None = None,
) -> TreatmentCourse:
    """Start a course on a signed, recent, eligible assessment and lay out its sessions."""
    clinic = actor.clinic
    # Judge the stored record, not whatever copy the caller holds.
    assessment = EligibilityAssessment.objects.get(pk=assessment.pk)
    if patient.clinic_id != clinic.pk or assessment.patient_id != patient.pk:
        raise PermissionError("Patient or assessment belongs elsewhere.")
    today = clinic.today()
    problems: dict[str, str] = {}
    if not assessment.is_signed:
        problems["assessment"] = "The eligibility assessment must be signed by a prescriber."
    elif (
        today - timezone.localtime(assessment.signed_at, ZoneInfo(clinic.time_zone)).date()
    ).days > clinic.assessment_valid_days:
        problems["assessment"] = (
            f"The assessment is older than {clinic.assessment_valid_days} "
            "days; record and sign a new one."
        )
    if assessment.decision == AssessmentDecision.NOT_ELIGIBLE:
        fired = [f["message"] for f in assessment.findings_fired if f["kind"] == "contraindication"]
        problems["assessment"] = (
            "Not eligible: a contraindication cannot be overridden (" + "; ".join(fired) + ")."
        )
    elif (
        assessment.decision == AssessmentDecision.ELIGIBLE_WITH_CAUTIONS
        and not caution_override_reason.strip()
    ):
        problems["caution_override_reason"] = (
            "The assessment has cautions: record why the course goes ahead despite them."
        )
    drug = assessment.drug
    if (
        protocol.startswith("esketamine")
        and drug != Drug.ESKETAMINE
        or drug == Drug.ESKETAMINE
        and not protocol.startswith("esketamine")
    ):
        problems["protocol"] = "The protocol does not match the assessed drug."
    if drug == Drug.ESKETAMINE and not (patient.rems_patient_id and patient.rems_enrolled_on):
        problems["rems"] = (
            "Esketamine needs the patient's Spravato REMS enrolment (id and "
            "date) on record before the first session."
        )
    if not Membership.objects.filter(
        user=responsible_prescriber, clinic=clinic, role=Role.PRESCRIBER, is_active=True
    ).exists():
        problems["responsible_prescriber"] = "Choose a prescriber of this clinic."
    route = route_for(drug, protocol)
    weight_used = None
    if route == Route.IV and not problems:
        if mg_per_kg is None:
            problems["mg_per_kg"] = "Enter the dose in mg/kg."
        else:
            check = dosing.check_iv_dose(mg_per_kg, clinic.max_iv_mg_per_kg, dose_reason or None)
            if check.refused or check.needs_reason:
                problems["mg_per_kg"] = check.message
        actual, height = latest_weight(patient)
        if actual is None:
            problems["weight_basis"] = "Record the patient's weight before planning an IV dose."
        else:
            try:
                weight_used = dosing.dosing_weight(
                    dosing.WeightBasis(weight_basis), actual, height, patient.sex_at_birth
                )
            except ValueError as exc:
                problems["weight_basis"] = str(exc)
    if problems:
        raise ValidationError(problems)
    options = dict(protocol_options or {})
    if route == Route.IV and protocol == "iv_ketamine_standard":
        options.setdefault("mg_per_kg", mg_per_kg)
    if dose_mg is not None and protocol.startswith("esketamine"):
        options.setdefault("dose_mg", dose_mg)
    try:
        planned = protocols.plan(protocol, start_date, maintenance_sessions, **options)
    except ValueError as exc:
        raise ValidationError({"protocol": str(exc)}) from None
    insurance = insurance or {}
    # A form may send both dose fields; keep only the one this route's plan is written in, so
    # an esketamine course never shows an mg/kg dose (or an IV course a fixed one).
    if route == Route.NASAL:
        mg_per_kg = None
    elif route == Route.IV:
        dose_mg = None
    course = TreatmentCourse.objects.create(
        clinic=clinic,
        patient=patient,
        assessment=assessment,
        indication=indication,
        drug=drug,
        route=route,
        protocol=protocol,
        protocol_options={k: str(v) for k, v in options.items()},
        responsible_prescriber=responsible_prescriber,
        start_date=start_date,
        mg_per_kg=mg_per_kg,
        dose_mg=dose_mg,
        weight_basis=weight_basis if route == Route.IV else "",
        dosing_weight_kg=weight_used,
        infusion_minutes=infusion_minutes if route == Route.IV else None,
        dose_reason=dose_reason,
        measurement_plan=measurement_plan or default_measurement_plan(drug),
        caution_override_reason=caution_override_reason,
        created_by=actor.user,
        **{
            k: v
            for k, v in insurance.items()
            if k
            in {
                "payer",
                "member_id",
                "prior_authorization_number",
                "authorized_sessions",
                "authorization_expires",
            }
        },
    )
    _lay_out(course, planned)
    if patient.responsible_prescriber_id is None:
        patient.responsible_prescriber = responsible_prescriber
        patient.save(update_fields=["responsible_prescriber"])
    audit.record(
        actor,
        AuditAction.CREATE,
        "treatment_course",
        course.pk,
        patient_id=patient.pk,
        detail={"protocol": protocol, "sessions": len(planned)},
    )
    if caution_override_reason.strip():
        audit.record(
            actor,
            AuditAction.OVERRIDE,
            "eligibility_assessment",
            assessment.pk,
            patient_id=patient.pk,
            reason=caution_override_reason.strip(),
            detail={"cautions": [f["rule_id"] for f in assessment.findings_fired]},
        )
    return course


def default_measurement_plan(drug: str) -> list[dict[str, str]]:
    plan = [
        {"scale": "phq9", "when": "before_every_session"},
        {"scale": "cssrs_screen", "when": "before_every_session"},
        {"scale": "gad7", "when": "weekly"},
    ]
    plan.append({"scale": "cadss6", "when": "at_40_minutes"})
    return plan


def _lay_out(course: TreatmentCourse, planned: list[protocols.PlannedSession]) -> None:
    duration = DEFAULT_DURATION.get(Route(course.route), 120)
    Appointment.objects.bulk_create(
        Appointment(
            clinic=course.clinic,
            course=course,
            patient=course.patient,
            number=p.number,
            phase=p.phase,
            earliest=p.earliest,
            target=p.target,
            latest=p.latest,
            dose_mg=p.dose_mg,
            mg_per_kg=p.mg_per_kg,
            duration_minutes=duration,
        )
        for p in planned
    )


# --- booking and moving -------------------------------------------------------------------------


def _slots(start: datetime, minutes: int) -> list[datetime]:
    count = -(-minutes // 15)
    first = start.replace(minute=start.minute - start.minute % 15, second=0, microsecond=0)
    return [first + SLOT * i for i in range(count)]


def _reserve(appointment: Appointment, chair: Chair, start: datetime) -> None:
    ChairSlot.objects.filter(appointment=appointment).delete()
    for slot in _slots(start, appointment.duration_minutes):
        for seat in range(chair.capacity):
            try:
                with transaction.atomic():
                    ChairSlot.objects.create(
                        chair=chair, seat=seat, starts_at=slot, appointment=appointment
                    )
                break
            except IntegrityError:
                continue
        else:
            local = timezone.localtime(slot)
            raise ValidationError(
                {
                    "starts_at": (
                        f"{chair.name} is already booked at {local:%Y-%m-%d %H:%M}. Choose another "
                        "time or chair."
                    )
                }
            )


def in_window(appointment: Appointment, day: date) -> bool:
    return appointment.earliest <= day <= appointment.latest


def insurance_warnings(appointment: Appointment, start: datetime) -> list[str]:
    course = appointment.course
    warnings = []
    if course.authorization_expires and start.date() > course.authorization_expires:
        warnings.append(
            f"This visit is after the prior authorisation expires ({course.authorization_expires})."
        )
    if course.authorized_sessions and appointment.kind == AppointmentKind.DOSING:
        booked = (
            course.appointments.filter(kind=AppointmentKind.DOSING, starts_at__isnull=False)
            .exclude(status__in=[AppointmentStatus.CANCELLED, AppointmentStatus.NO_SHOW])
            .exclude(pk=appointment.pk)
            .count()
        )
        if booked + 1 > course.authorized_sessions:
            warnings.append(
                f"This is session {booked + 1}; the payer authorised {course.authorized_sessions}."
            )
    return warnings


@transaction.atomic
def book(
    actor: Actor,
    appointment: Appointment,
    *,
    starts_at: datetime,
    chair: Chair,
    staff: User | None = None,
    reason: str = "",
    expected_version: int | None = None,
) -> list[str]:
    """Book or move an appointment to a time and chair. Inside its window it just moves;
    outside it needs a reason. Returns warnings (insurance) that do not block."""
    locked = (
        Appointment.objects.select_for_update()
        .select_related("course")
        .get(pk=appointment.pk, clinic=actor.clinic)
    )
    if expected_version is not None and locked.version != expected_version:
        raise ValidationError(
            "Someone else changed this appointment while you were editing. "
            "Reload it to see their change."
        )
    if locked.status not in BOOKABLE:
        raise ValidationError(
            f"A {locked.get_status_display().lower()} appointment cannot be moved."
        )
    if locked.course.status in (CourseStatus.PAUSED, CourseStatus.STOPPED):
        raise ValidationError(
            f"The course is {locked.course.get_status_display().lower()}: resume it before "
            "booking its sessions."
        )
    if chair.clinic_id != actor.clinic.pk or not chair.is_active:
        raise ValidationError({"chair": "Choose an active chair of this clinic."})
    tz = ZoneInfo(actor.clinic.time_zone)
    day = starts_at.astimezone(tz).date()
    outside = locked.kind == AppointmentKind.DOSING and not in_window(locked, day)
    if outside and not reason.strip():
        raise ValidationError(
            {
                "reason": (
                    f"{day} is outside this session's window ({locked.earliest} to "
                    f"{locked.latest}). Give the reason for moving it outside the protocol's "
                    "window."
                )
            }
        )
    _reserve(locked, chair, starts_at)
    locked.starts_at = starts_at
    locked.chair = chair
    locked.staff = staff
    locked.status = AppointmentStatus.BOOKED
    locked.move_reason = reason.strip() if outside else ""
    locked.version += 1
    locked.save()
    _schedule_reminder(locked)
    audit.record(
        actor,
        AuditAction.UPDATE,
        "appointment",
        locked.pk,
        patient_id=locked.patient_id,
        reason=reason.strip() if outside else "",
        detail={"starts_at": starts_at.isoformat(), "chair": chair.pk, "outside_window": outside},
    )
    appointment.refresh_from_db()
    return insurance_warnings(locked, starts_at)


@transaction.atomic
def cancel(
    actor: Actor,
    appointment: Appointment,
    *,
    reason: str,
    status: str = AppointmentStatus.CANCELLED,
) -> None:
    if status not in (AppointmentStatus.CANCELLED, AppointmentStatus.NO_SHOW):
        raise ValidationError("Cancel or mark as no-show.")
    if not reason.strip() and status == AppointmentStatus.CANCELLED:
        raise ValidationError({"reason": "Say why the visit is cancelled."})
    locked = Appointment.objects.select_for_update().get(pk=appointment.pk, clinic=actor.clinic)
    ChairSlot.objects.filter(appointment=locked).delete()
    Reminder.objects.filter(appointment=locked, status="pending").update(status="skipped")
    locked.status = status
    locked.move_reason = reason.strip()
    locked.version += 1
    locked.save()
    audit.record(
        actor,
        AuditAction.UPDATE,
        "appointment",
        locked.pk,
        patient_id=locked.patient_id,
        reason=reason.strip(),
        detail={"status": status},
    )


@transaction.atomic
def add_integration_session(actor: Actor, course: TreatmentCourse, day: date) -> Appointment:
    appointment = Appointment.objects.create(
        clinic=actor.clinic,
        course=course,
        patient=course.patient,
        kind=AppointmentKind.INTEGRATION,
        phase="integration",
        earliest=day,
        target=day,
        latest=day,
        duration_minutes=60,
    )
    audit.record(
        actor,
        AuditAction.CREATE,
        "appointment",
        appointment.pk,
        patient_id=course.patient_id,
        detail={"kind": "integration"},
    )
    return appointment


# --- after the induction ------------------------------------------------------------------------


@transaction.atomic
def decide_after_induction(
    actor: Actor,
    course: TreatmentCourse,
    *,
    decision: str,
    maintenance_sessions: int = 0,
    note: str = "",
) -> TreatmentCourse:
    """The prescriber's choice at the end of the induction: maintenance, extend, or stop."""
    locked = TreatmentCourse.objects.select_for_update().get(pk=course.pk, clinic=actor.clinic)
    if locked.status in (CourseStatus.PAUSED, CourseStatus.STOPPED):
        raise ValidationError(
            f"The course is {locked.get_status_display().lower()}; resume it before deciding."
        )
    if decision not in ("maintenance", "extend", "stop"):
        raise ValidationError({"decision": "Choose maintenance, extend or stop."})
    if decision in ("maintenance", "extend") and maintenance_sessions < 1:
        raise ValidationError({"maintenance_sessions": "Add at least one session."})
    if decision == "stop":
        locked.status = CourseStatus.STOPPED
        locked.appointments.filter(status=AppointmentStatus.PLANNED).update(
            status=AppointmentStatus.CANCELLED, move_reason="course stopped"
        )
    else:
        typed = locked.typed_protocol_options()
        existing = locked.appointments.filter(kind=AppointmentKind.DOSING).count()
        planned = protocols.plan(
            locked.protocol,
            locked.start_date,
            existing - _fixed_part(locked.protocol) + maintenance_sessions,
            **typed,
        )
        _lay_out(locked, [p for p in planned if p.number > existing])
        locked.status = CourseStatus.MAINTENANCE
    locked.save(update_fields=["status"])
    audit.record(
        actor,
        AuditAction.UPDATE,
        "treatment_course",
        locked.pk,
        patient_id=locked.patient_id,
        reason=note,
        detail={"decision": decision, "sessions_added": maintenance_sessions},
    )
    return locked


# --- pausing and resuming -----------------------------------------------------------------------


def resume_guidance(
    course: TreatmentCourse, resume_on: date, *, depression_worse: bool
) -> protocols.ResumeGuidance | str:
    """The missed-dose guidance for resuming `course` on `resume_on`: the label's rule for
    esketamine (clinical.protocols.resume_guidance), the protocol's text otherwise."""
    if course.protocol.startswith("esketamine"):
        every = int(course.protocol_options.get("maintenance_every_weeks", 2))
        return protocols.resume_guidance(
            course.protocol,
            course.start_date,
            max(resume_on, course.start_date),
            depression_worse=depression_worse,
            maintenance_every_weeks=every if every in (1, 2) else 2,
        )
    phase = "maintenance" if course.status == CourseStatus.MAINTENANCE else "induction"
    try:
        return protocols.missed_dose_guidance(course.protocol, phase)
    except ValueError:
        return protocols.missed_dose_guidance(course.protocol, "course")


@transaction.atomic
def pause_course(actor: Actor, course: TreatmentCourse, *, reason: str) -> int:
    """Pause a course: its future bookings are released (chair freed, reminders skipped) and
    nothing more can be booked until it resumes. Returns how many bookings were released."""
    if not reason.strip():
        raise ValidationError({"reason": "Say why the course is paused."})
    locked = TreatmentCourse.objects.select_for_update().get(pk=course.pk, clinic=actor.clinic)
    if locked.status in (CourseStatus.PAUSED, CourseStatus.STOPPED):
        raise ValidationError(f"The course is already {locked.get_status_display().lower()}.")
    released = list(
        locked.appointments.filter(status=AppointmentStatus.BOOKED, starts_at__gte=timezone.now())
    )
    ids = [a.pk for a in released]
    ChairSlot.objects.filter(appointment_id__in=ids).delete()
    Reminder.objects.filter(appointment_id__in=ids, status="pending").update(status="skipped")
    Appointment.objects.filter(pk__in=ids).update(
        status=AppointmentStatus.PLANNED,
        starts_at=None,
        chair=None,
        staff=None,
        version=models.F("version") + 1,
    )
    locked.status_before_pause = locked.status
    locked.status = CourseStatus.PAUSED
    locked.paused_on = actor.clinic.today()
    locked.save(update_fields=["status", "status_before_pause", "paused_on"])
    audit.record(
        actor,
        AuditAction.UPDATE,
        "treatment_course",
        locked.pk,
        patient_id=locked.patient_id,
        reason=reason.strip(),
        detail={"status": "paused", "bookings_released": len(ids)},
    )
    course.refresh_from_db()
    return len(ids)


@transaction.atomic
def resume_course(
    actor: Actor,
    course: TreatmentCourse,
    *,
    resume_on: date,
    depression_worse: bool,
    note: str = "",
) -> protocols.ResumeGuidance | str:
    """Resume a paused course on `resume_on` and return the missed-dose guidance shown to the
    prescriber. Esketamine follows the label (clinical.md §2.2): sessions whose window closed
    during the pause are missed, not made up, so they are marked cancelled; the schedule
    carries on from the label week the patient is in."""
    locked = TreatmentCourse.objects.select_for_update().get(pk=course.pk, clinic=actor.clinic)
    if locked.status != CourseStatus.PAUSED:
        raise ValidationError("Only a paused course can be resumed.")
    if locked.paused_on and resume_on < locked.paused_on:
        raise ValidationError(
            {"resume_on": f"Resume on or after the day the course was paused ({locked.paused_on})."}
        )
    try:
        guidance = resume_guidance(locked, resume_on, depression_worse=depression_worse)
    except ValueError as exc:
        raise ValidationError({"resume_on": str(exc)}) from None
    missed = 0
    if locked.protocol.startswith("esketamine"):
        missed = locked.appointments.filter(
            kind=AppointmentKind.DOSING, status=AppointmentStatus.PLANNED, latest__lt=resume_on
        ).update(status=AppointmentStatus.CANCELLED, move_reason="missed while paused")
    locked.status = locked.status_before_pause or CourseStatus.ACTIVE
    locked.status_before_pause = ""
    locked.paused_on = None
    locked.save(update_fields=["status", "status_before_pause", "paused_on"])
    audit.record(
        actor,
        AuditAction.UPDATE,
        "treatment_course",
        locked.pk,
        patient_id=locked.patient_id,
        reason=note.strip(),
        detail={
            "status": locked.status,
            "resume_on": resume_on.isoformat(),
            "depression_worse": depression_worse,
            "sessions_missed": missed,
            "guidance": guidance.action
            if isinstance(guidance, protocols.ResumeGuidance)
            else "text",
        },
    )
    course.refresh_from_db()
    return guidance


@transaction.atomic
def change_weight_basis(
    actor: Actor, course: TreatmentCourse, *, weight_basis: str, reason: str
) -> TreatmentCourse:
    """Change an IV course's weight basis (actual, ideal, adjusted): an explicit amendment with
    the prescriber's reason, recorded with the old and new basis and dosing weight. Nothing
    else ever changes the basis (clinical.md §1.3, §9.3: store the basis)."""
    locked = TreatmentCourse.objects.select_for_update().get(pk=course.pk, clinic=actor.clinic)
    if locked.route != Route.IV or locked.mg_per_kg is None:
        raise ValidationError({"weight_basis": "Only a weight-based IV dose plan has a basis."})
    if weight_basis not in WeightBasis.values:
        raise ValidationError({"weight_basis": "Choose actual, ideal or adjusted body weight."})
    if not reason.strip():
        raise ValidationError({"reason": "Say why the weight basis changes."})
    if not actor_may(actor, Perm.COURSE_MANAGE):
        raise PermissionError("Only a prescriber changes the dose plan.")
    actual, height = latest_weight(locked.patient)
    if actual is None:
        raise ValidationError({"weight_basis": "Record the patient's weight first."})
    try:
        weight = dosing.dosing_weight(
            dosing.WeightBasis(weight_basis), actual, height, locked.patient.sex_at_birth
        )
    except ValueError as exc:
        raise ValidationError({"weight_basis": str(exc)}) from None
    before = {"weight_basis": locked.weight_basis, "dosing_weight_kg": str(locked.dosing_weight_kg)}
    locked.weight_basis = weight_basis
    locked.dosing_weight_kg = weight
    locked.save(update_fields=["weight_basis", "dosing_weight_kg"])
    audit.record(
        actor,
        AuditAction.UPDATE,
        "treatment_course",
        locked.pk,
        patient_id=locked.patient_id,
        reason=reason.strip(),
        detail={
            "amendment": "weight_basis",
            "before": before,
            "after": {"weight_basis": weight_basis, "dosing_weight_kg": str(weight)},
        },
    )
    course.refresh_from_db()
    return locked


# --- chairs -------------------------------------------------------------------------------------


@transaction.atomic
def create_chair(actor: Actor, *, name: str, room: str = "", capacity: int = 1) -> Chair:
    name = name.strip()
    if not name:
        raise ValidationError({"name": "Give the chair a name."})
    if capacity < 1:
        raise ValidationError({"capacity": "A chair seats at least one patient."})
    if Chair.objects.filter(clinic=actor.clinic, name=name).exists():
        raise ValidationError({"name": "A chair with this name exists."})
    try:
        with transaction.atomic():
            chair = Chair.objects.create(
                clinic=actor.clinic, name=name, room=room.strip(), capacity=capacity
            )
    except IntegrityError:  # the same name, added at the same moment by someone else
        raise ValidationError({"name": "A chair with this name exists."}) from None
    audit.record(
        actor,
        AuditAction.CREATE,
        "chair",
        chair.pk,
        detail={"name": chair.name, "room": chair.room, "capacity": chair.capacity},
    )
    return chair


def _fixed_part(protocol: str) -> int:
    return {"iv_ketamine_standard": 6, "esketamine_trd": 12, "esketamine_mdsi": 8}.get(protocol, 0)


# --- reminders ----------------------------------------------------------------------------------


def _schedule_reminder(appointment: Appointment) -> None:
    Reminder.objects.filter(appointment=appointment, status="pending").delete()
    if appointment.starts_at is None:
        return
    send_at = appointment.starts_at - timedelta(hours=appointment.clinic.reminder_hours_before)
    patient = appointment.patient
    channel = "sms" if patient.phone and not patient.email else "email"
    scales = [
        item["scale"]
        for item in appointment.course.measurement_plan
        if item.get("when") == "before_every_session"
        and item["scale"] in measure_services.SELF_REPORT_CODES
    ]
    Reminder.objects.create(
        clinic=appointment.clinic,
        appointment=appointment,
        send_at=max(send_at, timezone.now()),
        channel=channel,
        scales=scales if appointment.kind == AppointmentKind.DOSING else [],
    )


def send_due_reminders(now: datetime | None = None, limit: int = 200) -> int:
    """Send every due reminder once. Each is claimed, recorded in the outbox and marked sent in
    one transaction, so a worker restart neither loses nor repeats one."""
    now = now or timezone.now()
    sent = 0
    due_ids = list(
        Reminder.objects.filter(status="pending", send_at__lte=now)
        .order_by("send_at")
        .values_list("pk", flat=True)[:limit]
    )
    for reminder_id in due_ids:
        with transaction.atomic():
            reminder = (
                # of=("self",): lock the reminder row only. PostgreSQL refuses FOR UPDATE on
                # the nullable side of the outer join to the chair.
                Reminder.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("appointment__patient", "appointment__chair", "clinic")
                .filter(pk=reminder_id, status="pending")
                .first()
            )
            if reminder is None:
                continue
            appointment = reminder.appointment
            patient = appointment.patient
            address = patient.email if reminder.channel == "email" else patient.phone
            if appointment.status != AppointmentStatus.BOOKED or not address:
                reminder.status = "skipped"
                reminder.save(update_fields=["status"])
                continue
            when = timezone.localtime(appointment.starts_at, ZoneInfo(reminder.clinic.time_zone))
            body = (
                f"Reminder from {reminder.clinic.name}: your visit is on "
                f"{when:%A %B %d at %H:%M}. Please arrange a ride home: you must not drive "
                "until the next day after a night's sleep."
            )
            link = ""
            if reminder.scales:
                actor = Actor.system(reminder.clinic, label="worker")
                request = measure_services.create_self_report_request(
                    actor,
                    patient,
                    reminder.scales,
                    channel=reminder.channel,
                    visit_id=appointment.pk,
                    deliver=False,
                )
                link = request.link
            OutboundMessage.objects.create(
                clinic=reminder.clinic,
                reminder=reminder,
                patient=patient,
                channel=reminder.channel,
                to=notifications.mask_address(address),
                subject=f"{reminder.clinic.name}: visit reminder",
                body=body + ("\n[questionnaire link]" if link else ""),
            )
            reminder.status = "sent"
            reminder.sent_at = timezone.now()
            reminder.save(update_fields=["status", "sent_at"])
            full = body + (
                f"\nBefore your visit, please answer your questionnaires: {link}" if link else ""
            )
            transaction.on_commit(lambda r=reminder, a=address, text=full: _deliver(r, a, text))
            sent += 1
    return sent


def _deliver(reminder: Reminder, address: str, text: str) -> None:
    if reminder.channel == "email":
        notifications.send_email(address, f"{reminder.clinic.name}: visit reminder", text)
    else:
        notifications.send_sms(address, text)
