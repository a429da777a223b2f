"""C-SSRS Screener, "Screen Version - Recent" (Columbia-Suicide Severity Rating Scale), §8."""

from __future__ import annotations

from collections.abc import Mapping

from ketaclinic.clinical.instruments.model import (
    Answer,
    Band,
    Instrument,
    Item,
    Option,
    Scored,
)
from ketaclinic.clinical.instruments.scoring import is_asked

# LOINC answers LA33-6 = Yes, LA32-8 = No (LHC C-SSRS 93373-9; instruments.md §8).
YES_NO = (Option(True, "Yes", loinc="LA33-6"), Option(False, "No", loinc="LA32-8"))

ASKED_IF_Q2_YES = ("q2", True)

# Items, LOINC codes and skip logic (BHP-IG + LHC enableWhen; instruments.md §8): ask 1 and 2;
# if Yes to 2 ask 3, 4, 5; always ask 6; ask 6a only if Yes to 6. Any Yes flags suicidality.
ITEMS = (
    Item(
        "q1",
        "Wish to be dead (past month)",
        YES_NO,
        loinc="93246-7",
        answer_type="yes_no",
        safety_threshold=True,
    ),
    Item(
        "q2",
        "Non-specific active suicidal thoughts (past month)",
        YES_NO,
        loinc="93247-5",
        answer_type="yes_no",
        safety_threshold=True,
    ),
    Item(
        "q3",
        "Suicidal thoughts with method, without plan or intent (past month)",
        YES_NO,
        loinc="93248-3",
        answer_type="yes_no",
        asked_if=ASKED_IF_Q2_YES,
        safety_threshold=True,
    ),
    Item(
        "q4",
        "Suicidal intent, without specific plan (past month)",
        YES_NO,
        loinc="93249-1",
        answer_type="yes_no",
        asked_if=ASKED_IF_Q2_YES,
        safety_threshold=True,
    ),
    Item(
        "q5",
        "Suicidal intent with specific plan (past month)",
        YES_NO,
        loinc="93250-9",
        answer_type="yes_no",
        asked_if=ASKED_IF_Q2_YES,
        safety_threshold=True,
    ),
    Item(
        "q6",
        "Any suicidal behaviour (lifetime)",
        YES_NO,
        loinc="93267-3",
        answer_type="yes_no",
        safety_threshold=True,
    ),
    Item(
        "q6a",
        "Suicidal behaviour within the past 3 months",
        YES_NO,
        loinc="93269-9",
        answer_type="yes_no",
        asked_if=("q6", True),
        safety_threshold=True,
    ),
)

NO_RISK, LOW, MODERATE, HIGH = "no_risk", "low", "moderate", "high"
# Columbia "Screen with Triage Points" levels, lowest first; the highest triggered wins.
LEVELS = (
    Band(NO_RISK, "No risk identified"),  # an implementation label, not a Columbia category
    Band(LOW, "Low risk"),
    Band(MODERATE, "Moderate risk"),
    Band(HIGH, "High risk"),
)
_ORDER = [band.code for band in LEVELS]


def triage_level(values: Mapping[str, Answer]) -> str:
    """The highest level the Yes answers trigger (CSSRS-TRIAGE; instruments.md §8, §16.4).

    High: Yes to 4 or 5, or behaviour within 3 months (6 and 6a Yes). Moderate: Yes to 3, or
    behaviour more than 3 months ago (6 Yes, 6a No). Low: Yes to 1 and/or 2 only.
    """
    if values["q4"] is True or values["q5"] is True:
        return HIGH
    if values["q6"] is True and values["q6a"] is True:
        return HIGH
    if values["q3"] is True or values["q6"] is True:
        # Yes to 6 with 6a No is moderate; with 6a unanswered it is at least moderate.
        return MODERATE
    if values["q1"] is True or values["q2"] is True:
        return LOW
    return NO_RISK


def score_cssrs(instrument: Instrument, values: Mapping[str, Answer]) -> Scored:
    scored = Scored()
    # Unasked != No: only items the skip logic asks for count as missing (§8 data rules).
    scored.missing_items = [
        item.id for item in instrument.items if values[item.id] is None and is_asked(item, values)
    ]
    scored.complete = not scored.missing_items
    level = triage_level(values)
    scored.details["risk_level_at_least"] = level
    # With unanswered items the level is only certain when it is already the highest.
    if scored.complete or level == HIGH:
        scored.band = level
    else:
        scored.notes.append(
            f"Risk level at least {level.replace('_', ' ')}; unanswered items could raise it."
        )
    return scored


CSSRS_SCREEN = Instrument(
    code="cssrs_screen",
    short_name="C-SSRS Screener",
    name="Columbia-Suicide Severity Rating Scale, Screen Version - Recent",
    version="C-SSRS Screen Version - Recent (Posner et al. 2011)",
    rater="clinician",
    recall_period="Items 1-5: past month; item 6: lifetime, 6a: past 3 months",
    items=ITEMS,
    total_range=None,  # no summed score for the screener (§8)
    bands=LEVELS,
    source=(
        "Posner K et al. Am J Psychiatry 2011; Columbia 'Screen with Triage Points' and "
        "Clinical Triage Guidelines; LOINC from the LHC 93373-9 form (instruments.md §8)."
    ),
    licence=(
        "(c) 2008 The Research Foundation for Mental Hygiene, Inc. Free to use but copyrighted; "
        "registration and terms via the Columbia Lighthouse Project (cssrs.columbia.edu). "
        "Wording must not be altered; it is not shipped here."
    ),
    scorer=score_cssrs,
    loinc_panel="93373-9",
    notes=(
        "Answers are True (Yes), False (No) or None (not asked / not answered).",
        "Recommended actions per level vary by setting and belong to clinic configuration; "
        "the levels are fixed.",
        "Derived risk level LOINC 93374-7 (LA9194-7 = Low); Moderate/High answer codes not "
        "confirmed.",
    ),
)

INSTRUMENTS = (CSSRS_SCREEN,)
