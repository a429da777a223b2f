"""PHQ-9 and PHQ-2 (Patient Health Questionnaire depression module), instruments.md §2."""

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
)
from ketaclinic.clinical.instruments.scoring import score_sum

# Wording and options: public domain, "no permission is required to reproduce, translate,
# display or distribute" (phqscreeners.com, quoted by CamCOPS; instruments.md §2).
PHQ_LICENCE = (
    "Public domain (Pfizer; Spitzer, Williams, Kroenke): no permission required to reproduce, "
    "translate, display or distribute (phqscreeners.com)."
)

# Answer list LL358-3 (instruments.md §2; the LOINC GAD-7 panel uses the same list).
FREQUENCY_OPTIONS = (
    Option(0, "Not at all", loinc="LA6568-5"),
    Option(1, "Several days", loinc="LA6569-3"),
    Option(2, "More than half the days", loinc="LA6570-1"),
    Option(3, "Nearly every day", loinc="LA6571-9"),
)

# The unscored difficulty item's answers, coded 0-3 as CamCOPS does (instruments.md §2).
# LOINC codes from the LHC-Forms PHQ-9 44249-1 Questionnaire and the MII PHQ FSH (not in the
# reference): note LA6575-0 is "Very" and LA6574-3 "Extremely" difficult.
DIFFICULTY_OPTIONS = (
    Option(0, "Not difficult at all", loinc="LA6572-7"),
    Option(1, "Somewhat difficult", loinc="LA6573-5"),
    Option(2, "Very difficult", loinc="LA6575-0"),
    Option(3, "Extremely difficult", loinc="LA6574-3"),
)


def difficulty_item(item_id: str, loinc: str | None, problems: str) -> Item:
    """The unscored "how difficult" item of the PHQ-9 and GAD-7 (never in the total)."""
    return Item(
        item_id,
        "Functional difficulty (not scored)",
        DIFFICULTY_OPTIONS,
        wording=(
            f"If you checked off any problems, how difficult have {problems} made it for you "
            "to do your work, take care of things at home, or get along with other people?"
        ),
        loinc=loinc,
        scored=False,
        required=False,
    )


# (topic, LOINC item code, wording): codes from STARTER + BHP-IG (instruments.md §2).
_PHQ9_ITEMS = (
    (
        "Anhedonia (little interest or pleasure)",
        "44250-9",
        "Little interest or pleasure in doing things",
    ),
    ("Depressed mood", "44255-8", "Feeling down, depressed, or hopeless"),
    (
        "Sleep (too little or too much)",
        "44259-0",
        "Trouble falling or staying asleep, or sleeping too much",
    ),
    ("Fatigue / low energy", "44254-1", "Feeling tired or having little energy"),
    ("Appetite (poor or overeating)", "44251-7", "Poor appetite or overeating"),
    (
        "Self-worth / guilt",
        "44258-2",
        "Feeling bad about yourself - or that you are a failure or have let yourself or your "
        "family down",
    ),
    (
        "Concentration",
        "44252-5",
        "Trouble concentrating on things, such as reading the newspaper or watching television",
    ),
    (
        "Psychomotor (slowed or restless)",
        "44253-3",
        "Moving or speaking so slowly that other people could have noticed? Or the opposite - "
        "being so fidgety or restless that you have been moving around a lot more than usual",
    ),
    (
        "Thoughts of being better off dead or of self-harm",
        "44260-8",
        "Thoughts that you would be better off dead or of hurting yourself in some way",
    ),
)

PHQ9_ITEMS = tuple(
    Item(
        f"q{n}",
        topic,
        FREQUENCY_OPTIONS,
        wording=wording,
        loinc=loinc,
        # PHQ-9 item 9 safety flag at >= 1 whatever the total (instruments.md §2, §16.3).
        safety_threshold=1 if n == 9 else None,
    )
    for n, (topic, loinc, wording) in enumerate(_PHQ9_ITEMS, start=1)
)

# PHQ-9 severity bands (CamCOPS, NHS Data Dictionary; instruments.md §2).
PHQ9_BANDS = (
    Band("minimal", "None / minimal", 0, 4),
    Band("mild", "Mild", 5, 9),
    Band("moderate", "Moderate", 10, 14),
    Band("moderately_severe", "Moderately severe", 15, 19),
    Band("severe", "Severe", 20, 27),
)

MAJOR_SYNDROME = "major_depressive_syndrome"
OTHER_SYNDROME = "other_depressive_syndrome"
NO_SYNDROME = "none"


def depressive_syndrome(values: Mapping[str, Answer]) -> tuple[str, int, int]:
    """The PHQ diagnostic algorithm: (syndrome, symptoms, core symptoms), complete data only.

    A symptom is an item >= 2, item 9 counts at >= 1; core = items 1-2. Major: >= 1 core and
    >= 5 symptoms; other: >= 1 core and 2-4 symptoms (CamCOPS phq9.py; instruments.md §2).
    """
    counts = {
        n: (values[f"q{n}"] or 0) >= (1 if n == 9 else 2)  # complete data: never None here
        for n in range(1, 10)
    }
    core = counts[1] + counts[2]
    total = sum(counts.values())
    if core >= 1 and total >= 5:
        return MAJOR_SYNDROME, total, core
    if core >= 1 and 2 <= total <= 4:
        return OTHER_SYNDROME, total, core
    return NO_SYNDROME, total, core


def score_phq9(instrument: Instrument, values: Mapping[str, Answer]) -> Scored:
    # Up to 2 missing items: mean substitution (NHS Data Dictionary; instruments.md §2).
    max_missing = instrument.settings["prorate_max_missing"]
    scored = score_sum(instrument, values, prorate_max_missing=int(max_missing))
    if scored.complete:
        syndrome, symptoms, core = depressive_syndrome(values)
        scored.details.update(
            depressive_syndrome=syndrome, symptom_count=symptoms, core_symptom_count=core
        )
    else:
        # Never run the diagnostic algorithm on prorated or incomplete data (instruments.md §2).
        scored.details.update(depressive_syndrome=None, symptom_count=None, core_symptom_count=None)
    return scored


PHQ9 = Instrument(
    code="phq9",
    short_name="PHQ-9",
    name="Patient Health Questionnaire-9",
    version="PHQ-9 (Kroenke, Spitzer & Williams 2001)",
    rater="patient",
    recall_period="Over the last 2 weeks",
    items=(*PHQ9_ITEMS, difficulty_item("q10", "69722-7", "these problems")),
    total_range=(0, 27),
    bands=PHQ9_BANDS,
    source=(
        "Kroenke K, Spitzer RL, Williams JB. J Gen Intern Med 2001;16:606-613. Bands: CamCOPS "
        "and NHS Data Dictionary. Missing items: NHS Data Dictionary (instruments.md §2)."
    ),
    licence=PHQ_LICENCE,
    scorer=score_phq9,
    loinc_panel="44249-1",
    loinc_total="44261-6",
    options=(
        ScoringOption(
            "prorate_max_missing",
            2,
            "Up to this many missing items are replaced by the mean of the answered ones "
            "(NHS Data Dictionary allows 2; 0 turns proration off).",
            minimum=0,
            maximum=2,
        ),
    ),
    notes=(
        "Prorated total = sum x 9 / answered, rounded half up; the unrounded value is in "
        "details['prorated_total_exact'] (the NHS rule gives no rounding).",
        "Item 10 (difficulty) is never added to the total and may be left blank.",
    ),
)


def _phq2_bands(cutoff: int) -> tuple[Band, ...]:
    # PHQ-2 positive screen >= 3, or >= 2 (ARROLL 2010; instruments.md §2).
    return (
        Band("negative", "Negative screen", 0, cutoff - 1),
        Band("positive", "Positive screen", cutoff, 6),
    )


def _configure_phq2(instrument: Instrument) -> Instrument:
    return dataclasses.replace(instrument, bands=_phq2_bands(int(instrument.settings["cutoff"])))


PHQ2 = Instrument(
    code="phq2",
    short_name="PHQ-2",
    name="Patient Health Questionnaire-2",
    version="PHQ-2 (PHQ-9 items 1-2)",
    rater="patient",
    recall_period="Over the last 2 weeks",
    items=PHQ9_ITEMS[:2],
    total_range=(0, 6),
    bands=_phq2_bands(3),
    source=(
        "PHQ-9 items 1 and 2 (Kroenke 2003). Cut-offs >= 3 and >= 2: Arroll B et al. "
        "Ann Fam Med 2010 (instruments.md §2)."
    ),
    licence=PHQ_LICENCE,
    scorer=score_sum,
    loinc_panel="55757-9",
    loinc_total="55758-7",
    options=(
        ScoringOption(
            "cutoff",
            3,
            "Positive screen at a total >= cutoff (3: sensitivity 61 %, specificity 92 %; "
            "2: sensitivity 86 %, specificity 78 %; Arroll 2010).",
            minimum=1,
            maximum=6,
            aliases=("cut_off", "threshold"),
        ),
    ),
    configure=_configure_phq2,
)

INSTRUMENTS = (PHQ9, PHQ2)
