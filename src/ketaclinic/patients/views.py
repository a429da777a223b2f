from __future__ import annotations

import functools
from datetime import date

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.views.decorators.http import require_http_methods

from ketaclinic.accounts.access import has_perm, requires
from ketaclinic.accounts.roles import Perm
from ketaclinic.audit import services as audit
from ketaclinic.audit.context import Actor
from ketaclinic.measures import selectors as measure_selectors
from ketaclinic.patients import selectors, services
from ketaclinic.patients.forms import MeasurementForm, PatientForm, SearchForm


def _clinic_today(request: HttpRequest) -> date:
    return request.clinic.today()  # type: ignore[attr-defined,no-any-return]


@requires(Perm.PATIENT_VIEW)
@require_http_methods(["GET"])
def patient_list(request: HttpRequest) -> HttpResponse:
    page = selectors.patient_page(request.clinic, request.GET.get("page"))  # type: ignore[attr-defined]
    return render(request, "patients/list.html", {"page": page, "form": SearchForm()})


@requires(Perm.PATIENT_VIEW)
@require_http_methods(["GET", "POST"])
def patient_search(request: HttpRequest) -> HttpResponse:
    # POST, not GET: a name or birth date in a query string would land in server logs.
    form = SearchForm(request.POST or None)
    page = None
    if request.method == "POST" and form.is_valid():
        page = selectors.search_page(
            request.clinic,
            form.cleaned_data["q"],  # type: ignore[attr-defined]
            request.POST.get("page"),
        )
    return render(request, "patients/search.html", {"form": form, "page": page})


@requires(Perm.PATIENT_REGISTER)
@require_http_methods(["GET", "POST"])
def patient_create(request: HttpRequest) -> HttpResponse:
    form = PatientForm(request.POST or None, clinic_today=_clinic_today(request))
    if request.method == "POST" and form.is_valid():
        try:
            patient = services.register_patient(
                Actor.from_request(request), form.patient_data(), mrn=form.cleaned_data["mrn"]
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            messages.success(request, f"Registered with MRN {patient.mrn}.")
            return redirect("patients:chart", patient_id=patient.pk)
    return render(request, "patients/form.html", {"form": form, "creating": True})


@requires(Perm.PATIENT_VIEW)
@require_http_methods(["GET"])
def patient_chart(request: HttpRequest, patient_id: int) -> HttpResponse:
    clinical = has_perm(request, Perm.CLINICAL_VIEW)
    chart = selectors.chart(request.clinic, patient_id, clinical=clinical)  # type: ignore[attr-defined]
    audit.record_read(
        Actor.from_request(request), "patient_chart", patient_id, patient_id=patient_id
    )
    # Rating-scale trends and open alerts: clinical sections, so not for the front desk.
    scales = measure_selectors.chart_scales(chart.patient) if clinical else None
    return render(
        request,
        "patients/chart.html",
        {
            "chart": chart,
            "patient": chart.patient,
            "clinical": clinical,
            "trends": scales.trends if scales else [],
            "open_alerts": scales.open_alerts if scales else [],
            "age": chart.patient.age_on(_clinic_today(request)),
            "measurement_fields": blank_measurement_fields()
            if clinical and has_perm(request, Perm.MEASUREMENT_RECORD)
            else None,
        },
    )


def blank_measurement_fields() -> str:
    """The fields of an empty MeasurementForm, as the chart shows them. The blank form has no
    initial values and no per-request choices, so it renders the same on every chart: it is
    rendered once per process (0.7 ms a chart otherwise), except with DEBUG, where template
    edits should show at once."""
    if settings.DEBUG:
        return _render_blank_measurement_fields()
    return _cached_blank_measurement_fields()


def _render_blank_measurement_fields() -> str:
    return render_to_string("patients/_measurement_grid.html", {"form": MeasurementForm()})


_cached_blank_measurement_fields = functools.cache(_render_blank_measurement_fields)


@requires(Perm.PATIENT_REGISTER)
@require_http_methods(["GET", "POST"])
def patient_edit(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = selectors.get_patient(request.clinic, patient_id)  # type: ignore[attr-defined]
    form = PatientForm(request.POST or None, instance=patient, clinic_today=_clinic_today(request))
    if request.method == "POST":
        # A bound ModelForm writes cleaned values onto its instance; edit a fresh copy instead
        # so a failed edit leaves nothing changed in memory or in the database.
        form.instance = selectors.get_patient(request.clinic, patient_id)  # type: ignore[attr-defined]
        if form.is_valid():
            changed = services.update_patient(
                Actor.from_request(request), patient, form.patient_data()
            )
            messages.success(request, "Saved." if changed else "No changes to save.")
            return redirect("patients:chart", patient_id=patient.pk)
    else:
        audit.record_read(
            Actor.from_request(request), "patient_edit_form", patient_id, patient_id=patient_id
        )
    return render(
        request, "patients/form.html", {"form": form, "patient": patient, "creating": False}
    )


@requires(Perm.MEASUREMENT_RECORD)
@require_http_methods(["POST"])
def measurement_add(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = selectors.get_patient(request.clinic, patient_id)  # type: ignore[attr-defined]
    form = MeasurementForm(request.POST)
    if form.is_valid():
        services.record_measurement(
            Actor.from_request(request),
            patient,
            weight_kg=form.cleaned_data["weight_kg"],
            height_cm=form.cleaned_data["height_cm"],
            measured_at=form.cleaned_data["measured_at"],
        )
        messages.success(request, "Measurement recorded.")
        return redirect("patients:chart", patient_id=patient.pk)
    return render(
        request, "patients/measurement_form.html", {"form": form, "patient": patient}, status=400
    )


@requires(Perm.CLINICAL_VIEW)
@require_http_methods(["GET"])
def measurement_list(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = selectors.get_patient(request.clinic, patient_id)  # type: ignore[attr-defined]
    page = selectors.measurement_page(patient, request.GET.get("page"))
    audit.record_read(
        Actor.from_request(request), "body_measurements", patient_id, patient_id=patient_id
    )
    return render(request, "patients/measurements.html", {"patient": patient, "page": page})


@requires(Perm.PATIENT_VIEW)
@require_http_methods(["GET"])
def patient_history(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = selectors.get_patient(request.clinic, patient_id)  # type: ignore[attr-defined]
    history = selectors.edit_history(patient, limit=None)
    audit.record_read(
        Actor.from_request(request), "patient_history", patient_id, patient_id=patient_id
    )
    return render(request, "patients/history.html", {"patient": patient, "history": history})
