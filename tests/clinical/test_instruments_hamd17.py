"""HAM-D17: instruments.md §6 and §16.5 (item ranges, item 16 A or B, max 52, two band sets)."""

import pytest

from ketaclinic.clinical.instruments import get_instrument, score

WIDE = {"q1", "q2", "q3", "q7", "q8", "q9", "q10", "q11", "q15"}  # the nine 0-4 items


def rated(total: int = 0, *, item16: str = "q16a", **overrides: int | None) -> dict:
    """Answers summing to ``total`` (filled from item 1 on), item 16 rated as ``item16``."""
    answers: dict[str, int | None] = {}
    for item in get_instrument("hamd17").items:
        if item.id in ("q16a", "q16b") and item.id != item16:
            continue
        top = 4 if item.id in WIDE else 2
        answers[item.id] = min(top, total)
        total -= answers[item.id]
    answers.update(overrides)
    return answers


def test_maximum_is_52():
    result = score("hamd17", rated(52))
    assert result.total == 52
    assert result.complete is True
    assert get_instrument("hamd17").total_range == (0, 52)


def test_nine_items_are_0_to_4_and_eight_are_0_to_2():
    items = {i.id: i.value_range for i in get_instrument("hamd17").items}
    assert {k for k, r in items.items() if r == (0, 4)} == WIDE
    assert items["q16a"] == items["q16b"] == (0, 3)  # 3 = not assessed


@pytest.mark.parametrize("item", ["q4", "q5", "q6", "q12", "q13", "q14", "q17"])
@pytest.mark.parametrize("bad", [3, 4])
def test_3_or_4_on_a_0_to_2_item_is_rejected(item, bad):
    result = score("hamd17", rated(0, **{item: bad}))
    assert result.total is None
    assert f"({item})" in result.errors[0]


def test_item_16_value_3_not_assessed_scores_0():
    result = score("hamd17", rated(10, q16a=3))
    assert result.total == 10
    assert result.complete is True
    assert any("Not assessed" in note for note in result.notes)


def test_item_16_rated_by_measured_weight_change():
    result = score("hamd17", rated(0, item16="q16b", q16b=2))
    assert result.total == 2
    assert result.details["item16_rated_by"] == "measured_weight"


def test_item_16_a_and_b_both_answered_is_an_error():
    result = score("hamd17", rated(0, q16b=0))
    assert result.total is None
    assert result.complete is False
    assert "16a and 16b" in result.errors[0]


def test_item_16_unanswered_gives_no_total():
    result = score("hamd17", rated(5, q16a=None))
    assert result.total is None
    assert result.missing_items == ("q16a", "q16b")


def test_suicide_item_3_flags_at_1_and_is_unknown_when_missing():
    assert "suicidality" in score("hamd17", rated(0, q3=1)).flags
    assert "suicidality" not in score("hamd17", rated(0)).flags
    result = score("hamd17", rated(0, q3=None))
    assert result.flags == {"suicidality_unknown"}
    assert result.total is None


@pytest.mark.parametrize(
    ("total", "band"),
    [(7, "none"), (8, "mild"), (16, "mild"), (17, "moderate"), (23, "moderate"), (24, "severe")],
)
def test_zimmerman_2013_bands_are_the_default(total, band):
    result = score("hamd17", rated(total))
    assert result.band == band
    assert result.convention == {"bands": "zimmerman2013"}


@pytest.mark.parametrize(
    ("total", "band"),
    [
        (7, "normal"),
        (8, "mild"),
        (13, "mild"),
        (14, "moderate"),
        (18, "moderate"),
        (19, "severe"),
        (22, "severe"),
        (23, "very_severe"),
        (52, "very_severe"),
    ],
)
def test_consensus_bands_option(total, band):
    result = score("hamd17", rated(total), bands="consensus")
    assert result.band == band
    assert result.convention == {"bands": "consensus"}


def test_unknown_band_convention_raises():
    with pytest.raises(ValueError, match="zimmerman2013"):
        score("hamd17", rated(0), bands="hamilton")


def test_a_sequence_lists_16a_and_16b_in_order():
    answers = [0] * 15 + [1, None, 1]
    result = score("hamd17", answers)
    assert result.total == 2
    assert get_instrument("hamd17").item_ids[15:] == ("q16a", "q16b", "q17")


def test_items_18_to_21_are_not_part_of_the_scale():
    assert len(get_instrument("hamd17").items) == 18  # 17 items, item 16 as 16a / 16b
    result = score("hamd17", [0] * 19)
    assert result.total is None
    assert "19 answers" in result.errors[0]
