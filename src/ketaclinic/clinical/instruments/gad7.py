"""GAD-7 (Generalized Anxiety Disorder 7-item scale), instruments.md §3."""

from __future__ import annotations

from collections.abc import Mapping

from ketaclinic.clinical.instruments.model import (
    Answer,
    Band,
    Instrument,
    Item,
    Scored,
    ScoringOption,
)
from ketaclinic.clinical.instruments.phq import FREQUENCY_OPTIONS, PHQ_LICENCE, difficulty_item
from ketaclinic.clinical.instruments.scoring import score_sum

# (topic, LOINC item code, wording): codes from the LHC GAD-7 69737-5 Questionnaire
# (instruments.md §3).
_GAD7_ITEMS = (
    ("Nervous / anxious / on edge", "69725-0", "Feeling nervous, anxious, or on edge"),
    ("Can't stop or control worrying", "68509-9", "Not being able to stop or control worrying"),
    ("Worrying too much", "69733-4", "Worrying too much about different things"),
    ("Trouble relaxing", "69734-2", "Trouble relaxing"),
    ("Restless", "69735-9", "Being so restless that it is hard to sit still"),
    ("Irritable", "69689-8", "Becoming easily annoyed or irritable"),
    (
        "Afraid something awful might happen",
        "69736-7",
        "Feeling afraid, as if something awful might happen",
    ),
)


def score_gad7(instrument: Instrument, values: Mapping[str, Answer]) -> Scored:
    # No published missing-item rule for the GAD-7; proration only if the clinic turns it on
    # (instruments.md §3 recommendation, §15.4).
    max_missing = int(instrument.settings["prorate_max_missing"])
    return score_sum(instrument, values, prorate_max_missing=max_missing)


GAD7 = Instrument(
    code="gad7",
    short_name="GAD-7",
    name="Generalized Anxiety Disorder 7-item scale",
    version="GAD-7 (Spitzer et al. 2006)",
    rater="patient",
    recall_period="Over the last 2 weeks",
    items=(
        *(
            Item(f"q{n}", topic, FREQUENCY_OPTIONS, wording=wording, loinc=loinc)
            for n, (topic, loinc, wording) in enumerate(_GAD7_ITEMS, start=1)
        ),
        # The difficulty item's LOINC code is not confirmed (instruments.md §3): none given.
        difficulty_item("q8", None, "they"),
    ),
    total_range=(0, 21),
    # GAD-7 severity bands (CamCOPS citing Spitzer 2006; instruments.md §3).
    bands=(
        Band("minimal", "Minimal", 0, 4),
        Band("mild", "Mild", 5, 9),
        Band("moderate", "Moderate", 10, 14),
        Band("severe", "Severe", 15, 21),
    ),
    source=(
        "Spitzer RL, Kroenke K, Williams JBW, Lowe B. Arch Intern Med 2006;166:1092-7; bands "
        "as in CamCOPS (instruments.md §3)."
    ),
    licence=PHQ_LICENCE,
    scorer=score_gad7,
    loinc_panel="69737-5",
    loinc_total="70274-6",
    options=(
        ScoringOption(
            "prorate_max_missing",
            0,
            "Optional, flagged proration of 1 missing item (no official rule; off by default).",
            minimum=0,
            maximum=1,
        ),
    ),
    notes=("Item 8 (difficulty) is never added to the total and may be left blank.",),
)

INSTRUMENTS = (GAD7,)
