"""HAM-D17 (Hamilton Depression Rating Scale, 17 items), instruments.md §6."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from ketaclinic.clinical.instruments.model import (
    Answer,
    Band,
    Instrument,
    Item,
    Option,
    Scored,
    ScoringOption,
    numbered_options,
)
from ketaclinic.clinical.instruments.scoring import score_sum

# Items and ranges (CamCOPS hamd.py; instruments.md §6): nine items 0-4, eight 0-2, max 52.
_ITEMS = (
    ("q1", "Depressed mood", 4),
    ("q2", "Guilt", 4),
    ("q3", "Suicide", 4),
    ("q4", "Early insomnia", 2),
    ("q5", "Middle insomnia", 2),
    ("q6", "Late insomnia", 2),
    ("q7", "Work / activities", 4),
    ("q8", "Psychomotor retardation", 4),
    ("q9", "Agitation", 4),
    ("q10", "Psychic anxiety", 4),
    ("q11", "Somatic anxiety", 4),
    ("q12", "Gastrointestinal somatic symptoms", 2),
    ("q13", "General somatic symptoms", 2),
    ("q14", "Genital symptoms", 2),
    ("q15", "Hypochondriasis", 4),
)

# Item 16 is rated A (by history) or B (by measured weekly change), never both; 0-2, and the
# ECDEU form's 3 = "not assessed" scores 0 (CamCOPS citing the ECDEU manual pp. 187, 189).
WEIGHT_OPTIONS = (*numbered_options(0, 2), Option(3, "3 = Not assessed", points=0))

ITEMS = (
    *(
        Item(
            item_id,
            topic,
            numbered_options(0, highest),
            # HAM-D item 3 >= 1 flags suicidality (instruments.md §15.3).
            safety_threshold=1 if item_id == "q3" else None,
        )
        for item_id, topic, highest in _ITEMS
    ),
    Item("q16a", "Weight loss, rated by history (A)", WEIGHT_OPTIONS, required=False),
    Item("q16b", "Weight loss, by measured weekly change (B)", WEIGHT_OPTIONS, required=False),
    Item("q17", "Insight", numbered_options(0, 2)),
)

ZIMMERMAN_2013 = "zimmerman2013"
CONSENSUS = "consensus"
BAND_SETS = {
    # Zimmerman M et al. J Affect Disord 2013 (cut-offs 17 and 24; 0-7 from the remission
    # convention [M]) (instruments.md §6).
    ZIMMERMAN_2013: (
        Band("none", "No depression", 0, 7),
        Band("mild", "Mild", 8, 16),
        Band("moderate", "Moderate", 17, 23),
        Band("severe", "Severe", 24, 52),
    ),
    # Widely cited "consensus" bands as used by CamCOPS (sourced to cnsforum) (§6).
    CONSENSUS: (
        Band("normal", "Normal", 0, 7),
        Band("mild", "Mild", 8, 13),
        Band("moderate", "Moderate", 14, 18),
        Band("severe", "Severe", 19, 22),
        Band("very_severe", "Very severe", 23, 52),
    ),
}


def _configure(instrument: Instrument) -> Instrument:
    return dataclasses.replace(instrument, bands=BAND_SETS[str(instrument.settings["bands"])])


def score_hamd17(instrument: Instrument, values: Mapping[str, Answer]) -> Scored:
    # Total = items 1-17 with whichever of 16a/16b was rated; items 18-21 are not part of the
    # HAM-D17. No published missing-item rule: no total with a missing item (§6).
    scored = score_sum(instrument, values)
    rated_by = {"q16a": "history", "q16b": "measured_weight"}
    scored.details["item16_rated_by"] = next(
        (how for item_id, how in rated_by.items() if values[item_id] is not None), None
    )
    return scored


HAMD17 = Instrument(
    code="hamd17",
    short_name="HAM-D17",
    name="Hamilton Depression Rating Scale, 17-item",
    version="HAM-D17 (Hamilton 1960; ECDEU item 16 A/B)",
    rater="clinician",
    recall_period="Past week (interview)",
    items=ITEMS,
    total_range=(0, 52),
    bands=BAND_SETS[ZIMMERMAN_2013],
    source=(
        "Hamilton M 1960; item ranges and item 16 per CamCOPS hamd.py and the ECDEU manual; "
        "bands: Zimmerman 2013 or the CamCOPS/cnsforum consensus (instruments.md §6)."
    ),
    licence=(
        "Public domain per NINDS CDE. Structured interview guides (SIGH-D, GRID-HAMD) carry "
        "their own copyrights. Anchor wording not shipped (not verified here)."
    ),
    scorer=score_hamd17,
    exclusive_items=(("q16a", "q16b"),),
    options=(
        ScoringOption(
            "bands",
            ZIMMERMAN_2013,
            "Severity band convention: 'zimmerman2013' (empirical: 0-7, 8-16, 17-23, >= 24) "
            "or 'consensus' (CamCOPS/cnsforum: 0-7, 8-13, 14-18, 19-22, >= 23).",
            choices=(ZIMMERMAN_2013, CONSENSUS),
            aliases=("band_convention", "convention"),
        ),
    ),
    notes=(
        "Default bands: Zimmerman 2013, the empirically derived cut-offs; the choice is "
        "recorded in ScoreResult.convention.",
        "Rate item 16 as 16a (history) or 16b (measured weight change); 3 = not assessed scores 0.",
    ),
    configure=_configure,
)

INSTRUMENTS = (HAMD17,)
