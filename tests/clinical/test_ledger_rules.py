"""Controlled-substance arithmetic and record-keeping rules (ketaclinic.clinical.ledger): units,
the replay that `ketaclinic ledger verify` runs, DEA deadlines and the inventory rules."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketaclinic.clinical.ledger import (
    ADMINISTRATION,
    DRAW,
    MAX_QUANTITY_UG,
    WASTE,
    Movement,
    form_106_due,
    format_mg,
    mg_to_ug,
    ml_to_ug,
    next_business_day_end,
    next_inventory_due,
    opened_container_may_be_estimated,
    replay,
    ug_to_mg,
    ug_to_ml,
)

D = Decimal
NY = ZoneInfo("America/New_York")

# --- units ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mg", "ug"),
    [
        ("35", 35_000),
        (35, 35_000),
        ("2.5", 2_500),
        ("2.5000", 2_500),  # trailing zeros are not precision
        (" 462.5 ", 462_500),
        ("0.001", 1),
        (D("500"), 500_000),
        (0.5, 500),
        ("1E+2", 100_000),
    ],
)
def test_mg_to_micrograms(mg, ug):  # type: ignore[no-untyped-def]
    assert mg_to_ug(mg) == ug


@pytest.mark.parametrize("mg", ["2.5001", "0.0005", "35.0001", 0.1 + 0.2])
def test_more_precision_than_a_microgram_is_refused(mg):  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="precision"):
        mg_to_ug(mg)


@given(st.integers(0, 10**9), st.integers(4, 40), st.integers(1, 9))
def test_any_fraction_finer_than_a_microgram_is_refused(ug, places, last_digit):  # type: ignore[no-untyped-def]
    """Even past the 28 significant digits of the default decimal context, which once
    rounded '0.1000000000000000000000000000001' to 0.1 and accepted it as 100 µg."""
    mg = f"{ug // 1000}.{ug % 1000:03d}{'0' * (places - 4)}{last_digit}"
    with pytest.raises(ValueError, match="precision"):
        mg_to_ug(mg)
    with pytest.raises(ValueError):
        ml_to_ug(f"0.7{'0' * places}{last_digit}", 50)


@pytest.mark.parametrize("mg", ["0", 0, "-0.001", -35, "-0"])
def test_an_amount_must_be_more_than_zero(mg):  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="more than 0"):
        mg_to_ug(mg)


@pytest.mark.parametrize("mg", ["", "abc", None, True, "NaN", "Infinity", "1,5", [35]])
def test_an_amount_must_be_a_finite_number(mg):  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="number"):
        mg_to_ug(mg)


@pytest.mark.parametrize(
    ("ml", "concentration", "ug"),
    [
        ("0.70", 50, 35_000),  # clinical.md §5.10: 35 mg = 0.70 mL
        ("0.05", 50, 2_500),  # the wasted residue
        ("0.75", "50", 37_500),
        ("1", 50, 50_000),  # a count 1 mL out
        ("10", 50, 500_000),  # a whole vial
        ("0.01", 10, 100),
        ("2", "100", 200_000),
        ("0.33", "0.5", 165),
    ],
)
def test_ml_to_micrograms(ml, concentration, ug):  # type: ignore[no-untyped-def]
    assert ml_to_ug(ml, concentration) == ug


def test_a_volume_finer_than_a_syringe_is_refused():  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="0.01 mL"):
        ml_to_ug("0.755", 50)
    with pytest.raises(ValueError, match="0.01 mL"):
        ml_to_ug("0.001", 50)


def test_a_volume_that_is_not_whole_micrograms_is_refused():  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match="whole number"):
        ml_to_ug("0.01", "0.0001")  # 0.001 µg


@pytest.mark.parametrize(
    ("ml", "concentration"), [("0", 50), ("-1", 50), ("1", 0), ("1", "-50"), ("x", 50), ("1", None)]
)
def test_volume_and_concentration_must_be_positive_numbers(ml, concentration):  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError):
        ml_to_ug(ml, concentration)


@pytest.mark.parametrize(
    ("ug", "text"),
    [
        (462_500, "462.5 mg"),
        (35_000, "35 mg"),
        (1, "0.001 mg"),
        (500_000, "500 mg"),
        (0, "0 mg"),
        (10_000_000, "10000 mg"),
    ],
)
def test_format_mg(ug, text):  # type: ignore[no-untyped-def]
    assert format_mg(ug) == text


def test_ug_to_mg_is_never_in_exponent_form():  # type: ignore[no-untyped-def]
    """str() of it goes onto Form 41 records: '500', never '5E+2'."""
    assert str(ug_to_mg(500_000)) == "500"
    assert str(ug_to_mg(10_000_000)) == "10000"
    assert str(ug_to_mg(462_500)) == "462.5"


def test_ug_to_ml():  # type: ignore[no-untyped-def]
    assert ug_to_ml(35_000, D("50")) == D("0.700")
    assert ug_to_ml(462_500, D("50")) == D("9.250")


@given(st.integers(1, 10**10))
def test_micrograms_survive_the_round_trip_through_mg(ug):  # type: ignore[no-untyped-def]
    text = format_mg(ug)
    assert "E" not in text and "e" not in text
    assert mg_to_ug(text.removesuffix(" mg")) == ug
    assert mg_to_ug(str(ug_to_mg(ug))) == ug


@given(st.integers(1, 5000), st.sampled_from([D("50"), D("100"), D("10"), D("12.5")]))
def test_volumes_in_hundredths_of_a_ml_are_whole_micrograms(hundredths, concentration):  # type: ignore[no-untyped-def]
    ml = D(hundredths) / 100
    ug = ml_to_ug(str(ml), concentration)
    assert ug == hundredths * concentration * 10
    assert ug_to_ml(ug, concentration) == ml.quantize(D("0.001"))


# --- replay -----------------------------------------------------------------------------------


def movements_from(rows):  # type: ignore[no-untyped-def]
    return [Movement(entry_id=n, **row) for n, row in enumerate(rows, start=1)]


def test_replay_of_the_worked_example():  # type: ignore[no-untyped-def]
    result = replay(
        movements_from(
            [
                dict(
                    container_id=1,
                    lot_id=9,
                    delta_ug=500_000,
                    kind="receipt",
                    quantity_ug=500_000,
                    stated_container_balance=500_000,
                    stated_lot_balance=500_000,
                ),
                dict(
                    container_id=1,
                    lot_id=9,
                    delta_ug=-37_500,
                    kind=DRAW,
                    quantity_ug=37_500,
                    stated_container_balance=462_500,
                    stated_lot_balance=462_500,
                ),
                dict(
                    container_id=1,
                    lot_id=9,
                    delta_ug=0,
                    kind=ADMINISTRATION,
                    quantity_ug=35_000,
                    draw_id=2,
                ),
                dict(
                    container_id=1, lot_id=9, delta_ug=0, kind=WASTE, quantity_ug=2_500, draw_id=2
                ),
            ]
        )
    )
    assert result.problems == [] and result.first_problem is None
    assert result.container_balance == {1: 462_500} and result.lot_balance == {9: 462_500}


def test_replay_finds_a_balance_below_zero():  # type: ignore[no-untyped-def]
    result = replay(
        movements_from(
            [
                dict(container_id=1, lot_id=9, delta_ug=10_000),
                dict(container_id=2, lot_id=9, delta_ug=10_000),
                dict(container_id=1, lot_id=9, delta_ug=-15_000),  # container below, lot not
                dict(container_id=2, lot_id=9, delta_ug=-10_000),  # now the lot too
            ]
        )
    )
    assert result.problems == [
        (3, "container balance below zero (-5000 µg)"),
        (4, "lot balance below zero (-5000 µg)"),
    ]


def test_replay_finds_a_stored_balance_that_disagrees():  # type: ignore[no-untyped-def]
    result = replay(
        movements_from(
            [
                dict(
                    container_id=1,
                    lot_id=9,
                    delta_ug=500_000,
                    stated_container_balance=500_000,
                    stated_lot_balance=500_000,
                ),
                dict(
                    container_id=1,
                    lot_id=9,
                    delta_ug=-35_000,
                    stated_container_balance=466_000,
                    stated_lot_balance=465_000,
                ),
            ]
        )
    )
    assert result.first_problem == (2, "stored container balance 466000 µg, recomputed 465000 µg")
    assert len(result.problems) == 1


def test_replay_finds_a_syringe_used_beyond_its_draw_and_ignores_reversed_entries():  # type: ignore[no-untyped-def]
    rows = [
        dict(container_id=1, lot_id=9, delta_ug=500_000),
        dict(container_id=1, lot_id=9, delta_ug=-35_000, kind=DRAW, quantity_ug=35_000),
        dict(
            container_id=1,
            lot_id=9,
            delta_ug=0,
            kind=ADMINISTRATION,
            quantity_ug=35_000,
            draw_id=2,
            voided=True,
        ),  # reversed by entry 4
        dict(container_id=1, lot_id=9, delta_ug=0, kind="reversal", quantity_ug=35_000),
        dict(
            container_id=1, lot_id=9, delta_ug=0, kind=ADMINISTRATION, quantity_ug=30_000, draw_id=2
        ),
        dict(container_id=1, lot_id=9, delta_ug=0, kind=WASTE, quantity_ug=5_000, draw_id=2),
    ]
    assert replay(movements_from(rows)).problems == []
    rows.append(dict(container_id=1, lot_id=9, delta_ug=0, kind=WASTE, quantity_ug=1, draw_id=2))
    assert replay(movements_from(rows)).problems == [
        (7, "administered plus wasted (35001 µg) exceeds what draw 2 took (35000 µg)")
    ]


def test_replay_counts_nothing_against_a_reversed_draw():  # type: ignore[no-untyped-def]
    rows = [
        dict(container_id=1, lot_id=9, delta_ug=500_000),
        dict(
            container_id=1, lot_id=9, delta_ug=-35_000, kind=DRAW, quantity_ug=35_000, voided=True
        ),
        dict(container_id=1, lot_id=9, delta_ug=35_000, kind="reversal", quantity_ug=35_000),
    ]
    result = replay(movements_from(rows))
    assert result.problems == [] and result.container_balance == {1: 500_000}


LOT_OF = {0: 10, 1: 10, 2: 11}


@given(
    st.lists(st.tuples(st.sampled_from(sorted(LOT_OF)), st.integers(-20_000, 20_000)), max_size=40)
)
def test_replay_balances_are_running_sums_and_every_negative_is_reported(moves):  # type: ignore[no-untyped-def]
    containers: dict[int, int] = {}
    lots: dict[int, int] = {}
    expected: list[int] = []
    for n, (container, delta) in enumerate(moves, start=1):
        containers[container] = containers.get(container, 0) + delta
        lots[LOT_OF[container]] = lots.get(LOT_OF[container], 0) + delta
        expected += [n] * ((containers[container] < 0) + (lots[LOT_OF[container]] < 0))
    result = replay(
        movements_from([dict(container_id=c, lot_id=LOT_OF[c], delta_ug=d) for c, d in moves])
    )
    assert result.container_balance == containers and result.lot_balance == lots
    assert [entry for entry, _ in result.problems] == expected


@st.composite
def honest_ledger(draw):  # type: ignore[no-untyped-def]
    """Movements that never go below zero, with correct stated balances."""
    balances = {c: 0 for c in LOT_OF}
    lots = {lot: 0 for lot in LOT_OF.values()}
    rows = []
    for _ in range(draw(st.integers(1, 30))):
        container = draw(st.sampled_from(sorted(LOT_OF)))
        delta = draw(st.integers(-balances[container], 50_000))
        balances[container] += delta
        lots[LOT_OF[container]] += delta
        rows.append(
            dict(
                container_id=container,
                lot_id=LOT_OF[container],
                delta_ug=delta,
                stated_container_balance=balances[container],
                stated_lot_balance=lots[LOT_OF[container]],
            )
        )
    return rows


@given(honest_ledger(), st.data())
def test_an_honest_ledger_replays_clean_and_one_changed_balance_is_named(rows, data):  # type: ignore[no-untyped-def]
    assert replay(movements_from(rows)).problems == []
    n = data.draw(st.integers(0, len(rows) - 1))
    which = data.draw(st.sampled_from(["stated_container_balance", "stated_lot_balance"]))
    change = data.draw(st.integers(-1000, 1000).filter(bool))
    rows[n] = {**rows[n], which: rows[n][which] + change}
    assert [entry for entry, _ in replay(movements_from(rows)).problems] == [n + 1]


@given(
    st.lists(
        st.tuples(st.sampled_from([ADMINISTRATION, WASTE]), st.integers(1, 20_000)), max_size=12
    ),
    st.integers(1, 60_000),
)
def test_a_syringe_problem_is_reported_exactly_when_use_passes_the_draw(uses, drawn):  # type: ignore[no-untyped-def]
    rows = [
        dict(container_id=1, lot_id=9, delta_ug=500_000),
        dict(container_id=1, lot_id=9, delta_ug=-drawn, kind=DRAW, quantity_ug=drawn),
    ] + [
        dict(container_id=1, lot_id=9, delta_ug=0, kind=kind, quantity_ug=q, draw_id=2)
        for kind, q in uses
    ]
    total, expected = 0, []
    for n, (_, q) in enumerate(uses, start=3):
        total += q
        if total > drawn:
            expected.append(n)
    assert [entry for entry, _ in replay(movements_from(rows)).problems] == expected


# --- theft or significant loss: DEA notice and Form 106 -----------------------------------------


@pytest.mark.parametrize(
    ("discovered", "notice_due"),
    [
        (datetime(2025, 3, 7, 9, 0, tzinfo=NY), date(2025, 3, 10)),  # Friday -> Monday
        (datetime(2025, 3, 7, 23, 59, tzinfo=NY), date(2025, 3, 10)),  # late Friday
        (datetime(2025, 3, 8, 12, 0, tzinfo=NY), date(2025, 3, 10)),  # Saturday -> Monday
        (datetime(2025, 3, 9, 12, 0, tzinfo=NY), date(2025, 3, 10)),  # Sunday -> Monday
        (datetime(2025, 3, 6, 12, 0, tzinfo=NY), date(2025, 3, 7)),  # Thursday -> Friday
        (datetime(2025, 3, 10, 8, 0, tzinfo=NY), date(2025, 3, 11)),  # Monday -> Tuesday
    ],
)
def test_the_dea_notice_is_due_the_next_business_day(discovered, notice_due):  # type: ignore[no-untyped-def]
    assert next_business_day_end(discovered) == notice_due


def test_holidays_are_not_business_days():  # type: ignore[no-untyped-def]
    friday_before_memorial_day = datetime(2025, 5, 23, 15, 0, tzinfo=NY)
    assert next_business_day_end(friday_before_memorial_day, holidays=[date(2025, 5, 26)]) == (
        date(2025, 5, 27)
    )
    christmas_eve = datetime(2025, 12, 24, 17, 0, tzinfo=NY)  # Wednesday
    assert next_business_day_end(christmas_eve, holidays=[date(2025, 12, 25)]) == date(2025, 12, 26)


@pytest.mark.parametrize(
    ("discovered", "due"),
    [
        (datetime(2025, 3, 7, 9, 0, tzinfo=NY), date(2025, 4, 21)),
        (datetime(2025, 12, 20, 9, 0, tzinfo=NY), date(2026, 2, 3)),
        (datetime(2024, 1, 20, 9, 0, tzinfo=NY), date(2024, 3, 5)),  # through 29 February
    ],
)
def test_form_106_is_due_45_days_after_discovery(discovered, due):  # type: ignore[no-untyped-def]
    assert form_106_due(discovered) == due


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)))
def test_deadlines_for_any_discovery(discovered):  # type: ignore[no-untyped-def]
    notice = next_business_day_end(discovered)
    assert notice.weekday() < 5
    assert 1 <= (notice - discovered.date()).days <= 3
    assert all(
        (discovered.date() + timedelta(days=k)).weekday() >= 5
        for k in range(1, (notice - discovered.date()).days)
    ), "a business day was skipped"
    assert (form_106_due(discovered) - discovered.date()).days == 45


# --- inventories -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("last", "annual", "due"),
    [
        (date(2024, 5, 1), False, date(2026, 5, 1)),  # biennial
        (date(2024, 5, 1), True, date(2025, 5, 1)),  # a state requiring annual
        (date(2024, 2, 29), False, date(2026, 2, 28)),  # never later than 2 years
        (date(2024, 2, 29), True, date(2025, 2, 28)),
        (date(2023, 2, 28), False, date(2025, 2, 28)),
        (date(2026, 2, 28), False, date(2028, 2, 28)),  # not pushed to the leap day
        (date(2025, 12, 31), True, date(2026, 12, 31)),
    ],
)
def test_next_inventory_due(last, annual, due):  # type: ignore[no-untyped-def]
    assert next_inventory_due(last, annual=annual) == due


@given(st.dates(min_value=date(2000, 1, 1), max_value=date(2097, 12, 31)), st.booleans())
def test_next_inventory_is_never_later_than_the_anniversary(last, annual):  # type: ignore[no-untyped-def]
    years = 1 if annual else 2
    due = next_inventory_due(last, annual=annual)
    assert due.year == last.year + years
    assert 365 * years - 1 <= (due - last).days <= 365 * years + 1
    assert due <= date(last.year + years, last.month, 28) or (due.month, due.day) == (
        last.month,
        last.day,
    )


@pytest.mark.parametrize(
    ("units", "may_estimate"),
    [(None, True), (0, True), (100, True), (1000, True), (1001, False), (5000, False)],
)
def test_opened_containers_may_be_estimated_unless_over_1000_units(units, may_estimate):  # type: ignore[no-untyped-def]
    assert opened_container_may_be_estimated(units) is may_estimate


@pytest.mark.parametrize("huge", ["1e999999", "1E+9999999999", "9" * 40, "-1e999999"])
def test_a_huge_exponent_is_refused_before_any_arithmetic(huge: str) -> None:
    for call in (
        lambda: mg_to_ug(huge),
        lambda: ml_to_ug(huge, 50),
        lambda: ml_to_ug("1", huge),
    ):
        with pytest.raises(ValueError, match="out of range") as failure:
            call()
        assert len(str(failure.value)) < 120  # the figure is shortened, never echoed whole


def test_no_single_entry_is_over_ten_kilograms() -> None:
    assert mg_to_ug("10000000") == MAX_QUANTITY_UG
    with pytest.raises(ValueError, match="more than the ledger takes"):
        mg_to_ug("10000000.001")
    with pytest.raises(ValueError, match="more than the ledger takes"):
        ml_to_ug("200000.01", 50)
