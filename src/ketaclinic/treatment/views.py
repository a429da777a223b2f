from __future__ import annotations

from datetime import date, timedelta
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from ketaclinic.accounts.access import has_perm, requires
from ketaclinic.accounts.roles import Perm
from ketaclinic.audit import services as audit
from ketaclinic.audit.context import Actor
from ketaclinic.patients import selectors as patient_selectors
from ketaclinic.treatment import selectors, services
from ketaclinic.treatment.forms import (
    AssessmentForm,
    BookingForm,
    ChairForm,
    CourseForm,
    DecisionForm,
    PauseForm,
    ResumeForm,
    WeightBasisForm,
)
from ketaclinic.treatment.models import AppointmentStatus, Chair, CourseStatus


def _add_errors(form, exc: ValidationError) -> None:  # type: ignore[no-untyped-def]
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        for message in exc.messages:
            form.add_error(None, message)


@requires(Perm.ASSESSMENT_RECORD)
@require_http_methods(["GET", "POST"])
def assessment_new(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = patient_selectors.get_patient(request.clinic, patient_id)  # type: ignore[attr-defined]
    form = AssessmentForm(request.POST or None, patient=patient)
    if request.method == "POST" and form.is_valid():
        try:
            assessment = services.record_assessment(
                Actor.from_request(request),
                patient,
                drug=form.cleaned_data["drug"],
                findings=form.findings(),
                vitals=form.vitals(),
                depression_scale=form.cleaned_data["depression_scale"],
                cssrs=form.cleaned_data["cssrs"],
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            return redirect(
                "treatment:assessment", patient_id=patient.pk, assessment_id=assessment.pk
            )
    return render(request, "treatment/assessment_form.html", {"patient": patient, "form": form})


@requires(Perm.CLINICAL_VIEW)
@require_http_methods(["GET", "POST"])
def assessment_detail(request: HttpRequest, patient_id: int, assessment_id: int) -> HttpResponse:
    assessment = selectors.get_assessment(request.clinic, patient_id, assessment_id)  # type: ignore[attr-defined]
    if request.method == "POST":
        if not has_perm(request, Perm.ASSESSMENT_SIGN):
            return HttpResponse("Only prescribers sign assessments.", status=403)
        try:
            services.sign_assessment(Actor.from_request(request), assessment)
        except (ValidationError, PermissionError) as exc:
            messages.error(request, " ".join(getattr(exc, "messages", [str(exc)])))
        else:
            messages.success(request, "Assessment signed.")
        return redirect("treatment:assessment", patient_id=patient_id, assessment_id=assessment_id)
    audit.record_read(
        Actor.from_request(request), "eligibility_assessment", assessment_id, patient_id=patient_id
    )
    return render(
        request,
        "treatment/assessment.html",
        {
            "patient": assessment.patient,
            "assessment": assessment,
            "can_sign": has_perm(request, Perm.ASSESSMENT_SIGN),
            "can_start": has_perm(request, Perm.COURSE_MANAGE),
        },
    )


@requires(Perm.COURSE_MANAGE)
@require_http_methods(["GET", "POST"])
def course_new(request: HttpRequest, patient_id: int, assessment_id: int) -> HttpResponse:
    assessment = selectors.get_assessment(request.clinic, patient_id, assessment_id)  # type: ignore[attr-defined]
    patient = assessment.patient
    form = CourseForm(
        request.POST or None,
        clinic=request.clinic,
        drug=assessment.drug,  # type: ignore[attr-defined]
        initial={
            "start_date": request.clinic.today() + timedelta(days=1),  # type: ignore[attr-defined]
            "responsible_prescriber": request.user.pk,
        },
    )
    if request.method == "POST" and form.is_valid():
        d = form.cleaned_data
        try:
            course = services.start_course(
                Actor.from_request(request),
                patient,
                assessment,
                protocol=d["protocol"],
                start_date=d["start_date"],
                indication=d["indication"],
                responsible_prescriber=d["responsible_prescriber"],
                maintenance_sessions=d["maintenance_sessions"] or 0,
                protocol_options=form.protocol_options(),
                mg_per_kg=d.get("mg_per_kg"),
                dose_mg=d.get("dose_mg") or None,
                weight_basis=d.get("weight_basis") or "actual",
                infusion_minutes=d.get("infusion_minutes") or 40,
                dose_reason=d.get("dose_reason", ""),
                caution_override_reason=d.get("caution_override_reason", ""),
                measurement_plan=form.plan(),
                insurance=form.insurance(),
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(
                request, f"Course started: {course.appointments.count()} sessions laid out."
            )
            return redirect("treatment:course", course_id=course.pk)
    return render(
        request,
        "treatment/course_form.html",
        {"patient": patient, "assessment": assessment, "form": form},
    )


@requires(Perm.SCHEDULE_VIEW)
@require_http_methods(["GET", "POST"])
def course_detail(request: HttpRequest, course_id: int) -> HttpResponse:
    course = selectors.get_course(request.clinic, course_id)  # type: ignore[attr-defined]
    clinical = has_perm(request, Perm.CLINICAL_VIEW)
    manage = has_perm(request, Perm.COURSE_MANAGE)
    action = request.POST.get("action") if request.method == "POST" else None
    decision_form = DecisionForm(request.POST if action == "decide" else None)
    pause_form = PauseForm(request.POST if action == "pause" else None, prefix="pause")
    basis_form = WeightBasisForm(
        request.POST if action == "weight_basis" else None,
        prefix="basis",
        initial={"weight_basis": course.weight_basis},
    )
    resume_form = ResumeForm(
        request.POST if action == "resume" else None,
        prefix="resume",
        initial={"resume_on": request.clinic.today()},  # type: ignore[attr-defined]
    )
    if request.method == "POST":
        actor = Actor.from_request(request)
        try:
            if action == "decide" and manage:
                if decision_form.is_valid():
                    services.decide_after_induction(
                        actor,
                        course,
                        decision=decision_form.cleaned_data["decision"],
                        maintenance_sessions=decision_form.cleaned_data["maintenance_sessions"]
                        or 0,
                        note=decision_form.cleaned_data["note"],
                    )
                    messages.success(request, "Decision recorded.")
                    return redirect("treatment:course", course_id=course.pk)
            elif action == "pause" and manage:
                if pause_form.is_valid():
                    released = services.pause_course(
                        actor, course, reason=pause_form.cleaned_data["reason"]
                    )
                    messages.success(
                        request, f"Course paused; {released} future booking(s) released."
                    )
                    return redirect("treatment:course", course_id=course.pk)
            elif action == "resume" and manage:
                if resume_form.is_valid():
                    guidance = services.resume_course(
                        actor,
                        course,
                        resume_on=resume_form.cleaned_data["resume_on"],
                        depression_worse=resume_form.cleaned_data["depression_worse"],
                        note=resume_form.cleaned_data["note"],
                    )
                    messages.success(request, "Course resumed.")
                    messages.info(request, getattr(guidance, "message", guidance))
                    return redirect("treatment:course", course_id=course.pk)
            elif action == "weight_basis" and manage:
                if basis_form.is_valid():
                    services.change_weight_basis(
                        actor,
                        course,
                        weight_basis=basis_form.cleaned_data["weight_basis"],
                        reason=basis_form.cleaned_data["reason"],
                    )
                    messages.success(request, "Weight basis changed; the reason is on record.")
                    return redirect("treatment:course", course_id=course.pk)
            elif action == "integration" and has_perm(request, Perm.SCHEDULE_MANAGE):
                day = date.fromisoformat(request.POST.get("day", ""))
                services.add_integration_session(actor, course, day)
                messages.success(request, "Integration session added.")
                return redirect("treatment:course", course_id=course.pk)
            else:
                return HttpResponse("Your role does not allow that.", status=403)
        except ValueError:
            messages.error(request, "Enter the date as YYYY-MM-DD.")
        except PermissionError as exc:
            return HttpResponse(str(exc), status=403)
        except ValidationError as exc:
            form = {"pause": pause_form, "resume": resume_form, "weight_basis": basis_form}.get(
                action or "", decision_form
            )
            _add_errors(form, exc)
    sessions = selectors.course_sessions(course)
    progress = selectors.course_progress(course, sessions) if clinical else None
    audit.record_read(
        Actor.from_request(request), "treatment_course", course_id, patient_id=course.patient_id
    )
    today = request.clinic.today()  # type: ignore[attr-defined]
    resume_preview = []
    if clinical and course.status == CourseStatus.PAUSED:
        for worse in (False, True):
            try:
                resume_preview.append(
                    services.resume_guidance(course, today, depression_worse=worse)
                )
            except ValueError:
                pass
    return render(
        request,
        "treatment/course.html",
        {
            "course": course,
            "patient": course.patient,
            "sessions": sessions,
            "progress": progress,
            "decision_form": decision_form,
            "pause_form": pause_form,
            "resume_form": resume_form,
            "basis_form": basis_form,
            "resume_preview": resume_preview,
            "clinical": clinical,
            "can_manage": manage,
            "plan_labels": selectors.measurement_plan_labels(course),
            "guidance": selectors.missed_dose_text(course),
        },
    )


@requires(Perm.SCHEDULE_MANAGE)
@require_http_methods(["GET", "POST"])
def appointment_book(request: HttpRequest, appointment_id: int) -> HttpResponse:
    appointment = selectors.get_appointment(request.clinic, appointment_id)  # type: ignore[attr-defined]
    tz = ZoneInfo(request.clinic.time_zone)  # type: ignore[attr-defined]
    initial = {
        "version": appointment.version,
        "day": appointment.starts_at.astimezone(tz).date()
        if appointment.starts_at
        else appointment.target,
        "chair": appointment.chair_id,
        "staff": appointment.staff_id,
    }
    if appointment.starts_at:
        initial["start_time"] = appointment.starts_at.astimezone(tz).time()
    form = BookingForm(request.POST or None, clinic=request.clinic, initial=initial)  # type: ignore[attr-defined]
    if request.method == "POST" and form.is_valid():
        try:
            warnings = services.book(
                Actor.from_request(request),
                appointment,
                starts_at=form.starts_at(tz),
                chair=form.cleaned_data["chair"],
                staff=form.cleaned_data["staff"],
                reason=form.cleaned_data["reason"],
                expected_version=form.cleaned_data["version"],
            )
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, "Booked.")
            for warning in warnings:
                messages.warning(request, warning)
            return redirect("treatment:course", course_id=appointment.course_id)
    return render(
        request,
        "treatment/book.html",
        {"appointment": appointment, "form": form, "patient": appointment.patient},
    )


@requires(Perm.SCHEDULE_MANAGE)
@require_http_methods(["POST"])
def appointment_cancel(request: HttpRequest, appointment_id: int) -> HttpResponse:
    appointment = selectors.get_appointment(request.clinic, appointment_id)  # type: ignore[attr-defined]
    status = request.POST.get("status", AppointmentStatus.CANCELLED)
    try:
        services.cancel(
            Actor.from_request(request),
            appointment,
            reason=request.POST.get("reason", ""),
            status=status,
        )
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    else:
        messages.success(request, "Appointment updated.")
    return redirect("treatment:course", course_id=appointment.course_id)


@requires(Perm.SCHEDULE_VIEW)
@require_http_methods(["GET"])
def calendar_view(request: HttpRequest) -> HttpResponse:
    today = request.clinic.today()  # type: ignore[attr-defined]
    try:
        start = (
            date.fromisoformat(request.GET.get("date", "")) if request.GET.get("date") else today
        )
    except ValueError:
        start = today
    view = request.GET.get("view", "week")
    if view not in ("day", "week"):
        view = "week"
    by = request.GET.get("by", "chair")
    if by not in ("chair", "room", "staff"):
        by = "chair"
    if view == "week":
        start = start - timedelta(days=start.weekday())
    days = 7 if view == "week" else 1
    cal = selectors.calendar(request.clinic, start=start, days=days, by=by)  # type: ignore[attr-defined]
    step = timedelta(days=days)
    return render(
        request,
        "treatment/calendar.html",
        {
            "cal": cal,
            "view": view,
            "by": by,
            "start": start,
            "today": today,
            "previous": start - step,
            "next": start + step,
            "clinical": has_perm(request, Perm.CLINICAL_VIEW),
        },
    )


@requires(Perm.SCHEDULE_VIEW)
@require_http_methods(["GET", "POST"])
def chair_list(request: HttpRequest) -> HttpResponse:
    form = ChairForm(request.POST or None)
    if request.method == "POST":
        if not has_perm(request, Perm.CHAIR_MANAGE):
            return HttpResponse("Only clinic admins manage chairs.", status=403)
        if form.is_valid():
            try:
                chair = services.create_chair(
                    Actor.from_request(request),
                    name=form.cleaned_data["name"],
                    room=form.cleaned_data["room"],
                    capacity=form.cleaned_data["capacity"],
                )
            except ValidationError as exc:
                _add_errors(form, exc)
            else:
                messages.success(request, f"Added {chair.name}.")
                return redirect("treatment:chairs")
    chairs = Chair.objects.filter(clinic=request.clinic).order_by("name")  # type: ignore[attr-defined]
    return render(
        request,
        "treatment/chairs.html",
        {"chairs": chairs, "form": form, "can_manage": has_perm(request, Perm.CHAIR_MANAGE)},
    )


@requires(Perm.SCHEDULE_VIEW)
@require_http_methods(["GET"])
def patient_courses(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = patient_selectors.get_patient(request.clinic, patient_id)  # type: ignore[attr-defined]
    courses = patient.courses.select_related("responsible_prescriber").order_by("-start_date")
    assessments = (
        patient.eligibility_assessments.select_related("signed_by").order_by("-created_at")[:10]
        if has_perm(request, Perm.CLINICAL_VIEW)
        else []
    )
    audit.record_read(
        Actor.from_request(request), "treatment_courses", patient_id, patient_id=patient_id
    )
    return render(
        request,
        "treatment/patient_courses.html",
        {"patient": patient, "courses": courses, "assessments": assessments},
    )
