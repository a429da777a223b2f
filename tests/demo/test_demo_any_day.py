"""The demo depends on the day and hour it loads (this week's bookings, the last days'
dosing sessions, today's sessions under way): it must load, and every check of test_demo
must hold, on a weekday morning before the clinic opens, on a Saturday, late on a Friday and
just after midnight. The clock is set for the whole load and the checks."""

from __future__ import annotations

import os
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from ketaclinic.demo.inventory_demo import _clock
from tests.demo import test_demo

NEW_YORK = ZoneInfo("America/New_York")

# What changes with the day is the demo's calendar arithmetic, not SQL: one database shows it.
# On PostgreSQL each load takes about half a minute, and test_demo.py loads it there once.
pytestmark = pytest.mark.skipif(
    bool(os.environ.get("KETACLINIC_TEST_DATABASE_URL")),
    reason="the day-of-week cases run on SQLite; test_demo.py covers PostgreSQL",
)


@pytest.mark.parametrize(
    "when",
    [
        datetime(2026, 11, 23, 7, 0, tzinfo=NEW_YORK),  # Monday, before opening
        datetime(2026, 11, 28, 13, 0, tzinfo=NEW_YORK),  # Saturday
        datetime(2026, 11, 27, 16, 40, tzinfo=NEW_YORK),  # Friday afternoon
        datetime(2026, 12, 1, 0, 20, tzinfo=NEW_YORK),  # Tuesday, just after midnight
    ],
    ids=["monday-0700", "saturday-1300", "friday-1640", "tuesday-0020"],
)
def test_demo_loads_and_holds_whenever_it_is_loaded(db, when: datetime) -> None:  # type: ignore[no-untyped-def]
    with _clock(when):
        demo = test_demo.load_demo()
        for name in sorted(dir(test_demo)):
            if name.startswith("check_"):
                getattr(test_demo, name)(demo)
