"""PCL-5: instruments.md §7 and §16.2 (cluster rule and cut-point are separate outputs)."""

import pytest

from ketaclinic.clinical.instruments import get_instrument, score


def with_items(**values: int) -> list[int]:
    answers = [0] * 20
    for key, value in values.items():
        answers[int(key[1:]) - 1] = value
    return answers


MINIMAL_RULE = with_items(q1=2, q6=2, q8=2, q9=2, q15=2, q16=2)


def test_cluster_rule_met_with_a_total_as_low_as_12():
    result = score("pcl5", MINIMAL_RULE)
    assert result.total == 12
    assert result.band == "below_cutoff"
    assert "provisional_ptsd" in result.flags
    assert result.details["cluster_rule_met"] is True
    assert result.subscales == {"B": 2, "C": 2, "D": 4, "E": 4}


def test_high_total_while_the_cluster_rule_fails():
    answers = [4] * 20
    answers[5] = answers[6] = 0  # no avoidance symptom (cluster C)
    result = score("pcl5", answers)
    assert result.total == 72
    assert result.band == "probable_ptsd"
    assert "provisional_ptsd" not in result.flags
    assert result.details["cluster_rule_met"] is False
    assert result.details["symptoms_C"] == 0


def test_a_symptom_needs_an_item_at_2_not_1():
    result = score("pcl5", [1] * 20)
    assert result.total == 20
    assert "provisional_ptsd" not in result.flags


@pytest.mark.parametrize(
    ("drop", "cluster"),
    [("q1", "B"), ("q6", "C"), ("q9", "D"), ("q16", "E")],
)
def test_each_cluster_minimum_is_needed(drop, cluster):
    answers = list(MINIMAL_RULE)
    answers[int(drop[1:]) - 1] = 1
    result = score("pcl5", answers)
    assert "provisional_ptsd" not in result.flags
    assert result.details[f"symptoms_{cluster}"] == {"B": 0, "C": 0, "D": 1, "E": 1}[cluster]


@pytest.mark.parametrize(("total", "band"), [(32, "below_cutoff"), (33, "probable_ptsd")])
def test_cutoff_33_boundary(total, band):
    answers = [0] * 20
    for i in range(20):
        answers[i] = min(4, total - sum(answers))
    assert score("pcl5", answers).band == band


def test_cutoff_is_configurable_and_recorded():
    answers = [4, 4, 4, 4, 4, 4, 4, 3] + [0] * 12  # 31
    assert score("pcl5", answers).band == "below_cutoff"
    result = score("pcl5", answers, cutoff=31)
    assert result.band == "probable_ptsd"
    assert result.convention == {"cutoff": 31}


def test_cluster_severity_ranges():
    result = score("pcl5", [4] * 20)
    assert result.total == 80
    assert result.subscales == {"B": 20, "C": 8, "D": 28, "E": 24}


def test_missing_item_gives_no_total_and_no_diagnosis_even_if_the_rule_looks_met():
    answers = [4] * 19 + [None]
    result = score("pcl5", answers)
    assert result.total is None
    assert result.complete is False
    assert "provisional_ptsd" not in result.flags
    assert result.details["cluster_rule_met"] is None
    assert result.subscales["E"] is None
    assert result.subscales["B"] == 20


def test_out_of_range_is_an_error():
    result = score("pcl5", with_items(q20=5))
    assert result.total is None
    assert "item 20" in result.errors[0]


def test_definition():
    pcl5 = get_instrument("pcl5")
    assert len(pcl5.items) == 20
    assert pcl5.loinc_panel == "101697-1"
    assert pcl5.loinc_total == "101698-9"
    assert [o.label for o in pcl5.items[0].options] == [
        "Not at all",
        "A little bit",
        "Moderately",
        "Quite a bit",
        "Extremely",
    ]
    assert all(item.wording for item in pcl5.items)
    assert pcl5.total_range == (0, 80)
