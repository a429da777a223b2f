"""PHQ-2: instruments.md §2 (ARROLL cut-offs >= 3 and >= 2)."""

import pytest

from ketaclinic.clinical.instruments import get_instrument, score


@pytest.mark.parametrize(
    ("answers", "total", "band"),
    [
        ([0, 0], 0, "negative"),
        ([1, 1], 2, "negative"),
        ([2, 1], 3, "positive"),
        ([3, 3], 6, "positive"),
    ],
)
def test_default_cutoff_is_3(answers, total, band):
    result = score("phq2", answers)
    assert (result.total, result.band) == (total, band)
    assert result.convention == {"cutoff": 3}


@pytest.mark.parametrize(("answers", "band"), [([1, 0], "negative"), ([1, 1], "positive")])
def test_cutoff_2_option(answers, band):
    result = score("phq2", answers, cutoff=2)
    assert result.band == band
    assert result.convention == {"cutoff": 2}


def test_configured_bands_are_visible_on_the_instrument():
    bands = get_instrument("phq2").configured(cutoff=2).bands
    assert [(b.code, b.low, b.high) for b in bands] == [
        ("negative", 0, 1),
        ("positive", 2, 6),
    ]


@pytest.mark.parametrize("bad", [0, 7, "3", 2.0, True])
def test_bad_cutoff_raises(bad):
    with pytest.raises(ValueError, match="cutoff"):
        score("phq2", [1, 1], cutoff=bad)


def test_unknown_option_raises_naming_the_valid_ones():
    with pytest.raises(ValueError, match="cutoff"):
        score("phq2", [1, 1], bands="x")


def test_missing_item_gives_no_total():
    result = score("phq2", [3, None])
    assert result.total is None
    assert result.complete is False
    assert result.missing_items == ("q2",)


def test_definition_reuses_phq9_items_1_and_2():
    phq2 = get_instrument("phq2")
    assert phq2.loinc_panel == "55757-9"
    assert phq2.loinc_total == "55758-7"
    assert [i.loinc for i in phq2.items] == ["44250-9", "44255-8"]
    assert phq2.items == get_instrument("phq9").items[:2]
    assert phq2.safety_items == ()
