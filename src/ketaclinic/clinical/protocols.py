"""Treatment-course planning and schedule validation.

Protocol codes: ``iv_ketamine_standard``, ``esketamine_trd``, ``esketamine_mdsi``,
``im_ketamine``, ``oral_ketamine``, ``custom``.

Windows
-------
Every planned session has ``earliest <= target <= latest``: the dates it may move to *without a
documented reason*, with all other planned sessions left on their targets, while the protocol's
rules still hold.  Per protocol the rules are:

- all protocols: session 1 is the anchor of the course (label "Day 1"), so its window is the
  start date only; re-plan to move it.  Consecutive sessions keep a minimum gap (IV / IM ketamine
  2 days = 48 h; esketamine 2 days; oral ketamine and custom 1 day).
- ``iv_ketamine_standard`` induction: the 6 infusions stay within 21 days of the first (days
  0-20).  Maintenance: target +/- ``maintenance_window_days`` (default 3).
- ``esketamine_trd`` / ``esketamine_mdsi``: a session stays inside its label week (week 1 =
  days 0-6 counted from the first dose), so weeks 1-4 keep 2 sessions each and weeks 5-8 one
  each; every-2-weeks maintenance keeps one session per 2-week block starting at week 9.
- ``im_ketamine`` / ``oral_ketamine`` / ``custom`` with an interval: target +/- ``window_days``
  (default (interval_days - 1) // 2); ``custom`` with explicit dates: ``window_days`` default 0.

``validate`` checks a proposed session against the sessions actually given.  Esketamine phases
are calendar based (label weeks from the first dose), so a missed session is simply skipped
("continue the current schedule", clinical.md §2.2) rather than shifting later sessions.
Dose checks run only when the session states a dose.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from ketaclinic.clinical.dosing import (
    ABSOLUTE_MAX_IV_MG_PER_KG,
    Number,
    check_iv_dose,
    esketamine_devices,
    to_decimal,
)

__all__ = [
    "PROTOCOL_CODES",
    "PlannedSession",
    "Protocol",
    "SessionRecord",
    "Violation",
    "ResumeGuidance",
    "missed_dose_guidance",
    "plan",
    "resume_guidance",
    "validate",
]


class Protocol(StrEnum):
    IV_KETAMINE_STANDARD = "iv_ketamine_standard"
    ESKETAMINE_TRD = "esketamine_trd"
    ESKETAMINE_MDSI = "esketamine_mdsi"
    IM_KETAMINE = "im_ketamine"
    ORAL_KETAMINE = "oral_ketamine"
    CUSTOM = "custom"


PROTOCOL_CODES: tuple[str, ...] = tuple(p.value for p in Protocol)

INDUCTION = "induction"
MAINTENANCE = "maintenance"
COURSE = "course"

SRC_IV = "Murrough 2013 / ELEKT-D (clinical.md §1.4)"
SRC_IV_DOSE = "clinical.md §1.2 and §9.3 (clinic maximum; co-sign above 0.5 mg/kg)"
SRC_IV_MAINT = "clinic practice, every 2-6 weeks [?] (clinical.md §1.4)"
SRC_ESK = "Spravato USPI §2.2 (clinical.md §2.2)"
SRC_ESK_DOSE = "Spravato USPI §2.1-2.2: 56 or 84 mg, Day 1 56 mg (clinical.md §2.2)"
SRC_MDSI = "Spravato USPI §2.3 MDSI: 84 mg twice weekly for 4 weeks (clinical.md §2.2)"
SRC_MISSED = "J&J Medical Information, missed dose, 2025-10-10 (clinical.md §2.2, S6)"
SRC_ORAL = "Andrade 2019 oral ketamine (clinical.md §1.5)"
SRC_CLINIC = "clinic protocol (no published standard; clinical.md §1.5)"

# ELEKT-D / Murrough 2013 (clinical.md §1.4): 6 infusions over 2-3 weeks, 2-3 a week.
IV_INDUCTION_SESSIONS = 6
IV_INDUCTION_SPAN_DAYS = 21  # all 6 infusions on days 0-20 counted from the first
IV_MIN_GAP = timedelta(hours=48)
IV_OFFSETS = {2: (0, 3, 7, 10, 14, 17), 3: (0, 2, 4, 7, 9, 11)}
IV_DEFAULT_MG_PER_KG = Decimal("0.5")
# clinical.md §1.2: common clinic ceiling 0.75-1.0 mg/kg; no authoritative cap.  When the
# caller gives no clinic maximum, validate() uses the lower (more conservative) value.
IV_DEFAULT_CLINIC_MAX_MG_PER_KG = Decimal("0.75")
IM_MAX_MG_PER_KG = ABSOLUTE_MAX_IV_MG_PER_KG
ORAL_MAX_MG_PER_KG = Decimal("7.0")  # Andrade 2019: published oral doses 0.25-7.0 mg/kg
ORAL_MAX_FIXED_MG = Decimal(300)  # Andrade 2019: fixed oral doses 25-300 mg per session

ESK_INDUCTION_WEEKS = 4
ESK_WEEKLY_UNTIL_WEEK = 8
ESK_MIN_GAP_DAYS = 2  # [?] label gives no minimum; conservative: never on consecutive days
ESK_FIRST_DOSE = Decimal(56)
ESK_DOSES = (Decimal(56), Decimal(84))
MDSI_SESSIONS = 8


# ---------------------------------------------------------------------------------------------
# data types


@dataclass(frozen=True, slots=True)
class PlannedSession:
    """One planned session.  ``week`` is the 1-based week counted from the start date."""

    number: int
    phase: str
    earliest: date
    target: date
    latest: date
    dose_mg: Decimal | None = None
    mg_per_kg: Decimal | None = None
    week: int = 1
    frequency: str = ""
    code: str = ""

    @property
    def devices(self) -> int | None:
        """Number of 28 mg devices for an esketamine session (None for other protocols)."""
        if not self.code.startswith("esketamine") or self.dose_mg is None:
            return None
        return esketamine_devices(self.dose_mg)


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A session given (history) or proposed.

    ``at`` is a date or a timezone-aware datetime.  Numbers may be int, float or Decimal and are
    stored as Decimal.  ``weight_kg`` lets an IV ``dose_mg`` be checked per kg.
    """

    at: date | datetime
    dose_mg: Number | None = None
    mg_per_kg: Number | None = None
    weight_kg: Number | None = None
    prescriber_reason: str | None = None

    def __post_init__(self) -> None:
        _check_when(self.at, "session time")
        for name in ("dose_mg", "mg_per_kg", "weight_kg"):
            value = getattr(self, name)
            if value is not None:
                number = to_decimal(value, name.replace("_", " "))
                if number <= 0:
                    raise ValueError(f"{name.replace('_', ' ')} must be more than 0; got {value}")
                object.__setattr__(self, name, number)

    @property
    def day(self) -> date:
        return self.at.date() if isinstance(self.at, datetime) else self.at


@dataclass(frozen=True, slots=True)
class Violation:
    """A broken schedule rule.  ``overridable`` rules may proceed with a documented reason."""

    code: str
    message: str
    source: str
    overridable: bool = False


# ---------------------------------------------------------------------------------------------
# helpers


def _check_when(value: object, name: str) -> None:
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"{name} must include a time zone; got naive {value.isoformat()}")
    elif not isinstance(value, date):
        raise ValueError(f"{name} must be a date or datetime; got {value!r}")


def _code(code: object) -> Protocol:
    try:
        if not isinstance(code, str):
            raise ValueError
        return Protocol(code.strip().lower())
    except ValueError:
        raise ValueError(
            f"unknown protocol {code!r}; valid protocols are: {', '.join(PROTOCOL_CODES)}"
        ) from None


def _check_options(proto: Protocol, options: Mapping[str, object], allowed: Iterable[str]) -> None:
    allowed_set = set(allowed)
    unknown = sorted(set(options) - allowed_set)
    if unknown:
        valid = ", ".join(sorted(allowed_set)) or "none"
        raise ValueError(
            f"unknown option(s) {', '.join(unknown)} for protocol {proto.value}; "
            f"valid options: {valid}"
        )


def _int_option(
    options: Mapping[str, object],
    name: str,
    default: int | None,
    low: int,
    high: int | None = None,
    allowed: tuple[int, ...] | None = None,
) -> int:
    value = options.get(name, default)
    if value is None:
        raise ValueError(f"option {name} is required")
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"option {name} must be a whole number; got {value!r}")
    if allowed is not None and value not in allowed:
        raise ValueError(f"option {name} must be one of {allowed}; got {value}")
    if value < low or (high is not None and value > high):
        limit = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ValueError(f"option {name} must be {limit}; got {value}")
    return value


def _dose_option(
    options: Mapping[str, object], name: str, ceiling: Decimal | None, unit: str
) -> Decimal | None:
    value = options.get(name)
    if value is None:
        return None
    number = to_decimal(value, name)
    if number <= 0 or (ceiling is not None and number > ceiling):
        top = f" and at most {ceiling} {unit}" if ceiling is not None else ""
        raise ValueError(f"option {name} must be more than 0{top}; got {value}")
    return number


def _esk_dose_option(options: Mapping[str, object], default: Decimal) -> Decimal:
    value = options.get("dose_mg", default)
    dose = to_decimal(value, "dose_mg")
    if dose not in ESK_DOSES:
        raise ValueError(
            f"esketamine dose_mg must be 56 or 84 mg (US label; 28 mg is not a US dose); "
            f"got {value}"
        )
    return dose


@dataclass(frozen=True, slots=True)
class _Slot:
    day: int  # offset from start
    phase: str
    lo: int  # protocol bounds for this session (offsets, inclusive)
    hi: int
    gap: int  # minimum days after the previous session
    frequency: str
    dose_mg: Decimal | None = None
    mg_per_kg: Decimal | None = None


def _materialise(code: Protocol, start: date, slots: Sequence[_Slot]) -> list[PlannedSession]:
    sessions: list[PlannedSession] = []
    for i, slot in enumerate(slots):
        if i == 0:
            lo = hi = slot.day  # session 1 anchors the course
        else:
            lo = max(slot.lo, slots[i - 1].day + slot.gap)
            hi = slot.hi
        if i + 1 < len(slots):
            hi = min(hi, slots[i + 1].day - slots[i + 1].gap)
        if not lo <= slot.day <= hi:  # pragma: no cover - protocol tables are consistent
            raise AssertionError(f"inconsistent plan at session {i + 1}")
        sessions.append(
            PlannedSession(
                number=i + 1,
                phase=slot.phase,
                earliest=start + timedelta(days=lo),
                target=start + timedelta(days=slot.day),
                latest=start + timedelta(days=hi),
                dose_mg=slot.dose_mg,
                mg_per_kg=slot.mg_per_kg,
                week=slot.day // 7 + 1,
                frequency=slot.frequency,
                code=code.value,
            )
        )
    return sessions


# ---------------------------------------------------------------------------------------------
# per-protocol slot builders

_IV_OPTIONS = ("per_week", "maintenance_interval_weeks", "maintenance_window_days", "mg_per_kg")
_ESK_TRD_OPTIONS = ("dose_mg", "maintenance_every_weeks")
_ESK_MDSI_OPTIONS = ("dose_mg",)
_INTERVAL_OPTIONS = (
    "interval_days",
    "sessions",
    "window_days",
    "maintenance_interval_days",
    "dose_mg",
    "mg_per_kg",
)
_CUSTOM_OPTIONS = (*_INTERVAL_OPTIONS, "dates")
_PLAN_OPTIONS: dict[Protocol, tuple[str, ...]] = {
    Protocol.IV_KETAMINE_STANDARD: _IV_OPTIONS,
    Protocol.ESKETAMINE_TRD: _ESK_TRD_OPTIONS,
    Protocol.ESKETAMINE_MDSI: _ESK_MDSI_OPTIONS,
    Protocol.IM_KETAMINE: _INTERVAL_OPTIONS,
    Protocol.ORAL_KETAMINE: _INTERVAL_OPTIONS,
    Protocol.CUSTOM: _CUSTOM_OPTIONS,
}


def _iv_slots(maintenance: int, options: Mapping[str, object]) -> list[_Slot]:
    # clinical.md §1.4: twice weekly (ELEKT-D) or three times weekly (Murrough 2013)
    per_week = _int_option(options, "per_week", 2, 2, 3, allowed=(2, 3))
    # clinical.md §1.4: maintenance boosters every 2-6 weeks are clinic practice [?]
    interval = _int_option(options, "maintenance_interval_weeks", 4, 2, 6)
    tol = _int_option(options, "maintenance_window_days", 3, 0, 6)
    mg_per_kg = _dose_option(options, "mg_per_kg", ABSOLUTE_MAX_IV_MG_PER_KG, "mg/kg")
    mg_per_kg = IV_DEFAULT_MG_PER_KG if mg_per_kg is None else mg_per_kg
    freq = "three_weekly" if per_week == 3 else "twice_weekly"
    last = IV_INDUCTION_SPAN_DAYS - 1
    # ELEKT-D / Murrough 2013: 6 infusions within 21 days, >= 48 h apart (clinical.md §1.4)
    slots = [
        _Slot(day, INDUCTION, 0, last, 2, freq, mg_per_kg=mg_per_kg) for day in IV_OFFSETS[per_week]
    ]
    day = slots[-1].day
    for _ in range(maintenance):
        day += 7 * interval
        slots.append(
            _Slot(
                day,
                MAINTENANCE,
                day - tol,
                day + tol,
                2,
                f"every_{interval}_weeks",
                mg_per_kg=mg_per_kg,
            )
        )
    return slots


def _esk_induction_slots(first: Decimal, later: Decimal) -> list[_Slot]:
    # Spravato USPI §2.2: weeks 1-4 twice weekly (clinical.md §2.2); days 0 and 3 of each week
    slots: list[_Slot] = []
    for week in range(ESK_INDUCTION_WEEKS):
        for offset in (0, 3):
            dose = first if not slots else later
            day = 7 * week + offset
            slots.append(
                _Slot(
                    day,
                    INDUCTION,
                    7 * week,
                    7 * week + 6,
                    ESK_MIN_GAP_DAYS,
                    "twice_weekly",
                    dose_mg=dose,
                )
            )
    return slots


def _esk_trd_slots(maintenance: int, options: Mapping[str, object]) -> list[_Slot]:
    later = _esk_dose_option(options, ESK_FIRST_DOSE)
    # Spravato USPI §2.2: week 9 on, every 2 weeks or weekly; default every 2 weeks (the label
    # asks for the least frequent dosing that keeps the response)
    every = _int_option(options, "maintenance_every_weeks", 2, 1, 2, allowed=(1, 2))
    # Spravato USPI §2.2: Day 1 dose is 56 mg (clinical.md §2.2)
    slots = _esk_induction_slots(ESK_FIRST_DOSE, later)
    # Spravato USPI §2.2: weeks 5-8 once weekly (clinical.md §2.2)
    for week in range(ESK_INDUCTION_WEEKS, ESK_WEEKLY_UNTIL_WEEK):
        slots.append(
            _Slot(
                7 * week,
                MAINTENANCE,
                7 * week,
                7 * week + 6,
                ESK_MIN_GAP_DAYS,
                "weekly",
                dose_mg=later,
            )
        )
    freq = "weekly" if every == 1 else "every_2_weeks"
    for k in range(maintenance):
        # first maintenance session in week 9, then one per 1- or 2-week block
        block = 7 * ESK_WEEKLY_UNTIL_WEEK + 7 * every * k
        slots.append(
            _Slot(
                block,
                MAINTENANCE,
                block,
                block + 7 * every - 1,
                ESK_MIN_GAP_DAYS,
                freq,
                dose_mg=later,
            )
        )
    return slots


def _esk_mdsi_slots(maintenance: int, options: Mapping[str, object]) -> list[_Slot]:
    if maintenance:
        raise ValueError(
            "esketamine_mdsi is a 4-week course (8 sessions); use beyond 4 weeks has not been "
            "systematically evaluated (Spravato USPI §2.3). Plan continuation with "
            "esketamine_trd if the patient meets the TRD indication"
        )
    # Spravato USPI §2.3: 84 mg twice weekly x 4 weeks, 56 mg for tolerability
    dose = _esk_dose_option(options, Decimal(84))
    return _esk_induction_slots(dose, dose)


def _interval_slots(
    proto: Protocol, maintenance: int, options: Mapping[str, object]
) -> list[_Slot]:
    min_gap = 2 if proto is Protocol.IM_KETAMINE else 1
    # clinic-set interval (clinical.md §1.5); IM kept >= 48 h apart by analogy with IV [?]
    interval = _int_option(options, "interval_days", None, min_gap, 365)
    count = _int_option(options, "sessions", None, 1, 200)
    tol = _int_option(options, "window_days", (interval - 1) // 2, 0, interval)
    m_interval = _int_option(options, "maintenance_interval_days", interval, min_gap, 365)
    mg_per_kg, dose_mg = _interval_doses(proto, options)
    slots = []
    for i in range(count):
        day = i * interval
        slots.append(
            _Slot(
                day,
                COURSE,
                day - tol,
                day + tol,
                min_gap,
                f"every_{interval}_days",
                dose_mg=dose_mg,
                mg_per_kg=mg_per_kg,
            )
        )
    day = slots[-1].day
    for _ in range(maintenance):
        day += m_interval
        slots.append(
            _Slot(
                day,
                MAINTENANCE,
                day - tol,
                day + tol,
                min_gap,
                f"every_{m_interval}_days",
                dose_mg=dose_mg,
                mg_per_kg=mg_per_kg,
            )
        )
    return slots


def _interval_doses(
    proto: Protocol, options: Mapping[str, object]
) -> tuple[Decimal | None, Decimal | None]:
    if proto is Protocol.IM_KETAMINE:
        # Zanos 2018 / Chilukuri 2014: IM 0.25-1 mg/kg (clinical.md §1.5)
        mg_per_kg = _dose_option(options, "mg_per_kg", IM_MAX_MG_PER_KG, "mg/kg")
        dose_mg = _dose_option(options, "dose_mg", None, "mg")
    elif proto is Protocol.ORAL_KETAMINE:
        # Andrade 2019: oral 0.25-7.0 mg/kg or 25-300 mg (clinical.md §1.5)
        mg_per_kg = _dose_option(options, "mg_per_kg", ORAL_MAX_MG_PER_KG, "mg/kg")
        dose_mg = _dose_option(options, "dose_mg", ORAL_MAX_FIXED_MG, "mg")
    else:
        mg_per_kg = _dose_option(options, "mg_per_kg", None, "mg/kg")
        dose_mg = _dose_option(options, "dose_mg", None, "mg")
    if mg_per_kg is not None and dose_mg is not None:
        raise ValueError("give either dose_mg or mg_per_kg, not both")
    return mg_per_kg, dose_mg


def _custom_dates(start: date, options: Mapping[str, object]) -> list[date]:
    raw = options.get("dates")
    if isinstance(raw, str | bytes) or not isinstance(raw, Iterable):
        raise ValueError("option dates must be a list of dates")
    dates: list[date] = []
    for item in raw:
        if isinstance(item, datetime) or not isinstance(item, date):
            raise ValueError(f"option dates must contain dates only; got {item!r}")
        dates.append(item)
    if not dates:
        raise ValueError("option dates must contain at least one date")
    if dates[0] < start:
        raise ValueError(f"custom dates must not be before the start date {start.isoformat()}")
    for a, b in zip(dates, dates[1:], strict=False):
        if b <= a:
            raise ValueError(
                f"custom dates must be in order, one session a day at most; "
                f"{b.isoformat()} follows {a.isoformat()}"
            )
    return dates


def _custom_slots(
    start: date, maintenance: int, options: Mapping[str, object]
) -> tuple[date, list[_Slot]]:
    if "dates" not in options:
        if "interval_days" not in options or "sessions" not in options:
            raise ValueError(
                "custom protocol needs either option dates (a list of dates) or options "
                "interval_days and sessions"
            )
        return start, _interval_slots(Protocol.CUSTOM, maintenance, options)
    if "interval_days" in options or "sessions" in options:
        raise ValueError("custom protocol takes either dates or interval_days/sessions, not both")
    dates = _custom_dates(start, options)
    tol = _int_option(options, "window_days", 0, 0, 365)
    mg_per_kg, dose_mg = _interval_doses(Protocol.CUSTOM, options)
    anchor = dates[0]
    days = [(d - anchor).days for d in dates]
    if maintenance:
        if "maintenance_interval_days" not in options:
            raise ValueError(
                "custom protocol with explicit dates needs option maintenance_interval_days "
                "to add maintenance sessions"
            )
        m_interval = _int_option(options, "maintenance_interval_days", None, 1, 365)
        days += [days[-1] + m_interval * (k + 1) for k in range(maintenance)]
    slots = [
        _Slot(
            day,
            COURSE if i < len(dates) else MAINTENANCE,
            day - tol,
            day + tol,
            1,
            "custom",
            dose_mg=dose_mg,
            mg_per_kg=mg_per_kg,
        )
        for i, day in enumerate(days)
    ]
    return anchor, slots


def _slots_for(
    proto: Protocol, start: date, maintenance: int, options: Mapping[str, object]
) -> tuple[date, list[_Slot]]:
    if proto is Protocol.IV_KETAMINE_STANDARD:
        return start, _iv_slots(maintenance, options)
    if proto is Protocol.ESKETAMINE_TRD:
        return start, _esk_trd_slots(maintenance, options)
    if proto is Protocol.ESKETAMINE_MDSI:
        return start, _esk_mdsi_slots(maintenance, options)
    if proto is Protocol.CUSTOM:
        return _custom_slots(start, maintenance, options)
    return start, _interval_slots(proto, maintenance, options)


def plan(
    code: str, start: date, maintenance_sessions: int = 0, **options: object
) -> list[PlannedSession]:
    """Plan a course.  See the module docstring for windows; options per protocol:

    - iv_ketamine_standard: per_week (2|3, default 2), maintenance_interval_weeks (2-6, default
      4), maintenance_window_days (0-6, default 3), mg_per_kg (default 0.5).
    - esketamine_trd: dose_mg (56|84 for every dose after Day 1, default 56),
      maintenance_every_weeks (1|2, default 2).  maintenance_sessions = sessions after week 8.
    - esketamine_mdsi: dose_mg (84 default, or 56); no maintenance.
    - im_ketamine / oral_ketamine: interval_days and sessions (required), window_days,
      maintenance_interval_days (default interval_days), dose_mg or mg_per_kg.
    - custom: dates (list of dates) or interval_days + sessions; window_days; dose options.
    """
    proto = _code(code)
    if isinstance(start, datetime) or not isinstance(start, date):
        raise ValueError(f"start must be a date (not a datetime); got {start!r}")
    if isinstance(maintenance_sessions, bool) or not isinstance(maintenance_sessions, int):
        raise ValueError(
            f"maintenance_sessions must be a whole number; got {maintenance_sessions!r}"
        )
    if not 0 <= maintenance_sessions <= 200:
        raise ValueError(
            f"maintenance_sessions must be between 0 and 200; got {maintenance_sessions}"
        )
    _check_options(proto, options, _PLAN_OPTIONS[proto])
    anchor, slots = _slots_for(proto, start, maintenance_sessions, options)
    return _materialise(proto, anchor, slots)


# ---------------------------------------------------------------------------------------------
# validation


def _sort_key(record: SessionRecord) -> tuple[date, float]:
    at = record.at
    return (record.day, at.timestamp() if isinstance(at, datetime) else float("-inf"))


def _record(item: object) -> SessionRecord:
    if isinstance(item, SessionRecord):
        return item
    if isinstance(item, date):
        return SessionRecord(at=item)
    raise ValueError(f"sessions must be SessionRecord, date or datetime; got {item!r}")


def _gap_text(prev: SessionRecord, cur: SessionRecord) -> str:
    if isinstance(prev.at, datetime) and isinstance(cur.at, datetime):
        minutes = int((cur.at - prev.at).total_seconds() // 60)
        sign, minutes = ("-", -minutes) if minutes < 0 else ("", minutes)
        return f"{sign}{minutes // 60} h {minutes % 60:02d} min"
    return f"{(cur.day - prev.day).days} day(s)"


def _too_soon_hours(prev: SessionRecord, cur: SessionRecord, min_gap: timedelta) -> bool:
    """Minimum spacing: exact hours when both times are known, else whole calendar days."""
    if isinstance(prev.at, datetime) and isinstance(cur.at, datetime):
        return cur.at - prev.at < min_gap
    return (cur.day - prev.day).days < min_gap.days


def _label_week(first: date, day: date) -> int:
    return (day - first).days // 7 + 1


def _validate_iv(
    history: list[SessionRecord], proposed: SessionRecord, options: Mapping[str, object]
) -> list[Violation]:
    out: list[Violation] = []
    n = len(history) + 1
    first = history[0].day if history else proposed.day
    if history:
        prev = history[-1]
        # ELEKT-D / Murrough 2013 practice: infusions >= 48 h apart (clinical.md §1.4)
        if _too_soon_hours(prev, proposed, IV_MIN_GAP):
            out.append(
                Violation(
                    "too_soon",
                    f"infusion {n} is {_gap_text(prev, proposed)} after the previous one; "
                    "IV ketamine infusions must be at least 48 hours apart",
                    SRC_IV,
                )
            )
    if n <= IV_INDUCTION_SESSIONS:
        last_allowed = first + timedelta(days=IV_INDUCTION_SPAN_DAYS - 1)
        remaining = IV_INDUCTION_SESSIONS - n
        # clinical.md §1.4: 6 infusions within 21 days of the first
        if proposed.day + timedelta(days=2 * remaining) > last_allowed:
            out.append(
                Violation(
                    "outside_window",
                    f"infusion {n} on {proposed.day.isoformat()} leaves too little time: the "
                    f"{IV_INDUCTION_SESSIONS} induction infusions must fit within 21 days of the "
                    f"first ({first.isoformat()} to {last_allowed.isoformat()}), "
                    "at least 48 h apart",
                    SRC_IV,
                    overridable=True,
                )
            )
    elif history:
        gap = (proposed.day - history[-1].day).days
        if "maintenance_interval_weeks" in options:
            weeks = _int_option(options, "maintenance_interval_weeks", 4, 2, 6)
            tol = _int_option(options, "maintenance_window_days", 3, 0, 6)
            low, high = 7 * weeks - tol, 7 * weeks + tol
        else:
            low, high = 14, 42  # the 2-6 week range the protocol allows
        # clinic practice: maintenance every 2-6 weeks [?] (clinical.md §1.4)
        if not low <= gap <= high and gap >= 2:
            out.append(
                Violation(
                    "outside_window",
                    f"maintenance infusion {n} is {gap} days after the previous one; the plan "
                    f"allows {low}-{high} days",
                    SRC_IV_MAINT,
                    overridable=True,
                )
            )
    out += _phase_limit(n, IV_INDUCTION_SESSIONS, options, "IV ketamine")
    out += _iv_dose(proposed, options)
    return out


def _iv_dose(proposed: SessionRecord, options: Mapping[str, object]) -> list[Violation]:
    mg_per_kg = proposed.mg_per_kg
    if mg_per_kg is None and proposed.dose_mg is not None and proposed.weight_kg is not None:
        mg_per_kg = to_decimal(proposed.dose_mg, "dose") / to_decimal(proposed.weight_kg, "weight")
    if mg_per_kg is None:
        return []
    clinic_max = options.get("clinic_max_mg_per_kg", IV_DEFAULT_CLINIC_MAX_MG_PER_KG)
    result = check_iv_dose(
        to_decimal(mg_per_kg, "dose"),
        to_decimal(clinic_max, "clinic maximum dose"),
        proposed.prescriber_reason,
    )
    # clinical.md §1.2 / §9.3: clinic maximum; prescriber reason above 0.5 mg/kg
    if result.refused:
        return [Violation("wrong_dose", result.message, SRC_IV_DOSE)]
    if result.needs_reason:
        return [Violation("reason_required", result.message, SRC_IV_DOSE)]
    return []


def _phase_limit(n: int, course: int, options: Mapping[str, object], what: str) -> list[Violation]:
    if "maintenance_sessions" not in options:
        return []
    extra = _int_option(options, "maintenance_sessions", 0, 0)
    if n > course + extra:
        return [
            Violation(
                "phase_complete",
                f"session {n} is beyond the planned {what} course of {course} sessions plus "
                f"{extra} maintenance session(s)",
                SRC_CLINIC if what != "IV ketamine" else SRC_IV,
            )
        ]
    return []


def _validate_esketamine(
    proto: Protocol,
    history: list[SessionRecord],
    proposed: SessionRecord,
    options: Mapping[str, object],
) -> list[Violation]:
    out: list[Violation] = []
    n = len(history) + 1
    first = history[0].day if history else proposed.day
    week = _label_week(first, proposed.day)
    mdsi = proto is Protocol.ESKETAMINE_MDSI
    src = SRC_MDSI if mdsi else SRC_ESK
    if history:
        prev = history[-1]
        gap = (proposed.day - prev.day).days
        # [?] label: "twice weekly"; no minimum stated, so never on consecutive days
        if gap < ESK_MIN_GAP_DAYS:
            out.append(
                Violation(
                    "too_soon",
                    f"esketamine session {n} is {gap} day(s) after the previous one; sessions "
                    "must be at least 2 days apart",
                    src,
                )
            )
        same_week = sum(1 for r in history if _label_week(first, r.day) == week)
        allowed = 2 if week <= ESK_INDUCTION_WEEKS else 1
        # Spravato USPI §2.2: twice weekly in weeks 1-4, at most weekly after (clinical.md §2.2)
        if same_week >= allowed and week >= 1:
            out.append(
                Violation(
                    "too_soon",
                    f"label week {week} already has {same_week} session(s); the label allows "
                    f"{'two' if allowed == 2 else 'one'} per week "
                    f"{'in weeks 1-4' if allowed == 2 else 'from week 5'}",
                    src,
                )
            )
        if mdsi and (n > MDSI_SESSIONS or week > ESK_INDUCTION_WEEKS):
            # Spravato USPI §2.3: MDSI course is 4 weeks; beyond not systematically evaluated
            out.append(
                Violation(
                    "phase_complete",
                    "the MDSI course is 8 sessions over 4 weeks; use beyond 4 weeks has not been "
                    "systematically evaluated - re-evaluate, or plan under esketamine_trd",
                    SRC_MDSI,
                )
            )
        if not mdsi and week > ESK_WEEKLY_UNTIL_WEEK:
            out += _esk_maintenance(first, history, proposed, week, options)
    out += _esk_dose(proto, n, proposed)
    return out


def _esk_maintenance(
    first: date,
    history: list[SessionRecord],
    proposed: SessionRecord,
    week: int,
    options: Mapping[str, object],
) -> list[Violation]:
    out: list[Violation] = []
    every = _int_option(options, "maintenance_every_weeks", 2, 1, 2, allowed=(1, 2))
    if every == 2:
        block = (week - ESK_WEEKLY_UNTIL_WEEK - 1) // 2
        in_block = sum(
            1
            for r in history
            if _label_week(first, r.day) > ESK_WEEKLY_UNTIL_WEEK
            and (_label_week(first, r.day) - ESK_WEEKLY_UNTIL_WEEK - 1) // 2 == block
        )
        # Spravato USPI §2.2: from week 9 every 2 weeks (plan) - weekly is allowed by label
        if in_block:
            out.append(
                Violation(
                    "outside_window",
                    f"the plan is every 2 weeks but weeks {9 + 2 * block}-{10 + 2 * block} already "
                    "have a session; weekly dosing is within the label (e.g. when depression "
                    "worsens) but needs a reason",
                    SRC_ESK,
                    overridable=True,
                )
            )
    if "maintenance_sessions" in options:
        extra = _int_option(options, "maintenance_sessions", 0, 0)
        after_week_8 = sum(1 for r in history if _label_week(first, r.day) > ESK_WEEKLY_UNTIL_WEEK)
        if after_week_8 + 1 > extra:
            out.append(
                Violation(
                    "phase_complete",
                    f"the plan has {extra} maintenance session(s) after week 8 and "
                    f"{after_week_8} have been given",
                    SRC_ESK,
                )
            )
    return out


def _esk_dose(proto: Protocol, n: int, proposed: SessionRecord) -> list[Violation]:
    if proposed.dose_mg is None:
        return []
    dose = to_decimal(proposed.dose_mg, "dose")
    if proto is Protocol.ESKETAMINE_TRD and n == 1 and dose != ESK_FIRST_DOSE:
        # Spravato USPI §2.2: Day 1 dose is 56 mg for TRD (clinical.md §2.2)
        return [
            Violation(
                "wrong_dose",
                f"the first esketamine dose for TRD must be 56 mg (label Day 1); got {dose} mg",
                SRC_ESK_DOSE,
            )
        ]
    if dose not in ESK_DOSES:
        # Spravato USPI §2.2-2.3: doses are 56 or 84 mg; 28 mg is not a US dose
        return [
            Violation(
                "wrong_dose",
                f"esketamine doses are 56 or 84 mg (two or three 28 mg devices); got {dose} mg",
                SRC_MDSI if proto is Protocol.ESKETAMINE_MDSI else SRC_ESK_DOSE,
            )
        ]
    return []


def _validate_interval(
    proto: Protocol,
    history: list[SessionRecord],
    proposed: SessionRecord,
    options: Mapping[str, object],
) -> list[Violation]:
    out: list[Violation] = []
    course: int | None
    n = len(history) + 1
    src = SRC_ORAL if proto is Protocol.ORAL_KETAMINE else SRC_CLINIC
    min_gap = 2 if proto is Protocol.IM_KETAMINE else 1
    if history:
        prev = history[-1]
        # IM: >= 48 h by analogy with IV practice [?]; oral/custom: one session a day at most
        if _too_soon_hours(prev, proposed, timedelta(days=min_gap)):
            out.append(
                Violation(
                    "too_soon",
                    f"session {n} is {_gap_text(prev, proposed)} after the previous one; the "
                    f"minimum is {24 * min_gap} h",
                    src,
                )
            )
    dates = options.get("dates")
    if proto is Protocol.CUSTOM and dates is not None:
        custom_dates = _custom_dates(date.min, options)
        planned = plan(
            proto.value,
            custom_dates[0],
            0,
            **{k: v for k, v in options.items() if k in ("dates", "window_days")},
        )
        if n <= len(planned):
            slot = planned[n - 1]
            # clinic-set dates: moving a session needs a reason
            if not slot.earliest <= proposed.day <= slot.latest:
                out.append(
                    Violation(
                        "outside_window",
                        f"session {n} is planned for {slot.target.isoformat()} (window "
                        f"{slot.earliest.isoformat()} to {slot.latest.isoformat()}); proposed "
                        f"{proposed.day.isoformat()}",
                        src,
                        overridable=True,
                    )
                )
        course = len(planned)
    else:
        raw_course = options.get("sessions")
        course = raw_course if isinstance(raw_course, int) else None
        if history and "interval_days" in options:
            interval = _int_option(options, "interval_days", None, min_gap, 365)
            tol = _int_option(options, "window_days", (interval - 1) // 2, 0, interval)
            gap = (proposed.day - history[-1].day).days
            # clinic-set interval (clinical.md §1.5): target +/- window_days
            if not interval - tol <= gap <= interval + tol and gap >= min_gap:
                out.append(
                    Violation(
                        "outside_window",
                        f"session {n} is {gap} days after the previous one; the plan allows "
                        f"{interval - tol}-{interval + tol} days",
                        src,
                        overridable=True,
                    )
                )
    if isinstance(course, int) and not isinstance(course, bool):
        out += _phase_limit(n, course, options, proto.value)
    out += _interval_dose(proto, proposed, options)
    return out


def _interval_dose(
    proto: Protocol, proposed: SessionRecord, options: Mapping[str, object]
) -> list[Violation]:
    out: list[Violation] = []
    ceiling = {Protocol.IM_KETAMINE: IM_MAX_MG_PER_KG, Protocol.ORAL_KETAMINE: ORAL_MAX_MG_PER_KG}
    mg_per_kg = proposed.mg_per_kg
    if mg_per_kg is None:
        return out
    limit = ceiling.get(proto)
    if "clinic_max_mg_per_kg" in options:
        limit = to_decimal(options["clinic_max_mg_per_kg"], "clinic maximum dose")
    # clinical.md §1.5 route dose ranges / clinic maximum
    if limit is not None and to_decimal(mg_per_kg, "dose") > limit:
        out.append(
            Violation(
                "wrong_dose",
                f"{mg_per_kg} mg/kg is above the maximum of {limit} mg/kg for {proto.value}",
                SRC_ORAL if proto is Protocol.ORAL_KETAMINE else SRC_CLINIC,
            )
        )
    return out


_VALIDATE_EXTRA = ("maintenance_sessions", "clinic_max_mg_per_kg")


def validate(
    code: str,
    history: Sequence[SessionRecord | date | datetime],
    proposed: SessionRecord | date | datetime,
    **options: object,
) -> list[Violation]:
    """List the rule violations of ``proposed`` given the sessions already ``history``.

    Codes: ``too_soon`` (minimum spacing or per-week frequency), ``outside_window`` (outside the
    protocol window; overridable with a reason), ``wrong_dose``, ``reason_required`` (IV above
    0.5 mg/kg without a prescriber reason) and ``phase_complete`` (more sessions than planned;
    needs options ``maintenance_sessions`` - or for MDSI the fixed 4-week course).
    Options: the protocol's ``plan`` options, ``maintenance_sessions`` and (IV/IM/oral)
    ``clinic_max_mg_per_kg`` (IV default 0.75 mg/kg).  An empty list means no violation.
    """
    proto = _code(code)
    allowed = _PLAN_OPTIONS[proto] + _VALIDATE_EXTRA
    _check_options(proto, options, allowed)
    if isinstance(history, str | bytes) or not isinstance(history, Sequence):
        raise ValueError("history must be a list of sessions already given")
    records = sorted((_record(h) for h in history), key=_sort_key)
    new = _record(proposed)
    if proto is Protocol.IV_KETAMINE_STANDARD:
        return _validate_iv(records, new, options)
    if proto in (Protocol.ESKETAMINE_TRD, Protocol.ESKETAMINE_MDSI):
        return _validate_esketamine(proto, records, new, options)
    return _validate_interval(proto, records, new, options)


# ---------------------------------------------------------------------------------------------
# missed doses

_MISSED: dict[tuple[Protocol, str], str] = {
    (Protocol.ESKETAMINE_TRD, INDUCTION): (
        "Weeks 1-4: if a session is missed, continue the current twice-weekly schedule (do not "
        "add an extra session to catch up). Source: " + SRC_MISSED
    ),
    (Protocol.ESKETAMINE_TRD, MAINTENANCE): (
        "Maintenance: if a session is missed and depression worsens, consider returning to the "
        "previous dosing frequency (every 2 weeks -> weekly; weekly -> twice weekly). "
        "Source: " + SRC_MISSED
    ),
    (Protocol.ESKETAMINE_MDSI, INDUCTION): (
        "If a session is missed during the 4-week course, continue the current twice-weekly "
        "schedule (do not add an extra session to catch up). Source: " + SRC_MISSED
    ),
    (Protocol.IV_KETAMINE_STANDARD, INDUCTION): (
        "No published missed-dose rule for IV ketamine. Reschedule at least 48 h after the "
        "previous infusion; if the 6 infusions can no longer fit within 21 days of the first, "
        "the prescriber decides whether to extend the series. Source: clinical.md §1.4"
    ),
    (Protocol.IV_KETAMINE_STANDARD, MAINTENANCE): (
        "No published missed-dose rule for IV ketamine maintenance. Reschedule so the next "
        "infusion precedes the expected loss of effect (Andrade 2017); if depression worsens the "
        "prescriber may shorten the interval. Source: clinical.md §1.4"
    ),
}
_MISSED_GENERIC = (
    "No published missed-dose rule for {route}. Reschedule at the clinic-set interval; the "
    "prescriber decides whether to repeat or shorten the interval. Source: clinical.md §1.5"
)


def missed_dose_guidance(code: str, phase: str) -> str:
    """Guidance text for a missed session in ``phase`` of protocol ``code``."""
    proto = _code(code)
    phase_key = phase.strip().lower() if isinstance(phase, str) else ""
    phases = {
        Protocol.ESKETAMINE_TRD: (INDUCTION, MAINTENANCE),
        Protocol.ESKETAMINE_MDSI: (INDUCTION,),
        Protocol.IV_KETAMINE_STANDARD: (INDUCTION, MAINTENANCE),
    }.get(proto, (COURSE, MAINTENANCE))
    if phase_key not in phases:
        raise ValueError(
            f"phase for {proto.value} must be one of {', '.join(phases)}; got {phase!r}"
        )
    text = _MISSED.get((proto, phase_key))
    if text is not None:
        return text
    route = {
        Protocol.IM_KETAMINE: "IM ketamine",
        Protocol.ORAL_KETAMINE: "oral ketamine",
    }.get(proto, "a custom protocol")
    return _MISSED_GENERIC.format(route=route)


# ---------------------------------------------------------------------------------------------
# resuming esketamine after a pause

TWICE_WEEKLY = "twice_weekly"
WEEKLY = "weekly"
EVERY_2_WEEKS = "every_2_weeks"
# clinical.md §2.2 (S6, J&J missed-dose guidance 2025-10-10): "weekly -> twice weekly;
# every-2-weeks -> weekly"
_PREVIOUS_FREQUENCY = {WEEKLY: TWICE_WEEKLY, EVERY_2_WEEKS: WEEKLY}
_FREQUENCY_WORDS = {
    TWICE_WEEKLY: "twice weekly",
    WEEKLY: "weekly",
    EVERY_2_WEEKS: "every 2 weeks",
}


@dataclass(frozen=True, slots=True)
class ResumeGuidance:
    """What the label's missed-dose guidance says when an esketamine course resumes.

    ``action`` is ``continue_schedule`` (keep the current schedule; missed sessions are not
    made up) or ``consider_previous_frequency`` (maintenance with worsening depression: the
    prescriber considers returning to ``suggested_frequency``). It is guidance for the
    prescriber, never an instruction to the patient.
    """

    action: str
    label_week: int
    phase: str
    current_frequency: str
    suggested_frequency: str
    message: str
    source: str


def resume_guidance(
    code: str,
    first_dose: date,
    resume_on: date,
    *,
    depression_worse: bool,
    maintenance_every_weeks: int = 2,
) -> ResumeGuidance:
    """Missed-dose guidance for resuming an esketamine course on ``resume_on``.

    Source (one line): clinical.md §2.2 "Missed sessions" (S6, J&J Medical Information,
    updated 2025-10-10): weeks 1-4 continue the current schedule; in maintenance, if
    depression worsens, consider returning to the prior frequency (weekly -> twice weekly;
    every 2 weeks -> weekly).

    The label week counts from the first dose (week 1 = days 0-6). ``maintenance_every_weeks``
    is the week-9-on interval of an ``esketamine_trd`` course (1 or 2).
    """
    proto = _code(code)
    if proto not in (Protocol.ESKETAMINE_TRD, Protocol.ESKETAMINE_MDSI):
        raise ValueError(
            f"resume guidance follows the Spravato label and applies to esketamine protocols "
            f"only; {proto.value} has no published missed-dose rule (see missed_dose_guidance)"
        )
    for name, value in (("first_dose", first_dose), ("resume_on", resume_on)):
        if not isinstance(value, date) or isinstance(value, datetime):
            raise ValueError(f"{name} must be a date; got {value!r}")
    if resume_on < first_dose:
        raise ValueError(
            f"the course cannot resume ({resume_on}) before its first dose ({first_dose})"
        )
    if isinstance(maintenance_every_weeks, bool) or maintenance_every_weeks not in (1, 2):
        raise ValueError(
            f"maintenance_every_weeks must be 1 (weekly) or 2 (every 2 weeks); "
            f"got {maintenance_every_weeks!r}"
        )
    week = _label_week(first_dose, resume_on)
    if week <= ESK_INDUCTION_WEEKS:
        return ResumeGuidance(
            action="continue_schedule",
            label_week=week,
            phase=INDUCTION,
            current_frequency=TWICE_WEEKLY,
            suggested_frequency=TWICE_WEEKLY,
            message=(
                f"Label week {week} (weeks 1-4): continue the current twice-weekly schedule; "
                "missed sessions are not made up with extra sessions."
            ),
            source=SRC_MISSED,
        )
    if proto is Protocol.ESKETAMINE_MDSI:
        return ResumeGuidance(
            action="continue_schedule",
            label_week=week,
            phase=INDUCTION,
            current_frequency=TWICE_WEEKLY,
            suggested_frequency=TWICE_WEEKLY,
            message=(
                f"Label week {week}: the MDSI course is 4 weeks; use beyond 4 weeks has not been "
                "systematically evaluated. The prescriber re-evaluates before any further dose."
            ),
            source=SRC_MDSI,
        )
    current = (
        WEEKLY if week <= ESK_WEEKLY_UNTIL_WEEK or maintenance_every_weeks == 1 else (EVERY_2_WEEKS)
    )
    if not depression_worse:
        return ResumeGuidance(
            action="continue_schedule",
            label_week=week,
            phase=MAINTENANCE,
            current_frequency=current,
            suggested_frequency=current,
            message=(
                f"Label week {week} (maintenance, {_FREQUENCY_WORDS[current]}): depression has "
                "not worsened, so continue the current schedule."
            ),
            source=SRC_MISSED,
        )
    previous = _PREVIOUS_FREQUENCY[current]
    return ResumeGuidance(
        action="consider_previous_frequency",
        label_week=week,
        phase=MAINTENANCE,
        current_frequency=current,
        suggested_frequency=previous,
        message=(
            f"Label week {week} (maintenance, {_FREQUENCY_WORDS[current]}) with worsening "
            f"depression: consider returning to the previous frequency "
            f"({_FREQUENCY_WORDS[current]} -> {_FREQUENCY_WORDS[previous]})."
        ),
        source=SRC_MISSED,
    )
