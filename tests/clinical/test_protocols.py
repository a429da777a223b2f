from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ketaclinic.clinical.protocols import (
    PROTOCOL_CODES,
    PlannedSession,
    SessionRecord,
    Violation,
    missed_dose_guidance,
    plan,
    validate,
)

START = date(2026, 3, 2)  # a Monday
D = Decimal


def days(sessions: list[PlannedSession]) -> list[int]:
    return [(s.target - sessions[0].target).days for s in sessions]


def on(*offsets: int) -> list[date]:
    return [START + timedelta(days=o) for o in offsets]


def codes(violations: list[Violation]) -> list[str]:
    return [v.code for v in violations]


# --- plan: general ----------------------------------------------------------------------------


def test_unknown_code_lists_valid_codes() -> None:
    with pytest.raises(ValueError) as err:
        plan("ketamine_iv", START)
    for code in PROTOCOL_CODES:
        assert code in str(err.value)


@pytest.mark.parametrize("start", [datetime(2026, 3, 2, 9, tzinfo=UTC), "2026-03-02", None])
def test_start_must_be_a_date(start: object) -> None:
    with pytest.raises(ValueError, match="start must be a date"):
        plan("esketamine_trd", start)  # type: ignore[arg-type]


def test_negative_maintenance_sessions() -> None:
    with pytest.raises(ValueError, match="maintenance_sessions must be between 0"):
        plan("iv_ketamine_standard", START, -1)


def test_unknown_option_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown option.*per_weak"):
        plan("iv_ketamine_standard", START, per_weak=3)


# --- plan: IV ketamine ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("per_week", "offsets"),
    [
        (2, [0, 3, 7, 10, 14, 17]),  # 3-4 day spacing (ELEKT-D twice weekly)
        (3, [0, 2, 4, 7, 9, 11]),  # Mon/Wed/Fri 2-2-3 (Murrough: 6 over 12 days)
    ],
)
def test_iv_induction(per_week: int, offsets: list[int]) -> None:
    sessions = plan("iv_ketamine_standard", START, per_week=per_week)
    assert len(sessions) == 6
    assert days(sessions) == offsets
    assert all(s.phase == "induction" for s in sessions)
    assert [s.number for s in sessions] == [1, 2, 3, 4, 5, 6]
    # 6 within 21 days (days 0-20) and >= 48 h apart
    assert (sessions[-1].target - sessions[0].target).days <= 20
    assert all(b - a >= 2 for a, b in zip(offsets, offsets[1:], strict=False))
    assert all(s.mg_per_kg == D("0.5") and s.dose_mg is None for s in sessions)
    assert sessions[0].target == START


def test_iv_windows_twice_weekly() -> None:
    sessions = plan("iv_ketamine_standard", START)
    windows = [((s.earliest - START).days, (s.latest - START).days) for s in sessions]
    # session 1 anchors; others: >= 2 days from planned neighbours; 6th by day 20 (21 days)
    assert windows == [(0, 0), (2, 5), (5, 8), (9, 12), (12, 15), (16, 20)]


def test_iv_maintenance() -> None:
    sessions = plan("iv_ketamine_standard", START, 3, maintenance_interval_weeks=3)
    assert len(sessions) == 9
    maint = sessions[6:]
    assert all(s.phase == "maintenance" for s in maint)
    # 17 + 21 = 38, 59, 80
    assert days(sessions)[6:] == [38, 59, 80]
    assert [(s.earliest - s.target).days for s in maint] == [-3, -3, -3]
    assert [(s.latest - s.target).days for s in maint] == [3, 3, 3]


@pytest.mark.parametrize("weeks", [1, 7, 0])
def test_iv_maintenance_interval_range(weeks: int) -> None:
    with pytest.raises(ValueError, match="maintenance_interval_weeks must be between 2 and 6"):
        plan("iv_ketamine_standard", START, 1, maintenance_interval_weeks=weeks)


@pytest.mark.parametrize("weeks", [2, 6])
def test_iv_maintenance_interval_bounds_allowed(weeks: int) -> None:
    sessions = plan("iv_ketamine_standard", START, 1, maintenance_interval_weeks=weeks)
    assert (sessions[6].target - sessions[5].target).days == 7 * weeks


@pytest.mark.parametrize("per_week", [1, 4, "2", True])
def test_iv_per_week_must_be_2_or_3(per_week: object) -> None:
    with pytest.raises(ValueError, match="per_week"):
        plan("iv_ketamine_standard", START, per_week=per_week)


def test_iv_mg_per_kg_option() -> None:
    sessions = plan("iv_ketamine_standard", START, mg_per_kg=0.75)
    assert {s.mg_per_kg for s in sessions} == {D("0.75")}
    with pytest.raises(ValueError, match="mg_per_kg"):
        plan("iv_ketamine_standard", START, mg_per_kg=0)


# --- plan: esketamine -------------------------------------------------------------------------


def test_esketamine_trd_label_schedule() -> None:
    sessions = plan("esketamine_trd", START)
    assert len(sessions) == 12
    weeks = [s.week for s in sessions]
    # weeks 1-4 twice weekly (8), weeks 5-8 once weekly (4)
    assert weeks == [1, 1, 2, 2, 3, 3, 4, 4, 5, 6, 7, 8]
    for s in sessions:
        assert s.week == (s.target - START).days // 7 + 1
    assert [s.phase for s in sessions] == ["induction"] * 8 + ["maintenance"] * 4
    assert days(sessions) == [0, 3, 7, 10, 14, 17, 21, 24, 28, 35, 42, 49]
    # Day 1 dose 56 mg; later default 56
    assert [s.dose_mg for s in sessions] == [D(56)] * 12
    assert sessions[0].devices == 2


def test_esketamine_trd_later_dose_84() -> None:
    sessions = plan("esketamine_trd", START, dose_mg=84)
    assert sessions[0].dose_mg == D(56)  # first dose is always 56 mg
    assert {s.dose_mg for s in sessions[1:]} == {D(84)}
    assert sessions[1].devices == 3


@pytest.mark.parametrize("dose", [28, 70, 112, 0])
def test_esketamine_dose_option_56_or_84(dose: int) -> None:
    with pytest.raises(ValueError, match="56 or 84"):
        plan("esketamine_trd", START, dose_mg=dose)


@pytest.mark.parametrize(("every", "gaps"), [(1, [7, 7, 7]), (2, [14, 14])])
def test_esketamine_trd_maintenance_from_week_9(every: int, gaps: list[int]) -> None:
    sessions = plan("esketamine_trd", START, len(gaps) + 1, maintenance_every_weeks=every)
    assert len(sessions) == 12 + len(gaps) + 1
    extra = sessions[12:]
    assert extra[0].week == 9  # first session after week 8 is in week 9 (day 56)
    assert (extra[0].target - START).days == 56
    assert [(b.target - a.target).days for a, b in zip(extra, extra[1:], strict=False)] == gaps
    assert all(s.phase == "maintenance" for s in extra)


def test_esketamine_trd_maintenance_every_must_be_1_or_2() -> None:
    with pytest.raises(ValueError, match="maintenance_every_weeks"):
        plan("esketamine_trd", START, 2, maintenance_every_weeks=3)


def test_esketamine_windows_stay_in_label_week() -> None:
    sessions = plan("esketamine_trd", START, 2)
    for s in sessions[1:12]:
        week_start = START + timedelta(days=7 * (s.week - 1))
        assert week_start <= s.earliest <= s.target <= s.latest <= week_start + timedelta(days=6)
    # session 2: >= 2 days after Day 1, >= 2 days before session 3 (day 7) -> days 2-5
    assert ((sessions[1].earliest - START).days, (sessions[1].latest - START).days) == (2, 5)
    # session 9 (week 5): days 28-33 (>= 2 days before week 6's session on day 35)
    assert ((sessions[8].earliest - START).days, (sessions[8].latest - START).days) == (28, 33)
    # every-2-weeks block: weeks 9-10 = days 56-69, and >= 2 days before day 70
    assert ((sessions[12].earliest - START).days, (sessions[12].latest - START).days) == (56, 68)


def test_esketamine_mdsi() -> None:
    sessions = plan("esketamine_mdsi", START)
    assert len(sessions) == 8
    assert [s.week for s in sessions] == [1, 1, 2, 2, 3, 3, 4, 4]
    assert {s.dose_mg for s in sessions} == {D(84)}
    assert {s.dose_mg for s in plan("esketamine_mdsi", START, dose_mg=56)} == {D(56)}
    with pytest.raises(ValueError, match="4-week course"):
        plan("esketamine_mdsi", START, 1)


# --- plan: IM, oral, custom -------------------------------------------------------------------


def test_oral_ketamine_interval() -> None:
    sessions = plan("oral_ketamine", START, 1, interval_days=3, sessions=4, dose_mg=50)
    assert days(sessions) == [0, 3, 6, 9, 12]
    assert [s.phase for s in sessions] == ["course"] * 4 + ["maintenance"]
    assert {s.dose_mg for s in sessions} == {D(50)}
    # default window (3 - 1) // 2 = 1 day either side; session 1 anchored
    assert (sessions[2].earliest - sessions[2].target).days == -1
    assert (sessions[2].latest - sessions[2].target).days == 1
    assert sessions[0].earliest == sessions[0].latest == START


def test_im_ketamine() -> None:
    sessions = plan("im_ketamine", START, interval_days=7, sessions=4, mg_per_kg=0.5)
    assert days(sessions) == [0, 7, 14, 21]
    assert {s.mg_per_kg for s in sessions} == {D("0.5")}
    with pytest.raises(ValueError, match="interval_days must be between 2"):
        plan("im_ketamine", START, interval_days=1, sessions=3)


@pytest.mark.parametrize("code", ["im_ketamine", "oral_ketamine"])
def test_interval_protocols_need_interval_and_sessions(code: str) -> None:
    with pytest.raises(ValueError, match="interval_days is required"):
        plan(code, START, sessions=3)
    with pytest.raises(ValueError, match="sessions is required"):
        plan(code, START, interval_days=3)


def test_oral_dose_ceiling() -> None:
    with pytest.raises(ValueError, match="at most 300 mg"):
        plan("oral_ketamine", START, interval_days=3, sessions=2, dose_mg=400)
    with pytest.raises(ValueError, match="either dose_mg or mg_per_kg"):
        plan("oral_ketamine", START, interval_days=3, sessions=2, dose_mg=50, mg_per_kg=1)


def test_custom_dates() -> None:
    dates = on(0, 4, 9)
    sessions = plan("custom", START, dates=dates)
    assert [s.target for s in sessions] == dates
    assert all(s.earliest == s.target == s.latest for s in sessions)  # window_days default 0
    widened = plan("custom", START, dates=dates, window_days=1)
    assert (widened[1].earliest, widened[1].latest) == (on(3)[0], on(5)[0])


def test_custom_interval_and_errors() -> None:
    assert days(plan("custom", START, interval_days=5, sessions=3)) == [0, 5, 10]
    with pytest.raises(ValueError, match="needs either option dates"):
        plan("custom", START)
    with pytest.raises(ValueError, match="in order"):
        plan("custom", START, dates=on(0, 5, 3))
    with pytest.raises(ValueError, match="in order"):
        plan("custom", START, dates=on(0, 0))
    with pytest.raises(ValueError, match="before the start date"):
        plan("custom", START, dates=on(-1, 3))
    with pytest.raises(ValueError, match="maintenance_interval_days"):
        plan("custom", START, 1, dates=on(0, 3))
    assert days(plan("custom", START, 2, dates=on(0, 3), maintenance_interval_days=14)) == [
        0,
        3,
        17,
        31,
    ]


# --- plan: properties -------------------------------------------------------------------------

_plans = st.one_of(
    st.builds(
        lambda pw, m, wk: ("iv_ketamine_standard", m, {"per_week": pw,
                                                       "maintenance_interval_weeks": wk}),
        st.sampled_from([2, 3]), st.integers(0, 8), st.integers(2, 6),
    ),
    st.builds(
        lambda d, m, e: ("esketamine_trd", m, {"dose_mg": d, "maintenance_every_weeks": e}),
        st.sampled_from([56, 84]), st.integers(0, 8), st.sampled_from([1, 2]),
    ),
    st.builds(lambda d: ("esketamine_mdsi", 0, {"dose_mg": d}), st.sampled_from([56, 84])),
    st.builds(
        lambda code, i, n, m: (code, m, {"interval_days": i, "sessions": n}),
        st.sampled_from(["im_ketamine", "oral_ketamine", "custom"]),
        st.integers(2, 30), st.integers(1, 12), st.integers(0, 4),
    ),
    st.builds(
        lambda gaps: ("custom", 0, {"dates": [START + timedelta(days=sum(gaps[:k]))
                                              for k in range(len(gaps) + 1)]}),
        st.lists(st.integers(1, 20), max_size=8),
    ),
)  # fmt: skip


@settings(max_examples=150)
@given(_plans, st.dates(min_value=date(2020, 1, 1), max_value=date(2035, 12, 31)))
def test_plan_properties(case: tuple[str, int, dict[str, object]], start: date) -> None:
    code, maintenance, options = case
    if "dates" in options:
        shift = start - START
        options = {"dates": [d + shift for d in options["dates"]]}  # type: ignore[attr-defined]
    sessions = plan(code, start, maintenance, **options)
    assert sessions
    assert [s.number for s in sessions] == list(range(1, len(sessions) + 1))
    assert sessions[0].target == start
    for s in sessions:
        assert s.earliest <= s.target <= s.latest
    for a, b in zip(sessions, sessions[1:], strict=False):
        assert a.target < b.target
        # moving one session inside its window never brings it next to a planned neighbour
        assert b.earliest > a.target and a.latest < b.target
    if code == "iv_ketamine_standard":
        assert len(sessions) == 6 + maintenance
        for a, b in zip(sessions, sessions[1:], strict=False):
            assert (b.target - a.target).days >= 2
            assert (b.earliest - a.target).days >= 2 and (b.target - a.latest).days >= 2
        assert all((s.latest - start).days <= 20 for s in sessions[:6])
    if code.startswith("esketamine"):
        for s in sessions:
            assert s.week == (s.target - start).days // 7 + 1
            if s.week <= 8:
                assert (s.earliest - start).days // 7 + 1 == s.week
                assert (s.latest - start).days // 7 + 1 == s.week
        assert sessions[0].dose_mg == (D(56) if code == "esketamine_trd" else options["dose_mg"])


# --- validate: IV -----------------------------------------------------------------------------

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_iv_48_hours_boundary() -> None:
    assert validate("iv_ketamine_standard", [T0], SessionRecord(T0 + timedelta(hours=48))) == []
    too_soon = validate(
        "iv_ketamine_standard", [T0], SessionRecord(T0 + timedelta(hours=47, minutes=59))
    )
    assert codes(too_soon) == ["too_soon"]
    assert "47 h 59 min" in too_soon[0].message and "48 hours" in too_soon[0].message
    assert too_soon[0].source


def test_iv_dates_only_use_calendar_days() -> None:
    assert codes(validate("iv_ketamine_standard", on(0), on(1)[0])) == ["too_soon"]
    assert validate("iv_ketamine_standard", on(0), on(2)[0]) == []
    # a proposed session before the last one given is also too soon
    assert "too_soon" in codes(validate("iv_ketamine_standard", on(0, 3), on(1)[0]))


def test_iv_induction_must_fit_in_21_days() -> None:
    history = on(0, 3, 7, 10)
    # session 5 on day 18 leaves session 6 on day 20 (the last allowed day): OK
    assert validate("iv_ketamine_standard", history, on(18)[0]) == []
    # session 5 on day 19 -> session 6 could not be before day 21
    late = validate("iv_ketamine_standard", history, on(19)[0])
    assert codes(late) == ["outside_window"] and late[0].overridable
    # session 6 on day 20 fine, day 21 outside
    assert validate("iv_ketamine_standard", on(0, 3, 7, 10, 14), on(20)[0]) == []
    assert codes(validate("iv_ketamine_standard", on(0, 3, 7, 10, 14), on(21)[0])) == [
        "outside_window"
    ]


def test_iv_maintenance_window() -> None:
    history = on(0, 3, 7, 10, 14, 17)
    # default: any 2-6 weeks after the last infusion
    assert validate("iv_ketamine_standard", history, on(17 + 14)[0]) == []
    assert codes(validate("iv_ketamine_standard", history, on(17 + 13)[0])) == ["outside_window"]
    assert codes(validate("iv_ketamine_standard", history, on(17 + 43)[0])) == ["outside_window"]
    # planned every 4 weeks +/- 3 days
    opts = {"maintenance_interval_weeks": 4}
    assert validate("iv_ketamine_standard", history, on(17 + 25)[0], **opts) == []
    assert validate("iv_ketamine_standard", history, on(17 + 31)[0], **opts) == []
    assert codes(validate("iv_ketamine_standard", history, on(17 + 24)[0], **opts)) == [
        "outside_window"
    ]


def test_iv_phase_complete() -> None:
    history = on(0, 3, 7, 10, 14, 17)
    assert codes(validate("iv_ketamine_standard", history, on(45)[0], maintenance_sessions=0)) == [
        "phase_complete"
    ]
    assert validate("iv_ketamine_standard", history, on(45)[0], maintenance_sessions=1) == []


def test_iv_dose_caps() -> None:
    proposed = SessionRecord(on(3)[0], mg_per_kg=0.5)
    assert validate("iv_ketamine_standard", on(0), proposed) == []
    above = SessionRecord(on(3)[0], mg_per_kg=0.6)
    assert codes(validate("iv_ketamine_standard", on(0), above)) == ["reason_required"]
    with_reason = SessionRecord(on(3)[0], mg_per_kg=0.6, prescriber_reason="partial response")
    assert validate("iv_ketamine_standard", on(0), with_reason) == []
    # default clinic maximum 0.75 mg/kg when none is given
    over = SessionRecord(on(3)[0], mg_per_kg=0.8, prescriber_reason="x")
    assert codes(validate("iv_ketamine_standard", on(0), over)) == ["wrong_dose"]
    assert validate("iv_ketamine_standard", on(0), over, clinic_max_mg_per_kg=1.0) == []
    # dose in mg with weight: 56 mg / 70 kg = 0.8 mg/kg
    by_weight = SessionRecord(on(3)[0], dose_mg=56, weight_kg=70)
    assert codes(validate("iv_ketamine_standard", on(0), by_weight)) == ["wrong_dose"]


def test_session_record_validation() -> None:
    with pytest.raises(ValueError, match="time zone"):
        SessionRecord(datetime(2026, 3, 2, 9, 0))
    with pytest.raises(ValueError, match="dose mg must be more than 0"):
        SessionRecord(START, dose_mg=0)
    with pytest.raises(ValueError, match="date or datetime"):
        validate("iv_ketamine_standard", ["2026-03-02"], START)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="unknown protocol"):
        validate("nope", [], START)


# --- validate: esketamine ---------------------------------------------------------------------


def esk(offset: int, dose: int | None = 56) -> SessionRecord:
    return SessionRecord(START + timedelta(days=offset), dose_mg=dose)


def test_esketamine_first_dose_must_be_56() -> None:
    assert validate("esketamine_trd", [], esk(0, 56)) == []
    wrong = validate("esketamine_trd", [], esk(0, 84))
    assert codes(wrong) == ["wrong_dose"] and "56 mg" in wrong[0].message
    # later doses 56 or 84 only
    assert validate("esketamine_trd", [esk(0)], esk(3, 84)) == []
    for dose in (28, 112):
        assert codes(validate("esketamine_trd", [esk(0)], esk(3, dose))) == ["wrong_dose"]


def test_esketamine_mdsi_doses() -> None:
    assert validate("esketamine_mdsi", [], esk(0, 84)) == []
    assert validate("esketamine_mdsi", [esk(0, 84)], esk(3, 56)) == []
    assert codes(validate("esketamine_mdsi", [], esk(0, 28))) == ["wrong_dose"]


def test_esketamine_twice_weekly_limit() -> None:
    history = [esk(0), esk(3)]
    # a third session in label week 1 (days 0-6)
    assert codes(validate("esketamine_trd", history, esk(6))) == ["too_soon"]
    # week 2 starts on day 7
    assert validate("esketamine_trd", history, esk(7)) == []


def test_esketamine_minimum_two_days() -> None:
    assert codes(validate("esketamine_trd", [esk(0)], esk(1))) == ["too_soon"]
    assert validate("esketamine_trd", [esk(0)], esk(2)) == []
    # across a week boundary too (day 6 then day 7)
    assert "too_soon" in codes(validate("esketamine_trd", [esk(0), esk(6)], esk(7)))


def test_esketamine_weekly_from_week_5() -> None:
    history = [esk(d) for d in (0, 3, 7, 10, 14, 17, 21, 24)]
    assert validate("esketamine_trd", history, esk(28)) == []
    assert codes(validate("esketamine_trd", [*history, esk(28)], esk(31))) == ["too_soon"]
    assert validate("esketamine_trd", [*history, esk(28)], esk(35)) == []


def test_esketamine_missed_session_continues_schedule() -> None:
    # week 2 missed entirely: session 3 in week 3 is allowed (continue the current schedule)
    assert validate("esketamine_trd", [esk(0), esk(3)], esk(14)) == []


def test_esketamine_every_two_weeks_maintenance() -> None:
    history = [esk(d) for d in (0, 3, 7, 10, 14, 17, 21, 24, 28, 35, 42, 49, 56)]
    # weeks 9-10 already have a session: weekly needs a reason under a q2w plan
    weekly = validate("esketamine_trd", history, esk(63), maintenance_every_weeks=2)
    assert codes(weekly) == ["outside_window"] and weekly[0].overridable
    assert validate("esketamine_trd", history, esk(63), maintenance_every_weeks=1) == []
    assert validate("esketamine_trd", history, esk(70), maintenance_every_weeks=2) == []
    # maintenance_sessions limits sessions after week 8
    assert codes(validate("esketamine_trd", history, esk(70), maintenance_sessions=1)) == [
        "phase_complete"
    ]


def test_esketamine_mdsi_course_is_4_weeks() -> None:
    history = [esk(d, 84) for d in (0, 3, 7, 10, 14, 17, 21, 24)]
    assert codes(validate("esketamine_mdsi", history, esk(28, 84))) == ["phase_complete"]
    assert validate("esketamine_mdsi", history[:7], esk(24, 84)) == []


def test_esketamine_history_order_does_not_matter() -> None:
    history = [esk(3), esk(0)]
    assert codes(validate("esketamine_trd", history, esk(6))) == ["too_soon"]


# --- validate: interval protocols --------------------------------------------------------------


def test_oral_and_im_validate() -> None:
    opts = {"interval_days": 3, "sessions": 2}
    assert validate("oral_ketamine", on(0), on(3)[0], **opts) == []
    assert codes(validate("oral_ketamine", on(0), on(0)[0], **opts)) == ["too_soon"]
    assert codes(validate("oral_ketamine", on(0), on(5)[0], **opts)) == ["outside_window"]
    assert codes(validate("oral_ketamine", on(0, 3), on(6)[0], maintenance_sessions=0, **opts)) == [
        "phase_complete"
    ]
    assert codes(validate("im_ketamine", on(0), on(1)[0])) == ["too_soon"]
    over = SessionRecord(on(7)[0], mg_per_kg=2.5)
    assert codes(validate("im_ketamine", on(0), over)) == ["wrong_dose"]


def test_custom_dates_validate() -> None:
    dates = on(0, 4, 9)
    assert validate("custom", on(0), on(4)[0], dates=dates) == []
    assert codes(validate("custom", on(0), on(5)[0], dates=dates)) == ["outside_window"]


# --- missed dose guidance ---------------------------------------------------------------------


def test_missed_dose_guidance() -> None:
    induction = missed_dose_guidance("esketamine_trd", "induction")
    assert "continue the current" in induction and "J&J" in induction
    maintenance = missed_dose_guidance("esketamine_trd", "maintenance")
    assert "depression worsens" in maintenance and "previous dosing frequency" in maintenance
    assert "continue the current" in missed_dose_guidance("esketamine_mdsi", "induction")
    assert "48 h" in missed_dose_guidance("iv_ketamine_standard", "induction")
    assert "No published" in missed_dose_guidance("oral_ketamine", "course")
    with pytest.raises(ValueError, match="phase for esketamine_mdsi"):
        missed_dose_guidance("esketamine_mdsi", "maintenance")
    with pytest.raises(ValueError, match="unknown protocol"):
        missed_dose_guidance("spravato", "induction")


def test_custom_dates_validate_session_one_and_later_history() -> None:
    dates = on(0, 4, 9)
    assert codes(validate("custom", [], on(1)[0], dates=dates)) == ["outside_window"]
    assert validate("custom", [], on(0)[0], dates=dates) == []
    # history given on the planned dates: session 3 due on day 9
    assert validate("custom", on(0, 4), on(9)[0], dates=dates) == []
    assert codes(validate("custom", on(0, 4), on(10)[0], dates=dates)) == ["outside_window"]


def test_devices_only_for_esketamine() -> None:
    oral = plan("oral_ketamine", START, interval_days=3, sessions=1, dose_mg=56)
    assert oral[0].devices is None
    assert plan("esketamine_mdsi", START)[0].devices == 3
    assert plan("iv_ketamine_standard", START)[0].devices is None
