"""GET /fhir/QuestionnaireResponse/<id> and its $observations: real requests, signed-in staff."""

from __future__ import annotations

from datetime import UTC, timedelta
from typing import Any

import pytest
from django.urls import reverse
from django.utils import timezone

from ketaclinic.accounts.roles import Role
from ketaclinic.audit.context import Actor
from ketaclinic.clinical.fhir_questionnaire import LOINC_SYSTEM
from ketaclinic.clinical.instruments import Instrument, list_instruments
from ketaclinic.measures.models import InstrumentWording, ScaleResponse
from ketaclinic.measures.services import record_response
from tests.conftest import register, signed_in
from tests.fhir.conftest import answers_match, fhir_get, outcome_text

BASE = "https://ketaclinic.example/fhir"
SCORE_SYSTEM = f"{BASE}/CodeSystem/scale-observations"
INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"


def qr_url(response: Any) -> str:
    return reverse("fhir:questionnaire_response", kwargs={"response_id": response.pk})


def obs_url(response: Any) -> str:
    return reverse("fhir:observations", kwargs={"response_id": response.pk})


@pytest.fixture
def patient(world):  # type: ignore[no-untyped-def]
    return register(world.clinic_a, world.nurse)


def record(world, patient, code, answers, **kwargs):  # type: ignore[no-untyped-def]
    actor = Actor.system(world.clinic_a, user=kwargs.pop("user", world.nurse), label="test")
    return record_response(actor, patient, code, answers, **kwargs)


def full_answers(instrument: Instrument) -> dict[str, Any]:
    """A valid answer to every item the skip logic asks, varied from item to item."""
    values: dict[str, Any] = {}
    for position, item in enumerate(instrument.items):
        if item.asked_if is not None and values.get(item.asked_if[0]) != item.asked_if[1]:
            continue
        if any(
            item.id in group and any(values.get(o) is not None for o in group)
            for group in instrument.exclusive_items
        ):
            continue
        usable = [o for o in item.options if not o.unratable]
        values[item.id] = usable[position % len(usable)].value
    return values


def by_code(bundle: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["resource"]["code"]["coding"][0]["code"]: e["resource"] for e in bundle["entry"]}


# --- every instrument ----------------------------------------------------------------------------


@pytest.mark.parametrize("instrument", list_instruments(), ids=lambda i: i.code)
def test_every_instrument_round_trips_as_valid_fhir(instrument, world, patient):  # type: ignore[no-untyped-def]
    answers = full_answers(instrument)
    stored = record(world, patient, instrument.code, answers)
    client = signed_in(world.prescriber)
    questionnaire = fhir_get(
        client, reverse("fhir:questionnaire", kwargs={"code": instrument.code})
    )
    qr = fhir_get(client, qr_url(stored))
    assert qr["questionnaire"] == questionnaire["url"]
    assert qr["status"] == "completed"
    assert qr["subject"]["reference"] == f"Patient/{patient.pk}"
    assert answers_match(questionnaire, qr) == []
    assert [i["linkId"] for i in qr["item"]] == [k for k, v in answers.items() if v is not None]
    bundle = fhir_get(client, obs_url(stored))
    assert bundle["type"] == "collection"
    observations = [e["resource"] for e in bundle["entry"]]
    assert observations, "every scale yields at least one Observation"
    for observation in observations:
        assert observation["status"] == "final"
        assert observation["category"][0]["coding"][0]["code"] == "survey"
        assert observation["derivedFrom"] == [{"reference": f"QuestionnaireResponse/{stored.pk}"}]
        assert observation["subject"]["reference"] == f"Patient/{patient.pk}"
        assert observation["effectiveDateTime"] == qr["authored"]
    full_urls = [e["fullUrl"] for e in bundle["entry"]]
    assert len(set(full_urls)) == len(full_urls)
    assert all(u.startswith("urn:uuid:") for u in full_urls)
    # Stable: the same response gives the same Observations.
    again = fhir_get(client, obs_url(stored))
    assert [e["fullUrl"] for e in again["entry"]] == full_urls


# --- PHQ-9 -------------------------------------------------------------------------------------


def test_phq9_response_and_observations(world, patient):  # type: ignore[no-untyped-def]
    when = timezone.now().replace(microsecond=0) - timedelta(days=1)
    stored = record(world, patient, "phq9", [2, 2, 2, 2, 2, 1, 1, 1, 1, 0], administered_at=when)
    client = signed_in(world.nurse)
    qr = fhir_get(client, qr_url(stored))
    assert qr["id"] == str(stored.pk)
    assert qr["questionnaire"] == f"{BASE}/Questionnaire/phq9"
    assert qr["authored"] == when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert qr["subject"] == {"reference": f"Patient/{patient.pk}", "display": "Ann Smith"}
    assert qr["author"]["reference"] == f"Practitioner/{world.nurse.pk}"
    assert qr["source"]["reference"] == f"Patient/{patient.pk}"  # the patient answered
    item9 = qr["item"][8]
    assert item9["linkId"] == "q9"
    assert item9["text"].startswith("Thoughts that you would be better off dead")
    assert item9["answer"] == [
        {"valueCoding": {"system": LOINC_SYSTEM, "code": "LA6569-3", "display": "Several days"}}
    ]
    assert qr["item"][9]["answer"][0]["valueCoding"]["code"] == "LA6572-7"

    found = by_code(fhir_get(client, obs_url(stored)))
    assert set(found) == {"44261-6", "44260-8"}
    total = found["44261-6"]
    assert total["valueQuantity"] == {
        "value": 14,
        "unit": "{score}",
        "system": "http://unitsofmeasure.org",
        "code": "{score}",
    }
    assert total["interpretation"][0]["coding"][0] == {
        "system": f"{BASE}/CodeSystem/phq9-bands",
        "code": "moderate",
        "display": "Moderate",
    }
    assert total["performer"][0]["reference"] == f"Practitioner/{world.nurse.pk}"
    item = found["44260-8"]
    assert item["valueCodeableConcept"]["coding"][0]["code"] == "LA6569-3"
    assert item["interpretation"][0]["coding"][0] == {
        "system": INTERPRETATION,
        "code": "POS",
        "display": "Positive",
    }


def test_a_negative_suicide_item_is_marked_negative(world, patient):  # type: ignore[no-untyped-def]
    stored = record(world, patient, "phq9", [0] * 9)
    found = by_code(fhir_get(signed_in(world.nurse), obs_url(stored)))
    assert found["44260-8"]["valueCodeableConcept"]["coding"][0]["code"] == "LA6568-5"
    assert found["44260-8"]["interpretation"][0]["coding"][0]["code"] == "NEG"
    assert found["44261-6"]["valueQuantity"]["value"] == 0


def test_missing_answers_are_omitted_and_an_unanswered_suicide_item_is_unknown(world, patient):  # type: ignore[no-untyped-def]
    stored = record(
        world,
        patient,
        "phq9",
        {"q1": 3, "q2": 3, "q3": 3, "q4": 3, "q5": 3, "q6": 3, "q7": 3, "q8": 3},
    )
    assert stored.prorated and stored.total is not None
    client = signed_in(world.nurse)
    qr = fhir_get(client, qr_url(stored))
    assert qr["status"] == "completed"
    assert [i["linkId"] for i in qr["item"]] == [f"q{n}" for n in range(1, 9)]
    found = by_code(fhir_get(client, obs_url(stored)))
    assert found["44261-6"]["valueQuantity"]["value"] == 27
    assert "Prorated" in found["44261-6"]["note"][0]["text"]
    item9 = found["44260-8"]
    assert "valueCodeableConcept" not in item9
    assert item9["dataAbsentReason"]["coding"][0]["code"] == "unknown"


def test_no_total_stored_means_no_total_observation(world, patient):  # type: ignore[no-untyped-def]
    stored = record(world, patient, "hamd17", {"q1": 2, "q3": 0})
    assert stored.total is None
    found = by_code(fhir_get(signed_in(world.nurse), obs_url(stored)))
    assert set(found) == {"hamd17-q3"}


# --- local codes, numbers, subscales -----------------------------------------------------------


def test_local_codes_licensed_text_and_the_clinician_as_source(world, patient):  # type: ignore[no-untyped-def]
    """HAM-D17: no LOINC codes, clinician-rated, wording loaded by the clinic."""
    InstrumentWording.objects.create(
        clinic=world.clinic_a, instrument_code="hamd17", wording={"q1": "Licensed q1 text"}
    )
    answers = {"q1": 3, "q2": 2, "q3": 1, "q4": 1, "q5": 1, "q6": 1}
    answers |= {f"q{n}": 2 for n in range(7, 12)}
    answers |= {"q12": 1, "q13": 1, "q14": 1, "q15": 2, "q16a": 1, "q17": 1}
    stored = record(world, patient, "hamd17", answers, user=world.prescriber)
    client = signed_in(world.nurse)
    qr = fhir_get(client, qr_url(stored))
    assert qr["source"]["reference"] == f"Practitioner/{world.prescriber.pk}"
    assert qr["author"]["reference"] == f"Practitioner/{world.prescriber.pk}"
    assert qr["item"][0]["text"] == "Licensed q1 text"
    assert qr["item"][0]["answer"][0]["valueCoding"] == {
        "system": f"{BASE}/CodeSystem/hamd17-answers",
        "code": "3",
        "display": qr["item"][0]["answer"][0]["valueCoding"]["display"],
    }
    assert "q16b" not in [i["linkId"] for i in qr["item"]]
    found = by_code(fhir_get(client, obs_url(stored)))
    assert set(found) == {"hamd17-total", "hamd17-q3"}
    total = found["hamd17-total"]
    assert total["code"]["coding"][0]["system"] == SCORE_SYSTEM
    assert total["valueQuantity"]["value"] == 26
    assert total["interpretation"][0]["coding"][0] == {
        "system": f"{BASE}/CodeSystem/hamd17-bands",
        "code": "severe",
        "display": "Severe",
    }
    item3 = found["hamd17-q3"]
    assert item3["code"]["coding"][0]["system"] == SCORE_SYSTEM
    assert item3["valueCodeableConcept"]["coding"][0]["code"] == "1"
    assert item3["interpretation"][0]["coding"][0]["code"] == "POS"


def test_numeric_items_answer_with_value_integer(world, patient):  # type: ignore[no-untyped-def]
    stored = record(world, patient, "pain_nrs", [7])
    client = signed_in(world.nurse)
    qr = fhir_get(client, qr_url(stored))
    assert qr["item"] == [
        {"linkId": "pain", "text": qr["item"][0]["text"], "answer": [{"valueInteger": 7}]}
    ]
    found = by_code(fhir_get(client, obs_url(stored)))
    assert found["pain-nrs-total"]["valueQuantity"]["value"] == 7
    assert found["pain-nrs-total"]["interpretation"][0]["coding"][0]["code"] == "severe"


def test_peg_mean_is_a_decimal_under_its_loinc_code(world, patient):  # type: ignore[no-untyped-def]
    stored = record(world, patient, "peg", [3, 4, 4])
    found = by_code(fhir_get(signed_in(world.nurse), obs_url(stored)))
    assert found["91147-9"]["valueQuantity"]["value"] == pytest.approx(3.7)


def test_pcl5_subscales_are_components(world, patient):  # type: ignore[no-untyped-def]
    stored = record(world, patient, "pcl5", [2] * 20)
    total = by_code(fhir_get(signed_in(world.nurse), obs_url(stored)))["101698-9"]
    assert total["valueQuantity"]["value"] == 40
    components = {c["code"]["coding"][0]["code"]: c for c in total["component"]}
    assert set(components) == {"pcl5-B", "pcl5-C", "pcl5-D", "pcl5-E"}
    assert components["pcl5-B"]["valueQuantity"]["value"] == 10


# --- C-SSRS ------------------------------------------------------------------------------------


def test_cssrs_low_risk_level_uses_the_loinc_answer(world, patient):  # type: ignore[no-untyped-def]
    stored = record(world, patient, "cssrs_screen", {"q1": True, "q2": False, "q6": False})
    client = signed_in(world.nurse)
    qr = fhir_get(client, qr_url(stored))
    assert qr["item"][0]["answer"][0]["valueCoding"]["code"] == "LA33-6"  # Yes
    bundle = fhir_get(client, obs_url(stored))
    [level] = [e["resource"] for e in bundle["entry"]]
    assert level["code"]["coding"][0] == {"system": LOINC_SYSTEM, "code": "93374-7"}
    codings = level["valueCodeableConcept"]["coding"]
    assert codings[0] == {"system": LOINC_SYSTEM, "code": "LA9194-7", "display": "Low"}
    assert codings[1]["code"] == "low"
    assert level["interpretation"][0]["coding"][0]["code"] == "POS"


def test_cssrs_high_and_no_risk_levels_use_local_codes(world, patient):  # type: ignore[no-untyped-def]
    high = record(
        world,
        patient,
        "cssrs_screen",
        {"q1": True, "q2": True, "q3": True, "q4": True, "q5": False, "q6": False},
    )
    none = record(world, patient, "cssrs_screen", {"q1": False, "q2": False, "q6": False})
    client = signed_in(world.nurse)
    [high_level] = [e["resource"] for e in fhir_get(client, obs_url(high))["entry"]]
    assert high_level["valueCodeableConcept"]["coding"] == [
        {"system": f"{BASE}/CodeSystem/cssrs-screen-bands", "code": "high", "display": "High risk"}
    ]
    [no_level] = [e["resource"] for e in fhir_get(client, obs_url(none))["entry"]]
    assert no_level["valueCodeableConcept"]["coding"][0]["code"] == "no_risk"
    assert no_level["interpretation"][0]["coding"][0]["code"] == "NEG"


def test_an_incomplete_cssrs_says_how_far_the_answers_go(world, patient):  # type: ignore[no-untyped-def]
    stored = record(world, patient, "cssrs_screen", {"q1": True})
    assert stored.band == ""
    [level] = [e["resource"] for e in fhir_get(signed_in(world.nurse), obs_url(stored))["entry"]]
    assert "valueCodeableConcept" not in level
    assert level["dataAbsentReason"]["coding"][0]["code"] == "unknown"
    assert "at least low" in level["note"][0]["text"]


# --- authors -----------------------------------------------------------------------------------


def test_a_self_report_is_authored_by_the_patient(world, patient):  # type: ignore[no-untyped-def]
    stored = record(world, patient, "gad7", [1] * 7, source="self_report", user=None)
    client = signed_in(world.nurse)
    qr = fhir_get(client, qr_url(stored))
    assert qr["author"] == {"reference": f"Patient/{patient.pk}", "display": "Ann Smith"}
    assert qr["source"] == qr["author"]
    found = by_code(fhir_get(client, obs_url(stored)))
    assert found["70274-6"]["performer"] == [qr["author"]]


# --- access, errors and the audit log ----------------------------------------------------------


@pytest.mark.parametrize("endpoint", [qr_url, obs_url], ids=["response", "observations"])
def test_each_read_is_audited_once(endpoint, world, patient, audit_log):  # type: ignore[no-untyped-def]
    stored = record(world, patient, "phq9", [1] * 9)
    log = audit_log(world.clinic_a)
    fhir_get(signed_in(world.staff_a[Role.AUDITOR]), endpoint(stored))
    [entry] = log.new()
    assert (entry.action, entry.object_type, entry.object_id, entry.patient_id) == (
        "read",
        "scale_response",
        str(stored.pk),
        patient.pk,
    )
    assert entry.actor == world.staff_a[Role.AUDITOR]
    assert entry.detail["format"] == "fhir"


@pytest.mark.parametrize("endpoint", [qr_url, obs_url], ids=["response", "observations"])
def test_front_desk_gets_403(endpoint, world, patient, audit_log):  # type: ignore[no-untyped-def]
    stored = record(world, patient, "phq9", [1] * 9)
    log = audit_log(world.clinic_a)
    body = fhir_get(signed_in(world.staff_a[Role.FRONT_DESK]), endpoint(stored), status=403)
    assert body["issue"][0]["code"] == "forbidden"
    assert "clinical.view" in outcome_text(body)
    assert "Smith" not in str(body)
    assert log.new() == []


@pytest.mark.parametrize("endpoint", [qr_url, obs_url], ids=["response", "observations"])
def test_another_clinics_response_is_404(endpoint, world, patient, audit_log):  # type: ignore[no-untyped-def]
    stored = record(world, patient, "phq9", [1] * 9)
    log_a, log_b = audit_log(world.clinic_a), audit_log(world.clinic_b)
    body = fhir_get(signed_in(world.prescriber_b), endpoint(stored), status=404)
    assert body["issue"][0]["code"] == "not-found"
    assert f"No QuestionnaireResponse {stored.pk}" in outcome_text(body)
    assert "Smith" not in str(body)
    assert log_a.new() == [] and log_b.new() == []


@pytest.mark.parametrize("response_id", [987654, 2**63, 10**30], ids=["missing", "2^63", "1e30"])
def test_missing_and_out_of_range_ids_are_404(response_id, world, audit_log):  # type: ignore[no-untyped-def]
    log = audit_log(world.clinic_a)
    client = signed_in(world.nurse)
    for name in ("fhir:questionnaire_response", "fhir:observations"):
        body = fhir_get(client, reverse(name, kwargs={"response_id": response_id}), status=404)
        assert str(response_id) in outcome_text(body)
    assert log.new() == []


def test_a_response_to_an_instrument_no_longer_defined_is_422(world, patient, audit_log):  # type: ignore[no-untyped-def]
    stored = ScaleResponse.objects.create(
        clinic=world.clinic_a,
        patient=patient,
        instrument_code="ybocs",
        instrument_version="Y-BOCS",
        administered_at=timezone.now(),
        source="staff",
        recorded_by=world.nurse,
    )
    log = audit_log(world.clinic_a)
    client = signed_in(world.nurse)
    for endpoint in (qr_url, obs_url):
        body = fhir_get(client, endpoint(stored), status=422)
        assert "'ybocs'" in outcome_text(body)
    assert log.new() == []


def test_writes_are_refused_with_405(world, patient):  # type: ignore[no-untyped-def]
    stored = record(world, patient, "phq9", [1] * 9)
    response = signed_in(world.nurse).put(qr_url(stored), "{}", content_type="application/json")
    assert response.status_code == 405
    assert response.json()["resourceType"] == "OperationOutcome"
