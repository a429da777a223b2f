"""MADRS: instruments.md §5 (Snaith 1986 bands; item 10 flag at >= 2)."""

import pytest

from ketaclinic.clinical.instruments import get_instrument, score


def summing_to(total: int) -> list[int]:
    answers = []
    for _ in range(10):
        answers.append(min(6, total))
        total -= answers[-1]
    return answers


@pytest.mark.parametrize(
    ("total", "band"),
    [
        (0, "normal"),
        (6, "normal"),
        (7, "mild"),
        (19, "mild"),
        (20, "moderate"),
        (34, "moderate"),
        (35, "severe"),
        (60, "severe"),
    ],
)
def test_snaith_band_boundaries(total, band):
    result = score("madrs", summing_to(total))
    assert (result.total, result.band) == (total, band)
    assert result.convention == {"bands": "snaith1986"}


def test_item_10_at_2_flags_and_at_1_does_not():
    assert "suicidality" in score("madrs", [0] * 9 + [2]).flags
    assert "suicidality" not in score("madrs", [0] * 9 + [1]).flags


def test_missing_item_10_is_unknown_and_gives_no_total():
    result = score("madrs", [2] * 9 + [None])
    assert result.flags == {"suicidality_unknown"}
    assert result.total is None
    assert result.complete is False


@pytest.mark.parametrize("bad", [7, -1, 3.5, True])
def test_out_of_range_or_wrong_type_is_an_error(bad):
    result = score("madrs", [bad] + [0] * 9)
    assert result.total is None
    assert "item 1" in result.errors[0]


def test_definition_ships_topics_only():
    madrs = get_instrument("madrs")
    assert madrs.rater == "clinician"
    assert len(madrs.items) == 10
    assert madrs.items[9].topic == "Suicidal thoughts"
    assert all(item.wording is None for item in madrs.items)
    assert [o.label for o in madrs.items[0].options] == ["0", "1", "2", "3", "4", "5", "6"]
    assert madrs.safety_item == "q10"
