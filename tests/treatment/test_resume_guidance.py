"""ketaclinic.clinical.protocols.resume_guidance: the label's missed-dose guidance
(clinical.md §2.2, S6) for an esketamine course that resumes after a pause."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from ketaclinic.clinical.protocols import resume_guidance

FIRST = date(2030, 1, 7)


def _on(week: int, day: int = 0) -> date:
    return FIRST + timedelta(days=7 * (week - 1) + day)


@pytest.mark.parametrize("week", [1, 2, 3, 4])
@pytest.mark.parametrize("worse", [False, True])
def test_weeks_1_to_4_continue_the_current_schedule(week: int, worse: bool) -> None:
    g = resume_guidance("esketamine_trd", FIRST, _on(week, 6), depression_worse=worse)
    assert g.action == "continue_schedule"
    assert g.label_week == week
    assert g.phase == "induction"
    assert g.suggested_frequency == "twice_weekly"
    assert "not made up" in g.message


@pytest.mark.parametrize("week", [5, 8])
def test_weeks_5_to_8_with_worse_depression_consider_twice_weekly(week: int) -> None:
    g = resume_guidance("esketamine_trd", FIRST, _on(week), depression_worse=True)
    assert g.action == "consider_previous_frequency"
    assert (g.current_frequency, g.suggested_frequency) == ("weekly", "twice_weekly")


def test_maintenance_without_worsening_continues() -> None:
    g = resume_guidance("esketamine_trd", FIRST, _on(12), depression_worse=False)
    assert g.action == "continue_schedule"
    assert g.current_frequency == g.suggested_frequency == "every_2_weeks"


def test_every_2_weeks_with_worse_depression_considers_weekly() -> None:
    g = resume_guidance("esketamine_trd", FIRST, _on(9), depression_worse=True)
    assert (g.current_frequency, g.suggested_frequency) == ("every_2_weeks", "weekly")


def test_weekly_maintenance_from_week_9_considers_twice_weekly() -> None:
    g = resume_guidance(
        "esketamine_trd", FIRST, _on(20), depression_worse=True, maintenance_every_weeks=1
    )
    assert (g.current_frequency, g.suggested_frequency) == ("weekly", "twice_weekly")


def test_week_4_ends_on_day_27() -> None:
    assert resume_guidance("esketamine_trd", FIRST, _on(4, 6), depression_worse=True).phase == (
        "induction"
    )
    assert resume_guidance("esketamine_trd", FIRST, _on(5, 0), depression_worse=True).phase == (
        "maintenance"
    )


def test_mdsi_beyond_4_weeks_asks_for_re_evaluation() -> None:
    g = resume_guidance("esketamine_mdsi", FIRST, _on(6), depression_worse=True)
    assert g.action == "continue_schedule"
    assert "not been systematically evaluated" in g.message
    assert "§2.3" in g.source


def test_every_answer_names_its_source() -> None:
    for week in range(1, 30):
        for worse in (False, True):
            g = resume_guidance("esketamine_trd", FIRST, _on(week), depression_worse=worse)
            assert "clinical.md §2.2" in g.source


@pytest.mark.parametrize(
    ("code", "first", "resume", "every", "words"),
    [
        ("iv_ketamine_standard", FIRST, FIRST, 2, "esketamine protocols only"),
        ("nonsense", FIRST, FIRST, 2, "nonsense"),
        ("esketamine_trd", FIRST, FIRST - timedelta(days=1), 2, "before its first dose"),
        ("esketamine_trd", FIRST, datetime(2030, 2, 1, tzinfo=UTC), 2, "must be a date"),
        ("esketamine_trd", "2030-01-07", FIRST, 2, "must be a date"),
        ("esketamine_trd", FIRST, FIRST, 3, "maintenance_every_weeks"),
        ("esketamine_trd", FIRST, FIRST, True, "maintenance_every_weeks"),
    ],
)
def test_it_refuses_bad_input(code, first, resume, every, words) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValueError, match=words):
        resume_guidance(code, first, resume, depression_worse=False, maintenance_every_weeks=every)
