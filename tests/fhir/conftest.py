"""Helpers for the FHIR endpoint tests: fetch, validate with fhir.resources (R4B), and check
what that library does not (required bindings, answers against the Questionnaire)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse

from ketaclinic.audit.models import AuditEntry

MODELS = {
    "Bundle": Bundle,
    "Observation": Observation,
    "OperationOutcome": OperationOutcome,
    "Questionnaire": Questionnaire,
    "QuestionnaireResponse": QuestionnaireResponse,
}
# Required bindings fhir.resources does not check.
STATUSES = {
    "Questionnaire": {"draft", "active", "retired", "unknown"},
    "QuestionnaireResponse": {"in-progress", "completed", "amended", "entered-in-error", "stopped"},
    "Observation": {"final"},  # the only status a stored, scored response yields
}
ISSUE_SEVERITIES = {"fatal", "error", "warning", "information"}


def validate(resource: dict[str, Any]) -> Any:
    """Parse with the R4B model for its resourceType, and check the required bindings."""
    kind = resource["resourceType"]
    parsed = MODELS[kind].model_validate(resource)
    if kind in STATUSES:
        assert resource["status"] in STATUSES[kind], resource["status"]
    if kind == "Bundle":
        assert resource["type"] in {"searchset", "collection"}
        for entry in resource.get("entry", []):
            validate(entry["resource"])
    if kind == "OperationOutcome":
        for issue in resource["issue"]:
            assert issue["severity"] in ISSUE_SEVERITIES
    if kind == "Observation":
        # obs-6: dataAbsentReason only when there is no value.
        has_value = any(key.startswith("value") for key in resource)
        assert has_value != ("dataAbsentReason" in resource), resource
    return parsed


def fhir_get(client: Client, url: str, status: int = 200) -> dict[str, Any]:
    response = client.get(url)
    assert response.status_code == status, (url, response.status_code, response.content[:500])
    assert response["Content-Type"].startswith("application/fhir+json"), response["Content-Type"]
    body = json.loads(response.content)
    validate(body)
    return body


def outcome_text(body: dict[str, Any]) -> str:
    assert body["resourceType"] == "OperationOutcome"
    return " ".join(issue.get("diagnostics", "") for issue in body["issue"])


def answers_match(questionnaire: dict[str, Any], response: dict[str, Any]) -> list[str]:
    """Problems with a QuestionnaireResponse's answers against its Questionnaire: unknown
    linkIds, answers of the wrong type, codings the item does not offer, integers out of the
    item's min/max, items answered that enableWhen leaves disabled."""
    items = {item["linkId"]: item for item in questionnaire["item"]}
    given = {item["linkId"]: item["answer"] for item in response.get("item", [])}
    problems: list[str] = []
    for link_id, answers in given.items():
        question = items.get(link_id)
        if question is None:
            problems.append(f"{link_id}: no such item")
            continue
        for answer in answers:
            keys = [k for k in answer if k.startswith("value")]
            if question["type"] == "choice":
                offered = {
                    (o["valueCoding"]["system"], o["valueCoding"]["code"])
                    for o in question["answerOption"]
                }
                coding = answer.get("valueCoding")
                if keys != ["valueCoding"] or (coding["system"], coding["code"]) not in offered:
                    problems.append(f"{link_id}: {answer} is not one of the answerOptions")
            elif question["type"] == "integer":
                if keys != ["valueInteger"]:
                    problems.append(f"{link_id}: {answer} is not valueInteger")
                    continue
                bounds = {
                    e["url"].rsplit("/", 1)[-1]: e["valueInteger"]
                    for e in question.get("extension", [])
                }
                value = answer["valueInteger"]
                if not bounds.get("minValue", value) <= value <= bounds.get("maxValue", value):
                    problems.append(f"{link_id}: {value} is outside {bounds}")
            elif question["type"] == "boolean":
                if keys != ["valueBoolean"]:
                    problems.append(f"{link_id}: {answer} is not valueBoolean")
            else:
                problems.append(f"{link_id}: unexpected item type {question['type']}")
        for condition in question.get("enableWhen", []):
            other = given.get(condition["question"])
            if condition["operator"] == "=" and (
                other is None
                or other[0].get("valueCoding", {}).get("code") != condition["answerCoding"]["code"]
            ):
                problems.append(f"{link_id}: answered although enableWhen disables it")
            if (
                condition["operator"] == "exists"
                and (other is not None) != condition["answerBoolean"]
            ):
                problems.append(f"{link_id}: answered although enableWhen disables it")
    return problems


class AuditCounter:
    def __init__(self, clinic: Any) -> None:
        self.clinic = clinic
        self.start = self.count()

    def count(self) -> int:
        return AuditEntry.objects.filter(clinic=self.clinic).count()

    def new(self) -> list[AuditEntry]:
        entries = list(AuditEntry.objects.filter(clinic=self.clinic).order_by("sequence"))
        return entries[self.start :]


@pytest.fixture
def audit_log():  # type: ignore[no-untyped-def]
    return AuditCounter
