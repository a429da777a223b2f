"""FHIR R4 read endpoints (JSON only): instrument Questionnaires and stored scale responses.

Every endpoint answers application/fhir+json; refusals and errors are OperationOutcomes with
the HTTP status (403, 404, 405, 422). Each successful read writes one audit entry. Another
clinic's response id answers 404, exactly like one that does not exist.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET

from ketaclinic.accounts.access import requires
from ketaclinic.accounts.roles import Perm
from ketaclinic.audit import services as audit
from ketaclinic.audit.context import Actor
from ketaclinic.clinical.instruments import (
    Instrument,
    UnknownInstrumentError,
    get_instrument,
    list_instruments,
)
from ketaclinic.fhir import builders
from ketaclinic.measures import selectors
from ketaclinic.measures.models import InstrumentWording, ScaleResponse

View = Callable[..., HttpResponse]


class FhirError(Exception):
    """Answer the request with an OperationOutcome."""

    def __init__(self, status: int, code: str, diagnostics: str) -> None:
        super().__init__(diagnostics)
        self.status = status
        self.code = code
        self.diagnostics = diagnostics


def fhir_json(resource: dict[str, Any], status: int = 200) -> HttpResponse:
    return HttpResponse(
        json.dumps(resource, ensure_ascii=False),
        content_type=f"{builders.FHIR_JSON}; charset=utf-8",
        status=status,
    )


def outcome(status: int, code: str, diagnostics: str) -> HttpResponse:
    return fhir_json(builders.operation_outcome(code, diagnostics), status=status)


def fhir_errors(view: View) -> View:
    """Outermost decorator of every endpoint: refusals from ``requires`` (403), look-ups
    (404), wrong methods (405) and FhirError come back as OperationOutcomes, not HTML.
    The sign-in redirect of ``requires`` is left alone. ``wraps`` keeps the access
    declaration of the wrapped view visible to the URL access test."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            response = view(request, *args, **kwargs)
        except PermissionDenied as exc:
            return outcome(403, "forbidden", str(exc) or "Your role does not allow this.")
        except Http404 as exc:
            return outcome(404, "not-found", str(exc) or "Not found.")
        except FhirError as exc:
            return outcome(exc.status, exc.code, exc.diagnostics)
        if response.status_code == 405:
            refused = outcome(
                405,
                "not-supported",
                f"{request.method} is not supported here: these endpoints are read-only (GET).",
            )
            refused["Allow"] = response.get("Allow", "GET")
            return refused
        return response

    return wrapped


def _instrument(code: str) -> Instrument:
    try:
        return get_instrument(code)
    except UnknownInstrumentError as exc:
        raise Http404(f"No Questionnaire {code!r}. {exc}") from None


def _stored_response(request: HttpRequest, response_id: int) -> tuple[ScaleResponse, Instrument]:
    response = (
        ScaleResponse.objects.select_related("patient", "recorded_by")
        .filter(pk=response_id, clinic=request.clinic)  # type: ignore[attr-defined]
        .first()
    )
    if response is None:
        # The same answer for another clinic's response as for one that does not exist.
        raise Http404(f"No QuestionnaireResponse {response_id} in this clinic.")
    try:
        instrument = get_instrument(response.instrument_code)
    except UnknownInstrumentError:
        raise FhirError(
            422,
            "not-supported",
            f"QuestionnaireResponse {response_id} was recorded with instrument "
            f"{response.instrument_code!r}, which this version of ketaclinic does not define.",
        ) from None
    return response, instrument


def _answers(response: ScaleResponse, instrument: Instrument) -> dict[str, Any]:
    stored = dict(response.answers.values_list("item_id", "value"))
    return {item.id: stored.get(item.id) for item in instrument.items}


def _build(build: Callable[[], Any]) -> Any:
    try:
        return build()
    except builders.StoredDataError as exc:
        raise FhirError(500, "exception", str(exc)) from None


@fhir_errors
@requires(None)
@require_GET
def questionnaire_search(request: HttpRequest) -> HttpResponse:
    """Bundle (searchset) of every instrument's Questionnaire, with the clinic's wording."""
    loaded = dict(
        InstrumentWording.objects.filter(clinic=request.clinic).values_list(  # type: ignore[attr-defined]
            "instrument_code", "wording"
        )
    )
    entries = []
    for instrument in list_instruments():
        texts = builders.item_texts_from(instrument, loaded.get(instrument.code))
        questionnaire = builders.clinic_questionnaire(instrument, texts)
        url = request.build_absolute_uri(
            reverse("fhir:questionnaire", kwargs={"code": questionnaire["id"]})
        )
        entries.append((url, questionnaire))
    bundle = builders.searchset(entries, request.build_absolute_uri())
    audit.record_read(
        Actor.from_request(request),
        "fhir_questionnaire",
        "all",
        patient_id=None,
        detail={"count": len(entries), "clinic_wording": sorted(loaded)},
    )
    return fhir_json(bundle)


@fhir_errors
@requires(None)
@require_GET
def questionnaire_read(request: HttpRequest, code: str) -> HttpResponse:
    """One instrument as a Questionnaire, with the clinic's loaded wording when it has some."""
    instrument = _instrument(code)
    texts = selectors.item_texts(request.clinic, instrument)  # type: ignore[attr-defined]
    questionnaire = builders.clinic_questionnaire(instrument, texts)
    audit.record_read(
        Actor.from_request(request), "fhir_questionnaire", instrument.code, patient_id=None
    )
    return fhir_json(questionnaire)


@fhir_errors
@requires(Perm.CLINICAL_VIEW)
@require_GET
def questionnaire_response_read(request: HttpRequest, response_id: int) -> HttpResponse:
    response, instrument = _stored_response(request, response_id)
    texts = selectors.item_texts(request.clinic, instrument)  # type: ignore[attr-defined]
    answers = _answers(response, instrument)
    resource = _build(lambda: builders.questionnaire_response(response, instrument, answers, texts))
    audit.record_read(
        Actor.from_request(request),
        "scale_response",
        response.pk,
        patient_id=response.patient_id,
        detail={"format": "fhir", "resource": "QuestionnaireResponse"},
    )
    return fhir_json(resource)


@fhir_errors
@requires(Perm.CLINICAL_VIEW)
@require_GET
def response_observations(request: HttpRequest, response_id: int) -> HttpResponse:
    """Bundle (collection) of the Observations derived from a stored response."""
    response, instrument = _stored_response(request, response_id)
    answers = _answers(response, instrument)
    found = _build(lambda: builders.observations(response, instrument, answers))
    bundle = builders.collection(found, now=timezone.now())
    audit.record_read(
        Actor.from_request(request),
        "scale_response",
        response.pk,
        patient_id=response.patient_id,
        detail={"format": "fhir", "resource": "Observation", "count": len(found)},
    )
    return fhir_json(bundle)
