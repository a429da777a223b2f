"""FHIR R4 Questionnaires for the instruments, as plain dicts (no FHIR library needed).

* ``questionnaire_for(instrument)`` builds a Questionnaire: one item per instrument item with
  linkId = item id, LOINC codes where known, coded answer options (LOINC answers where known,
  otherwise a local code system whose codes are the item values), and enableWhen for skip logic.
* ``wording_from_questionnaire(code, questionnaire)`` reads item wording from a Questionnaire
  (e.g. a clinic-licensed MADRS form) so the app can overlay it with
  ``Instrument.with_wording``; scoring never depends on wording.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from ketaclinic.clinical.instruments import Instrument, get_instrument, list_instruments
from ketaclinic.clinical.instruments.model import Item, Option

__all__ = [
    "DEFAULT_BASE_URL",
    "LOINC_SYSTEM",
    "answer_coding",
    "questionnaire_for",
    "wording_from_questionnaire",
]

JSONDict = dict[str, Any]

LOINC_SYSTEM = "http://loinc.org"
# Canonical base for ketaclinic's own Questionnaires and code systems; a deployment passes its
# own base_url (".example" is reserved, so nothing resolves there by accident).
DEFAULT_BASE_URL = "https://ketaclinic.example/fhir"
ORDINAL_VALUE = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
MIN_VALUE = "http://hl7.org/fhir/StructureDefinition/minValue"
MAX_VALUE = "http://hl7.org/fhir/StructureDefinition/maxValue"
# Item types that carry answers (everything but "group" and "display").
_QUESTION_TYPES = frozenset(
    {
        "boolean",
        "decimal",
        "integer",
        "date",
        "dateTime",
        "time",
        "string",
        "text",
        "url",
        "choice",
        "open-choice",
        "attachment",
        "reference",
        "quantity",
    }
)


def _resource_id(code: str) -> str:
    # FHIR ids allow [A-Za-z0-9-.] only.
    return code.replace("_", "-")


def _computable_name(instrument: Instrument) -> str:
    # Questionnaire.name must match ^[A-Z]([A-Za-z0-9_]){0,254}$.
    name = re.sub(r"[^A-Za-z0-9]", "", instrument.short_name.replace("+", "Positive"))
    return name[0].upper() + name[1:]


def answer_coding(
    instrument: Instrument, option: Option, base_url: str = DEFAULT_BASE_URL
) -> JSONDict:
    """The Coding for one answer: its LOINC answer code, or the value in a local system."""
    if option.loinc:
        return {"system": LOINC_SYSTEM, "code": option.loinc, "display": option.label}
    code = str(option.value).lower()  # 0..n, or "true"/"false"
    system = f"{base_url}/CodeSystem/{_resource_id(instrument.code)}-answers"
    return {"system": system, "code": code, "display": option.label}


def _question(instrument: Instrument, item: Item, text: str, base_url: str) -> JSONDict:
    question: JSONDict = {"linkId": item.id, "text": text}
    if item.loinc:
        question["code"] = [{"system": LOINC_SYSTEM, "code": item.loinc, "display": item.topic}]
    if item.answer_type == "numeric":
        low, high = item.value_range
        question["type"] = "integer"
        question["extension"] = [
            {"url": MIN_VALUE, "valueInteger": low},
            {"url": MAX_VALUE, "valueInteger": high},
        ]
    else:
        question["type"] = "choice"
        question["answerOption"] = [
            {"valueCoding": _with_ordinal(answer_coding(instrument, option, base_url), option)}
            for option in item.options
        ]
    question["required"] = item.required
    if item.asked_if is not None:
        gate_id, needed = item.asked_if
        gate = instrument.item(gate_id)
        answer = answer_coding(instrument, gate.option_for(needed), base_url)
        question["enableWhen"] = [{"question": gate_id, "operator": "=", "answerCoding": answer}]
    for group in instrument.exclusive_items:
        # An alternative is offered only while the earlier ones are blank (HAM-D 16a / 16b).
        earlier = group[: group.index(item.id)] if item.id in group else ()
        if earlier:
            question["enableWhen"] = [
                {"question": other, "operator": "exists", "answerBoolean": False}
                for other in earlier
            ]
            if len(earlier) > 1:
                question["enableBehavior"] = "all"
    return question


def _with_ordinal(coding: JSONDict, option: Option) -> JSONDict:
    if isinstance(option.value, bool) or option.score is None:
        return coding
    return {**coding, "extension": [{"url": ORDINAL_VALUE, "valueDecimal": option.score}]}


def questionnaire_for(
    instrument: Instrument | str,
    wording_overrides: Mapping[str, str] | None = None,
    *,
    base_url: str = DEFAULT_BASE_URL,
) -> JSONDict:
    """A FHIR R4 Questionnaire (a JSON-ready dict) for an instrument.

    Item text is the wording where the instrument ships it (or ``wording_overrides`` gives
    it), else the item's short topic. Raises ValueError for an unknown override item.
    """
    if isinstance(instrument, str):
        instrument = get_instrument(instrument)
    if wording_overrides:
        instrument = instrument.with_wording(wording_overrides)
    resource_id = _resource_id(instrument.code)
    questionnaire: JSONDict = {
        "resourceType": "Questionnaire",
        "id": resource_id,
        "url": f"{base_url}/Questionnaire/{resource_id}",
        "identifier": [{"system": f"{base_url}/instrument-code", "value": instrument.code}],
        "version": instrument.version,
        "name": _computable_name(instrument),
        "title": instrument.name,
        "status": "active",
        "subjectType": ["Patient"],
        "description": (
            f"{instrument.name}. Rater: {instrument.rater}. Recall: "
            f"{instrument.recall_period}. Source: {instrument.source}"
        ),
        "copyright": instrument.licence,
    }
    if instrument.loinc_panel:
        questionnaire["code"] = [
            {"system": LOINC_SYSTEM, "code": instrument.loinc_panel, "display": instrument.name}
        ]
    questionnaire["item"] = [
        _question(instrument, item, item.wording or item.topic, base_url)
        for item in instrument.items
    ]
    return questionnaire


# --- reading wording back ----------------------------------------------------------------------


def _loinc_codes(element: Mapping[str, Any]) -> list[str]:
    codings = element.get("code") or []
    return [
        str(c.get("code"))
        for c in codings
        if isinstance(c, Mapping) and c.get("system") == LOINC_SYSTEM and c.get("code")
    ]


def _questions(items: object) -> Iterator[Mapping[str, Any]]:
    """Every answerable item, groups opened (LHC forms nest items in groups)."""
    if not isinstance(items, list):
        return
    for item in items:
        if not isinstance(item, Mapping):
            continue
        if item.get("type") in _QUESTION_TYPES:
            yield item
        yield from _questions(item.get("item"))


def _instruments_named_by(questionnaire: Mapping[str, Any]) -> set[str]:
    """Codes of the instruments the Questionnaire says it is (LOINC panel or our identifier)."""
    panels = set(_loinc_codes(questionnaire))
    named = {i.code for i in list_instruments() if i.loinc_panel and i.loinc_panel in panels}
    for identifier in questionnaire.get("identifier") or []:
        if isinstance(identifier, Mapping) and str(identifier.get("system", "")).endswith(
            "/instrument-code"
        ):
            named.add(str(identifier.get("value")))
    return named


def wording_from_questionnaire(
    instrument_code: str, questionnaire: Mapping[str, Any]
) -> dict[str, str]:
    """Item id -> wording read from a FHIR Questionnaire for this instrument.

    Items are matched by linkId (the item id, its number, or its LOINC code) or by their LOINC
    item code. A total-score or read-only calculated item is skipped. Raises ValueError naming
    the problem: not a Questionnaire, a Questionnaire for another instrument, linkIds that match
    no item, an item given twice, or empty text.
    """
    instrument = get_instrument(instrument_code)
    if not isinstance(questionnaire, Mapping) or questionnaire.get("resourceType") != (
        "Questionnaire"
    ):
        raise ValueError("Expected a FHIR Questionnaire resource (resourceType 'Questionnaire').")
    named = _instruments_named_by(questionnaire)
    if named and instrument.code not in named:
        raise ValueError(
            f"This Questionnaire is for {', '.join(sorted(named))}, not {instrument.short_name} "
            f"({instrument.code})."
        )
    by_loinc = {item.loinc: item.id for item in instrument.items if item.loinc}
    wording: dict[str, str] = {}
    unknown: list[str] = []
    empty: list[str] = []
    for question in _questions(questionnaire.get("item")):
        link_id = str(question.get("linkId", ""))
        codes = _loinc_codes(question)
        item_id = instrument.resolve_item_id(link_id) or next(
            (by_loinc[c] for c in codes if c in by_loinc), None
        )
        if item_id is None:
            if instrument.loinc_total in codes or question.get("readOnly") is True:
                continue  # the total score, calculated by the form: not an item
            unknown.append(link_id)
            continue
        text = question.get("text")
        if not isinstance(text, str) or not text.strip():
            empty.append(link_id)
        elif item_id in wording:
            raise ValueError(
                f"{instrument.short_name} item {item_id} appears twice in the Questionnaire "
                f"(the second time as linkId {link_id!r})."
            )
        else:
            wording[item_id] = text.strip()
    if unknown:
        raise ValueError(
            f"linkIds {', '.join(repr(u) for u in unknown)} match no {instrument.short_name} "
            f"item (items: {', '.join(instrument.item_ids)}); is this the right Questionnaire?"
        )
    if empty:
        raise ValueError(
            f"{instrument.short_name} Questionnaire items {', '.join(repr(e) for e in empty)} "
            "have no text."
        )
    if not wording:
        raise ValueError(f"The Questionnaire has no {instrument.short_name} items.")
    return wording
