"""Modified Aldrete and modified PADSS: instruments.md §14 (ready at >= 9)."""

import pytest

from ketaclinic.clinical.instruments import get_instrument, score


@pytest.mark.parametrize("code", ["aldrete_modified", "padss_modified"])
@pytest.mark.parametrize(
    ("answers", "band"),
    [
        ([2, 2, 2, 2, 2], "ready"),
        ([2, 2, 2, 2, 1], "ready"),
        ([2, 2, 2, 1, 1], "not_ready"),
        ([0, 0, 0, 0, 0], "not_ready"),
    ],
)
def test_ready_at_9(code, answers, band):
    result = score(code, answers)
    assert result.total == sum(answers)
    assert result.band == band


@pytest.mark.parametrize("code", ["aldrete_modified", "padss_modified"])
def test_cutoff_is_configurable(code):
    result = score(code, [2, 2, 2, 1, 1], cutoff=8)
    assert result.band == "ready"
    assert result.convention == {"cutoff": 8}


def test_aldrete_items():
    aldrete = get_instrument("aldrete_modified")
    assert aldrete.item_ids == ("activity", "respiration", "circulation", "consciousness", "spo2")
    assert aldrete.higher_is_better is True
    assert aldrete.items[0].options[2].label == "Moves 4 extremities"


def test_padss_items():
    padss = get_instrument("padss_modified")
    assert padss.item_ids == ("vital_signs", "ambulation", "nausea_vomiting", "pain", "bleeding")


def test_named_items_in_a_mapping_and_errors_name_them():
    answers = {"activity": 2, "respiration": 2, "circulation": 2, "consciousness": 2, "spo2": 3}
    result = score("aldrete_modified", answers)
    assert result.total is None
    assert "(spo2)" in result.errors[0]


def test_missing_item_gives_no_total():
    result = score("padss_modified", {"vital_signs": 2, "ambulation": 2})
    assert result.total is None
    assert result.missing_items == ("nausea_vomiting", "pain", "bleeding")
