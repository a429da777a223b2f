"""FHIR R4 resources for stored scale responses, as JSON-ready dicts (no FHIR library needed).

* ``clinic_questionnaire`` — the instrument's Questionnaire with the clinic's item texts.
* ``questionnaire_response`` — one stored ``ScaleResponse`` as a QuestionnaireResponse whose
  answers use exactly the codings the Questionnaire offers (LOINC answers where known, else
  the local ``<base>/CodeSystem/<instrument>-answers`` system of ``fhir_questionnaire``).
* ``observations`` — what the response yields: the total score, the suicide item of scales
  that have one, and the C-SSRS screener's risk level.
* ``searchset``, ``collection`` and ``operation_outcome`` wrap and report.

Scores are never recomputed: the Observations carry the total, band and flags stored with the
response. Codes without a known LOINC code live in local code systems under ``BASE_URL``
(docs/fhir.md lists them).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.conf import settings

from ketaclinic.clinical.fhir_questionnaire import (
    DEFAULT_BASE_URL,
    LOINC_SYSTEM,
    answer_coding,
    questionnaire_for,
)
from ketaclinic.clinical.instruments import Instrument, score
from ketaclinic.clinical.instruments.model import Band, Item, Option

if TYPE_CHECKING:
    from ketaclinic.measures.models import ScaleResponse

JSONDict = dict[str, Any]

# The same canonical base as the Questionnaires, so answer codings match their answerOptions.
BASE_URL = DEFAULT_BASE_URL
FHIR_JSON = "application/fhir+json"
UCUM = "http://unitsofmeasure.org"
CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
INTERPRETATION_SYSTEM = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
DATA_ABSENT_SYSTEM = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
SURVEY = {"coding": [{"system": CATEGORY_SYSTEM, "code": "survey", "display": "Survey"}]}
POSITIVE = {"system": INTERPRETATION_SYSTEM, "code": "POS", "display": "Positive"}
NEGATIVE = {"system": INTERPRETATION_SYSTEM, "code": "NEG", "display": "Negative"}
UNKNOWN = {"system": DATA_ABSENT_SYSTEM, "code": "unknown", "display": "Unknown"}
# C-SSRS derived suicide risk level and its one confirmed answer code (instruments.md §8);
# Moderate and High have no confirmed LOINC answer, so every level also carries a local code.
CSSRS_RISK_LEVEL = "93374-7"
CSSRS_LEVEL_ANSWERS = {"low": ("LA9194-7", "Low")}


class StoredDataError(ValueError):
    """A stored answer does not fit the instrument definition (never a client error)."""


def resource_id(text: str) -> str:
    """A FHIR id ([A-Za-z0-9-.]{1,64}) from an instrument code or item id."""
    return "".join(c if c.isalnum() or c in "-." else "-" for c in text)[:64]


def instant(value: datetime) -> str:
    """A FHIR dateTime/instant in UTC: 2025-01-31T14:05:09Z."""
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def questionnaire_url(instrument: Instrument, base_url: str = BASE_URL) -> str:
    return f"{base_url}/Questionnaire/{resource_id(instrument.code)}"


def observation_system(base_url: str = BASE_URL) -> str:
    """Local codes for the scores and items that have no LOINC code ("madrs-total")."""
    return f"{base_url}/CodeSystem/scale-observations"


def band_system(instrument: Instrument, base_url: str = BASE_URL) -> str:
    return f"{base_url}/CodeSystem/{resource_id(instrument.code)}-bands"


def item_texts_from(instrument: Instrument, loaded: Mapping[str, Any] | None) -> dict[str, str]:
    """What each item says: loaded (licensed) wording, shipped wording, or the topic.

    The same rule as ``measures.selectors.item_texts``, for wording already fetched."""
    loaded = loaded or {}
    return {
        item.id: (loaded.get(item.id) if isinstance(loaded.get(item.id), str) else None)
        or item.wording
        or item.topic
        for item in instrument.items
    }


def clinic_questionnaire(
    instrument: Instrument, texts: Mapping[str, str], base_url: str = BASE_URL
) -> JSONDict:
    """The Questionnaire with the clinic's item texts (topics stay topics)."""
    overrides = {item.id: texts[item.id] for item in instrument.items if texts.get(item.id)}
    return questionnaire_for(instrument, overrides, base_url=base_url)


# --- QuestionnaireResponse ---------------------------------------------------------------------


def patient_reference(response: ScaleResponse) -> JSONDict:
    return {"reference": f"Patient/{response.patient_id}", "display": response.patient.full_name}


def practitioner_reference(user: Any) -> JSONDict:
    return {"reference": f"Practitioner/{user.pk}", "display": user.display_name}


def author_reference(response: ScaleResponse) -> JSONDict | None:
    """Who recorded the answers: the patient for a self-report, else the staff member."""
    if response.source == "self_report":
        return patient_reference(response)
    if response.recorded_by_id is not None:
        return practitioner_reference(response.recorded_by)
    return None


def source_reference(response: ScaleResponse, instrument: Instrument) -> JSONDict | None:
    """Who gave the answers: the patient for a patient-rated scale (even when staff typed
    them in), the rating clinician for a clinician-rated one."""
    if response.source == "self_report" or instrument.rater == "patient":
        return patient_reference(response)
    if response.recorded_by_id is not None:
        return practitioner_reference(response.recorded_by)
    return None


def _option(instrument: Instrument, item: Item, value: Any) -> Option:
    try:
        return item.option_for(value)
    except ValueError:
        raise StoredDataError(
            f"The stored answer {value!r} to {instrument.short_name} item {item.id} is not one "
            "of the item's answers."
        ) from None


def answer_for(
    instrument: Instrument, item: Item, value: Any, base_url: str = BASE_URL
) -> JSONDict:
    """One answer, typed as the Questionnaire item is: valueInteger for integer items,
    otherwise the answerOption's valueCoding (LOINC or local)."""
    if item.answer_type == "numeric":
        if isinstance(value, bool) or not isinstance(value, int):
            raise StoredDataError(
                f"The stored answer {value!r} to {instrument.short_name} item {item.id} is not "
                "a whole number."
            )
        return {"valueInteger": value}
    return {"valueCoding": answer_coding(instrument, _option(instrument, item, value), base_url)}


def questionnaire_response(
    response: ScaleResponse,
    instrument: Instrument,
    answers: Mapping[str, Any],
    texts: Mapping[str, str],
    base_url: str = BASE_URL,
) -> JSONDict:
    """A stored response as a FHIR R4 QuestionnaireResponse (unanswered items left out).

    Stored responses are final, so the status is always "completed", also for a response
    with missing items (FHIR allows a completed response to leave optional items blank)."""
    resource: JSONDict = {
        "resourceType": "QuestionnaireResponse",
        "id": str(response.pk),
        "questionnaire": questionnaire_url(instrument, base_url),
        "status": "completed",
        "subject": patient_reference(response),
        "authored": instant(response.administered_at),
    }
    author = author_reference(response)
    if author:
        resource["author"] = author
    source = source_reference(response, instrument)
    if source:
        resource["source"] = source
    items = [
        {
            "linkId": item.id,
            "text": texts.get(item.id) or item.wording or item.topic,
            "answer": [answer_for(instrument, item, answers[item.id], base_url)],
        }
        for item in instrument.items
        if answers.get(item.id) is not None
    ]
    if items:
        resource["item"] = items
    return resource


# --- Observations ------------------------------------------------------------------------------


def _number(value: Decimal | int | float) -> int | float:
    value = Decimal(str(value))
    return int(value) if value == value.to_integral_value() else float(value)


def _score_quantity(value: Decimal | int | float) -> JSONDict:
    return {"value": _number(value), "unit": "{score}", "system": UCUM, "code": "{score}"}


def _band(instrument: Instrument, response: ScaleResponse) -> Band | None:
    if not response.band:
        return None
    try:
        configured = instrument.configured(**(response.convention or {}))
    except ValueError:
        configured = instrument
    return configured.band_by_code(response.band) or Band(response.band, response.band)


def _band_coding(instrument: Instrument, band: Band, base_url: str) -> JSONDict:
    return {"system": band_system(instrument, base_url), "code": band.code, "display": band.label}


def _local_code(code: str, text: str, base_url: str) -> JSONDict:
    return {"coding": [{"system": observation_system(base_url), "code": code}], "text": text}


def observation_id(response: ScaleResponse, part: str) -> str:
    return resource_id(f"{response.pk}-{part}")


def observation_full_url(observation_id: str) -> str:
    """A stable urn:uuid for an Observation this server does not host on its own."""
    name = f"{settings.SITE_URL}/fhir/Observation/{observation_id}"
    return f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, name)}"


def _common(response: ScaleResponse, part: str) -> JSONDict:
    observation: JSONDict = {
        "resourceType": "Observation",
        "id": observation_id(response, part),
        "status": "final",
        "category": [SURVEY],
    }
    return observation


def _context(response: ScaleResponse) -> JSONDict:
    context: JSONDict = {
        "subject": patient_reference(response),
        "effectiveDateTime": instant(response.administered_at),
        "issued": instant(response.created_at),
    }
    performer = author_reference(response)
    if performer:
        context["performer"] = [performer]
    context["derivedFrom"] = [{"reference": f"QuestionnaireResponse/{response.pk}"}]
    return context


def total_observation(
    response: ScaleResponse, instrument: Instrument, base_url: str = BASE_URL
) -> JSONDict | None:
    """The total score (LOINC total code where known), its band as the interpretation and
    any subscales as components. None when the scale has no total or none was stored."""
    if instrument.total_range is None or response.total is None:
        return None
    observation = _common(response, "total")
    text = f"{instrument.short_name} total score"
    if instrument.loinc_total:
        observation["code"] = {
            "coding": [{"system": LOINC_SYSTEM, "code": instrument.loinc_total}],
            "text": text,
        }
    else:
        observation["code"] = _local_code(f"{resource_id(instrument.code)}-total", text, base_url)
    observation.update(_context(response))
    observation["valueQuantity"] = _score_quantity(response.total)
    band = _band(instrument, response)
    if band:
        observation["interpretation"] = [
            {"coding": [_band_coding(instrument, band, base_url)], "text": band.label}
        ]
    notes = []
    if response.prorated:
        notes.append("Prorated total: missing items were replaced by the mean of the answered.")
    if not response.complete:
        notes.append("Some items were not answered.")
    if notes:
        observation["note"] = [{"text": note} for note in notes]
    components = []
    labels = {sub.name: sub.label for sub in instrument.subscales}
    for name, value in (response.subscales or {}).items():
        component: JSONDict = {
            "code": _local_code(
                f"{resource_id(instrument.code)}-{resource_id(name)}",
                f"{instrument.short_name} {labels.get(name, name)}",
                base_url,
            )
        }
        if value is None:
            component["dataAbsentReason"] = {"coding": [UNKNOWN]}
        else:
            component["valueQuantity"] = _score_quantity(value)
        components.append(component)
    if components:
        observation["component"] = components
    return observation


def _at_or_above(item: Item, option: Option) -> bool:
    threshold = item.safety_threshold
    if threshold is None or option.unratable:
        return False
    if isinstance(threshold, bool):
        return option.value is True
    return not isinstance(option.value, bool) and option.value >= threshold


def safety_item_observation(
    response: ScaleResponse,
    instrument: Instrument,
    answers: Mapping[str, Any],
    base_url: str = BASE_URL,
) -> JSONDict | None:
    """The suicide item of a scale with exactly one (PHQ-9 item 9, MADRS item 10, ...): its
    answer, flagged POS at or above the item's threshold. An unanswered suicide item is
    reported too: the suicidality state is then unknown, which a reader must see."""
    item_id = instrument.safety_item
    if item_id is None:
        return None
    item = instrument.item(item_id)
    observation = _common(response, item.id)
    if item.loinc:
        observation["code"] = {
            "coding": [{"system": LOINC_SYSTEM, "code": item.loinc}],
            "text": f"{instrument.short_name} item {item.number}: {item.topic}",
        }
    else:
        observation["code"] = _local_code(
            f"{resource_id(instrument.code)}-{resource_id(item.id)}",
            f"{instrument.short_name} item {item.number}: {item.topic}",
            base_url,
        )
    observation.update(_context(response))
    value = answers.get(item.id)
    if value is None:
        observation["dataAbsentReason"] = {"coding": [UNKNOWN], "text": "Not answered"}
        observation["note"] = [{"text": "The suicide item was not answered: suicidality unknown."}]
        return observation
    option = _option(instrument, item, value)
    if item.answer_type == "numeric":
        observation["valueInteger"] = value
    else:
        observation["valueCodeableConcept"] = {
            "coding": [answer_coding(instrument, option, base_url)],
            "text": option.label,
        }
    if option.unratable:
        observation["note"] = [{"text": "Rated as unable to rate: suicidality unknown."}]
    elif _at_or_above(item, option):
        observation["interpretation"] = [
            {"coding": [POSITIVE], "text": "Positive suicide item: review suicide risk now."}
        ]
    else:
        observation["interpretation"] = [{"coding": [NEGATIVE], "text": "Negative"}]
    return observation


def risk_level_observation(
    response: ScaleResponse,
    instrument: Instrument,
    answers: Mapping[str, Any],
    base_url: str = BASE_URL,
) -> JSONDict | None:
    """The C-SSRS screener's derived risk level (LOINC 93374-7). Low carries LOINC LA9194-7
    beside the local code; the other levels only the local code."""
    if instrument.code != "cssrs_screen":
        return None
    observation = _common(response, "risk-level")
    observation["code"] = {
        "coding": [{"system": LOINC_SYSTEM, "code": CSSRS_RISK_LEVEL}],
        "text": f"{instrument.short_name} suicide risk level",
    }
    observation.update(_context(response))
    band = _band(instrument, response)
    if band is None:
        # Unanswered items could still raise the level: say how far the answers go.
        observation["dataAbsentReason"] = {"coding": [UNKNOWN], "text": "Incomplete screen"}
        notes = score(instrument.code, dict(answers)).notes or (
            "The risk level could not be determined.",
        )
        observation["note"] = [{"text": note} for note in notes]
    else:
        codings = []
        if band.code in CSSRS_LEVEL_ANSWERS:
            code, display = CSSRS_LEVEL_ANSWERS[band.code]
            codings.append({"system": LOINC_SYSTEM, "code": code, "display": display})
        codings.append(_band_coding(instrument, band, base_url))
        observation["valueCodeableConcept"] = {"coding": codings, "text": band.label}
    if "suicidality" in (response.flags or []):
        observation["interpretation"] = [
            {"coding": [POSITIVE], "text": "Positive screen: review suicide risk now."}
        ]
    elif band is not None:
        observation["interpretation"] = [{"coding": [NEGATIVE], "text": "Negative"}]
    return observation


def observations(
    response: ScaleResponse,
    instrument: Instrument,
    answers: Mapping[str, Any],
    base_url: str = BASE_URL,
) -> list[JSONDict]:
    """Every Observation a stored response yields, total first."""
    built = (
        total_observation(response, instrument, base_url),
        safety_item_observation(response, instrument, answers, base_url),
        risk_level_observation(response, instrument, answers, base_url),
    )
    return [observation for observation in built if observation is not None]


# --- Bundles and errors ------------------------------------------------------------------------


def searchset(entries: Iterable[tuple[str, JSONDict]], self_url: str) -> JSONDict:
    """A searchset Bundle of (fullUrl, resource) pairs, every one a match."""
    listed = [
        {"fullUrl": url, "resource": resource, "search": {"mode": "match"}}
        for url, resource in entries
    ]
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(listed),
        "link": [{"relation": "self", "url": self_url}],
        "entry": listed,
    }


def collection(resources: Iterable[JSONDict], *, now: datetime) -> JSONDict:
    """A collection Bundle of Observations, each under a stable urn:uuid fullUrl."""
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": instant(now),
        "entry": [
            {"fullUrl": observation_full_url(resource["id"]), "resource": resource}
            for resource in resources
        ],
    }


def operation_outcome(code: str, diagnostics: str, severity: str = "error") -> JSONDict:
    """An OperationOutcome with one issue (code from the FHIR IssueType value set)."""
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": diagnostics}],
    }
