"""The registry and the rules every instrument shares (instruments.md §15)."""

import dataclasses

import pytest

from ketaclinic.clinical.instruments import (
    INSTRUMENT_CODES,
    Instrument,
    ScoreResult,
    UnknownInstrumentError,
    get_instrument,
    list_instruments,
    score,
)

ALL_CODES = {
    "phq9",
    "phq2",
    "gad7",
    "qids_sr16",
    "pcl5",
    "cssrs_screen",
    "madrs",
    "hamd17",
    "cadss",
    "cadss6",
    "bprs_positive",
    "pain_nrs",
    "peg",
    "aldrete_modified",
    "padss_modified",
}
WORDING_SHIPPED = {"phq9", "phq2", "gad7", "pcl5", "pain_nrs", "peg"}


def test_every_required_instrument_is_registered():
    assert {i.code for i in list_instruments()} == ALL_CODES
    assert set(INSTRUMENT_CODES) == ALL_CODES


@pytest.mark.parametrize("error", [KeyError, ValueError])
def test_unknown_code_raises_listing_the_valid_codes(error):
    with pytest.raises(error) as raised:
        get_instrument("bdi2")
    assert "phq9" in str(raised.value)
    assert "padss_modified" in str(raised.value)
    assert isinstance(raised.value, UnknownInstrumentError)


def test_score_with_an_unknown_code_raises():
    with pytest.raises(KeyError):
        score("ybocs", [1])


@pytest.mark.parametrize(("name", "code"), [("PHQ-9", "phq9"), ("QIDS-SR16", "qids_sr16")])
def test_lookup_tolerates_case_and_separators(name, code):
    assert get_instrument(name).code == code


@pytest.mark.parametrize("instrument", list_instruments(), ids=lambda i: i.code)
def test_definition_is_complete_data(instrument):
    assert instrument.rater in ("patient", "clinician")
    assert instrument.name and instrument.version and instrument.recall_period
    assert instrument.source and instrument.licence
    assert len(set(instrument.item_ids)) == len(instrument.items)
    for item in instrument.items:
        assert item.topic
        assert item.options
        assert len({(type(v), v) for v in item.values}) == len(item.options)
        assert all(option.label for option in item.options)
    if instrument.code in WORDING_SHIPPED:
        assert all(item.wording for item in instrument.items)
    else:
        assert all(item.wording is None for item in instrument.items)


def test_loinc_panel_and_total_codes():
    expected = {
        "phq9": ("44249-1", "44261-6"),
        "phq2": ("55757-9", "55758-7"),
        "gad7": ("69737-5", "70274-6"),
        "pcl5": ("101697-1", "101698-9"),
        "cssrs_screen": ("93373-9", None),
        "peg": ("91148-7", "91147-9"),
    }
    for instrument in list_instruments():
        codes = (instrument.loinc_panel, instrument.loinc_total)
        assert codes == expected.get(instrument.code, (None, None)), instrument.code


def test_safety_items():
    assert {i.code: i.safety_items for i in list_instruments() if i.safety_items} == {
        "phq9": ("q9",),
        "qids_sr16": ("q12",),
        "madrs": ("q10",),
        "hamd17": ("q3",),
        "cssrs_screen": ("q1", "q2", "q3", "q4", "q5", "q6", "q6a"),
    }


@pytest.mark.parametrize("key", ["q9", "9", 9, "Q9", "item 9", "item_9", "44260-8", "/44260-8"])
def test_mapping_keys_may_name_an_item_several_ways(key):
    answers = {f"q{n}": 0 for n in range(1, 9)}
    answers[key] = 1
    result = score("phq9", answers)
    assert result.total == 1
    assert "suicidality" in result.flags


def test_an_item_given_twice_is_an_error():
    result = score("phq9", {"q1": 1, "1": 1})
    assert result.total is None
    assert "twice" in result.errors[0]


def test_omitted_keys_are_missing_not_zero():
    result = score("gad7", {"q1": 1})
    assert result.total is None
    assert result.missing_items == ("q2", "q3", "q4", "q5", "q6", "q7")


@pytest.mark.parametrize("answers", ["0123", 5, {1, 2}, None])
def test_answers_that_are_not_a_list_or_mapping_raise_type_error(answers):
    with pytest.raises(TypeError):
        score("phq9", answers)


def test_all_errors_are_reported_at_once():
    result = score("phq9", [9, 1, 9, 1, 1, 1, 1, 1, 1, 1, 1])
    assert len(result.errors) == 3
    assert any("item 1 " in e for e in result.errors)
    assert any("item 3 " in e for e in result.errors)


def test_result_is_frozen():
    result = score("phq9", [0] * 9)
    assert isinstance(result, ScoreResult)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.total = 3  # type: ignore[misc]


def test_with_wording_overlays_text_without_changing_scoring():
    madrs = get_instrument("madrs")
    licensed = madrs.with_wording({"q1": "Licensed wording for item 1", "10": "Item ten text"})
    assert licensed.items[0].wording == "Licensed wording for item 1"
    assert licensed.items[9].wording == "Item ten text"
    assert licensed.items[1].wording is None
    assert madrs.items[0].wording is None  # the shared definition is untouched
    answers = [3, 2, 4, 1, 0, 2, 5, 1, 2, 3]
    assert score(licensed, answers) == score("madrs", answers)


@pytest.mark.parametrize("wording", [{"q11": "x"}, {"q1": ""}, {"q1": "   "}])
def test_with_wording_rejects_unknown_items_and_empty_text(wording):
    with pytest.raises(ValueError):
        get_instrument("madrs").with_wording(wording)


def test_configured_instrument_can_be_scored_directly():
    hamd = get_instrument("hamd17").configured(bands="consensus")
    assert isinstance(hamd, Instrument)
    assert score(hamd, [0] * 15 + [0, None, 0]).convention == {"bands": "consensus"}


def test_option_aliases():
    result = score("hamd17", [4] * 3 + [0] * 12 + [0, None, 0], band_convention="consensus")
    assert result.band == "mild"


def test_scoring_options_raise_for_instruments_without_them():
    with pytest.raises(ValueError, match="none"):
        score("cadss6", [0] * 6, cutoff=3)


def test_convention_names_may_be_shortened_when_unambiguous():
    assert score("pain_nrs", [4], bands="serlin").convention == {"bands": "serlin1995"}
    assert score("hamd17", [0] * 15 + [0, None, 0], bands="Zimmerman").band == "none"
    with pytest.raises(ValueError):
        score("bprs_positive", [1, 1, 1, 1], convention="")
