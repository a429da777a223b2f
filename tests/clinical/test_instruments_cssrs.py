"""C-SSRS screener: instruments.md §8 and §16.4 (skip logic, triage, unasked != No)."""

import pytest

from ketaclinic.clinical.instruments import get_instrument, score

Y, N = True, False


def answers(q1=N, q2=N, q3=None, q4=None, q5=None, q6=N, q6a=None):
    return {"q1": q1, "q2": q2, "q3": q3, "q4": q4, "q5": q5, "q6": q6, "q6a": q6a}


@pytest.mark.parametrize(
    ("given", "level"),
    [
        (answers(), "no_risk"),
        (answers(q1=Y), "low"),
        (answers(q2=Y, q3=N, q4=N, q5=N), "low"),
        (answers(q1=Y, q2=Y, q3=N, q4=N, q5=N), "low"),
        (answers(q2=Y, q3=Y, q4=N, q5=N), "moderate"),
        (answers(q6=Y, q6a=N), "moderate"),
        (answers(q2=Y, q3=N, q4=Y, q5=N), "high"),
        (answers(q2=Y, q3=N, q4=N, q5=Y), "high"),
        (answers(q6=Y, q6a=Y), "high"),
        (answers(q1=Y, q2=Y, q3=Y, q4=N, q5=N, q6=Y, q6a=Y), "high"),  # highest wins
        (answers(q1=Y, q2=Y, q3=Y, q4=N, q5=N, q6=Y, q6a=N), "moderate"),
    ],
)
def test_triage_levels(given, level):
    result = score("cssrs_screen", given)
    assert result.band == level
    assert result.complete is True
    assert result.total is None  # no summed score for the screener
    assert result.errors == ()


def test_no_to_every_question_asked_raises_no_flag():
    result = score("cssrs_screen", [N, N, None, None, None, N, None])
    assert result.band == "no_risk"
    assert result.flags == frozenset()


def test_trailing_6a_may_be_left_off_a_sequence():
    assert score("cssrs_screen", [N, N, None, None, None, N]).band == "no_risk"


@pytest.mark.parametrize(
    "given", [answers(q1=Y), answers(q6=Y, q6a=N), answers(q2=Y, q3=N, q4=N, q5=N)]
)
def test_any_yes_flags_suicidality(given):
    assert "suicidality" in score("cssrs_screen", given).flags


@pytest.mark.parametrize(("item", "value"), [("q3", N), ("q4", Y), ("q5", N)])
def test_items_3_to_5_answered_when_item_2_is_no_are_errors(item, value):
    result = score("cssrs_screen", {**answers(), item: value})
    assert result.total is None
    assert result.band is None
    assert result.complete is False
    assert len(result.errors) == 1
    assert f"({item})" in result.errors[0]
    assert "item 2" in result.errors[0]


def test_6a_answered_when_6_is_no_is_an_error():
    result = score("cssrs_screen", answers(q6a=N))
    assert "(q6a)" in result.errors[0]
    assert "item 6 " in result.errors[0]


def test_a_yes_that_breaks_the_skip_logic_still_flags():
    result = score("cssrs_screen", answers(q4=Y))
    assert result.errors
    assert "suicidality" in result.flags


@pytest.mark.parametrize("item", ["q1", "q2", "q6"])
def test_unanswered_always_asked_item_is_unknown(item):
    result = score("cssrs_screen", {**answers(), item: None})
    assert "suicidality_unknown" in result.flags
    assert result.complete is False
    assert result.band is None
    assert result.missing_items == (item,)


@pytest.mark.parametrize("item", ["q3", "q4", "q5"])
def test_unanswered_3_to_5_after_a_yes_to_2_is_unknown(item):
    result = score("cssrs_screen", {**answers(q2=Y, q3=N, q4=N, q5=N), item: None})
    assert result.flags == {"suicidality", "suicidality_unknown"}
    assert result.complete is False
    assert result.band is None
    assert result.details["risk_level_at_least"] == "low"


def test_unanswered_6a_after_a_yes_to_6_is_unknown_and_at_least_moderate():
    result = score("cssrs_screen", answers(q6=Y))
    assert "suicidality_unknown" in result.flags
    assert result.band is None
    assert result.details["risk_level_at_least"] == "moderate"


def test_high_is_certain_even_with_unanswered_items():
    result = score("cssrs_screen", answers(q2=Y, q3=None, q4=Y, q5=None, q6=None))
    assert result.band == "high"
    assert result.complete is False
    assert {"suicidality", "suicidality_unknown"} <= result.flags


def test_unasked_items_are_not_unknown_when_2_and_6_are_no():
    result = score("cssrs_screen", answers())
    assert result.missing_items == ()
    assert "suicidality_unknown" not in result.flags


@pytest.mark.parametrize("bad", [1, 0, "Yes", "no"])
def test_yes_no_items_take_booleans_only(bad):
    result = score("cssrs_screen", {**answers(), "q1": bad})
    assert result.errors
    assert "item 1" in result.errors[0]
    assert "suicidality_unknown" in result.flags


def test_definition():
    cssrs = get_instrument("cssrs_screen")
    assert cssrs.loinc_panel == "93373-9"
    assert [i.loinc for i in cssrs.items] == [
        "93246-7",
        "93247-5",
        "93248-3",
        "93249-1",
        "93250-9",
        "93267-3",
        "93269-9",
    ]
    assert [(o.value, o.loinc) for o in cssrs.items[0].options] == [
        (True, "LA33-6"),
        (False, "LA32-8"),
    ]
    assert [i.asked_if for i in cssrs.items] == [
        None,
        None,
        ("q2", True),
        ("q2", True),
        ("q2", True),
        None,
        ("q6", True),
    ]
    assert cssrs.total_range is None
    assert cssrs.band_codes == ("no_risk", "low", "moderate", "high")
    assert all(item.wording is None for item in cssrs.items)
