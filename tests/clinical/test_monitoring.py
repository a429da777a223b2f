from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketaclinic.clinical.monitoring import (
    MOAAS,
    VitalThresholds,
    bp_change_percent,
    check_device_interval,
    check_vitals,
    circulation_points,
    earliest_discharge,
    is_loss_of_consciousness,
    moaas_score,
    next_vitals_due,
    predose_bp_ok,
    vitals_schedule,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def offsets(times: list[datetime]) -> list[float]:
    return [(t - T0).total_seconds() / 60 for t in times]


# --- check_vitals -----------------------------------------------------------------------------


def test_normal_vitals_no_alert() -> None:
    assert check_vitals(120, 80, 70, 98) == frozenset()


@pytest.mark.parametrize(
    ("reading", "alerts"),
    [
        ((179, 80, 70, 98), set()),
        ((180, 80, 70, 98), {"sbp_high"}),
        ((150, 109, 70, 98), set()),
        ((150, 110, 70, 98), {"dbp_high"}),
        ((120, 80, 109, 98), set()),
        ((120, 80, 110, 98), {"hr_high"}),
        ((120, 80, 70, 92), set()),
        ((120, 80, 70, 91), {"spo2_low"}),
        ((200, 120, 130, 85), {"sbp_high", "dbp_high", "hr_high", "spo2_low"}),
    ],
)
def test_alert_boundaries(reading: tuple[int, int, int, int], alerts: set[str]) -> None:
    assert check_vitals(*reading) == alerts


def test_missing_readings_raise_no_alert() -> None:
    assert check_vitals(None, None, None, None) == frozenset()
    assert check_vitals(185, None, None, None) == {"sbp_high"}
    assert check_vitals(None, None, None, 90) == {"spo2_low"}


def test_decimal_and_float_readings() -> None:
    assert check_vitals(Decimal("179.9"), 80, 109.5, 91.9) == {"spo2_low"}


def test_custom_thresholds() -> None:
    strict = VitalThresholds(sbp_high=160, dbp_high=100, hr_high=100, spo2_low=94)
    assert check_vitals(160, 100, 100, 93, strict) == {
        "sbp_high",
        "dbp_high",
        "hr_high",
        "spo2_low",
    }
    assert check_vitals(159, 99, 99, 94, strict) == frozenset()
    with pytest.raises(ValueError):
        VitalThresholds(spo2_low=101)


def test_thresholds_as_a_mapping_keep_the_other_defaults() -> None:
    assert check_vitals(170, 100, 90, 95, {"sbp_high": 170}) == {"sbp_high"}
    assert check_vitals(170, 100, 90, 95, {"sbp": 175}) == frozenset()
    assert check_vitals(150, 110, 90, 95, {"sbp": 175}) == {"dbp_high"}  # default 110 kept
    with pytest.raises(ValueError, match="unknown threshold"):
        check_vitals(120, 80, 70, 98, {"temperature": 38})


def test_the_defaults_are_180_110_110_and_92() -> None:
    assert check_vitals(179, 109, 109, 92) == frozenset()
    assert check_vitals(180, 109, 109, 92) == {"sbp_high"}
    assert check_vitals(179, 110, 109, 92) == {"dbp_high"}
    assert check_vitals(179, 109, 110, 92) == {"hr_high"}
    assert check_vitals(179, 109, 109, 91) == {"spo2_low"}
    assert check_vitals(185, 100, 80, 97) == {"sbp_high"}  # the 40-minute reading


@pytest.mark.parametrize(
    ("reading", "message"),
    [
        ((0, 80, 70, 98), "systolic blood pressure must be more than 0 and at most 300"),
        ((301, 80, 70, 98), "systolic"),
        ((-120, None, None, None), "systolic"),
        ((120, 0, 70, 98), "diastolic"),
        ((120, 130, 70, 98), "diastolic blood pressure must be lower than systolic"),
        ((120, 80, 0, 98), "heart rate"),
        ((120, 80, 301, 98), "heart rate"),
        ((120, 80, 70, 101), "oxygen saturation must be more than 0 and at most 100"),
        ((120, 80, 70, 0), "oxygen saturation"),
        ((True, 80, 70, 98), "must be a number"),
        (("120", 80, 70, 98), "must be a number"),
    ],
)
def test_implausible_readings(reading: tuple[object, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_vitals(*reading)  # type: ignore[arg-type]


@given(
    st.one_of(st.none(), st.integers(101, 300)),
    st.one_of(st.none(), st.integers(1, 100)),
    st.one_of(st.none(), st.integers(1, 300)),
    st.one_of(st.none(), st.integers(1, 100)),
)
def test_alerts_match_thresholds(
    sbp: int | None, dbp: int | None, hr: int | None, spo2: int | None
) -> None:
    alerts = check_vitals(sbp, dbp, hr, spo2)
    assert ("sbp_high" in alerts) == (sbp is not None and sbp >= 180)
    assert ("dbp_high" in alerts) == (dbp is not None and dbp >= 110)
    assert ("hr_high" in alerts) == (hr is not None and hr >= 110)
    assert ("spo2_low" in alerts) == (spo2 is not None and spo2 < 92)


# --- predose_bp_ok ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sbp", "dbp", "ok"),
    [(140, 90, True), (141, 90, False), (140, 91, False), (120, 70, True), (200, 85, False)],
)
def test_predose_bp(sbp: int, dbp: int, ok: bool) -> None:
    assert predose_bp_ok(sbp, dbp) is ok


def test_predose_bp_custom_limit() -> None:
    assert predose_bp_ok(150, 95, limit=(150, 95))
    assert predose_bp_ok(150, 95, [150, 95])
    assert not predose_bp_ok(150, 95)  # the acceptance case: 150/95 needs a decision
    assert not predose_bp_ok(151, 95, limit=(150, 95))
    with pytest.raises(ValueError, match="limit"):
        predose_bp_ok(120, 80, limit=(150,))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="both systolic and diastolic"):
        predose_bp_ok(120, None)  # type: ignore[arg-type]


# --- discharge --------------------------------------------------------------------------------


def test_esketamine_discharge_is_first_device_plus_120() -> None:
    assert earliest_discharge("esketamine", T0) == at(120)
    # last device at +10 min does not move the 2-hour clock (it runs from the first device)
    assert earliest_discharge("esketamine", T0, at(10)) == at(120)
    assert earliest_discharge("esketamine", T0, minimum_observation_minutes=120) == at(120)
    assert earliest_discharge("esketamine", T0, minimum_observation_minutes=150) == at(150)


def test_esketamine_discharge_cannot_be_shortened() -> None:
    with pytest.raises(ValueError, match="at least 120 minutes"):
        earliest_discharge("esketamine", T0, minimum_observation_minutes=119)


def test_119_vs_120_minutes_after_first_device() -> None:
    discharge = earliest_discharge("esketamine", T0)
    assert at(119) < discharge <= at(120)


def test_ketamine_discharge_needs_end_and_clinic_minimum() -> None:
    # infusion 09:00-09:40, clinic minimum 30 min -> 10:10
    assert earliest_discharge("ketamine", T0, at(40), 30) == at(70)
    with pytest.raises(ValueError, match="time the dose ended"):
        earliest_discharge("ketamine", T0, minimum_observation_minutes=30)
    with pytest.raises(ValueError, match="minimum observation time"):
        earliest_discharge("ketamine", T0, at(40))
    with pytest.raises(ValueError, match="before the first dose"):
        earliest_discharge("ketamine", T0, at(-1), 30)
    with pytest.raises(ValueError, match="1 to 1440"):
        earliest_discharge("ketamine", T0, at(40), 0)


def test_discharge_keeps_time_zone() -> None:
    eastern = timezone(timedelta(hours=-5))
    first = datetime(2026, 3, 2, 9, 0, tzinfo=eastern)
    assert earliest_discharge("esketamine", first).utcoffset() == timedelta(hours=-5)


def test_naive_datetimes_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        earliest_discharge("esketamine", datetime(2026, 3, 2, 9, 0))
    with pytest.raises(ValueError, match="time zone"):
        earliest_discharge("ketamine", T0, datetime(2026, 3, 2, 9, 40), 30)


# --- device interval --------------------------------------------------------------------------


def test_device_interval_five_minutes() -> None:
    check_device_interval(T0, T0 + timedelta(minutes=5))  # exactly 5:00 is OK
    check_device_interval(T0, T0 + timedelta(minutes=7))
    with pytest.raises(ValueError, match="at least 5 minutes apart.*4:59"):
        check_device_interval(T0, T0 + timedelta(minutes=4, seconds=59))
    with pytest.raises(ValueError, match="0:00"):
        check_device_interval(T0, T0)
    with pytest.raises(ValueError, match="before the previous device"):
        check_device_interval(T0, T0 - timedelta(minutes=6))
    with pytest.raises(ValueError, match="time zone"):
        check_device_interval(datetime(2026, 3, 2, 9, 0), T0)


# --- vitals schedule --------------------------------------------------------------------------


def test_iv_schedule() -> None:
    # q10 during the 40-min infusion (0-40), q15 after until end + 60 (default discharge)
    schedule = vitals_schedule("ketamine", T0, at(40))
    assert offsets(schedule) == [0, 10, 20, 30, 40, 55, 70, 85, 100]


def test_iv_schedule_with_discharge_time_off_grid() -> None:
    # discharge at +90: q15 after 40 -> 55, 70, 85 then the pre-discharge reading at 90
    schedule = vitals_schedule("ketamine", T0, at(45), until=at(90))
    assert offsets(schedule) == [0, 10, 20, 30, 40, 45, 60, 75, 90]


def test_esketamine_schedule() -> None:
    # pre-dose, 40 min, every 30 min after, pre-discharge at 120
    assert offsets(vitals_schedule("esketamine", T0)) == [0, 40, 70, 100, 120]
    # 84 mg: last device at +10 -> 40 min after the dose = +50
    assert offsets(vitals_schedule("esketamine", T0, at(10))) == [0, 50, 80, 110, 120]
    assert offsets(vitals_schedule("esketamine", T0, until=at(180))) == [
        0,
        40,
        70,
        100,
        130,
        160,
        180,
    ]


def test_schedule_errors() -> None:
    with pytest.raises(ValueError, match="before the dose start"):
        vitals_schedule("ketamine", T0, at(-5))
    with pytest.raises(ValueError, match="time zone"):
        vitals_schedule("ketamine", datetime(2026, 3, 2, 9, 0))
    with pytest.raises(ValueError, match="discharge time is before"):
        vitals_schedule("ketamine", T0, at(40), until=at(30))


def test_next_vitals_due() -> None:
    schedule = vitals_schedule("esketamine", T0)  # 0, 40, 70, 100, 120
    assert next_vitals_due(schedule, [], at(-10)) == at(0)
    assert next_vitals_due(schedule, [at(-2)], at(5)) == at(40)
    # reading 4 minutes early counts for the 40-minute reading
    assert next_vitals_due(schedule, [at(0), at(36)], at(37)) == at(70)
    # 6 minutes early does not
    assert next_vitals_due(schedule, [at(0), at(34)], at(35)) == at(40)
    # overdue: returned even though it is in the past
    assert next_vitals_due(schedule, [at(0)], at(60)) == at(40)
    assert next_vitals_due(schedule, [at(0), at(40), at(70), at(100), at(120)], at(121)) is None
    with pytest.raises(ValueError, match="in the future"):
        next_vitals_due(schedule, [at(50)], at(45))


# --- MOAA/S and circulation -------------------------------------------------------------------


def test_moaas() -> None:
    assert moaas_score(5) is MOAAS.RESPONDS_READILY
    assert is_loss_of_consciousness(0)
    assert not is_loss_of_consciousness(1)
    for bad in (-1, 6, 2.5, True, "3", None):
        with pytest.raises(ValueError, match="MOAA/S score must be a whole number from 0 to 5"):
            moaas_score(bad)


@pytest.mark.parametrize(
    ("current", "points"),
    [
        (100, 2),
        (120, 2),  # +20% exactly: within 20%
        (80, 2),  # -20% exactly
        (121, 1),
        (79, 1),
        (149, 1),  # +49%
        (51, 1),  # -49%
        (150, 0),  # +50% exactly
        (50, 0),  # -50% exactly
        (200, 0),
    ],
)
def test_circulation_points_baseline_100(current: int, points: int) -> None:
    assert circulation_points(100, current) == points


def test_circulation_points_exact_not_rounded() -> None:
    # baseline 130: 20% = 26 mmHg. 156 -> exactly 20% -> 2; 157 -> 20.77% -> 1
    assert circulation_points(130, 156) == 2
    assert circulation_points(130, 157) == 1
    # 249.5 -> 299.5 is +50 mmHg = 20.04%: displays as 20.0 but is above 20% -> 1 point
    assert bp_change_percent(Decimal("249.5"), Decimal("299.5")) == Decimal("20.0")
    assert circulation_points(Decimal("249.5"), Decimal("299.5")) == 1
    assert bp_change_percent(125, 150) == Decimal("20.0")
    assert bp_change_percent(150, 120) == Decimal("-20.0")
    with pytest.raises(ValueError, match="systolic"):
        circulation_points(0, 120)


def test_esketamine_schedule_cannot_discharge_before_120() -> None:
    with pytest.raises(ValueError, match="at least 120 minutes"):
        vitals_schedule("esketamine", T0, until=at(119))
