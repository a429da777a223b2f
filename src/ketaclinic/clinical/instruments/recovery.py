"""Post-procedure recovery and discharge scores: modified Aldrete and modified PADSS, §14."""

from __future__ import annotations

import dataclasses

from ketaclinic.clinical.instruments.model import (
    Band,
    Instrument,
    Item,
    Option,
    ScoringOption,
)
from ketaclinic.clinical.instruments.scoring import score_sum


def _item(item_id: str, topic: str, none: str, one: str, two: str) -> Item:
    return Item(item_id, topic, (Option(0, none), Option(1, one), Option(2, two)))


def _readiness_bands(cutoff: int) -> tuple[Band, ...]:
    return (
        Band("not_ready", "Not ready", 0, cutoff - 1),
        Band("ready", "Ready", cutoff, 10),
    )


def _configure(instrument: Instrument) -> Instrument:
    cutoff = int(instrument.settings["cutoff"])
    return dataclasses.replace(instrument, bands=_readiness_bands(cutoff))


def _cutoff_option(what: str) -> ScoringOption:
    return ScoringOption(
        "cutoff",
        9,
        f"{what} at a total >= cutoff (published criterion 9).",
        minimum=1,
        maximum=10,
        aliases=("cut_off", "threshold", "ready_threshold"),
    )


_NO_LICENCE = "Published clinical scoring criteria; no licence known."

# Modified Aldrete (Aldrete 1995), SpO2 replacing the 1970 colour item, circulation as % of the
# pre-anaesthetic blood pressure (instruments.md §14a table).
ALDRETE_MODIFIED = Instrument(
    code="aldrete_modified",
    short_name="Modified Aldrete",
    name="Modified Aldrete score",
    version="Modified Aldrete (Aldrete 1995): SpO2 item; circulation as % of baseline BP",
    rater="clinician",
    recall_period="Now",
    items=(
        _item(
            "activity",
            "Activity",
            "Moves no extremities",
            "Moves 2 extremities",
            "Moves 4 extremities",
        ),
        _item(
            "respiration",
            "Respiration",
            "Apnoeic",
            "Dyspnoea or limited breathing",
            "Breathes deeply and coughs freely",
        ),
        _item(
            "circulation",
            "Circulation",
            "BP differs >= 50 % from pre-anaesthetic level",
            "BP within 20-49 % of pre-anaesthetic level",
            "BP within 20 % of pre-anaesthetic level",
        ),
        _item(
            "consciousness",
            "Consciousness",
            "Not responding",
            "Arousable on calling",
            "Fully awake",
        ),
        _item(
            "spo2",
            "Oxygen saturation",
            "SpO2 < 90 % even with O2",
            "Needs O2 to keep SpO2 > 90 %",
            "SpO2 > 92 % on room air",
        ),
    ),
    total_range=(0, 10),
    # Score >= 9 to leave phase-I recovery (ALDRETE; instruments.md §14a).
    bands=_readiness_bands(9),
    source="Aldrete JA 1995, via StatPearls and published tables (instruments.md §14a).",
    licence=_NO_LICENCE,
    scorer=score_sum,
    options=(_cutoff_option("Ready to leave phase-I recovery"),),
    configure=_configure,
    higher_is_better=True,
    notes=(
        "Variants (colour instead of SpO2; circulation in mmHg; > 90 % SpO2) change the item "
        "definitions, not the scoring: record the variant used in the clinic's protocol.",
        "Some protocols add item minimums (e.g. 2 on respiration and SpO2); not modelled.",
    ),
)

# Modified PADSS (Marshall & Chung 1999): intake/output removed (instruments.md §14b).
PADSS_MODIFIED = Instrument(
    code="padss_modified",
    short_name="Modified PADSS",
    name="Modified Post-Anaesthetic Discharge Scoring System",
    version="Modified PADSS (Chung; Marshall & Chung 1999)",
    rater="clinician",
    recall_period="Now",
    items=(
        _item(
            "vital_signs",
            "Vital signs",
            "> 40 % of pre-procedure values",
            "20-40 % of pre-procedure values",
            "Within 20 % of pre-procedure values",
        ),
        _item(
            "ambulation",
            "Ambulation",
            "Unable to ambulate or dizzy",
            "Needs assistance",
            "Steady gait, no dizziness",
        ),
        _item(
            "nausea_vomiting",
            "Nausea and vomiting",
            "Severe, continues despite treatment",
            "Moderate, treated parenterally",
            "Minimal, treated orally",
        ),
        _item("pain", "Pain", "Severe (NRS 7-10)", "Moderate (NRS 4-6)", "Minimal (NRS 0-3)"),
        _item("bleeding", "Surgical bleeding", "Severe", "Moderate", "Minimal"),
    ),
    total_range=(0, 10),
    # Discharge home at >= 9, plus a competent escorting adult (Chung 1995; §14b).
    bands=_readiness_bands(9),
    source=(
        "Chung F et al. J Clin Anesth 1995 (PMID 8534468); modified PADSS tables "
        "(instruments.md §14b)."
    ),
    licence=_NO_LICENCE,
    scorer=score_sum,
    options=(_cutoff_option("Ready for discharge home"),),
    configure=_configure,
    higher_is_better=True,
    notes=(
        "Ketamine clinics usually have no surgical site and score bleeding as 2; record that "
        "local adaptation in the clinic protocol.",
        "Discharge also needs a competent escorting adult; some units require >= 9 on two "
        "consecutive assessments.",
    ),
)

INSTRUMENTS = (ALDRETE_MODIFIED, PADSS_MODIFIED)
