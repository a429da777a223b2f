"""Reads for courses and the calendar. The calendar issues the same queries whatever the number
of bookings: chairs, staff, and one query for the appointments in range."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.shortcuts import get_object_or_404
from django.utils import timezone

from ketaclinic.accounts.models import Clinic, Membership
from ketaclinic.accounts.roles import Role
from ketaclinic.clinical import outcomes, protocols
from ketaclinic.measures.models import ScaleResponse
from ketaclinic.treatment.models import (
    Appointment,
    AppointmentKind,
    AppointmentStatus,
    Chair,
    EligibilityAssessment,
    TreatmentCourse,
)

CLINICAL_STAFF = (Role.PRESCRIBER, Role.NURSE)


def get_assessment(clinic: Clinic, patient_id: int, assessment_id: int) -> EligibilityAssessment:
    return get_object_or_404(
        EligibilityAssessment.objects.select_related(
            "patient", "signed_by", "created_by", "depression_scale", "cssrs"
        ),
        pk=assessment_id,
        patient_id=patient_id,
        clinic=clinic,
    )


def get_course(clinic: Clinic, course_id: int) -> TreatmentCourse:
    return get_object_or_404(
        TreatmentCourse.objects.select_related(
            "clinic",
            "patient",
            "assessment__depression_scale",
            "responsible_prescriber",
        ),
        pk=course_id,
        clinic=clinic,
    )


def get_appointment(clinic: Clinic, appointment_id: int) -> Appointment:
    return get_object_or_404(
        Appointment.objects.select_related("course", "patient", "chair", "staff"),
        pk=appointment_id,
        clinic=clinic,
    )


def course_sessions(course: TreatmentCourse) -> list[Appointment]:
    return list(
        # The dosing session too (one-to-one, in the same query): each row links to its chart.
        course.appointments.select_related("chair", "staff", "dosing_session").order_by(
            "target", "number", "pk"
        )
    )


WHEN_LABELS = {
    "before_every_session": "before every session",
    "weekly": "weekly",
    "at_40_minutes": "at 40 minutes",
}


def measurement_plan_labels(course: TreatmentCourse) -> list[str]:
    return [
        f"{item.get('scale', '?')} {WHEN_LABELS.get(item.get('when', ''), item.get('when', ''))}"
        for item in course.measurement_plan
    ]


def missed_dose_text(course: TreatmentCourse) -> str:
    """The protocol's missed-dose text for the phase the course is in ('' if it has none)."""
    if course.protocol.startswith("esketamine"):
        # label weeks count from the first dose: weeks 1-4 are the induction
        today = timezone.localdate(timezone=ZoneInfo(course.clinic.time_zone))
        week = (today - course.start_date).days // 7 + 1
        phase = "maintenance" if week > 4 else "induction"
    else:
        in_maintenance = "maintenance" in (course.status, course.status_before_pause)
        phase = "maintenance" if in_maintenance else "induction"
    for candidate in (phase, "induction", "course"):
        try:
            return protocols.missed_dose_guidance(course.protocol, candidate)
        except ValueError:
            continue
    return ""


@dataclass
class CourseProgress:
    induction_total: int
    induction_done: int
    needs_decision: bool
    outcome: Any = None
    baseline: ScaleResponse | None = None
    latest: ScaleResponse | None = None
    scale_name: str = "PHQ-9"


INDUCTION_SIZE = {"iv_ketamine_standard": 6, "esketamine_trd": 8, "esketamine_mdsi": 8}


def course_progress(course: TreatmentCourse, sessions: list[Appointment]) -> CourseProgress:
    """Induction progress and, once it is over, response/remission on the course's scale."""
    dosing = [s for s in sessions if s.kind == AppointmentKind.DOSING]
    size = INDUCTION_SIZE.get(course.protocol, len(dosing))
    induction = [s for s in dosing if s.number is not None and s.number <= size]
    done = sum(1 for s in induction if s.status == AppointmentStatus.COMPLETED)
    last_induction_day = max((s.target for s in induction), default=course.start_date)
    # The course's depression scale: the one its baseline was taken on (PHQ-9 or QIDS-SR16).
    baseline_scale = course.assessment.depression_scale
    code = baseline_scale.instrument_code if baseline_scale is not None else "phq9"
    responses = list(
        ScaleResponse.objects.filter(
            patient_id=course.patient_id, instrument_code=code, total__isnull=False
        ).order_by("administered_at")
    )
    start = datetime.combine(course.start_date, time.min, tzinfo=ZoneInfo(course.clinic.time_zone))
    before = [r for r in responses if r.administered_at <= start + timedelta(days=1)]
    baseline = baseline_scale or (before[-1] if before else (responses[0] if responses else None))
    latest = responses[-1] if responses else None
    outcome = None
    if baseline and latest and latest.pk != baseline.pk:
        outcome = outcomes.classify(code, float(baseline.total), float(latest.total))  # type: ignore[arg-type]
    today = timezone.localdate(timezone=ZoneInfo(course.clinic.time_zone))
    over = done >= size or today > last_induction_day
    return CourseProgress(
        size,
        done,
        needs_decision=course.status == "active" and over and course.protocol in INDUCTION_SIZE,
        outcome=outcome,
        baseline=baseline,
        latest=latest,
        scale_name={"phq9": "PHQ-9", "qids_sr16": "QIDS-SR16"}.get(code, code),
    )


@dataclass
class CalendarColumn:
    key: str
    label: str
    by_day: dict[date, list[Appointment]] = field(default_factory=lambda: defaultdict(list))
    cells: list[list[Appointment]] = field(default_factory=list)  # one per calendar day


@dataclass
class Calendar:
    days: list[date]
    columns: list[CalendarColumn]
    by: str
    unassigned: list[Appointment]


def calendar(clinic: Clinic, *, start: date, days: int, by: str) -> Calendar:
    tz = ZoneInfo(clinic.time_zone)
    first = datetime.combine(start, time.min, tzinfo=tz)
    last = first + timedelta(days=days)
    appointments = list(
        Appointment.objects.filter(clinic=clinic, starts_at__gte=first, starts_at__lt=last)
        .exclude(status=AppointmentStatus.CANCELLED)
        .select_related("patient", "chair", "staff", "course")
        .order_by("starts_at")
    )

    def chair_label(c: Chair) -> str:
        seats = f" ({c.capacity} seats)" if c.capacity > 1 else ""
        return c.name + (f" · {c.room}" if c.room else "") + seats

    key: Callable[[Appointment], str | None]
    if by == "staff":
        members = (
            Membership.objects.filter(clinic=clinic, is_active=True, role__in=CLINICAL_STAFF)
            .select_related("user")
            .order_by("user__last_name", "user__first_name")
        )
        columns = {
            str(m.user_id): CalendarColumn(str(m.user_id), m.user.display_name) for m in members
        }

        def key(a: Appointment) -> str | None:
            return str(a.staff_id) if a.staff_id else None

    elif by == "room":
        # A room groups its chairs; a chair without a room is its own room.
        chairs = Chair.objects.filter(clinic=clinic, is_active=True).order_by("room", "name")
        columns = {}
        for c in chairs:
            room = c.room or c.name
            columns.setdefault(room, CalendarColumn(room, room))

        def key(a: Appointment) -> str | None:
            return (a.chair.room or a.chair.name) if a.chair else None

    else:
        chairs = Chair.objects.filter(clinic=clinic, is_active=True).order_by("name")
        columns = {str(c.pk): CalendarColumn(str(c.pk), chair_label(c)) for c in chairs}

        def key(a: Appointment) -> str | None:
            return str(a.chair_id) if a.chair_id else None

    unassigned = []
    for appointment in appointments:
        k = key(appointment)
        column = columns.get(k) if k is not None else None
        day = appointment.starts_at.astimezone(tz).date()  # type: ignore[union-attr]
        if column is None:
            unassigned.append(appointment)
        else:
            column.by_day[day].append(appointment)
    day_list = [start + timedelta(days=i) for i in range(days)]
    for column in columns.values():
        column.cells = [column.by_day.get(day, []) for day in day_list]
    return Calendar(day_list, list(columns.values()), by, unassigned)
