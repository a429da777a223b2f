"""CADSS and CADSS-6: instruments.md §9."""

import pytest

from ketaclinic.clinical.instruments import get_instrument, score


def test_total_of_23_subjective_items_is_0_to_92():
    assert score("cadss", [4] * 23).total == 92
    assert score("cadss", [0] * 23).total == 0
    assert get_instrument("cadss").total_range == (0, 92)


def test_component_subscales_partition_items_1_to_23():
    cadss = get_instrument("cadss")
    ids = [item_id for sub in cadss.subscales for item_id in sub.items]
    assert sorted(ids, key=lambda i: int(i[1:])) == [f"q{n}" for n in range(1, 24)]
    assert {s.name: len(s.items) for s in cadss.subscales} == {
        "depersonalization": 7,
        "derealization": 12,
        "amnesia": 4,
    }
    assert all(s.note and "not confirmed" in s.note for s in cadss.subscales)


def test_component_scores():
    answers = [0] * 23
    for n in (3, 4, 5, 6, 7, 20, 23):
        answers[n - 1] = 1
    for n in (14, 15, 21, 22):
        answers[n - 1] = 2
    result = score("cadss", answers)
    assert result.subscales == {"depersonalization": 7, "derealization": 0, "amnesia": 8}
    assert result.total == 15


def test_no_bands_are_published():
    result = score("cadss", [1] * 23)
    assert result.band is None
    assert get_instrument("cadss").bands == ()


def test_missing_item_gives_no_total_but_other_components_stand():
    answers = [1] * 23
    answers[13] = None  # item 14: amnesia
    result = score("cadss", answers)
    assert result.total is None
    assert result.subscales["amnesia"] is None
    assert result.subscales["depersonalization"] == 7


def test_cadss6_is_items_1_2_6_7_15_22_summing_0_to_24():
    cadss6 = get_instrument("cadss6")
    assert cadss6.item_ids == ("q1", "q2", "q6", "q7", "q15", "q22")
    assert score("cadss6", [4] * 6).total == 24
    assert cadss6.total_range == (0, 24)


def test_cadss6_total_matches_the_same_items_of_a_full_cadss():
    full = {f"q{n}": n % 5 for n in range(1, 24)}
    cadss6_ids = get_instrument("cadss6").item_ids
    expected = sum(full[i] for i in cadss6_ids)
    assert score("cadss6", {i: full[i] for i in cadss6_ids}).total == expected


@pytest.mark.parametrize("code", ["cadss", "cadss6"])
def test_out_of_range_is_an_error(code):
    n = len(get_instrument(code).items)
    result = score(code, [5] + [0] * (n - 1))
    assert result.total is None
    assert "item 1" in result.errors[0]


def test_definitions_ship_no_wording():
    for code in ("cadss", "cadss6"):
        assert all(item.wording is None for item in get_instrument(code).items)
