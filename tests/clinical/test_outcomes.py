"""Response and remission: instruments.md §15.2 and §16.6."""

import dataclasses

import pytest

from ketaclinic.clinical.outcomes import (
    MADRS_REMISSION_ALTERNATIVE,
    RESPONSE_THRESHOLD_PERCENT,
    classify,
    minimal_clinically_important_change,
)


def test_response_threshold_is_50_percent():
    assert RESPONSE_THRESHOLD_PERCENT == 50.0


def test_worked_example_madrs():
    outcome = classify("madrs", 34, 9)
    assert outcome.percent_change == pytest.approx(73.529, abs=1e-3)
    assert outcome.response is True
    assert outcome.remission is True
    assert outcome.remission_rule == "MADRS <= 10"


@pytest.mark.parametrize(
    ("baseline", "current", "response"),
    [(20, 10, True), (20, 11, False), (27, 13, True), (27, 14, False), (3, 1.5, True)],
)
def test_response_at_50_percent_is_inclusive(baseline, current, response):
    assert classify("madrs", baseline, current).response is response


def test_percent_change_is_improvement_and_negative_when_worse():
    assert classify("phq9", 10, 15).percent_change == -50.0
    assert classify("phq9", 10, 15).response is False


@pytest.mark.parametrize("current", [0, 5, None])
def test_baseline_zero_never_divides(current):
    outcome = classify("phq9", 0, current)
    assert outcome.percent_change is None
    assert outcome.response is None


def test_missing_totals_give_none():
    assert classify("phq9", None, 3).percent_change is None
    assert classify("phq9", None, 3).remission is True  # remission is absolute
    assert classify("phq9", 12, None).remission is None


@pytest.mark.parametrize(
    ("code", "remitted", "not_remitted"),
    [
        ("phq9", 4, 5),  # < 5, i.e. <= 4
        ("gad7", 4, 5),
        ("qids_sr16", 5, 6),
        ("madrs", 10, 11),
        ("hamd17", 7, 8),
    ],
)
def test_remission_defaults(code, remitted, not_remitted):
    assert classify(code, 20, remitted).remission is True
    assert classify(code, 20, not_remitted).remission is False


def test_phq9_rule_is_reported_as_below_5():
    assert classify("phq9", 20, 4).remission_rule == "PHQ-9 < 5"


def test_madrs_alternative_remission_threshold_12():
    assert MADRS_REMISSION_ALTERNATIVE == 12
    outcome = classify("madrs", 30, 12, remission_threshold=12)
    assert outcome.remission is True
    assert outcome.remission_rule == "MADRS <= 12"
    assert classify("madrs", 30, 12).remission is False


def test_remission_threshold_means_at_most_for_every_scale():
    assert classify("phq9", 20, 5, remission_threshold=5).remission is True


@pytest.mark.parametrize("code", ["pcl5", "cadss", "peg", "pain_nrs", "bprs_positive"])
def test_scales_without_a_remission_definition_give_none(code):
    assert classify(code, 10, 4).remission is None
    assert classify(code, 10, 4).remission_rule is None


def test_peg_floats_work():
    outcome = classify("peg", 6.0, 3.0)
    assert outcome.percent_change == 50.0
    assert outcome.response is True


@pytest.mark.parametrize("code", ["cssrs_screen", "aldrete_modified", "padss_modified"])
def test_scales_without_a_comparable_total_raise(code):
    with pytest.raises(ValueError):
        classify(code, 5, 3)


@pytest.mark.parametrize(("baseline", "current"), [(28, 3), (-1, 3), (True, 3), ("10", 3)])
def test_impossible_totals_raise(baseline, current):
    with pytest.raises(ValueError):
        classify("phq9", baseline, current)


def test_unknown_code_raises():
    with pytest.raises(KeyError):
        classify("ybocs", 20, 10)


def test_result_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        classify("phq9", 10, 4).response = False  # type: ignore[misc]


def test_minimal_clinically_important_change():
    assert minimal_clinically_important_change("phq9") == 5
    assert minimal_clinically_important_change("madrs") is None
    with pytest.raises(KeyError):
        minimal_clinically_important_change("nope")
