"""BPRS positive-symptom subscale (BPRS+), as used in ketamine trials, instruments.md §10."""

from __future__ import annotations

import dataclasses

from ketaclinic.clinical.instruments.model import (
    Instrument,
    Item,
    Option,
    ScoringOption,
)
from ketaclinic.clinical.instruments.scoring import score_sum

# Items 4, 11, 12 and 15 of the 18-item BPRS (BPRS-LIT, two sources; instruments.md §10).
_ITEMS = (
    ("q4", "Conceptual disorganization"),
    ("q11", "Suspiciousness"),
    ("q12", "Hallucinatory behaviour"),
    ("q15", "Unusual thought content"),
)

# Severity labels of the original 1-7 scale: "not present" and "extremely severe" per CamCOPS;
# the labels in between are the usual Overall & Gorham ones [M].
_SEVERITY = (
    "Not present",
    "Very mild",
    "Mild",
    "Moderate",
    "Moderately severe",
    "Severe",
    "Extremely severe",
)

ONE_TO_SEVEN = "1-7"
ZERO_TO_SIX = "0-6"
ITEM_SCALES = {
    # Original 1-7; CamCOPS stores 0 = "unable to rate" and leaves it out of the sum. Here it
    # counts as missing, so no BPRS+ total is given with an unrated item (§10, §16.7).
    ONE_TO_SEVEN: (
        Option(0, "0 = Unable to rate", unratable=True),
        *(Option(v, f"{v} = {label}") for v, label in enumerate(_SEVERITY, start=1)),
    ),
    # Rescaled 0-6 (NCT04226963): 0 = not present; a missing rating is None.
    ZERO_TO_SIX: tuple(Option(v, f"{v} = {label}") for v, label in enumerate(_SEVERITY)),
}
TOTAL_RANGES = {ONE_TO_SEVEN: (4, 28), ZERO_TO_SIX: (0, 24)}


def _items(scale: str) -> tuple[Item, ...]:
    return tuple(Item(item_id, topic, ITEM_SCALES[scale]) for item_id, topic in _ITEMS)


def _configure(instrument: Instrument) -> Instrument:
    scale = str(instrument.settings["convention"])
    return dataclasses.replace(instrument, items=_items(scale), total_range=TOTAL_RANGES[scale])


BPRS_POSITIVE = Instrument(
    code="bprs_positive",
    short_name="BPRS+",
    name="Brief Psychiatric Rating Scale, positive-symptom subscale",
    version="BPRS 18-item (Overall & Gorham 1962), items 4, 11, 12, 15",
    rater="clinician",
    recall_period="Interview and observation (session)",
    items=_items(ONE_TO_SEVEN),
    total_range=TOTAL_RANGES[ONE_TO_SEVEN],
    bands=(),  # none for BPRS+: report change from pre-dose (§10)
    source=(
        "Overall JE, Gorham DR 1962; CamCOPS bprs.py (1-7, 0 = unable to rate); 0-6 rescaling "
        "and the 4 positive items: NCT04226963 and ketamine protocols (instruments.md §10)."
    ),
    licence=(
        "Original BPRS: public domain per CamCOPS (VA/NIMH-funded). Anchor wording not "
        "shipped. The Expanded BPRS (UCLA, 24 items) is a different document."
    ),
    scorer=score_sum,
    options=(
        ScoringOption(
            "convention",
            ONE_TO_SEVEN,
            "Item scoring: '1-7' (original; 0 = unable to rate, treated as missing; BPRS+ 4-28) "
            "or '0-6' (rescaled, as in some ketamine trials; BPRS+ 0-24). Mixing the two "
            "shifts BPRS+ by exactly 4.",
            choices=(ONE_TO_SEVEN, ZERO_TO_SIX),
            aliases=("item_scale", "scale", "scoring"),
        ),
    ),
    configure=_configure,
    notes=(
        "Under 1-7 a rating of 0 means 'unable to rate' (CamCOPS): the item counts as missing "
        "and there is no BPRS+ total, rather than CamCOPS' silent omission from the sum.",
    ),
)

INSTRUMENTS = (BPRS_POSITIVE,)
