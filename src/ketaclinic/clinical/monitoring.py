"""In-session monitoring rules: vital-sign alerts, pre-dose BP, device spacing, discharge time,
vitals schedule, MOAA/S and the Aldrete/PADSS circulation item.

All times must be timezone-aware ``datetime``; naive times raise ValueError.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import IntEnum

from ketaclinic.clinical.dosing import to_decimal

__all__ = [
    "ESKETAMINE_DEVICE_GAP",
    "ESKETAMINE_MIN_OBSERVATION_MINUTES",
    "MOAAS",
    "VitalThresholds",
    "bp_change_percent",
    "check_device_interval",
    "check_vitals",
    "circulation_points",
    "earliest_discharge",
    "is_loss_of_consciousness",
    "moaas_score",
    "next_vitals_due",
    "predose_bp_ok",
    "vitals_schedule",
]

Reading = int | float | Decimal

# Spravato USPI §2.1: 5-minute rest between devices (clinical.md §2.1)
ESKETAMINE_DEVICE_GAP = timedelta(minutes=5)
# Spravato USPI / REMS: at least 2 hours of monitoring from the first device (clinical.md §2.5)
ESKETAMINE_MIN_OBSERVATION_MINUTES = 120
# Early tolerance: a reading taken up to 5 minutes before a due time counts for it.
READING_EARLY_TOLERANCE = timedelta(minutes=5)

_PLAUSIBLE = {
    "systolic blood pressure": (Decimal(0), Decimal(300), "mmHg"),
    "diastolic blood pressure": (Decimal(0), Decimal(200), "mmHg"),
    "heart rate": (Decimal(0), Decimal(300), "beats/min"),
    "oxygen saturation": (Decimal(0), Decimal(100), "%"),
}


def _reading(value: object, name: str) -> Decimal | None:
    """None (not taken) or a plausible reading: more than the low bound, at most the high."""
    if value is None:
        return None
    number = to_decimal(value, name)
    low, high, unit = _PLAUSIBLE[name]
    if not low < number <= high:
        raise ValueError(
            f"{name} must be more than {low} and at most {high} {unit}; got {value} "
            "(check the reading)"
        )
    return number


def _bp(sbp: object, dbp: object) -> tuple[Decimal | None, Decimal | None]:
    systolic = _reading(sbp, "systolic blood pressure")
    diastolic = _reading(dbp, "diastolic blood pressure")
    if systolic is not None and diastolic is not None and diastolic >= systolic:
        raise ValueError(
            f"diastolic blood pressure must be lower than systolic; got {sbp}/{dbp} "
            "(check the reading)"
        )
    return systolic, diastolic


def _aware(value: object, name: str) -> datetime:
    if not isinstance(value, datetime):
        raise ValueError(f"{name} must be a datetime; got {value!r}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must include a time zone; got naive {value.isoformat()}")
    return value


# ---------------------------------------------------------------------------------------------
# vital-sign alerts


@dataclass(frozen=True, slots=True)
class VitalThresholds:
    """Clinic-configurable alert thresholds (clinical.md §9.4: must be configurable).

    Alerts: SBP >= sbp_high, DBP >= dbp_high, HR >= hr_high, SpO2 < spo2_low.
    Defaults: 180 / 110 / 110 / 92 — APA consensus action thresholds 180/100-110 and HR 110
    [R][?] (clinical.md §1.6, §9.4); SpO2 92% is the modified Aldrete full-score cut-off
    (clinical.md §4.5).
    """

    sbp_high: Reading = 180
    dbp_high: Reading = 110
    hr_high: Reading = 110
    spo2_low: Reading = 92

    def __post_init__(self) -> None:
        _reading(self.sbp_high, "systolic blood pressure")
        _reading(self.dbp_high, "diastolic blood pressure")
        _reading(self.hr_high, "heart rate")
        _reading(self.spo2_low, "oxygen saturation")


DEFAULT_THRESHOLDS = VitalThresholds()

_THRESHOLD_KEYS = {
    "sbp_high": "sbp_high",
    "sbp": "sbp_high",
    "dbp_high": "dbp_high",
    "dbp": "dbp_high",
    "hr_high": "hr_high",
    "hr": "hr_high",
    "spo2_low": "spo2_low",
    "spo2": "spo2_low",
}


def _thresholds(value: VitalThresholds | Mapping[str, Reading] | None) -> VitalThresholds:
    """A clinic's thresholds as ``VitalThresholds`` or a mapping of some of them (``sbp_high``
    or ``sbp``, ...); thresholds not named keep their defaults."""
    if value is None:
        return DEFAULT_THRESHOLDS
    if isinstance(value, VitalThresholds):
        return value
    if not isinstance(value, Mapping):
        raise ValueError(f"thresholds must be VitalThresholds or a mapping; got {value!r}")
    fields: dict[str, Reading] = {}
    for key, number in value.items():
        name = _THRESHOLD_KEYS.get(str(key))
        if name is None:
            raise ValueError(
                f"unknown threshold {key!r}; use sbp_high, dbp_high, hr_high or spo2_low"
            )
        fields[name] = number
    return VitalThresholds(**fields)


def check_vitals(
    sbp: Reading | None,
    dbp: Reading | None,
    hr: Reading | None,
    spo2: Reading | None,
    thresholds: VitalThresholds | Mapping[str, Reading] | None = None,
) -> frozenset[str]:
    """Alert codes for one set of readings: sbp_high, dbp_high, hr_high, spo2_low.

    A reading that was not taken (None) raises no alert.  Implausible values (SBP <= 0 or
    > 300, DBP <= 0 or > 200 or not below SBP, HR <= 0 or > 300, SpO2 <= 0 or > 100) raise
    ValueError.
    """
    limits = _thresholds(thresholds)
    systolic, diastolic = _bp(sbp, dbp)
    rate = _reading(hr, "heart rate")
    sat = _reading(spo2, "oxygen saturation")
    alerts: set[str] = set()
    # APA consensus [R][?]: act at SBP >= 180 (clinical.md §1.6, §9.4)
    if systolic is not None and systolic >= to_decimal(limits.sbp_high, "sbp_high"):
        alerts.add("sbp_high")
    # APA consensus [R][?]: act at DBP >= 100-110; default 110 (clinical.md §1.6, §9.4)
    if diastolic is not None and diastolic >= to_decimal(limits.dbp_high, "dbp_high"):
        alerts.add("dbp_high")
    # APA consensus [R][?]: HR 110 (clinical.md §1.6, §9.4)
    if rate is not None and rate >= to_decimal(limits.hr_high, "hr_high"):
        alerts.add("hr_high")
    # Modified Aldrete: SpO2 > 92% on room air scores 2 (clinical.md §4.5); alert below 92
    if sat is not None and sat < to_decimal(limits.spo2_low, "spo2_low"):
        alerts.add("spo2_low")
    return frozenset(alerts)


def predose_bp_ok(sbp: Reading, dbp: Reading, limit: Sequence[Reading] = (140, 90)) -> bool:
    """False when SBP > limit[0] or DBP > limit[1]; 140/90 itself is OK.

    Spravato USPI: > 140/90 is the general guide for weighing a delay (clinical.md §2.4); for
    IV ketamine the limit is the clinic's.  A False result asks for a prescriber decision.
    """
    systolic, diastolic = _bp(sbp, dbp)
    if systolic is None or diastolic is None:
        raise ValueError("pre-dose blood pressure needs both systolic and diastolic readings")
    if isinstance(limit, str | bytes) or not isinstance(limit, Sequence) or len(limit) != 2:
        raise ValueError(f"limit must be (systolic, diastolic); got {limit!r}")
    max_sys, max_dia = _bp(limit[0], limit[1])
    if max_sys is None or max_dia is None:
        raise ValueError(f"limit must give both systolic and diastolic values; got {limit!r}")
    # Spravato USPI BP warning: > 140/90 general guide (clinical.md §2.4)
    return systolic <= max_sys and diastolic <= max_dia


# ---------------------------------------------------------------------------------------------
# timing


def _is_esketamine(drug: object) -> bool:
    if not isinstance(drug, str) or not drug.strip():
        raise ValueError(f"drug must be named (e.g. 'esketamine' or 'ketamine'); got {drug!r}")
    return drug.strip().lower() in ("esketamine", "spravato")


def earliest_discharge(
    drug: str,
    first_dose_at: datetime,
    dose_ended_at: datetime | None = None,
    minimum_observation_minutes: int | None = None,
) -> datetime:
    """Earliest time the patient may leave (clinician stability sign-off is still required).

    - esketamine: first device + 120 minutes (label/REMS minimum).  A clinic minimum may only
      lengthen it; a value below 120 raises ValueError.
    - any other drug (racemic ketamine, any route): ``dose_ended_at`` + the clinic's
      ``minimum_observation_minutes``.  Both are required: no published standard exists
      (clinical.md §1.5c, §4.5), so there is no silent default.
    """
    start = _aware(first_dose_at, "first dose time")
    ended = _aware(dose_ended_at, "dose end time") if dose_ended_at is not None else None
    if ended is not None and ended < start:
        raise ValueError(
            f"dose end time {ended.isoformat()} is before the first dose {start.isoformat()}"
        )
    minutes = minimum_observation_minutes
    if minutes is not None and (isinstance(minutes, bool) or not isinstance(minutes, int)):
        raise ValueError(f"minimum observation must be whole minutes; got {minutes!r}")
    if minutes is not None and not 0 < minutes <= 24 * 60:
        raise ValueError(f"minimum observation must be 1 to 1440 minutes; got {minutes}")
    if _is_esketamine(drug):
        if minutes is not None and minutes < ESKETAMINE_MIN_OBSERVATION_MINUTES:
            raise ValueError(
                "esketamine needs at least 120 minutes of observation from the first device "
                f"(label and REMS); a clinic may lengthen it but not shorten it; got {minutes}"
            )
        # Spravato USPI / REMS: >= 2 h from first device (clinical.md §2.5, §9.1)
        observe = minutes if minutes is not None else ESKETAMINE_MIN_OBSERVATION_MINUTES
        return start + timedelta(minutes=observe)
    if ended is None:
        raise ValueError(f"{drug}: the time the dose ended is needed to set the discharge time")
    if minutes is None:
        raise ValueError(
            f"{drug}: the clinic's minimum observation time (minutes after the dose ends) is "
            "needed; there is no published standard to default to"
        )
    # clinic protocol (clinical.md §1.5c, §4.5): observation after the dose ends
    return ended + timedelta(minutes=minutes)


def check_device_interval(previous_at: datetime, this_at: datetime) -> None:
    """Raise ValueError unless this esketamine device is at least 5:00 after the previous one."""
    prev = _aware(previous_at, "previous device time")
    this = _aware(this_at, "this device time")
    if this < prev:
        raise ValueError(
            f"device time {this.isoformat()} is before the previous device {prev.isoformat()}"
        )
    # Spravato USPI §2.1: 5-minute rest between devices (clinical.md §2.1)
    if this - prev < ESKETAMINE_DEVICE_GAP:
        seconds = int((this - prev).total_seconds())
        raise ValueError(
            f"esketamine devices must be at least 5 minutes apart (label); this one is "
            f"{seconds // 60}:{seconds % 60:02d} after the previous device"
        )


# Riva-Posse 2018 (Emory): q10 min during infusion, q15 min after (clinical.md §4.3)
IV_DURING = timedelta(minutes=10)
IV_AFTER = timedelta(minutes=15)
# clinic examples: 30-60 min recovery (clinical.md §1.5c); the longer value is the default
DEFAULT_RECOVERY = timedelta(minutes=60)
# Spravato USPI / PMF: pre-dose, ~40 min, then as warranted and before discharge (clinical.md
# §2.4, §2.6, §4.3); "as warranted" is set to every 30 minutes
ESK_FIRST_POST = timedelta(minutes=40)
ESK_AFTER = timedelta(minutes=30)


def vitals_schedule(
    drug: str,
    dose_started_at: datetime,
    dose_ended_at: datetime | None = None,
    until: datetime | None = None,
) -> list[datetime]:
    """Default times vital signs are due, sorted, ending with a pre-discharge reading at ``until``.

    - esketamine: before the dose (``dose_started_at`` = first device), 40 minutes after the
      dose (after ``dose_ended_at`` = last device when given, else after the first device),
      then every 30 minutes, and before discharge (``until``, default first device + 120 min).
    - other drugs (IV ketamine): at the start, every 10 minutes during the infusion, at the end,
      then every 15 minutes after it until discharge (``until``, default end + 60 minutes).
      Without ``dose_ended_at`` (bolus IM/oral) the dose is treated as ending when it started.
    """
    start = _aware(dose_started_at, "dose start time")
    ended = _aware(dose_ended_at, "dose end time") if dose_ended_at is not None else start
    if ended < start:
        raise ValueError("dose end time is before the dose start time")
    if _is_esketamine(drug):
        minimum = start + timedelta(minutes=ESKETAMINE_MIN_OBSERVATION_MINUTES)
        last = _aware(until, "discharge time") if until is not None else minimum
        if last < minimum:
            # Spravato USPI / REMS: >= 2 h from first device (clinical.md §2.5)
            raise ValueError(
                "esketamine discharge must be at least 120 minutes after the first device"
            )
        times = [start]
        due = ended + ESK_FIRST_POST
        while due < last:
            times.append(due)
            due += ESK_AFTER
    else:
        last = _aware(until, "discharge time") if until is not None else ended + DEFAULT_RECOVERY
        times = []
        due = start
        while due < ended:
            times.append(due)
            due += IV_DURING
        times.append(ended)
        due = ended + IV_AFTER
        while due < last:
            times.append(due)
            due += IV_AFTER
    if last < ended:
        raise ValueError("the discharge time is before the dose ended")
    if last not in times:
        times.append(last)  # pre-discharge reading
    return sorted(set(times))


def next_vitals_due(
    schedule: Sequence[datetime], readings_taken_at: Iterable[datetime], now: datetime
) -> datetime | None:
    """The next scheduled reading not yet covered, or None when the schedule is complete.

    A reading covers every scheduled time up to 5 minutes after it (a reading a little early
    counts), so the answer is the first scheduled time more than 5 minutes after the latest
    reading.  It may be earlier than ``now``: the reading is then overdue.  Readings after
    ``now`` are an error.
    """
    current = _aware(now, "now")
    due_times = sorted(_aware(t, "scheduled time") for t in schedule)
    readings = [_aware(t, "reading time") for t in readings_taken_at]
    for taken in readings:
        if taken > current:
            raise ValueError(f"reading time {taken.isoformat()} is in the future")
    if not readings:
        return due_times[0] if due_times else None
    covered_until = max(readings) + READING_EARLY_TOLERANCE
    for due in due_times:
        if due > covered_until:
            return due
    return None


# ---------------------------------------------------------------------------------------------
# sedation and discharge scoring


class MOAAS(IntEnum):
    """Modified Observer's Assessment of Alertness/Sedation (clinical.md §4.4, anchors [R])."""

    NO_RESPONSE = 0  # Spravato USPI: loss of consciousness
    TRAPEZIUS_SQUEEZE = 1
    MILD_PRODDING = 2
    LOUD_OR_REPEATED_NAME = 3
    LETHARGIC_TO_NORMAL_NAME = 4
    RESPONDS_READILY = 5


def moaas_score(value: object) -> MOAAS:
    """Validate a MOAA/S score (whole number 0-5)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 5:
        raise ValueError(f"MOAA/S score must be a whole number from 0 to 5; got {value!r}")
    return MOAAS(value)


def is_loss_of_consciousness(score: object) -> bool:
    """Spravato USPI defines loss of consciousness as MOAA/S 0 (clinical.md §4.1, §4.4)."""
    return moaas_score(score) is MOAAS.NO_RESPONSE


def bp_change_percent(baseline_sbp: Reading, current_sbp: Reading) -> Decimal:
    """Signed systolic change from baseline in percent, rounded to 0.1 for display."""
    base, now = _bp_pair(baseline_sbp, current_sbp)
    return ((now - base) * 100 / base).quantize(Decimal("0.1"))


def _bp_pair(baseline_sbp: object, current_sbp: object) -> tuple[Decimal, Decimal]:
    base = _reading(baseline_sbp, "systolic blood pressure")
    now = _reading(current_sbp, "systolic blood pressure")
    if base is None or now is None:
        raise ValueError("both the baseline and the current systolic pressure are needed")
    return base, now


def circulation_points(baseline_sbp: Reading, current_sbp: Reading) -> int:
    """Modified Aldrete circulation item from the systolic change versus the pre-dose baseline.

    2 = within +/-20% (exactly 20% scores 2); 1 = more than 20% and less than 50%;
    0 = 50% or more (exactly 50% scores 0).  Compared exactly, not on the rounded percent.
    """
    base, now = _bp_pair(baseline_sbp, current_sbp)
    change = abs(now - base) * 100
    # Modified Aldrete 1995: +/-20% -> 2, 20-49% -> 1, >= 50% -> 0 (clinical.md §4.5)
    if change <= 20 * base:
        return 2
    if change < 50 * base:
        return 1
    return 0
