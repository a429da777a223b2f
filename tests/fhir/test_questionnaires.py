"""GET /fhir/Questionnaire and /fhir/Questionnaire/<code>: real requests, signed-in staff."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from ketaclinic.accounts.roles import Role
from ketaclinic.clinical.fhir_questionnaire import LOINC_SYSTEM, questionnaire_for
from ketaclinic.clinical.instruments import list_instruments
from ketaclinic.measures.models import InstrumentWording
from tests.conftest import signed_in
from tests.fhir.conftest import fhir_get, outcome_text

INSTRUMENTS = list_instruments()


def url(code: str) -> str:
    return reverse("fhir:questionnaire", kwargs={"code": code})


@pytest.mark.parametrize("instrument", INSTRUMENTS, ids=lambda i: i.code)
def test_each_instrument_is_a_valid_questionnaire(instrument, world, audit_log):  # type: ignore[no-untyped-def]
    log = audit_log(world.clinic_a)
    body = fhir_get(signed_in(world.nurse), url(instrument.code))
    assert body["resourceType"] == "Questionnaire"
    assert body["status"] == "active"
    assert body["identifier"][0]["value"] == instrument.code
    assert [item["linkId"] for item in body["item"]] == list(instrument.item_ids)
    # Nothing loaded: exactly what the shared builder gives.
    assert body == questionnaire_for(instrument)
    if instrument.loinc_panel:
        assert body["code"][0] == {
            "system": LOINC_SYSTEM,
            "code": instrument.loinc_panel,
            "display": instrument.name,
        }
    [entry] = log.new()
    assert (entry.action, entry.object_type, entry.object_id, entry.patient_id) == (
        "read",
        "fhir_questionnaire",
        instrument.code,
        None,
    )
    assert entry.actor == world.nurse


def test_phq9_carries_loinc_item_and_answer_codes(world):  # type: ignore[no-untyped-def]
    body = fhir_get(signed_in(world.prescriber), url("phq9"))
    assert body["code"][0]["code"] == "44249-1"
    item9 = body["item"][8]
    assert item9["linkId"] == "q9"
    assert item9["code"][0]["code"] == "44260-8"
    assert [o["valueCoding"]["code"] for o in item9["answerOption"]] == [
        "LA6568-5",
        "LA6569-3",
        "LA6570-1",
        "LA6571-9",
    ]


def test_local_answer_codes_where_loinc_has_none(world):  # type: ignore[no-untyped-def]
    body = fhir_get(signed_in(world.nurse), url("madrs"))
    assert "code" not in body  # no LOINC panel for the MADRS
    coding = body["item"][0]["answerOption"][0]["valueCoding"]
    assert coding["system"] == "https://ketaclinic.example/fhir/CodeSystem/madrs-answers"
    assert coding["code"] == "0"


@pytest.mark.parametrize("code", ["PHQ-9", "cssrs-screen", "QIDS_SR16"])
def test_resource_ids_and_loose_codes_name_the_instrument(code, world):  # type: ignore[no-untyped-def]
    body = fhir_get(signed_in(world.nurse), url(code))
    assert body["resourceType"] == "Questionnaire"


def test_the_clinics_loaded_wording_is_overlaid_for_that_clinic_only(world):  # type: ignore[no-untyped-def]
    InstrumentWording.objects.create(
        clinic=world.clinic_a,
        instrument_code="madrs",
        wording={"q1": "Licensed wording for apparent sadness", "q10": "Licensed item ten"},
        source_name="test",
    )
    mine = fhir_get(signed_in(world.nurse), url("madrs"))
    texts = {item["linkId"]: item["text"] for item in mine["item"]}
    assert texts["q1"] == "Licensed wording for apparent sadness"
    assert texts["q10"] == "Licensed item ten"
    assert texts["q2"] == "Reported sadness"  # not loaded: the topic
    other = fhir_get(signed_in(world.prescriber_b), url("madrs"))
    assert other["item"][0]["text"] == "Apparent sadness (observed)"
    assert "Licensed" not in str(other)


def test_an_unknown_instrument_is_a_404_operation_outcome(world, audit_log):  # type: ignore[no-untyped-def]
    log = audit_log(world.clinic_a)
    body = fhir_get(signed_in(world.nurse), url("ybocs"), status=404)
    assert body["issue"][0]["code"] == "not-found"
    text = outcome_text(body)
    assert "'ybocs'" in text and "phq9" in text  # names the problem and the valid codes
    assert log.new() == []


def test_the_list_is_a_searchset_of_all_fifteen(world, audit_log):  # type: ignore[no-untyped-def]
    InstrumentWording.objects.create(
        clinic=world.clinic_a, instrument_code="madrs", wording={"q1": "Loaded q1"}
    )
    log = audit_log(world.clinic_a)
    client = signed_in(world.staff_a[Role.FRONT_DESK])  # definitions: any signed-in staff
    bundle = fhir_get(client, reverse("fhir:questionnaires"))
    assert bundle["type"] == "searchset"
    assert bundle["total"] == len(bundle["entry"]) == 15
    assert [e["resource"]["identifier"][0]["value"] for e in bundle["entry"]] == [
        i.code for i in INSTRUMENTS
    ]
    assert all(e["search"]["mode"] == "match" for e in bundle["entry"])
    madrs = next(e["resource"] for e in bundle["entry"] if e["resource"]["id"] == "madrs")
    assert madrs["item"][0]["text"] == "Loaded q1"
    assert len(log.new()) == 1
    # Every fullUrl reads back the same resource.
    for entry in bundle["entry"][:3]:
        assert entry["fullUrl"].startswith("http://testserver/fhir/Questionnaire/")
        assert fhir_get(client, entry["fullUrl"]) == entry["resource"]


def test_only_get_is_allowed(world):  # type: ignore[no-untyped-def]
    response = signed_in(world.nurse).post(url("phq9"), {})
    assert response.status_code == 405
    assert response["Allow"] == "GET"
    assert response["Content-Type"].startswith("application/fhir+json")
    assert "read-only" in response.json()["issue"][0]["diagnostics"]


def test_anonymous_users_are_sent_to_sign_in(db):  # type: ignore[no-untyped-def]
    response = Client().get(url("phq9"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))
