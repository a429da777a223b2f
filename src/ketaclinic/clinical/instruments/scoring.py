"""Reading and checking answers, the safety flags, and the scoring functions scales share.

The rules here hold for every scale (instruments.md §15): missing is never 0, a value outside
an item's range or of the wrong type is an error (never coerced), answers that break the skip
logic are errors, and an unanswered suicide item makes the suicidality state unknown.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from fractions import Fraction

from ketaclinic.clinical.instruments.model import (
    SUICIDALITY,
    SUICIDALITY_UNKNOWN,
    Answer,
    Instrument,
    Item,
    Scored,
    ScoreResult,
)


def score_instrument(instrument: Instrument, answers: object) -> ScoreResult:
    """Check the answers, then score them with the instrument's own scoring function."""
    values, invalid, errors = read_answers(instrument, answers)
    flags = frozenset(safety_flags(instrument, values, invalid))
    if errors:
        # Invalid answers never score; the safety flags from the valid answers still stand,
        # so a positive suicide item is not lost behind a typo elsewhere.
        return ScoreResult(
            code=instrument.code,
            flags=flags,
            errors=tuple(errors),
            complete=False,
            convention=instrument.settings,
            version=instrument.version,
        )
    scored = instrument.scorer(instrument, values)
    band = instrument.band_by_code(scored.band)
    return ScoreResult(
        code=instrument.code,
        total=scored.total,
        band=scored.band,
        band_label=band.label if band else None,
        flags=flags | scored.flags,
        subscales=scored.subscales,
        complete=scored.complete,
        prorated=scored.prorated,
        raw_total=scored.raw_total,
        missing_items=tuple(scored.missing_items),
        missing_domains=tuple(scored.missing_domains),
        details=scored.details,
        notes=tuple(scored.notes),
        convention=instrument.settings,
        version=instrument.version,
    )


# --- reading answers ---------------------------------------------------------------------------


def describe(instrument: Instrument, item: Item) -> str:
    """How an error names an item: 'PHQ-9 item 9 "Thoughts of ..." (q9)'."""
    if item.number != item.id:
        return f'{instrument.short_name} item {item.number} "{item.topic}" ({item.id})'
    return f'{instrument.short_name} item "{item.topic}" ({item.id})'


def read_answers(
    instrument: Instrument, answers: object
) -> tuple[dict[str, Answer], set[str], list[str]]:
    """Map answers to item ids and check each one.

    Returns the valid values (every item id, None when not answered or invalid), the ids of
    items whose answer was invalid, and the errors in words a clinician understands.
    """
    given: dict[str, object] = {}
    errors: list[str] = []
    name = instrument.short_name
    if isinstance(answers, Mapping):
        for key, value in answers.items():
            item_id = instrument.resolve_item_id(key)
            if item_id is None:
                errors.append(
                    f"{name} has no item {key!r}; its items are {', '.join(instrument.item_ids)}."
                )
            elif item_id in given:
                errors.append(
                    f"{describe(instrument, instrument.item(item_id))} was given twice "
                    f"(the last time as {key!r})."
                )
            else:
                given[item_id] = value
    elif isinstance(answers, Sequence) and not isinstance(answers, str | bytes | bytearray):
        if len(answers) > len(instrument.items):
            errors.append(
                f"{name} has {len(instrument.items)} items "
                f"({', '.join(instrument.item_ids)}) but {len(answers)} answers were given."
            )
        # A shorter list leaves the trailing items unanswered, as a mapping without them would.
        given.update(zip(instrument.item_ids, answers, strict=False))
    else:
        raise TypeError(
            f"{name} answers must be a list in item order or a mapping of item id to answer; "
            f"got {type(answers).__name__}."
        )

    values: dict[str, Answer] = dict.fromkeys(instrument.item_ids)
    invalid: set[str] = set()
    for item in instrument.items:
        value = given.get(item.id)
        if value is None:
            continue
        accepted, problem = check_value(item, value)
        if problem is not None:
            errors.append(f"{describe(instrument, item)}: {problem}")
            invalid.add(item.id)
        else:
            values[item.id] = accepted
    errors.extend(_skip_logic_errors(instrument, values))
    errors.extend(_alternative_errors(instrument, given))
    return values, invalid, errors


def check_value(item: Item, value: object) -> tuple[Answer, str | None]:
    """(the value, None) when it is one of the item's answers, else (None, what is wrong)."""
    if item.answer_type == "yes_no":
        if isinstance(value, bool):
            return value, None
        return None, f"answer Yes (True) or No (False); got {value!r}."
    low, high = item.value_range
    allowed = f"a whole number from {low} to {high}"
    if isinstance(value, bool):
        return None, f"takes {allowed}, not a Yes/No answer ({value!r})."
    if isinstance(value, float):
        return None, f"{value!r} is not a whole number; enter {allowed}."
    if not isinstance(value, int):
        return None, f"{value!r} is not a number; enter {allowed}."
    if value not in item.values:
        return None, f"{value} is outside the allowed range; enter {allowed}."
    return int(value), None  # a plain int, even for an int subclass such as an IntEnum


def yes_no(value: Answer) -> str:
    if value is True:
        return "Yes"
    if value is False:
        return "No"
    return "not answered" if value is None else str(value)


def _skip_logic_errors(instrument: Instrument, values: Mapping[str, Answer]) -> list[str]:
    errors: list[str] = []
    for item in instrument.items:
        if item.asked_if is None or values[item.id] is None:
            continue
        gate_id, needed = item.asked_if
        gate_value = values[gate_id]
        if gate_value is not None and gate_value != needed:
            gate = instrument.item(gate_id)
            errors.append(
                f"{describe(instrument, item)}: answered, but it is asked only when item "
                f"{gate.number} is {yes_no(needed)}, and item {gate.number} is "
                f"{yes_no(gate_value)}. Record it as not asked (None), or correct item "
                f"{gate.number}."
            )
    return errors


def _alternative_errors(instrument: Instrument, given: Mapping[str, object]) -> list[str]:
    errors: list[str] = []
    for group in instrument.exclusive_items:
        answered = [item_id for item_id in group if given.get(item_id) is not None]
        if len(answered) > 1:
            items = [instrument.item(item_id) for item_id in group]
            errors.append(
                f"{instrument.short_name} items {' and '.join(i.number for i in items)} are "
                f"alternative ratings ({'; '.join(i.topic for i in items)}): rate one of them, "
                f"never both."
            )
    return errors


def is_asked(item: Item, values: Mapping[str, Answer]) -> bool:
    """True when the skip logic says the item should have been asked."""
    return item.asked_if is None or values[item.asked_if[0]] == item.asked_if[1]


def safety_flags(
    instrument: Instrument, values: Mapping[str, Answer], invalid: set[str]
) -> set[str]:
    """suicidality: a suicide item at or above its threshold. suicidality_unknown: a suicide
    item that should have been asked has no valid answer (instruments.md §15.3: missing != 0)."""
    flags: set[str] = set()
    for item in instrument.items:
        if item.safety_threshold is None:
            continue
        value = values[item.id]
        if value is not None and item.option_for(value).unratable:
            value = None
        if value is not None and value >= item.safety_threshold:
            flags.add(SUICIDALITY)
        elif value is None and (item.id in invalid or is_asked(item, values)):
            flags.add(SUICIDALITY_UNKNOWN)
    return flags


# --- shared scoring functions ----------------------------------------------------------------


def half_up(value: Fraction, places: int = 0) -> Fraction:
    """Round half up (not to even): 4.5 -> 5, 0.25 -> 0.3 at 1 place."""
    scale = 10**places
    return Fraction(math.floor(value * scale + Fraction(1, 2)), scale)


def item_points(
    instrument: Instrument, values: Mapping[str, Answer], scored: Scored
) -> dict[str, int | None]:
    """Points of every scored item (None when not answered or unable to rate), noting any
    answer whose points differ from its value."""
    points: dict[str, int | None] = {}
    for item in instrument.scored_items:
        value = values[item.id]
        if value is None:
            points[item.id] = None
            continue
        option = item.option_for(value)
        points[item.id] = option.score
        if option.unratable:
            scored.notes.append(
                f"Item {item.number} rated {value} ({option.label}): treated as missing."
            )
        elif option.points is not None and option.points != value:
            scored.notes.append(
                f"Item {item.number} rated {value} ({option.label}): scores {option.points}."
            )
    return points


def scoring_units(instrument: Instrument) -> list[tuple[str, ...]]:
    """The parts a total is summed from: each scored item, or one group of alternatives."""
    units: list[tuple[str, ...]] = []
    seen: set[str] = set()
    for item in instrument.scored_items:
        if item.id in seen:
            continue
        group = next((g for g in instrument.exclusive_items if item.id in g), (item.id,))
        seen.update(group)
        units.append(group)
    return units


def score_sum(
    instrument: Instrument, values: Mapping[str, Answer], prorate_max_missing: int = 0
) -> Scored:
    """Total = sum of the scored items. With missing items there is no total, unless at most
    ``prorate_max_missing`` are missing: then the mean of the answered items stands in for them
    (total = sum x items / answered, rounded half up) and the result is marked prorated."""
    scored = Scored()
    points = item_points(instrument, values, scored)
    units = scoring_units(instrument)
    unit_points: list[int] = []
    for unit in units:
        answered = [p for p in (points[item_id] for item_id in unit) if p is not None]
        if answered:
            unit_points.extend(answered)
        else:
            scored.missing_items.extend(unit)
    missing_units = len(units) - len(unit_points)
    scored.raw_total = sum(unit_points)
    if missing_units == 0:
        scored.total = scored.raw_total
        scored.complete = True
    elif missing_units <= prorate_max_missing and unit_points:
        exact = Fraction(scored.raw_total * len(units), len(unit_points))
        scored.total = int(half_up(exact))
        scored.prorated = True
        scored.details["prorated_total_exact"] = float(exact)
        scored.notes.append(
            f"{missing_units} item(s) missing: total prorated from the {len(unit_points)} "
            f"answered ({scored.raw_total} x {len(units)} / {len(unit_points)} = "
            f"{float(exact):.2f}, rounded half up to {scored.total})."
        )
    for subscale in instrument.subscales:
        sub = [points[item_id] for item_id in subscale.items]
        scored.subscales[subscale.name] = None if None in sub else sum(p or 0 for p in sub)
    band = instrument.band_for(scored.total)
    scored.band = band.code if band else None
    return scored


def score_mean(instrument: Instrument, values: Mapping[str, Answer], places: int = 1) -> Scored:
    """Total = mean of the scored items, rounded half up to ``places`` decimals; all required."""
    scored = Scored()
    points = item_points(instrument, values, scored)
    answered = [p for p in points.values() if p is not None]
    scored.raw_total = sum(answered)
    scored.missing_items = [item_id for item_id, p in points.items() if p is None]
    if not scored.missing_items:
        scored.total = float(half_up(Fraction(scored.raw_total, len(answered)), places))
        scored.complete = True
    return scored
