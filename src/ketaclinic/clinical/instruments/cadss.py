"""CADSS (Clinician-Administered Dissociative States Scale) and CADSS-6, instruments.md §9."""

from __future__ import annotations

from ketaclinic.clinical.instruments.model import (
    Instrument,
    Item,
    Subscale,
    numbered_options,
)
from ketaclinic.clinical.instruments.scoring import score_sum

_UNCONFIRMED = (
    "Item map recalled from Janssen esketamine publications, not confirmed against the form "
    "(instruments.md §9 [M])."
)


def _ids(*numbers: int | range) -> tuple[str, ...]:
    flat: list[int] = []
    for n in numbers:
        flat.extend(n if isinstance(n, range) else [n])
    return tuple(f"q{n}" for n in sorted(flat))


# Component subscales reported in esketamine publications; they partition items 1-23.
COMPONENTS = (
    Subscale("depersonalization", _ids(range(3, 8), 20, 23), "Depersonalization", _UNCONFIRMED),
    Subscale(
        "derealization", _ids(1, 2, range(8, 14), range(16, 20)), "Derealization", _UNCONFIRMED
    ),
    Subscale("amnesia", _ids(14, 15, 21, 22), "Amnesia", _UNCONFIRMED),
)

# 0 = not at all ... 4 = extremely (NCT04226963); licence not confirmed, so neutral labels.
_OPTIONS = numbered_options(0, 4)
# Item wording/topics are not enumerated (copyright; not confirmed item by item, §9).
SUBJECTIVE_ITEMS = tuple(Item(f"q{n}", f"Subjective item {n}", _OPTIONS) for n in range(1, 24))

_LICENCE = (
    "Author J. Douglas Bremner (Emory); licence not confirmed. Wording not shipped: ask the "
    "author before embedding it."
)
_RECALL = "Present state (right now / this session)"

CADSS = Instrument(
    code="cadss",
    short_name="CADSS",
    name="Clinician-Administered Dissociative States Scale (23 subjective items)",
    version="CADSS 23 subjective items (Bremner et al. 1998; current 23 + 5 observer form)",
    rater="clinician",
    recall_period=_RECALL,
    items=SUBJECTIVE_ITEMS,
    # Total of the 23 subjective items 0-92; observer items are scored separately and never
    # added (NCT04226963, Rodrigues 2021; instruments.md §9).
    total_range=(0, 92),
    bands=(),  # no severity bands are published for clinical use (§9)
    source=(
        "Bremner JD et al. J Trauma Stress 1998; 23-item subjective total 0-92 as in "
        "NCT04226963 and Rodrigues 2021 (instruments.md §9)."
    ),
    licence=_LICENCE,
    # No published missing-item rule: no total with a missing item.
    scorer=score_sum,
    subscales=COMPONENTS,
    notes=(
        "Report the absolute score and the change from the pre-dose baseline; no bands.",
        _UNCONFIRMED,
    ),
)

# CADSS-6: items 1, 2, 6, 7, 15, 22 of the 23-item CADSS, sum 0-24; not yet validated
# (Rodrigues NB et al. J Affect Disord 2021; instruments.md §9).
CADSS6_ITEMS = _ids(1, 2, 6, 7, 15, 22)

CADSS6 = Instrument(
    code="cadss6",
    short_name="CADSS-6",
    name="Clinician-Administered Dissociative States Scale, 6-item short form",
    version="CADSS-6 (Rodrigues et al. 2021): CADSS items 1, 2, 6, 7, 15, 22",
    rater="clinician",
    recall_period=_RECALL,
    items=tuple(item for item in SUBJECTIVE_ITEMS if item.id in CADSS6_ITEMS),
    total_range=(0, 24),
    bands=(),
    source=(
        "Rodrigues NB et al. J Affect Disord 2021;282:160-164 (derived from IV-ketamine data; "
        "correlates 0.91-0.95 with the full CADSS; not yet validated) (instruments.md §9)."
    ),
    licence=_LICENCE,
    scorer=score_sum,
    notes=("Item ids keep the CADSS numbering, so a CADSS-6 answer maps to the full scale.",),
)

INSTRUMENTS = (CADSS, CADSS6)
