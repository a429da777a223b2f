"""Pain NRS and PEG-3: instruments.md §11 and §16.8 (PEG is a mean, not a sum)."""

import pytest

from ketaclinic.clinical.instruments import get_instrument, score


@pytest.mark.parametrize(
    ("value", "band"),
    [(0, "none"), (1, "mild"), (3, "mild"), (4, "moderate"), (6, "moderate"), (7, "severe")],
)
def test_nrs_common_bands(value, band):
    result = score("pain_nrs", [value])
    assert (result.total, result.band) == (value, band)
    assert result.convention == {"bands": "common"}


@pytest.mark.parametrize(
    ("value", "band"),
    [(0, "mild"), (4, "mild"), (5, "moderate"), (6, "moderate"), (7, "severe"), (10, "severe")],
)
def test_nrs_serlin_bands(value, band):
    assert score("pain_nrs", {"pain": value}, bands="serlin1995").band == band


@pytest.mark.parametrize("bad", [11, -1, 5.5, True, "5"])
def test_nrs_invalid_values(bad):
    result = score("pain_nrs", [bad])
    assert result.total is None
    assert "(pain)" in result.errors[0]


def test_nrs_missing_gives_no_total():
    assert score("pain_nrs", [None]).total is None


@pytest.mark.parametrize(
    ("answers", "mean"),
    [([3, 4, 5], 4.0), ([1, 2, 2], 1.7), ([0, 0, 1], 0.3), ([10, 10, 10], 10.0), ([7, 8, 8], 7.7)],
)
def test_peg_is_the_mean_to_one_decimal(answers, mean):
    result = score("peg", answers)
    assert result.total == mean
    assert isinstance(result.total, float)
    assert result.raw_total == sum(answers)


def test_peg_needs_all_three_items():
    result = score("peg", [5, None, 5])
    assert result.total is None
    assert result.complete is False
    assert result.missing_items == ("q2",)


def test_peg_out_of_range():
    assert score("peg", [5, 11, 5]).errors


def test_peg_definition():
    peg = get_instrument("peg")
    assert peg.loinc_panel == "91148-7"
    assert peg.loinc_total == "91147-9"
    assert [i.loinc for i in peg.items] == ["75893-8", "91145-3", "91146-1"]
    assert all(item.wording for item in peg.items)
    assert all(item.answer_type == "numeric" for item in peg.items)
    assert get_instrument("pain_nrs").items[0].wording
