"""QIDS-SR16: instruments.md §4 and §16.1 (domain max, never the sum of 16 items)."""

import pytest

from ketaclinic.clinical.instruments import get_instrument, score


def from_domains(sleep, mood, appetite, conc, self_view, suicide, interest, energy, psycho):
    """16 answers whose 9 domains have the given scores (items 7 and 9 blank by design)."""
    return [
        sleep, 0, 0, 0,
        mood,
        appetite, None, 0, None,
        conc, self_view, suicide, interest, energy,
        psycho, 0,
    ]  # fmt: skip


def test_worked_example_takes_the_max_of_each_domain():
    answers = [1, 3, 0, 2, 2, 1, None, None, 2, 1, 0, 0, 1, 2, 0, 3]
    result = score("qids_sr16", answers)
    assert result.subscales == {
        "sleep": 3,
        "mood": 2,
        "appetite_weight": 2,
        "concentration": 1,
        "self_view": 0,
        "suicidal_ideation": 0,
        "interest": 1,
        "energy": 2,
        "psychomotor": 3,
    }
    assert result.total == 14
    assert result.band == "moderate"
    assert result.complete is True
    assert result.raw_total == 18  # the wrong answer: summing all answered items


def test_maximum_is_27_not_48():
    result = score("qids_sr16", [3] * 16)
    assert result.total == 27
    assert result.band == "very_severe"


@pytest.mark.parametrize(
    ("domains", "band"),
    [
        ((0, 0, 0, 0, 0, 0, 0, 0, 0), "none"),
        ((3, 2, 0, 0, 0, 0, 0, 0, 0), "none"),
        ((3, 3, 0, 0, 0, 0, 0, 0, 0), "mild"),
        ((3, 3, 3, 1, 0, 0, 0, 0, 0), "mild"),
        ((3, 3, 3, 2, 0, 0, 0, 0, 0), "moderate"),
        ((3, 3, 3, 3, 3, 0, 0, 0, 0), "moderate"),
        ((3, 3, 3, 3, 3, 0, 1, 0, 0), "severe"),
        ((3, 3, 3, 3, 3, 0, 3, 2, 0), "severe"),
        ((3, 3, 3, 3, 3, 0, 3, 3, 0), "very_severe"),
    ],
)
def test_band_boundaries(domains, band):
    result = score("qids_sr16", from_domains(*domains))
    assert result.total == sum(domains)
    assert result.band == band


def test_either_6_or_7_and_either_8_or_9_blank_by_design():
    answers = from_domains(1, 1, 2, 1, 1, 0, 1, 1, 1)
    result = score("qids_sr16", answers)
    assert result.complete is True
    assert result.missing_items == ()


def test_both_answered_in_a_pair_is_fine_and_takes_the_max():
    answers = [0] * 16
    answers[5], answers[6] = 1, 3
    assert score("qids_sr16", answers).subscales["appetite_weight"] == 3


def test_all_of_6_to_9_blank_gives_no_total_and_names_the_domain():
    answers = [1] * 16
    answers[5:9] = [None] * 4
    result = score("qids_sr16", answers)
    assert result.total is None
    assert result.band is None
    assert result.complete is False
    assert result.missing_domains == ("appetite_weight",)


def test_a_blank_pair_is_listed_even_when_the_domain_is_scored():
    answers = [1] * 16
    answers[5], answers[6] = None, None
    result = score("qids_sr16", answers)
    assert result.total == 9
    assert result.complete is False
    assert result.missing_items == ("q6", "q7")


def test_domain_max_over_answered_items_when_a_sleep_item_is_blank():
    answers = [2, None, 0, 1] + [0] * 12
    result = score("qids_sr16", answers)
    assert result.subscales["sleep"] == 2
    assert result.total == 2
    assert result.complete is False
    assert result.missing_items == ("q2",)


def test_item_12_flags_and_missing_item_12_is_unknown_with_no_total():
    assert "suicidality" in score("qids_sr16", from_domains(0, 0, 0, 0, 0, 1, 0, 0, 0)).flags
    answers = from_domains(0, 0, 0, 0, 0, 0, 0, 0, 0)
    answers[11] = None
    result = score("qids_sr16", answers)
    assert result.flags == {"suicidality_unknown"}
    assert result.total is None
    assert result.missing_domains == ("suicidal_ideation",)


def test_out_of_range_is_an_error():
    answers = [0] * 16
    answers[0] = 4
    result = score("qids_sr16", answers)
    assert result.total is None
    assert "item 1" in result.errors[0]


def test_definition_ships_no_wording():
    qids = get_instrument("qids_sr16")
    assert len(qids.items) == 16
    assert all(item.wording is None for item in qids.items)
    assert qids.safety_item == "q12"
    assert qids.recall_period == "Last 7 days"
    assert [item.required for item in qids.items[5:9]] == [False] * 4
