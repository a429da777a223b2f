"""GAD-7: instruments.md §3."""

import pytest

from ketaclinic.clinical.instruments import get_instrument, score


def summing_to(total: int) -> list[int]:
    answers = []
    for _ in range(7):
        answers.append(min(3, total))
        total -= answers[-1]
    return answers


@pytest.mark.parametrize(
    ("total", "band"),
    [
        (0, "minimal"),
        (4, "minimal"),
        (5, "mild"),
        (9, "mild"),
        (10, "moderate"),
        (14, "moderate"),
        (15, "severe"),
        (21, "severe"),
    ],
)
def test_band_boundaries(total, band):
    result = score("gad7", summing_to(total))
    assert (result.total, result.band, result.complete) == (total, band, True)


def test_difficulty_item_is_never_added_and_may_be_blank():
    assert score("gad7", [3] * 7 + [3]).total == 21
    assert score("gad7", [0] * 7 + [3]).total == 0
    assert score("gad7", [1] * 7 + [None]).complete is True


def test_no_safety_flag_on_gad7():
    assert score("gad7", [3] * 7).flags == frozenset()


def test_missing_item_gives_no_total_by_default():
    result = score("gad7", [1, 1, 1, None, 1, 1, 1])
    assert result.total is None
    assert result.prorated is False
    assert result.missing_items == ("q4",)


def test_optional_proration_of_one_item_is_flagged():
    result = score("gad7", [1, 1, 1, None, 1, 1, 2], prorate_max_missing=1)
    assert result.prorated is True
    assert result.total == 8  # 7 x 7 / 6 = 8.17
    assert score("gad7", [1, 1, None, None, 1, 1, 1], prorate_max_missing=1).total is None


def test_proration_beyond_one_item_is_not_offered():
    with pytest.raises(ValueError):
        score("gad7", [1] * 7, prorate_max_missing=2)


def test_out_of_range_is_an_error():
    result = score("gad7", [1, 1, 1, 1, 1, 1, 4])
    assert result.total is None
    assert "item 7" in result.errors[0]


def test_definition():
    gad7 = get_instrument("gad7")
    assert gad7.loinc_panel == "69737-5"
    assert gad7.loinc_total == "70274-6"
    assert [i.loinc for i in gad7.items[:7]] == [
        "69725-0",
        "68509-9",
        "69733-4",
        "69734-2",
        "69735-9",
        "69689-8",
        "69736-7",
    ]
    assert gad7.items[7].scored is False
    assert gad7.items[7].loinc is None  # not confirmed in the reference
    assert all(item.wording for item in gad7.items)
