"""PCL-5 (PTSD Checklist for DSM-5), instruments.md §7."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from ketaclinic.clinical.instruments.model import (
    PROVISIONAL_PTSD,
    Answer,
    Band,
    Instrument,
    Item,
    Option,
    Scored,
    ScoringOption,
    Subscale,
)
from ketaclinic.clinical.instruments.scoring import score_sum

OPTIONS = (
    Option(0, "Not at all"),
    Option(1, "A little bit"),
    Option(2, "Moderately"),
    Option(3, "Quite a bit"),
    Option(4, "Extremely"),
)

# (topic, wording) of the 20 items; wording public domain (US Government work, ptsd.va.gov).
_ITEMS = (
    (
        "Intrusive memories",
        "Repeated, disturbing, and unwanted memories of the stressful experience?",
    ),
    ("Disturbing dreams", "Repeated, disturbing dreams of the stressful experience?"),
    (
        "Flashbacks / reliving",
        "Suddenly feeling or acting as if the stressful experience were actually happening again "
        "(as if you were actually back there reliving it)?",
    ),
    (
        "Upset at reminders",
        "Feeling very upset when something reminded you of the stressful experience?",
    ),
    (
        "Physical reactions to reminders",
        "Having strong physical reactions when something reminded you of the stressful experience "
        "(for example, heart pounding, trouble breathing, sweating)?",
    ),
    (
        "Avoiding internal reminders",
        "Avoiding memories, thoughts, or feelings related to the stressful experience?",
    ),
    (
        "Avoiding external reminders",
        "Avoiding external reminders of the stressful experience (for example, people, places, "
        "conversations, activities, objects, or situations)?",
    ),
    ("Trouble remembering", "Trouble remembering important parts of the stressful experience?"),
    (
        "Negative beliefs",
        "Having strong negative beliefs about yourself, other people, or the world (for example, "
        "having thoughts such as: I am bad, there is something seriously wrong with me, no one can "
        "be trusted, the world is completely dangerous)?",
    ),
    (
        "Blame",
        "Blaming yourself or someone else for the stressful experience or what happened after it?",
    ),
    (
        "Strong negative emotions",
        "Having strong negative feelings such as fear, horror, anger, guilt, or shame?",
    ),
    ("Loss of interest", "Loss of interest in activities that you used to enjoy?"),
    ("Feeling distant", "Feeling distant or cut off from other people?"),
    (
        "Emotional numbness",
        "Trouble experiencing positive feelings (for example, being unable to feel happiness or "
        "have loving feelings for people close to you)?",
    ),
    ("Irritability / anger", "Irritable behavior, angry outbursts, or acting aggressively?"),
    (
        "Risk-taking / self-destructive behaviour",
        "Taking too many risks or doing things that could cause you harm?",
    ),
    ("Hypervigilance", 'Being "superalert" or watchful or on guard?'),
    ("Startle", "Feeling jumpy or easily startled?"),
    ("Concentration", "Having difficulty concentrating?"),
    ("Sleep", "Trouble falling or staying asleep?"),
)


def _items(first: int, last: int) -> tuple[str, ...]:
    return tuple(f"q{n}" for n in range(first, last + 1))


# DSM-5 clusters and the symptoms each needs for the provisional diagnosis: an item >= 2 is a
# symptom; B >= 1, C >= 1, D >= 2, E >= 2 (VA National Center for PTSD scoring; §7, §16.2).
CLUSTERS = (
    Subscale("B", _items(1, 5), "Cluster B: intrusion"),
    Subscale("C", _items(6, 7), "Cluster C: avoidance"),
    Subscale("D", _items(8, 14), "Cluster D: negative cognitions and mood"),
    Subscale("E", _items(15, 20), "Cluster E: arousal and reactivity"),
)
SYMPTOMS_NEEDED = {"B": 1, "C": 1, "D": 2, "E": 2}
SYMPTOM_THRESHOLD = 2


def _bands(cutoff: int) -> tuple[Band, ...]:
    # Probable PTSD at a total >= 33; 31-33 is the published range (Bovin 2016; §7).
    return (
        Band("below_cutoff", "Below the cut-off", 0, cutoff - 1),
        Band("probable_ptsd", "Probable PTSD", cutoff, 80),
    )


def _configure(instrument: Instrument) -> Instrument:
    return dataclasses.replace(instrument, bands=_bands(int(instrument.settings["cutoff"])))


def score_pcl5(instrument: Instrument, values: Mapping[str, Answer]) -> Scored:
    # No published missing-item rule: no total with a missing item (§7 recommendation).
    scored = score_sum(instrument, values)
    if not scored.complete:
        # The cluster rule is never run on incomplete data and never prorated (§7).
        scored.details["cluster_rule_met"] = None
        return scored
    met = True
    for cluster in CLUSTERS:
        count = sum(1 for i in cluster.items if (values[i] or 0) >= SYMPTOM_THRESHOLD)
        scored.details[f"symptoms_{cluster.name}"] = count
        met = met and count >= SYMPTOMS_NEEDED[cluster.name]
    scored.details["cluster_rule_met"] = met
    if met:
        scored.flags.add(PROVISIONAL_PTSD)
    return scored


PCL5 = Instrument(
    code="pcl5",
    short_name="PCL-5",
    name="PTSD Checklist for DSM-5",
    version="PCL-5 standard, past-month (Weathers et al. 2013)",
    rater="patient",
    recall_period="In the past month",
    items=tuple(
        Item(f"q{n}", topic, OPTIONS, wording=wording)
        for n, (topic, wording) in enumerate(_ITEMS, start=1)
    ),
    total_range=(0, 80),
    bands=_bands(33),
    source=(
        "Weathers FW et al. 2013, National Center for PTSD; scoring per the VA National Center "
        "for PTSD (Blevins 2015, Bovin 2016) (instruments.md §7)."
    ),
    licence="Public domain (US Government work, National Center for PTSD; ptsd.va.gov).",
    scorer=score_pcl5,
    loinc_panel="101697-1",
    loinc_total="101698-9",
    subscales=CLUSTERS,
    options=(
        ScoringOption(
            "cutoff",
            33,
            "Probable PTSD at a total >= cutoff (31-33 published; CamCOPS and ketaclinic "
            "default 33; the old VA 38 is superseded).",
            minimum=1,
            maximum=80,
            aliases=("cut_off", "threshold"),
        ),
    ),
    configure=_configure,
    notes=(
        "The cluster rule (provisional_ptsd flag) and the cut-off band are separate outputs "
        "and may disagree either way. The PCL-5 cannot establish Criterion A, duration or "
        "impairment: the diagnosis is provisional.",
        "LOINC 101697-1 / 101698-9 come from one source only (NYS-LOINC); verify at loinc.org.",
    ),
)

INSTRUMENTS = (PCL5,)
