"""Response and remission from a baseline and a current total (instruments.md §15.2, §16.6).

    classify("madrs", baseline_total=34, current_total=9)
    -> percent_change 73.5..., response True, remission True (MADRS <= 10)

* ``percent_change`` is the improvement: (baseline - current) / baseline x 100. Use the baseline
  of the treatment episode, not the previous visit. It is None when either total is None or the
  baseline is 0 (undefined: never divided).
* ``response``: improvement >= 50 % (inclusive); None when percent_change is None.
* ``remission``: an absolute threshold on the current total, per scale (below); None for scales
  without a remission definition. ``remission_threshold`` overrides it and means
  "current <= threshold" (e.g. 12 for the MADRS as in the Janssen esketamine trials).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from ketaclinic.clinical.instruments import get_instrument

__all__ = [
    "MADRS_REMISSION_ALTERNATIVE",
    "MINIMAL_CLINICALLY_IMPORTANT_CHANGE",
    "REMISSION_RULES",
    "RESPONSE_THRESHOLD_PERCENT",
    "OutcomeClassification",
    "RemissionRule",
    "classify",
    "minimal_clinically_important_change",
]

# Response = >= 50 % reduction from baseline (ESK: TRANSFORM, Daly 2018; instruments.md §16.6).
# (Y-BOCS-style scales would use 35 %, §12; none is defined here.)
RESPONSE_THRESHOLD_PERCENT = 50.0


@dataclass(frozen=True)
class RemissionRule:
    """Remission when the current total is below (strict) or at most (inclusive) a value."""

    threshold: float
    inclusive: bool
    source: str

    def met(self, current: float) -> bool:
        return current <= self.threshold if self.inclusive else current < self.threshold

    def describe(self, short_name: str) -> str:
        return f"{short_name} {'<=' if self.inclusive else '<'} {self.threshold:g}"


REMISSION_RULES: dict[str, RemissionRule] = {
    # PHQ-9 < 5, i.e. <= 4 for the integer total (HEDIS DRR-E via NYS-LOINC; §2).
    "phq9": RemissionRule(5, inclusive=False, source="HEDIS DRR-E (instruments.md §2)"),
    # QIDS-SR16 <= 5 (STAR*D, Trivedi 2006; instruments.md §4).
    "qids_sr16": RemissionRule(5, inclusive=True, source="STAR*D (instruments.md §4)"),
    # MADRS <= 10 (Daly 2018, most IV-ketamine trials); <= 12 is the alternative (§5).
    "madrs": RemissionRule(10, inclusive=True, source="Daly 2018, ESCAPE-TRD (§5)"),
    # HAM-D17 <= 7 (STAR*D primary outcome; common convention [M]; §6).
    "hamd17": RemissionRule(7, inclusive=True, source="STAR*D convention (§6)"),
    # GAD-7 < 5 (NYS-LOINC's choice [S]; §3).
    "gad7": RemissionRule(5, inclusive=False, source="NYS-LOINC (instruments.md §3)"),
}

# MADRS <= 12 in the Janssen phase-3 programme (TRANSFORM-1/2/3; instruments.md §5).
MADRS_REMISSION_ALTERNATIVE = 12

# PHQ-9 minimal clinically important difference for individual change: 5 points (Lowe 2004,
# instruments.md §2). No other scale here has a confirmed value.
MINIMAL_CLINICALLY_IMPORTANT_CHANGE: dict[str, int] = {"phq9": 5}


@dataclass(frozen=True)
class OutcomeClassification:
    code: str
    baseline_total: float | None
    current_total: float | None
    percent_change: float | None  # improvement in % of baseline (negative = worse)
    response: bool | None
    remission: bool | None
    response_threshold_percent: float
    remission_rule: str | None  # e.g. "MADRS <= 10"; None when the scale has none


def classify(
    code: str,
    baseline_total: float | None,
    current_total: float | None,
    remission_threshold: float | None = None,
) -> OutcomeClassification:
    """Classify the change from ``baseline_total`` to ``current_total`` on one scale.

    Raises ValueError for an unknown code, a scale without a total (C-SSRS), a readiness score
    where higher is better (Aldrete, PADSS), or a total outside the scale's range.
    """
    instrument = get_instrument(code)
    if instrument.total_range is None:
        raise ValueError(f"{instrument.short_name} has no total score: nothing to compare.")
    if instrument.higher_is_better:
        raise ValueError(
            f"Response and remission are not defined for the {instrument.short_name} "
            "(a readiness score, where higher is better)."
        )
    low, high = instrument.total_range
    for label, total in (("baseline", baseline_total), ("current", current_total)):
        _check_total(instrument.short_name, label, total, low, high)
    if remission_threshold is not None:
        _check_total(instrument.short_name, "remission threshold", remission_threshold, low, high)

    percent: float | None = None
    response: bool | None = None
    if baseline_total is not None and current_total is not None and baseline_total != 0:
        # Exact arithmetic, so 50 % is a response however the totals were entered.
        improvement = (Fraction(baseline_total) - Fraction(current_total)) / Fraction(
            baseline_total
        )
        percent = float(improvement * 100)
        response = improvement * 100 >= Fraction(RESPONSE_THRESHOLD_PERCENT)

    rule = REMISSION_RULES.get(instrument.code)
    if remission_threshold is not None:
        rule = RemissionRule(remission_threshold, inclusive=True, source="caller's threshold")
    remission = None if rule is None or current_total is None else rule.met(current_total)

    return OutcomeClassification(
        code=instrument.code,
        baseline_total=baseline_total,
        current_total=current_total,
        percent_change=percent,
        response=response,
        remission=remission,
        response_threshold_percent=RESPONSE_THRESHOLD_PERCENT,
        remission_rule=rule.describe(instrument.short_name) if rule else None,
    )


def _check_total(name: str, label: str, total: object, low: int, high: int) -> None:
    if total is None:
        return
    if isinstance(total, bool) or not isinstance(total, int | float) or math.isnan(total):
        raise ValueError(f"{name} {label} total must be a number; got {total!r}.")
    if not low <= total <= high:
        raise ValueError(f"{name} {label} total must be from {low} to {high}; got {total}.")


def minimal_clinically_important_change(code: str) -> int | None:
    """Points of individual change that matter clinically, where the reference confirms one
    (PHQ-9: 5, Lowe 2004); None for other scales. Raises for an unknown code."""
    return MINIMAL_CLINICALLY_IMPORTANT_CHANGE.get(get_instrument(code).code)
