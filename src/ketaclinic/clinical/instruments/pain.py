"""Pain measures: 0-10 numeric rating scale and PEG-3, instruments.md §11."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from ketaclinic.clinical.instruments.model import (
    Answer,
    Band,
    Instrument,
    Item,
    Scored,
    ScoringOption,
    numbered_options,
)
from ketaclinic.clinical.instruments.scoring import score_mean, score_sum

COMMON = "common"
SERLIN_1995 = "serlin1995"
NRS_BANDS = {
    # Common practice: 0 none, 1-3 mild, 4-6 moderate, 7-10 severe [S] (instruments.md §11a).
    COMMON: (
        Band("none", "No pain", 0, 0),
        Band("mild", "Mild", 1, 3),
        Band("moderate", "Moderate", 4, 6),
        Band("severe", "Severe", 7, 10),
    ),
    # Serlin 1995 / ePPOC: 0-4 mild, 5-6 moderate, 7-10 severe [S] (instruments.md §11a).
    SERLIN_1995: (
        Band("mild", "Mild", 0, 4),
        Band("moderate", "Moderate", 5, 6),
        Band("severe", "Severe", 7, 10),
    ),
}


def _configure_nrs(instrument: Instrument) -> Instrument:
    return dataclasses.replace(instrument, bands=NRS_BANDS[str(instrument.settings["bands"])])


PAIN_NRS = Instrument(
    code="pain_nrs",
    short_name="Pain NRS",
    name="Pain Numeric Rating Scale (0-10)",
    version="Pain NRS 0-10, single item",
    rater="patient",
    recall_period="Set by the local protocol (now, last 24 hours or past week)",
    items=(
        Item(
            "pain",
            "Pain intensity",
            numbered_options(0, 10, {0: "No pain", 10: "Worst pain imaginable"}),
            wording=(
                "On a scale from 0 to 10, where 0 is no pain and 10 is the worst pain "
                "imaginable, how would you rate your pain?"
            ),
            answer_type="numeric",
        ),
    ),
    total_range=(0, 10),
    bands=NRS_BANDS[COMMON],
    source="Generic 0-10 numeric rating scale; bands per instruments.md §11a.",
    licence="Generic scale with no known owner.",
    scorer=score_sum,
    options=(
        ScoringOption(
            "bands",
            COMMON,
            "Band convention: 'common' (0 none, 1-3 mild, 4-6 moderate, 7-10 severe) or "
            "'serlin1995' (0-4 mild, 5-6 moderate, 7-10 severe).",
            choices=(COMMON, SERLIN_1995),
            aliases=("band_convention", "convention"),
        ),
    ),
    configure=_configure_nrs,
)

_INTERFERE = {0: "Does not interfere", 10: "Completely interferes"}

# Items and wording: Krebs EE et al. J Gen Intern Med 2009; LOINC codes from STARTER
# (instruments.md §11b; the pain item's code differs between two LOINC sources).
PEG_ITEMS = (
    Item(
        "q1",
        "Average pain (past week)",
        numbered_options(0, 10, {0: "No pain", 10: "Pain as bad as you can imagine"}),
        wording="What number best describes your pain on average in the past week?",
        loinc="75893-8",
        answer_type="numeric",
    ),
    Item(
        "q2",
        "Interference with enjoyment of life",
        numbered_options(0, 10, _INTERFERE),
        wording=(
            "What number best describes how, during the past week, pain has interfered with "
            "your enjoyment of life?"
        ),
        loinc="91145-3",
        answer_type="numeric",
    ),
    Item(
        "q3",
        "Interference with general activity",
        numbered_options(0, 10, _INTERFERE),
        wording=(
            "What number best describes how, during the past week, pain has interfered with "
            "your general activity?"
        ),
        loinc="91146-1",
        answer_type="numeric",
    ),
)


def score_peg(instrument: Instrument, values: Mapping[str, Answer]) -> Scored:
    # PEG = mean of the 3 items, reported to 1 decimal, never the 0-30 sum; all 3 required
    # (Krebs 2009, STARTER; instruments.md §11b, §16.8).
    return score_mean(instrument, values, places=1)


PEG = Instrument(
    code="peg",
    short_name="PEG",
    name="PEG-3: Pain intensity, Enjoyment of life, General activity",
    version="PEG-3 (Krebs et al. 2009), mean score",
    rater="patient",
    recall_period="Past week",
    items=PEG_ITEMS,
    total_range=(0, 10),
    bands=(),
    source="Krebs EE et al. J Gen Intern Med 2009 (instruments.md §11b).",
    licence="Described as freely available (not confirmed with the authors).",
    scorer=score_peg,
    loinc_panel="91148-7",
    loinc_total="91147-9",
    notes=(
        "total is a float (mean, 1 decimal, rounded half up); raw_total is the 0-30 sum, "
        "which must not be charted as the PEG score.",
    ),
)

INSTRUMENTS = (PAIN_NRS, PEG)
