"""PHQ-9: instruments.md §2 and §16.3."""

import pytest

from ketaclinic.clinical.instruments import get_instrument, score


def summing_to(total: int) -> list[int]:
    """Nine PHQ-9 answers adding up to total, item 9 kept at 0 where possible."""
    answers = [0] * 9
    left = total
    for i in list(range(8)) + [8]:
        answers[i] = min(3, left)
        left -= answers[i]
    return answers


def test_worked_example_sums_items_1_to_9():
    result = score("phq9", [1, 2, 0, 1, 3, 0, 0, 1, 1])
    assert result.total == 9
    assert result.band == "mild"
    assert result.complete is True
    assert result.prorated is False
    assert result.errors == ()
    assert result.flags == {"suicidality"}


@pytest.mark.parametrize(
    ("total", "band"),
    [
        (0, "minimal"),
        (4, "minimal"),
        (5, "mild"),
        (9, "mild"),
        (10, "moderate"),
        (14, "moderate"),
        (15, "moderately_severe"),
        (19, "moderately_severe"),
        (20, "severe"),
        (27, "severe"),
    ],
)
def test_band_boundaries_are_inclusive(total, band):
    result = score("phq9", summing_to(total))
    assert result.total == total
    assert result.band == band


def test_item_9_at_1_flags_even_when_the_total_is_1():
    result = score("phq9", [0, 0, 0, 0, 0, 0, 0, 0, 1])
    assert result.total == 1
    assert result.band == "minimal"
    assert "suicidality" in result.flags


def test_item_9_at_0_raises_no_flag():
    result = score("phq9", [3, 3, 3, 3, 3, 3, 3, 3, 0])
    assert result.flags == frozenset()


def test_missing_item_9_makes_suicidality_unknown_not_negative():
    result = score("phq9", [1, 1, 1, 1, 1, 1, 1, 1, None])
    assert "suicidality_unknown" in result.flags
    assert "suicidality" not in result.flags


def test_difficulty_item_is_never_added():
    assert score("phq9", [3] * 9 + [3]).total == 27
    assert score("phq9", [0] * 9 + [3]).total == 0


def test_difficulty_item_may_be_left_off_or_blank():
    assert score("phq9", [1] * 9).complete is True
    assert score("phq9", [1] * 9 + [None]).complete is True


def test_difficulty_item_out_of_range_is_an_error():
    result = score("phq9", [1] * 9 + [4])
    assert result.total is None
    assert any("q10" in e for e in result.errors)


def test_one_missing_item_is_prorated_and_rounded_half_up():
    # 4 from 8 answered items: 4 x 9 / 8 = 4.5 -> 5, which is mild, not minimal.
    result = score("phq9", [None, 1, 1, 1, 1, 0, 0, 0, 0])
    assert result.prorated is True
    assert result.complete is False
    assert result.raw_total == 4
    assert result.total == 5
    assert result.band == "mild"
    assert result.details["prorated_total_exact"] == 4.5
    assert result.missing_items == ("q1",)


def test_two_missing_items_are_prorated():
    # 10 from 7 answered: 90 / 7 = 12.86 -> 13.
    result = score("phq9", [2, 2, 2, 2, 2, None, None, 0, 0])
    assert result.total == 13
    assert result.band == "moderate"
    assert result.prorated is True


def test_prorated_total_rounds_down_below_a_half():
    # 10 from 8 answered: 90 / 8 = 11.25 -> 11.
    assert score("phq9", [2, 2, 2, 2, 2, 0, 0, None, 0]).total == 11


def test_three_missing_items_give_no_total():
    result = score("phq9", [3, 3, 3, 3, 3, 3, None, None, None])
    assert result.total is None
    assert result.band is None
    assert result.complete is False
    assert result.prorated is False
    assert result.missing_items == ("q7", "q8", "q9")


def test_proration_can_be_turned_off():
    result = score("phq9", [None, 1, 1, 1, 1, 1, 1, 1, 1], prorate_max_missing=0)
    assert result.total is None
    assert result.convention == {"prorate_max_missing": 0}


def test_missing_is_never_zero():
    assert score("phq9", [0, 0, 0, 0, 0, 0, 0, 0, None]).total == 0  # prorated 0, flagged
    assert score("phq9", [0, 0, 0, 0, 0, 0, 0, 0, None]).prorated is True


@pytest.mark.parametrize(
    ("answers", "syndrome"),
    [
        ([2, 2, 2, 2, 2, 0, 0, 0, 0], "major_depressive_syndrome"),
        ([0, 2, 2, 2, 2, 0, 0, 0, 1], "major_depressive_syndrome"),
        ([2, 0, 2, 0, 0, 0, 0, 0, 0], "other_depressive_syndrome"),
        ([2, 0, 0, 0, 0, 0, 0, 0, 1], "other_depressive_syndrome"),  # item 9 counts at >= 1
        ([2, 2, 2, 2, 0, 0, 0, 0, 0], "other_depressive_syndrome"),
        ([0, 0, 3, 3, 3, 3, 3, 3, 3], "none"),  # no core symptom
        ([1, 1, 1, 1, 1, 1, 1, 1, 0], "none"),  # items at 1 are not symptoms
        ([2, 0, 0, 0, 0, 0, 0, 0, 0], "none"),  # one symptom only
    ],
)
def test_diagnostic_algorithm(answers, syndrome):
    assert score("phq9", answers).details["depressive_syndrome"] == syndrome


def test_diagnostic_algorithm_is_not_run_on_prorated_data():
    result = score("phq9", [2, 2, 2, 2, 2, 2, 2, None, 0])
    assert result.prorated is True
    assert result.details["depressive_syndrome"] is None


@pytest.mark.parametrize("bad", [4, -1, 1.5, 2.0, True, "2", [1]])
def test_invalid_values_never_score_and_name_the_item(bad):
    answers = [1, 1, bad, 1, 1, 1, 1, 1, 1]
    result = score("phq9", answers)
    assert result.total is None
    assert result.complete is False
    assert len(result.errors) == 1
    assert "item 3" in result.errors[0]
    assert "q3" in result.errors[0]


def test_a_valid_positive_item_9_still_flags_when_another_item_is_invalid():
    result = score("phq9", [5, 0, 0, 0, 0, 0, 0, 0, 2])
    assert result.errors
    assert result.total is None
    assert "suicidality" in result.flags


def test_too_many_answers_is_an_error():
    result = score("phq9", [0] * 11)
    assert result.total is None
    assert "11 answers" in result.errors[0]


def test_mapping_scores_like_the_sequence():
    answers = [1, 2, 0, 1, 3, 0, 0, 1, 1]
    mapping = {f"q{n}": v for n, v in enumerate(answers, start=1)}
    assert score("phq9", mapping) == score("phq9", answers)


def test_unknown_item_in_a_mapping_is_an_error():
    result = score("phq9", {"q1": 1, "q11": 2})
    assert result.total is None
    assert "'q11'" in result.errors[0]


def test_definition():
    phq9 = get_instrument("phq9")
    assert phq9.rater == "patient"
    assert phq9.loinc_panel == "44249-1"
    assert phq9.loinc_total == "44261-6"
    assert [i.loinc for i in phq9.items] == [
        "44250-9",
        "44255-8",
        "44259-0",
        "44254-1",
        "44251-7",
        "44258-2",
        "44252-5",
        "44253-3",
        "44260-8",
        "69722-7",
    ]
    assert phq9.safety_item == "q9"
    assert [i.scored for i in phq9.items] == [True] * 9 + [False]
    assert [o.loinc for o in phq9.items[0].options] == [
        "LA6568-5",
        "LA6569-3",
        "LA6570-1",
        "LA6571-9",
    ]
    assert [o.label for o in phq9.items[0].options] == [
        "Not at all",
        "Several days",
        "More than half the days",
        "Nearly every day",
    ]
    assert all(item.wording for item in phq9.items)
    assert phq9.band_codes == ("minimal", "mild", "moderate", "moderately_severe", "severe")
