"""FHIR R4 Questionnaires built from the instrument definitions, and wording read back."""

import copy
import re

import pytest
from fhir.resources.R4B.questionnaire import Questionnaire

from ketaclinic.clinical.fhir_questionnaire import (
    LOINC_SYSTEM,
    questionnaire_for,
    wording_from_questionnaire,
)
from ketaclinic.clinical.instruments import get_instrument, list_instruments, score

INSTRUMENTS = list_instruments()


@pytest.mark.parametrize("instrument", INSTRUMENTS, ids=lambda i: i.code)
def test_every_instrument_gives_a_valid_r4_questionnaire(instrument):
    built = questionnaire_for(instrument)
    parsed = Questionnaire.model_validate(built)
    # fhir.resources does not check bindings or invariants: check those ourselves.
    assert parsed.status == "active"
    assert re.fullmatch(r"[A-Z][A-Za-z0-9_]{0,254}", built["name"])
    assert re.fullmatch(r"[A-Za-z0-9\-.]{1,64}", built["id"])
    assert built["identifier"][0]["value"] == instrument.code
    assert built["title"] == instrument.name
    assert [item["linkId"] for item in built["item"]] == list(instrument.item_ids)
    for item, question in zip(instrument.items, built["item"], strict=True):
        assert question["type"] in ("choice", "integer")
        assert question["text"] == (item.wording or item.topic)
        if question["type"] == "choice":
            assert len(question["answerOption"]) == len(item.options)
        else:
            assert "answerOption" not in question  # que-5: only choice items have options
        if item.loinc:
            assert question["code"][0] == {
                "system": LOINC_SYSTEM,
                "code": item.loinc,
                "display": item.topic,
            }
        for condition in question.get("enableWhen", []):
            assert condition["question"] in instrument.item_ids


def test_accepts_a_code_too():
    assert questionnaire_for("phq9") == questionnaire_for(get_instrument("phq9"))


def test_phq9_codes_and_answers():
    built = questionnaire_for("phq9")
    assert built["code"][0]["code"] == "44249-1"
    item9 = built["item"][8]
    assert item9["code"][0]["code"] == "44260-8"
    assert [o["valueCoding"]["code"] for o in item9["answerOption"]] == [
        "LA6568-5",
        "LA6569-3",
        "LA6570-1",
        "LA6571-9",
    ]
    ordinals = [o["valueCoding"]["extension"][0]["valueDecimal"] for o in item9["answerOption"]]
    assert ordinals == [0, 1, 2, 3]
    assert built["item"][9]["required"] is False  # the difficulty item


def test_cssrs_skip_logic_is_enable_when():
    items = {item["linkId"]: item for item in questionnaire_for("cssrs_screen")["item"]}
    yes = {"system": LOINC_SYSTEM, "code": "LA33-6", "display": "Yes"}
    for link_id in ("q3", "q4", "q5"):
        assert items[link_id]["enableWhen"] == [
            {"question": "q2", "operator": "=", "answerCoding": yes}
        ]
    assert items["q6a"]["enableWhen"] == [{"question": "q6", "operator": "=", "answerCoding": yes}]
    assert "enableWhen" not in items["q1"]
    assert [o["valueCoding"]["code"] for o in items["q1"]["answerOption"]] == ["LA33-6", "LA32-8"]


def test_hamd_16b_is_offered_only_while_16a_is_blank():
    items = {item["linkId"]: item for item in questionnaire_for("hamd17")["item"]}
    assert items["q16b"]["enableWhen"] == [
        {"question": "q16a", "operator": "exists", "answerBoolean": False}
    ]
    not_assessed = items["q16a"]["answerOption"][3]["valueCoding"]
    assert not_assessed["code"] == "3"
    assert not_assessed["extension"][0]["valueDecimal"] == 0  # scores 0


def test_unlicensed_answers_use_a_local_code_system():
    coding = questionnaire_for("madrs", base_url="https://clinic.test/fhir")["item"][0][
        "answerOption"
    ][6]["valueCoding"]
    assert coding == {
        "system": "https://clinic.test/fhir/CodeSystem/madrs-answers",
        "code": "6",
        "display": "6",
        "extension": [
            {"url": "http://hl7.org/fhir/StructureDefinition/ordinalValue", "valueDecimal": 6}
        ],
    }


def test_numeric_items_are_integers_with_limits():
    question = questionnaire_for("peg")["item"][0]
    assert question["type"] == "integer"
    assert [e["valueInteger"] for e in question["extension"]] == [0, 10]


def test_bprs_unable_to_rate_has_no_ordinal_value():
    option = questionnaire_for("bprs_positive")["item"][0]["answerOption"][0]["valueCoding"]
    assert option["display"] == "0 = Unable to rate"
    assert "extension" not in option


def test_wording_overrides_fill_the_text():
    built = questionnaire_for("madrs", {"q1": "Licensed text"})
    Questionnaire.model_validate(built)
    assert built["item"][0]["text"] == "Licensed text"
    assert built["item"][1]["text"] == "Reported sadness"
    with pytest.raises(ValueError):
        questionnaire_for("madrs", {"q99": "x"})


@pytest.mark.parametrize("instrument", INSTRUMENTS, ids=lambda i: i.code)
def test_wording_round_trips(instrument):
    wording = {item.id: f"Licensed wording of {item.id}" for item in instrument.items}
    built = questionnaire_for(instrument, wording)
    assert wording_from_questionnaire(instrument.code, built) == wording


def lhc_style_phq9() -> dict:
    """A LOINC/LHC-Forms style PHQ-9: linkIds are LOINC codes, items in a group, a total."""
    ours = questionnaire_for("phq9")
    questions = []
    for item in ours["item"]:
        code = item["code"][0]["code"]
        questions.append({**item, "linkId": f"/{code}", "text": f"Clinic text {code}"})
    questions.append(
        {
            "linkId": "/44261-6",
            "type": "decimal",
            "text": "PHQ-9 total score",
            "code": [{"system": LOINC_SYSTEM, "code": "44261-6"}],
            "readOnly": True,
        }
    )
    return {
        "resourceType": "Questionnaire",
        "status": "active",
        "code": [{"system": LOINC_SYSTEM, "code": "44249-1"}],
        "item": [
            {"linkId": "/intro", "type": "display", "text": "Over the last 2 weeks..."},
            {"linkId": "/group", "type": "group", "text": "PHQ-9", "item": questions},
        ],
    }


def test_items_are_matched_by_loinc_code_and_the_total_is_skipped():
    wording = wording_from_questionnaire("phq9", lhc_style_phq9())
    assert wording["q1"] == "Clinic text 44250-9"
    assert wording["q10"] == "Clinic text 69722-7"
    assert len(wording) == 10


def test_items_are_matched_by_item_code_when_link_ids_are_opaque():
    questionnaire = lhc_style_phq9()
    for n, item in enumerate(questionnaire["item"][1]["item"][:10]):
        item["linkId"] = f"phq-item-{n:02d}x"
    assert wording_from_questionnaire("phq9", questionnaire)["q9"] == "Clinic text 44260-8"


def test_wrong_instrument_is_rejected():
    with pytest.raises(ValueError, match="gad7"):
        wording_from_questionnaire("phq9", questionnaire_for("gad7"))
    with pytest.raises(ValueError, match="phq9"):
        wording_from_questionnaire("phq2", lhc_style_phq9())


def test_unknown_link_ids_are_named():
    questionnaire = copy.deepcopy(questionnaire_for("madrs"))
    del questionnaire["identifier"]
    questionnaire["item"].append({"linkId": "q11", "type": "choice", "text": "Extra"})
    questionnaire["item"].append({"linkId": "mood-x", "type": "string", "text": "Notes"})
    with pytest.raises(ValueError, match="'q11', 'mood-x'"):
        wording_from_questionnaire("madrs", questionnaire)


def test_empty_text_is_rejected():
    questionnaire = questionnaire_for("madrs")
    questionnaire["item"][2]["text"] = "  "
    with pytest.raises(ValueError, match="'q3'"):
        wording_from_questionnaire("madrs", questionnaire)


@pytest.mark.parametrize(
    "not_a_questionnaire",
    [{"resourceType": "Patient"}, {"item": []}, [], {"resourceType": "Questionnaire"}],
)
def test_other_resources_or_empty_questionnaires_are_rejected(not_a_questionnaire):
    with pytest.raises(ValueError):
        wording_from_questionnaire("madrs", not_a_questionnaire)


def test_licensed_wording_overlay_does_not_change_scoring():
    questionnaire = questionnaire_for("madrs", {f"q{n}": f"Licensed {n}" for n in range(1, 11)})
    madrs = get_instrument("madrs")
    licensed = madrs.with_wording(wording_from_questionnaire("madrs", questionnaire))
    assert licensed.items[4].wording == "Licensed 5"
    answers = [6, 5, 4, 3, 2, 1, 0, 1, 2, 3]
    assert score(licensed, answers) == score("madrs", answers)
