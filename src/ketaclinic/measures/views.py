from __future__ import annotations

import json

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_http_methods

from ketaclinic.accounts.access import has_perm, requires
from ketaclinic.accounts.roles import Perm
from ketaclinic.audit import services as audit
from ketaclinic.audit.context import Actor
from ketaclinic.clinical.instruments import get_instrument
from ketaclinic.measures import selectors, services
from ketaclinic.measures.forms import (
    AcknowledgeForm,
    ChooseScaleForm,
    ScaleForm,
    SelfReportRequestForm,
    display_number,
)
from ketaclinic.patients import selectors as patient_selectors


@requires(Perm.CLINICAL_VIEW)
@require_http_methods(["GET"])
def scale_list(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = patient_selectors.get_patient(request.clinic, patient_id)  # type: ignore[attr-defined]
    page = selectors.response_page(patient, request.GET.get("page"))
    audit.record_read(
        Actor.from_request(request), "scale_responses", patient_id, patient_id=patient_id
    )
    return render(request, "measures/list.html", {"patient": patient, "page": page})


@requires(Perm.SCALE_RECORD)
@require_http_methods(["GET", "POST"])
def scale_record(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = patient_selectors.get_patient(request.clinic, patient_id)  # type: ignore[attr-defined]
    chooser = ChooseScaleForm(request.GET or None)
    if not chooser.is_valid():
        return render(request, "measures/choose.html", {"patient": patient, "chooser": chooser})
    instrument = get_instrument(chooser.cleaned_data["code"])
    texts = selectors.item_texts(request.clinic, instrument)  # type: ignore[attr-defined]
    # Bound on every POST, even one with no answer at all (an empty QueryDict is falsy).
    form = ScaleForm(instrument, texts, request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            response = services.record_response(
                Actor.from_request(request), patient, instrument.code, form.answers()
            )
        except ValidationError as exc:
            for message in exc.messages:
                form.add_error(None, message)
        else:
            messages.success(
                request, f"{instrument.short_name} recorded: total {response.total_display}."
            )
            return redirect("patients:chart", patient_id=patient.pk)
    return render(
        request,
        "measures/record.html",
        {"patient": patient, "instrument": instrument, "form": form},
        # A POST that gets here was refused: say so to the client, not only on the page.
        status=400 if request.method == "POST" else 200,
    )


@requires(Perm.CLINICAL_VIEW)
@require_http_methods(["GET"])
def scale_detail(request: HttpRequest, patient_id: int, response_id: int) -> HttpResponse:
    patient = patient_selectors.get_patient(request.clinic, patient_id)  # type: ignore[attr-defined]
    response = selectors.get_response(patient, response_id)
    instrument = get_instrument(response.instrument_code)
    texts = selectors.item_texts(request.clinic, instrument)  # type: ignore[attr-defined]
    stored = {a.item_id: a.value for a in response.answers.all()}
    rows = []
    for position, item in enumerate(instrument.items, start=1):
        value = stored.get(item.id)
        label = (
            "not answered"
            if value is None
            else next(
                (
                    o.label
                    for o in item.options
                    if o.value == value and type(o.value) is type(value)
                ),
                str(value),
            )
        )
        rows.append(
            {
                "number": display_number(item, position),  # as printed: C-SSRS "6a"
                "text": texts[item.id],
                "value": value,
                "label": label,
                "scored": item.scored,
                "safety": item.id in instrument.safety_items,
            }
        )
    audit.record_read(
        Actor.from_request(request), "scale_response", response_id, patient_id=patient_id
    )
    return render(
        request,
        "measures/detail.html",
        {
            "patient": patient,
            "response": response,
            "instrument": instrument,
            "rows": rows,
            "band": instrument.band_by_code(response.band),
        },
    )


@requires(Perm.SCALE_REQUEST)
@require_http_methods(["GET", "POST"])
def self_report_request(request: HttpRequest, patient_id: int) -> HttpResponse:
    patient = patient_selectors.get_patient(request.clinic, patient_id)  # type: ignore[attr-defined]
    form = SelfReportRequestForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            sent = services.create_self_report_request(
                Actor.from_request(request),
                patient,
                form.cleaned_data["instruments"],
                channel=form.cleaned_data["channel"],
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                form.add_error(field if field in form.fields else None, errors)
        else:
            messages.success(
                request,
                f"Sent by {sent.request.get_channel_display()} to "
                f"{sent.request.sent_to}. The link works once and expires "
                f"{sent.request.expires_at:%Y-%m-%d %H:%M}.",
            )
            return redirect("patients:chart", patient_id=patient.pk)
    return render(
        request,
        "measures/request.html",
        {
            "patient": patient,
            "form": form,
            "topic_only": selectors.topic_only_self_report_scales(request.clinic),  # type: ignore[attr-defined]
        },
    )


@requires(Perm.ALERT_VIEW)
@require_http_methods(["GET"])
def alert_queue(request: HttpRequest) -> HttpResponse:
    show = request.GET.get("show", "open")
    if show not in ("open", "mine", "all"):
        show = "open"
    page = selectors.alert_queue(
        request.clinic,
        show=show,
        user_id=request.user.pk,  # type: ignore[attr-defined]
        page_number=request.GET.get("page"),
    )
    return render(
        request, "measures/alerts.html", {"page": page, "show": show, "query": f"show={show}"}
    )


@requires(Perm.ALERT_VIEW)
@require_http_methods(["GET", "POST"])
def alert_detail(request: HttpRequest, alert_id: int) -> HttpResponse:
    alert = selectors.get_alert(request.clinic, alert_id)  # type: ignore[attr-defined]
    form = AcknowledgeForm(request.POST or None)
    if request.method == "POST":
        if not has_perm(request, Perm.ALERT_ACKNOWLEDGE):
            return HttpResponse("Only clinicians can acknowledge alerts.", status=403)
        if form.is_valid():
            try:
                services.acknowledge_alert(
                    Actor.from_request(request), alert, form.cleaned_data["note"]
                )
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, "Alert acknowledged.")
                return redirect("measures:alerts")
    else:
        audit.record_read(
            Actor.from_request(request), "alert", alert_id, patient_id=alert.patient_id
        )
    return render(
        request,
        "measures/alert.html",
        {
            "alert": alert,
            "form": form,
            "can_acknowledge": has_perm(request, Perm.ALERT_ACKNOWLEDGE),
        },
    )


@requires(Perm.SCALE_RECORD)
@require_http_methods(["POST"])
def api_record_response(request: HttpRequest, patient_id: int) -> HttpResponse:
    """JSON API: {"instrument": "phq9", "answers": [..] or {..}, "administered_at": ISO?}.

    201 with the stored score, or 4xx with {"errors": [...]} naming each item; nothing is
    stored on error.
    """
    patient = patient_selectors.get_patient(request.clinic, patient_id)  # type: ignore[attr-defined]
    try:
        body = json.loads(request.body or b"{}")
    except ValueError:
        return JsonResponse({"errors": ["The body is not valid JSON."]}, status=400)
    if not isinstance(body, dict) or "instrument" not in body or "answers" not in body:
        return JsonResponse(
            {"errors": ['Send {"instrument": code, "answers": [...]}.']}, status=400
        )
    administered_at = None
    if body.get("administered_at") is not None:
        try:
            administered_at = parse_datetime(str(body["administered_at"]))
        except ValueError:
            administered_at = None
        if administered_at is None:
            return JsonResponse(
                {"errors": ["administered_at must be an ISO 8601 date and time."]}, status=422
            )
        if timezone.is_naive(administered_at):
            administered_at = timezone.make_aware(administered_at)  # the clinic's time zone
    try:
        response = services.record_response(
            Actor.from_request(request),
            patient,
            str(body["instrument"]),
            body["answers"],
            administered_at=administered_at,
        )
    except ValidationError as exc:
        return JsonResponse({"errors": exc.messages}, status=422)
    return JsonResponse(
        {
            "id": response.pk,
            "instrument": response.instrument_code,
            "total": float(response.total) if response.total is not None else None,
            "band": response.band or None,
            "flags": response.flags,
            "complete": response.complete,
            "prorated": response.prorated,
        },
        status=201,
    )
