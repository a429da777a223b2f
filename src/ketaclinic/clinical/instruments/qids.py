"""QIDS-SR16 (Quick Inventory of Depressive Symptomatology, self-report), instruments.md §4."""

from __future__ import annotations

from collections.abc import Mapping

from ketaclinic.clinical.instruments.model import (
    Answer,
    Band,
    Instrument,
    Item,
    Scored,
    numbered_options,
)
from ketaclinic.clinical.instruments.scoring import item_points

_TOPICS = (
    "Falling asleep (initial insomnia)",
    "Sleep during the night (middle insomnia)",
    "Waking up too early (late insomnia)",
    "Sleeping too much (hypersomnia)",
    "Feeling sad",
    "Decreased appetite",
    "Increased appetite",
    "Decreased weight (last 2 weeks)",
    "Increased weight (last 2 weeks)",
    "Concentration / decision-making",
    "View of myself",
    "Thoughts of death or suicide",
    "General interest",
    "Energy level",
    "Feeling slowed down",
    "Feeling restless",
)

# The nine DSM domains, each the highest answered item (IDSQIDS / Inquisit scoring steps;
# instruments.md §4, §16.1). Never the sum of all 16 items.
DOMAINS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("sleep", ("q1", "q2", "q3", "q4")),
    ("mood", ("q5",)),
    ("appetite_weight", ("q6", "q7", "q8", "q9")),
    ("concentration", ("q10",)),
    ("self_view", ("q11",)),
    ("suicidal_ideation", ("q12",)),
    ("interest", ("q13",)),
    ("energy", ("q14",)),
    ("psychomotor", ("q15", "q16")),
)
# The form asks for either 6 or 7 and either 8 or 9, so one of each pair is blank by design
# (official English form, from memory [M]; instruments.md §4).
EITHER_OR = (("q6", "q7"), ("q8", "q9"))
_BY_DESIGN = {item_id for pair in EITHER_OR for item_id in pair}


def score_qids(instrument: Instrument, values: Mapping[str, Answer]) -> Scored:
    scored = Scored()
    points = item_points(instrument, values, scored)
    for name, items in DOMAINS:
        answered = [p for p in (points[i] for i in items) if p is not None]
        # Missing items: a domain is the max over its answered items; no proration
        # (instruments.md §4 recommendation; no official rule).
        scored.subscales[name] = max(answered) if answered else None
        if not answered:
            scored.missing_domains.append(name)
    scored.missing_items = [
        item_id for item_id, p in points.items() if p is None and item_id not in _BY_DESIGN
    ]
    for pair in EITHER_OR:
        if all(points[i] is None for i in pair):
            scored.missing_items.extend(pair)
    scored.missing_items.sort(key=lambda item_id: int(item_id[1:]))
    scored.raw_total = sum(p for p in points.values() if p is not None)
    if scored.missing_domains:
        scored.notes.append(
            "No total: no answered item in domain(s) " + ", ".join(scored.missing_domains) + "."
        )
        return scored
    domain_scores = [d for d in scored.subscales.values() if isinstance(d, int)]
    scored.total = sum(domain_scores)
    scored.complete = not scored.missing_items
    if scored.missing_items:
        scored.notes.append(
            "Total from the answered items of each domain; unanswered: "
            + ", ".join(scored.missing_items)
            + "."
        )
    band = instrument.band_for(scored.total)
    scored.band = band.code if band else None
    return scored


QIDS_SR16 = Instrument(
    code="qids_sr16",
    short_name="QIDS-SR16",
    name="Quick Inventory of Depressive Symptomatology - Self-Report (16 items)",
    version="QIDS-SR16 (Rush et al. 2003)",
    rater="patient",
    recall_period="Last 7 days",
    items=tuple(
        Item(
            f"q{n}",
            topic,
            # Item-specific anchors are copyrighted wording: neutral numeric labels only.
            numbered_options(0, 3),
            required=f"q{n}" not in _BY_DESIGN,
            # Item 12 >= 1 flags, mirroring PHQ-9 item 9; no official QIDS rule
            # (instruments.md §4).
            safety_threshold=1 if n == 12 else None,
        )
        for n, topic in enumerate(_TOPICS, start=1)
    ),
    total_range=(0, 27),
    # QIDS-SR16 severity (IDSQIDS interpretation cross-walk, Inquisit manual; instruments.md §4).
    bands=(
        Band("none", "None", 0, 5),
        Band("mild", "Mild", 6, 10),
        Band("moderate", "Moderate", 11, 15),
        Band("severe", "Severe", 16, 20),
        Band("very_severe", "Very severe", 21, 27),
    ),
    source=(
        "Rush AJ et al. Biol Psychiatry 2003;54:573-583; scoring and bands from ids-qids.org "
        "and the Inquisit QIDS-SR16 manual (instruments.md §4)."
    ),
    licence=(
        "Copyrighted; paper versions free to clinicians and researchers (ids-qids.org). Terms "
        "for electronic embedding not confirmed, so item wording is not shipped."
    ),
    scorer=score_qids,
    notes=(
        "Domain = highest answered item of the domain; a domain with no answered item gives "
        "no total and is listed in missing_domains.",
        "One of items 6/7 and one of 8/9 is blank by design; both of a pair blank is missing.",
    ),
)

INSTRUMENTS = (QIDS_SR16,)
