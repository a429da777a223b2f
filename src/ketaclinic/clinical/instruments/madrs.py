"""MADRS (Montgomery-Asberg Depression Rating Scale), instruments.md §5."""

from __future__ import annotations

from ketaclinic.clinical.instruments.model import (
    Band,
    Instrument,
    Item,
    ScoringOption,
    numbered_options,
)
from ketaclinic.clinical.instruments.scoring import score_sum

_TOPICS = (
    "Apparent sadness (observed)",
    "Reported sadness",
    "Inner tension",
    "Reduced sleep",
    "Reduced appetite",
    "Concentration difficulties",
    "Lassitude",
    "Inability to feel",
    "Pessimistic thoughts",
    "Suicidal thoughts",
)

# Snaith et al. BJP 1986 bands (instruments.md §5, §15.1: 35 = severe).
SNAITH_1986 = "snaith1986"
SNAITH_BANDS = (
    Band("normal", "Normal / absent", 0, 6),
    Band("mild", "Mild", 7, 19),
    Band("moderate", "Moderate", 20, 34),
    Band("severe", "Severe", 35, 60),
)

MADRS = Instrument(
    code="madrs",
    short_name="MADRS",
    name="Montgomery-Asberg Depression Rating Scale",
    version="MADRS (Montgomery & Asberg 1979), standard past-week interview",
    rater="clinician",
    recall_period="Past week (semi-structured interview)",
    items=tuple(
        Item(
            f"q{n}",
            topic,
            # Anchors at 0/2/4/6 are copyrighted: neutral numeric labels (odd values are the
            # in-between ratings).
            numbered_options(0, 6),
            # ketaclinic flags item 10 >= 2 (fleeting suicidal thoughts), the conservative
            # choice; no official flag rule (instruments.md §5).
            safety_threshold=2 if n == 10 else None,
        )
        for n, topic in enumerate(_TOPICS, start=1)
    ),
    total_range=(0, 60),
    bands=SNAITH_BANDS,
    source=(
        "Montgomery SA, Asberg M. Br J Psychiatry 1979; bands: Snaith RP et al. Br J Psychiatry "
        "1986 (instruments.md §5)."
    ),
    licence=(
        "Copyright Royal College of Psychiatrists; permission to reproduce refused to CamCOPS "
        "(2013). Only item topics and 0-6 values are shipped; load licensed wording separately."
    ),
    # No published missing-item rule: no total with a missing item (§5 recommendation).
    scorer=score_sum,
    options=(
        ScoringOption(
            "bands",
            SNAITH_1986,
            "Severity band convention (Snaith 1986: 0-6 normal, 7-19 mild, 20-34 moderate, "
            ">= 35 severe).",
            choices=(SNAITH_1986,),
            aliases=("band_convention", "convention"),
        ),
    ),
    notes=(
        "Other cut-points exist (12/24/35; Muller 2003 split moderate/severe at 31); the band "
        "convention used is recorded in ScoreResult.convention.",
    ),
)

INSTRUMENTS = (MADRS,)
