"""Reads for courses and the calendar. The calendar issues the same queries whatever the number
of bookings: chairs, staff, and one query for the appointments in range."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.shortcuts import get_object_or_404
from django.utils import timezone

from ketaclinic.accounts.models import Clinic, Membership
from ketaclinic.accounts.roles import Role
from ketaclinic.clinical import outcomes
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
        TreatmentCourse.objects.select_related("patient", "assessment", "responsible_prescriber"),
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
        course.appointments.select_related("chair", "staff").order_by("target", "number", "pk")
    )


@dataclass
class CourseProgress:
    induction_total: int
    induction_done: int
    needs_decision: bool
    outcome: Any = None
    baseline: ScaleResponse | None = None
    latest: ScaleResponse | None = None


INDUCTION_SIZE = {"iv_ketamine_standard": 6, "esketamine_trd": 8, "esketamine_mdsi": 8}


def course_progress(course: TreatmentCourse, sessions: list[Appointment]) -> CourseProgress:
    """Induction progress and, once it is over, response/remission on the course's scale."""
    dosing = [s for s in sessions if s.kind == AppointmentKind.DOSING]
    size = INDUCTION_SIZE.get(course.protocol, len(dosing))
    induction = [s for s in dosing if s.number is not None and s.number <= size]
    done = sum(1 for s in induction if s.status == AppointmentStatus.COMPLETED)
    last_induction_day = max((s.target for s in induction), default=course.start_date)
    code = "phq9"
    responses = list(
        ScaleResponse.objects.filter(
            patient_id=course.patient_id, instrument_code=code, total__isnull=False
        ).order_by("administered_at")
    )
    start = datetime.combine(course.start_date, time.min, tzinfo=ZoneInfo(course.clinic.time_zone))
    before = [r for r in responses if r.administered_at <= start + timedelta(days=1)]
    baseline = (
        course.assessment.depression_scale
        if course.assessment.depression_scale_id
        and course.assessment.depression_scale.instrument_code == code
        else (before[-1] if before else (responses[0] if responses else None))
    )
    latest = responses[-1] if responses else None
    outcome = None
    if baseline and latest and latest.pk != baseline.pk:
        outcome = outcomes.classify(code, float(baseline.total), float(latest.total))  # type: ignore[arg-type]
    over = done >= size or timezone.localdate() > last_induction_day
    return CourseProgress(
        size,
        done,
        needs_decision=course.status == "active" and over and course.protocol in INDUCTION_SIZE,
        outcome=outcome,
        baseline=baseline,
        latest=latest,
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
    if by == "staff":
        members = (
            Membership.objects.filter(clinic=clinic, is_active=True, role__in=CLINICAL_STAFF)
            .select_related("user")
            .order_by("user__last_name")
        )
        columns = {
            str(m.user_id): CalendarColumn(str(m.user_id), m.user.display_name) for m in members
        }
        key = "staff_id"
    else:
        chairs = Chair.objects.filter(clinic=clinic, is_active=True).order_by("name")
        columns = {
            str(c.pk): CalendarColumn(str(c.pk), c.name + (f" · {c.room}" if c.room else ""))
            for c in chairs
        }
        key = "chair_id"
    unassigned = []
    for appointment in appointments:
        column = columns.get(str(getattr(appointment, key)))
        day = appointment.starts_at.astimezone(tz).date()  # type: ignore[union-attr]
        if column is None:
            unassigned.append(appointment)
        else:
            column.by_day[day].append(appointment)
    day_list = [start + timedelta(days=i) for i in range(days)]
    for column in columns.values():
        column.cells = [column.by_day.get(day, []) for day in day_list]
    return Calendar(day_list, list(columns.values()), by, unassigned)
