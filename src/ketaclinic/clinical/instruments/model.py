"""The data that defines a rating scale, and the result of scoring one.

An ``Instrument`` is plain data (items, options, bands, LOINC codes, source, licence) plus the
scoring function of its module. Scoring options (cut-offs, band conventions, item scoring) are
declared as ``ScoringOption``s; ``Instrument.configured(**options)`` returns the instrument with
those options applied, so the bands and item ranges a result was scored with are always visible.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

# An answer as the scorer sees it after validation: a whole number, Yes/No, or not answered.
Answer = int | bool | None
# A scoring option's value: a cut-off (int) or a named convention (str).
SettingValue = int | str
# Extra, scale-specific outputs (e.g. the PHQ-9 diagnostic algorithm, the C-SSRS minimum level).
DetailValue = str | int | float | bool | None
Rater = Literal["patient", "clinician"]
# How an item is answered: one of its options, Yes/No, or a number typed or picked on a 0-10 line.
AnswerType = Literal["choice", "yes_no", "numeric"]

SUICIDALITY = "suicidality"
SUICIDALITY_UNKNOWN = "suicidality_unknown"
PROVISIONAL_PTSD = "provisional_ptsd"


@dataclass(frozen=True)
class Option:
    """One answer an item accepts."""

    value: int | bool
    label: str
    loinc: str | None = None  # LOINC answer code (LA...), where one is known
    points: int | None = None  # what it adds to the total when that differs from its value
    unratable: bool = False  # a valid answer meaning "unable to rate": scored as missing

    @property
    def score(self) -> int | None:
        """Points this answer contributes; None when it must be treated as missing."""
        if self.unratable:
            return None
        return int(self.value) if self.points is None else self.points


@dataclass(frozen=True)
class Item:
    """One question or rating of an instrument."""

    id: str
    topic: str
    options: tuple[Option, ...]
    wording: str | None = None  # full wording only where the licence allows it
    loinc: str | None = None
    scored: bool = True  # False: recorded but never added to a total (e.g. difficulty items)
    required: bool = True  # False: may be left blank by design (alternatives, unscored items)
    answer_type: AnswerType = "choice"
    # Skip logic: the item is asked only when item ``asked_if[0]`` has the value ``asked_if[1]``.
    asked_if: tuple[str, int | bool] | None = None
    # Safety (suicide) item: a value >= this threshold raises the suicidality flag.
    safety_threshold: int | bool | None = None

    @property
    def number(self) -> str:
        """The item's number as printed on the form ("9", "16a"), or its id for named items."""
        if re.fullmatch(r"q\d+[a-z]?", self.id):
            return self.id[1:]
        return self.id

    @property
    def values(self) -> tuple[int | bool, ...]:
        return tuple(option.value for option in self.options)

    @property
    def value_range(self) -> tuple[int, int]:
        numbers = [int(v) for v in self.values]
        return min(numbers), max(numbers)

    def option_for(self, value: int | bool) -> Option:
        for option in self.options:
            # type check too: True == 1, but a Yes is never a rating of 1
            if option.value == value and type(option.value) is type(value):
                return option
        raise ValueError(f"{value!r} is not an answer to item {self.id}")


@dataclass(frozen=True)
class Band:
    """A named severity band: an inclusive integer range of totals (low..high)."""

    code: str
    label: str
    low: int | None = None  # None for categorical levels (C-SSRS risk levels)
    high: int | None = None

    def contains(self, total: int) -> bool:
        return self.low is not None and self.high is not None and self.low <= total <= self.high


@dataclass(frozen=True)
class Subscale:
    """A named sum of items, reported beside the total."""

    name: str
    items: tuple[str, ...]
    label: str
    note: str | None = None  # e.g. when the item map is not confirmed


@dataclass(frozen=True)
class ScoringOption:
    """A documented choice a clinic may make when scoring (a cut-off or a convention)."""

    name: str
    default: SettingValue
    description: str
    choices: tuple[str, ...] = ()  # allowed names for a convention option
    minimum: int | None = None  # allowed range for a numeric option
    maximum: int | None = None
    aliases: tuple[str, ...] = ()  # other keyword names accepted for this option

    def check(self, instrument: str, value: object) -> SettingValue:
        """Return the value in canonical form, or raise ValueError saying what is allowed."""
        if self.choices:
            wanted = _normalise(value) if isinstance(value, str) else ""
            # Exact match, else an unambiguous start ("serlin" for "serlin1995").
            exact = [c for c in self.choices if _normalise(c) == wanted]
            starts = [c for c in self.choices if wanted and _normalise(c).startswith(wanted)]
            if exact or len(starts) == 1:
                return (exact or starts)[0]
            raise ValueError(
                f"{instrument} option {self.name!r} must be one of "
                f"{', '.join(repr(c) for c in self.choices)}; got {value!r}."
            )
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(
                f"{instrument} option {self.name!r} must be a whole number; got {value!r}."
            )
        low = self.minimum if self.minimum is not None else value
        high = self.maximum if self.maximum is not None else value
        if not low <= value <= high:
            raise ValueError(
                f"{instrument} option {self.name!r} must be from {low} to {high}; got {value}."
            )
        return value


def _normalise(text: str) -> str:
    """Lower-case and drop separators, so "0-6", "0_6" and "0–6" name the same thing."""
    return re.sub(r"[^0-9a-z]", "", text.lower())


@dataclass(frozen=True)
class ScoreResult:
    """The outcome of scoring one administration of an instrument.

    ``complete`` is True when every item that should have been answered was answered.
    ``total`` is set whenever the published rules give a score: normally only when complete,
    but also for a prorated PHQ-9 (``prorated`` True) and for a QIDS-SR16 whose domains all
    have an answered item. ``raw_total`` is the plain sum of the answered scored items.
    """

    code: str
    total: int | float | None = None
    band: str | None = None
    flags: frozenset[str] = frozenset()
    subscales: dict[str, int | float | None] = field(default_factory=dict)
    complete: bool = False
    prorated: bool = False
    errors: tuple[str, ...] = ()
    raw_total: int | None = None
    band_label: str | None = None
    missing_items: tuple[str, ...] = ()
    missing_domains: tuple[str, ...] = ()
    details: dict[str, DetailValue] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    convention: dict[str, SettingValue] = field(default_factory=dict)
    version: str = ""


@dataclass
class Scored:
    """What a scale's scoring function works out; ``Instrument.score`` adds the rest."""

    total: int | float | None = None
    band: str | None = None
    complete: bool = False
    prorated: bool = False
    raw_total: int | None = None
    subscales: dict[str, int | float | None] = field(default_factory=dict)
    missing_items: list[str] = field(default_factory=list)
    missing_domains: list[str] = field(default_factory=list)
    details: dict[str, DetailValue] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)


# A scale's scoring function: given the configured instrument and the validated answers
# (every item id present, None when not answered), work out the score.
Scorer = Callable[["Instrument", Mapping[str, Answer]], Scored]
# Applies the chosen scoring options (instrument.settings) to bands, items or ranges.
Configurer = Callable[["Instrument"], "Instrument"]


@dataclass(frozen=True)
class Instrument:
    """A rating scale: its definition as data, and the function that scores it."""

    code: str
    short_name: str
    name: str
    version: str
    rater: Rater
    recall_period: str
    items: tuple[Item, ...]
    total_range: tuple[int, int] | None  # None when the scale has no summed score (C-SSRS)
    bands: tuple[Band, ...]
    source: str
    licence: str
    scorer: Scorer = field(repr=False, compare=False)
    loinc_panel: str | None = None
    loinc_total: str | None = None
    subscales: tuple[Subscale, ...] = ()
    # Groups of alternative items: at most one item of a group may be answered (HAM-D 16a/16b).
    exclusive_items: tuple[tuple[str, ...], ...] = ()
    options: tuple[ScoringOption, ...] = ()
    # Scoring options chosen for this copy (name, value); the rest keep their defaults.
    chosen: tuple[tuple[str, SettingValue], ...] = ()
    configure: Configurer | None = field(default=None, repr=False, compare=False)
    higher_is_better: bool = False  # True for readiness scores (Aldrete, PADSS)
    notes: tuple[str, ...] = ()  # implementation decisions a reader should know

    # --- looking things up -------------------------------------------------------------------

    @property
    def settings(self) -> dict[str, SettingValue]:
        """Every scoring option with the value in force (defaults unless chosen)."""
        chosen = dict(self.chosen)
        return {option.name: chosen.get(option.name, option.default) for option in self.options}

    @property
    def item_ids(self) -> tuple[str, ...]:
        return tuple(item.id for item in self.items)

    @property
    def scored_items(self) -> tuple[Item, ...]:
        return tuple(item for item in self.items if item.scored)

    @property
    def safety_items(self) -> tuple[str, ...]:
        """Ids of the suicide items (an unanswered one makes the suicidality state unknown)."""
        return tuple(item.id for item in self.items if item.safety_threshold is not None)

    @property
    def safety_item(self) -> str | None:
        """The suicide item of a scale with exactly one (PHQ-9 q9, MADRS q10, ...)."""
        ids = self.safety_items
        return ids[0] if len(ids) == 1 else None

    @property
    def band_codes(self) -> tuple[str, ...]:
        return tuple(band.code for band in self.bands)

    def item(self, item_id: str) -> Item:
        found = self.resolve_item_id(item_id)
        if found is None:
            raise KeyError(
                f"{self.short_name} has no item {item_id!r}; its items are "
                f"{', '.join(self.item_ids)}."
            )
        return self._items_by_id[found]

    @cached_property
    def _items_by_id(self) -> dict[str, Item]:
        return {item.id: item for item in self.items}

    @cached_property
    def _item_aliases(self) -> dict[str, str]:
        aliases: dict[str, str] = {}
        for item in self.items:
            aliases[_item_key(item.id)] = item.id
            if item.loinc:
                aliases[item.loinc] = item.id
        return aliases

    def resolve_item_id(self, key: object) -> str | None:
        """The item id a mapping key names: the id itself ("q9"), its number ("9", 9,
        "item 9", "Q9"), or the item's LOINC code (also as a FHIR linkId "/44260-9")."""
        if isinstance(key, bool) or not isinstance(key, str | int):
            return None
        text = str(key)
        if text in self._items_by_id:
            return text
        stripped = text.strip().lstrip("/")
        if stripped in self._item_aliases:
            return self._item_aliases[stripped]
        return self._item_aliases.get(_item_key(stripped))

    def band_for(self, total: int | float | None) -> Band | None:
        """The band holding an integer total (None for no total or no banding)."""
        if total is None or isinstance(total, float):
            return None
        for band in self.bands:
            if band.contains(total):
                return band
        return None

    def band_by_code(self, code: str | None) -> Band | None:
        return next((band for band in self.bands if band.code == code), None)

    # --- deriving variants -------------------------------------------------------------------

    def configured(self, **options: object) -> Instrument:
        """This instrument with scoring options applied (raises ValueError for a bad option)."""
        if not options:
            return self
        chosen = dict(self.chosen)
        for name, value in options.items():
            spec = self._option_named(name)
            chosen[spec.name] = spec.check(self.short_name, value)
        configured = dataclasses.replace(self, chosen=tuple(sorted(chosen.items())))
        return configured.configure(configured) if configured.configure else configured

    def _option_named(self, name: str) -> ScoringOption:
        for option in self.options:
            if name == option.name or name in option.aliases:
                return option
        valid = ", ".join(option.name for option in self.options) or "none"
        raise ValueError(
            f"{self.short_name} has no scoring option {name!r}; its options are: {valid}."
        )

    def with_wording(self, wording: Mapping[str, str]) -> Instrument:
        """A copy whose items carry clinic-licensed wording (e.g. from a FHIR Questionnaire).

        Scoring is unchanged. Keys are item ids (or anything ``resolve_item_id`` accepts);
        an unknown item or empty text raises ValueError.
        """
        resolved: dict[str, str] = {}
        for key, text in wording.items():
            item_id = self.resolve_item_id(key)
            if item_id is None:
                raise ValueError(
                    f"{self.short_name} has no item {key!r}; its items are "
                    f"{', '.join(self.item_ids)}."
                )
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"{self.short_name} item {key!r}: the wording is empty.")
            resolved[item_id] = text.strip()
        items = tuple(
            dataclasses.replace(item, wording=resolved[item.id]) if item.id in resolved else item
            for item in self.items
        )
        return dataclasses.replace(self, items=items)


def _item_key(text: str) -> str:
    """A loose form of an item name: "Q9", "item_9", " 9 " -> "9"; "16A" -> "16a"."""
    key = re.sub(r"[\s_\-#.:]", "", text.lower())
    match = re.fullmatch(r"(?:item|question|q)(\d+[a-z]?)", key)
    return match.group(1) if match else key


def numbered_options(
    low: int, high: int, anchors: Mapping[int, str] | None = None
) -> tuple[Option, ...]:
    """Options low..high labelled by their number, or "n = anchor" where an anchor is given."""
    anchors = anchors or {}
    return tuple(
        Option(v, f"{v} = {anchors[v]}" if v in anchors else str(v)) for v in range(low, high + 1)
    )
