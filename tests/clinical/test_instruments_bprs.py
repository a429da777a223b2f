"""BPRS positive subscale: instruments.md §10 and §16.7 (1-7 vs 0-6 conventions)."""

import pytest

from ketaclinic.clinical.instruments import get_instrument, score


def test_items_are_4_11_12_15():
    bprs = get_instrument("bprs_positive")
    assert bprs.item_ids == ("q4", "q11", "q12", "q15")
    assert [i.topic for i in bprs.items] == [
        "Conceptual disorganization",
        "Suspiciousness",
        "Hallucinatory behaviour",
        "Unusual thought content",
    ]


def test_default_1_to_7_convention_ranges_4_to_28():
    assert score("bprs_positive", [1, 1, 1, 1]).total == 4
    result = score("bprs_positive", [7, 7, 7, 7])
    assert result.total == 28
    assert result.convention == {"convention": "1-7"}
    assert get_instrument("bprs_positive").total_range == (4, 28)


def test_0_to_6_convention_ranges_0_to_24():
    assert score("bprs_positive", [0, 0, 0, 0], convention="0-6").total == 0
    result = score("bprs_positive", [6, 6, 6, 6], convention="0-6")
    assert result.total == 24
    assert result.convention == {"convention": "0-6"}
    assert get_instrument("bprs_positive").configured(convention="0-6").total_range == (0, 24)


def test_the_same_ratings_differ_by_exactly_4_between_conventions():
    one_to_seven = score("bprs_positive", [2, 3, 1, 5]).total
    zero_to_six = score("bprs_positive", [1, 2, 0, 4], convention="0-6").total
    assert one_to_seven == zero_to_six + 4


def test_under_1_to_7_a_0_means_unable_to_rate_and_counts_as_missing():
    result = score("bprs_positive", [0, 3, 3, 3])
    assert result.errors == ()
    assert result.total is None
    assert result.complete is False
    assert result.missing_items == ("q4",)
    assert any("Unable to rate" in note for note in result.notes)


def test_out_of_range_for_each_convention():
    assert score("bprs_positive", [8, 1, 1, 1]).errors
    result = score("bprs_positive", [7, 1, 1, 1], convention="0-6")
    assert result.total is None
    assert "item 4" in result.errors[0]


def test_convention_option_aliases_and_bad_values():
    assert score("bprs_positive", [0, 0, 0, 0], item_scale="0_6").total == 0
    with pytest.raises(ValueError, match="1-7"):
        score("bprs_positive", [1, 1, 1, 1], convention="1-10")


def test_no_bands_for_bprs_positive():
    assert score("bprs_positive", [4, 4, 4, 4]).band is None
