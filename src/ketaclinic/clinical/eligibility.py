"""Pre-treatment eligibility screening for esketamine (Spravato) and racemic ketamine.

``assess(drug, findings, rules=None) -> Assessment``.

- A *contraindication* is a hard stop: ``decision == "not_eligible"`` and ``can_override`` is
  False.  A *caution* can be overridden by a clinician (the app records who and why).
- Esketamine follows its US label: the three label contraindication groups plus age < 18 are
  locked hard stops; everything else the label calls "not recommended" / a warning is a
  caution.  A clinic may make an esketamine caution stricter (a contraindication) but never
  weaker.
- Racemic ketamine (any route) is off-label for depression; its rule kinds are data
  (``KETAMINE_DEFAULT_RULES``) that a clinic can edit (``contraindication`` / ``caution`` /
  ``off``), except the Ketalar label contraindications, which stay hard stops.
- Missing findings are never a silent pass: a finding that feeds a contraindication rule, the
  blood pressure, and pregnancy status (unless the patient cannot become pregnant) produce a
  ``<group>_not_assessed`` caution when left as None.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType

from ketaclinic.clinical.dosing import to_decimal

__all__ = [
    "ESKETAMINE_RULES",
    "KETAMINE_DEFAULT_RULES",
    "Assessment",
    "Decision",
    "FiredFinding",
    "Findings",
    "Kind",
    "Medicines",
    "RULES",
    "assess",
]


class Kind(StrEnum):
    CONTRAINDICATION = "contraindication"
    CAUTION = "caution"
    OFF = "off"  # rule disabled by the clinic (racemic ketamine only)


class Decision(StrEnum):
    ELIGIBLE = "eligible"
    ELIGIBLE_WITH_CAUTIONS = "eligible_with_cautions"
    NOT_ELIGIBLE = "not_eligible"


SUD_VALUES = ("none", "past", "current")
HEPATIC_VALUES = ("none", "child_pugh_a", "child_pugh_b", "child_pugh_c")
INDICATIONS = ("trd", "mdsi")

# ---------------------------------------------------------------------------------------------
# findings


@dataclass(frozen=True, slots=True)
class Medicines:
    """Concomitant medicines that change sedation or blood pressure (None = not asked)."""

    benzodiazepines: bool | None = None
    opioids: bool | None = None
    psychostimulants: bool | None = None
    maois: bool | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            _check_bool(getattr(self, f.name), f"medicines.{f.name}")


_MEDICINE_NAMES = tuple(f.name for f in fields(Medicines))


def _check_bool(value: object, name: str) -> None:
    if value is not None and not isinstance(value, bool):
        raise ValueError(f"{name} must be yes (True), no (False) or not assessed (None)")


def _check_range(value: object, name: str, low: int, high: int, unit: str) -> None:
    if value is None:
        return
    number = to_decimal(value, name)
    if not low <= number <= high:
        raise ValueError(f"{name} must be between {low} and {high} {unit}; got {value}")


@dataclass(frozen=True, slots=True)
class Findings:
    """Pre-treatment findings.  Every field is optional: None means "not assessed".

    ``medicines`` may be a ``Medicines``, a mapping of medicine name -> bool, or a collection of
    the names being taken (``{"opioids", "maois"}``; names not listed are then "no").
    ``sex`` is sex assigned at birth ("female"/"male"), used only to decide whether a missing
    pregnancy status matters; ``can_become_pregnant`` overrides it when given.
    ``indication`` ("trd" or "mdsi") only affects the esketamine TRD failed-trials rule.
    """

    age_years: int | float | Decimal | None = None
    sex: str | None = None
    can_become_pregnant: bool | None = None
    pregnant: bool | None = None
    breastfeeding: bool | None = None
    systolic_bp: int | float | Decimal | None = None
    diastolic_bp: int | float | Decimal | None = None
    uncontrolled_hypertension: bool | None = None
    hypertensive_encephalopathy_history: bool | None = None
    heart_rate: int | float | Decimal | None = None
    aneurysmal_vascular_disease_or_avm: bool | None = None
    intracerebral_haemorrhage_history: bool | None = None
    raised_intracranial_pressure: bool | None = None
    psychosis_history: bool | None = None
    psychosis_current: bool | None = None
    bipolar_or_mania: bool | None = None
    substance_use_disorder: str | None = None
    seizure_disorder: bool | None = None
    hepatic_impairment: str | None = None
    hypersensitivity_to_ketamine_or_esketamine: bool | None = None
    medicines: Medicines | Mapping[str, bool] | Iterable[str] | None = None
    failed_antidepressant_trials: int | None = None
    indication: str | None = None

    def __post_init__(self) -> None:
        for name in (
            "can_become_pregnant",
            "pregnant",
            "breastfeeding",
            "uncontrolled_hypertension",
            "hypertensive_encephalopathy_history",
            "aneurysmal_vascular_disease_or_avm",
            "intracerebral_haemorrhage_history",
            "raised_intracranial_pressure",
            "psychosis_history",
            "psychosis_current",
            "bipolar_or_mania",
            "seizure_disorder",
            "hypersensitivity_to_ketamine_or_esketamine",
        ):
            _check_bool(getattr(self, name), name.replace("_", " "))
        _check_range(self.age_years, "age", 0, 130, "years")
        _check_range(self.systolic_bp, "systolic blood pressure", 1, 300, "mmHg")
        _check_range(self.diastolic_bp, "diastolic blood pressure", 1, 200, "mmHg")
        _check_range(self.heart_rate, "heart rate", 1, 300, "beats/min")
        if self.systolic_bp is not None and self.diastolic_bp is not None:
            if to_decimal(self.diastolic_bp, "diastolic") >= to_decimal(self.systolic_bp, "sys"):
                raise ValueError(
                    "diastolic blood pressure must be lower than systolic; got "
                    f"{self.systolic_bp}/{self.diastolic_bp}"
                )
        trials = self.failed_antidepressant_trials
        if trials is not None and (isinstance(trials, bool) or not isinstance(trials, int)):
            raise ValueError(f"failed antidepressant trials must be a whole number; got {trials!r}")
        if trials is not None and not 0 <= trials <= 100:
            raise ValueError(f"failed antidepressant trials must be 0 or more; got {trials}")
        object.__setattr__(self, "sex", _choice(self.sex, "sex", ("female", "male")))
        object.__setattr__(
            self,
            "substance_use_disorder",
            _choice(self.substance_use_disorder, "substance use disorder", SUD_VALUES),
        )
        object.__setattr__(
            self,
            "hepatic_impairment",
            _choice(self.hepatic_impairment, "hepatic impairment", HEPATIC_VALUES),
        )
        object.__setattr__(self, "indication", _choice(self.indication, "indication", INDICATIONS))
        object.__setattr__(self, "medicines", _medicines(self.medicines))

    @property
    def meds(self) -> Medicines | None:
        """``medicines`` normalised to ``Medicines`` (always the case after construction)."""
        return self.medicines if isinstance(self.medicines, Medicines) else None


def _choice(value: object, name: str, allowed: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    text = (
        value.strip().lower().replace("-", "_").replace(" ", "_") if isinstance(value, str) else ""
    )
    if text not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
    return text


def _medicines(value: object) -> Medicines | None:
    if value is None or isinstance(value, Medicines):
        return value
    if isinstance(value, Mapping):
        taken = dict(value)
    elif isinstance(value, Iterable) and not isinstance(value, str | bytes):
        taken = {name: True for name in value}
    else:
        raise ValueError(f"medicines must be a Medicines record or a list of names; got {value!r}")
    unknown = sorted(str(k) for k in taken if k not in _MEDICINE_NAMES)
    if unknown:
        raise ValueError(
            f"unknown medicine group(s) {', '.join(unknown)}; use {', '.join(_MEDICINE_NAMES)}"
        )
    return Medicines(**{name: bool(taken.get(name, False)) for name in _MEDICINE_NAMES})


# ---------------------------------------------------------------------------------------------
# rules


@dataclass(frozen=True, slots=True)
class _Rule:
    rule_id: str
    inputs: tuple[str, ...]  # Findings fields the rule reads (for "not assessed")
    group: str  # name of the not-assessed caution group
    fires: Callable[[Findings], bool]
    message: str
    source_esketamine: str
    source_ketamine: str


def _num(value: object) -> Decimal:
    return to_decimal(value, "value")


def _bp_severe(f: Findings) -> bool:
    return (f.systolic_bp is not None and _num(f.systolic_bp) >= 180) or (
        f.diastolic_bp is not None and _num(f.diastolic_bp) >= 110
    )


def _bp_elevated(f: Findings) -> bool:
    return (f.systolic_bp is not None and _num(f.systolic_bp) > 140) or (
        f.diastolic_bp is not None and _num(f.diastolic_bp) > 90
    )


def _med(name: str) -> Callable[[Findings], bool]:
    return lambda f: f.meds is not None and getattr(f.meds, name) is True


_USPI_CI = "Spravato USPI §4 Contraindications (clinical.md §2.3)"
_KETALAR_CI = "Ketalar label, Contraindications (clinical.md §3)"
_BP_CUTS = (
    "APA consensus (Sanacora 2017) defer/stop thresholds 180/100-110 [R][?]; "
    "ESH grade 3 hypertension >= 180/110 (clinical.md §1.6, §9.4)"
)
_USPI_BP = "Spravato USPI BP warning: > 140/90 general guide to consider delay (clinical.md §2.4)"
_APA_BP = "APA consensus (Sanacora 2017): reconsider if baseline > 140/90 [R][?] (clinical.md §1.6)"
_APA_HR = "APA consensus (Sanacora 2017): HR > 110 [R][?] (clinical.md §1.6, §9.4)"
_USPI_INTERACT = "Spravato USPI drug interactions (clinical.md §1.5c, §2.4)"
_KET_INTERACT = "by analogy with the Spravato USPI drug interactions (clinical.md §1.5c)"

RULES: tuple[_Rule, ...] = (
    # Spravato USPI §4 / Ketalar label: hypersensitivity (clinical.md §2.3, §3)
    _Rule(
        "hypersensitivity",
        ("hypersensitivity_to_ketamine_or_esketamine",),
        "hypersensitivity",
        lambda f: f.hypersensitivity_to_ketamine_or_esketamine is True,
        "Known hypersensitivity to esketamine, ketamine or an excipient.",
        _USPI_CI,
        _KETALAR_CI,
    ),
    # Spravato USPI §4: aneurysmal vascular disease or AVM (clinical.md §2.3)
    _Rule(
        "aneurysmal_vascular_disease_or_avm",
        ("aneurysmal_vascular_disease_or_avm",),
        "aneurysmal_vascular_disease_or_avm",
        lambda f: f.aneurysmal_vascular_disease_or_avm is True,
        "Aneurysmal vascular disease (aorta, intracranial or peripheral arteries) or "
        "arteriovenous malformation: a blood-pressure rise could be dangerous.",
        _USPI_CI,
        "Ketalar label: contraindicated where a BP rise is a serious hazard (clinical.md §3)",
    ),
    # Spravato USPI §4: history of intracerebral haemorrhage (clinical.md §2.3)
    _Rule(
        "intracerebral_haemorrhage_history",
        ("intracerebral_haemorrhage_history",),
        "intracerebral_haemorrhage_history",
        lambda f: f.intracerebral_haemorrhage_history is True,
        "History of intracerebral haemorrhage: a blood-pressure rise could be dangerous.",
        _USPI_CI,
        "Ketalar label: contraindicated where a BP rise is a serious hazard (clinical.md §3)",
    ),
    # Spravato USPI: not approved under 18 (clinical.md §3)
    _Rule(
        "age_under_18",
        ("age_years",),
        "age",
        lambda f: f.age_years is not None and _num(f.age_years) < 18,
        "Under 18: not approved (safety and effectiveness not established in children); this "
        "software supports only adult treatment.",
        "Spravato USPI Indications: adults only; not approved < 18 (clinical.md §3)",
        "Depression evidence is in adults; Ketalar pediatric neurotoxicity warning "
        "(clinical.md §3)",
    ),
    # Spravato USPI: pregnancy not recommended (embryo-fetal toxicity) (clinical.md §3)
    _Rule(
        "pregnant",
        ("pregnant",),
        "pregnancy",
        lambda f: f.pregnant is True,
        "Pregnant: not recommended (embryo-fetal toxicity).",
        "Spravato USPI: pregnancy not recommended (clinical.md §3)",
        "APA consensus: pregnancy a relative contraindication [R] (clinical.md §1.6, §3)",
    ),
    # Spravato USPI: breastfeeding not recommended (clinical.md §3)
    _Rule(
        "breastfeeding",
        ("breastfeeding",),
        "breastfeeding",
        lambda f: f.breastfeeding is True,
        "Breastfeeding: not recommended.",
        "Spravato USPI: no breastfeeding (clinical.md §3)",
        "by analogy with the Spravato USPI (clinical.md §3)",
    ),
    # Ketalar label contraindication / Spravato BP warning: uncontrolled hypertension
    _Rule(
        "uncontrolled_hypertension",
        ("uncontrolled_hypertension",),
        "uncontrolled_hypertension",
        lambda f: f.uncontrolled_hypertension is True,
        "Uncontrolled hypertension: a further blood-pressure rise may pose a serious risk.",
        "Spravato USPI BP warning: do not give if a BP rise poses a serious risk "
        "(clinical.md §2.4, §3)",
        _KETALAR_CI,
    ),
    # APA consensus [R][?] / ESH grade 3: BP >= 180/110 -> defer this session
    _Rule(
        "bp_severe",
        ("systolic_bp", "diastolic_bp"),
        "blood_pressure",
        _bp_severe,
        "Blood pressure is 180/110 or higher: do not dose this session; recheck and treat.",
        _BP_CUTS,
        _BP_CUTS,
    ),
    # Spravato USPI: > 140/90 general guide to weigh delaying (clinical.md §2.4)
    _Rule(
        "bp_elevated",
        ("systolic_bp", "diastolic_bp"),
        "blood_pressure",
        _bp_elevated,
        "Blood pressure above 140/90: weigh the expected rise against the benefit before dosing.",
        _USPI_BP,
        _APA_BP,
    ),
    # APA consensus [R][?]: HR > 110
    _Rule(
        "heart_rate_high",
        ("heart_rate",),
        "heart_rate",
        lambda f: f.heart_rate is not None and _num(f.heart_rate) > 110,
        "Heart rate above 110/min.",
        _APA_HR,
        _APA_HR,
    ),
    # Spravato USPI: hypertensive encephalopathy history -> more intensive monitoring
    _Rule(
        "hypertensive_encephalopathy_history",
        ("hypertensive_encephalopathy_history",),
        "hypertensive_encephalopathy_history",
        lambda f: f.hypertensive_encephalopathy_history is True,
        "History of hypertensive encephalopathy: monitor BP and symptoms more intensively.",
        "Spravato USPI BP warning (clinical.md §2.4, §3)",
        "by analogy with the Spravato USPI (clinical.md §3)",
    ),
    # Spravato USPI: do not give if ICP rise is a serious risk; Miller's: should not receive
    _Rule(
        "raised_intracranial_pressure",
        ("raised_intracranial_pressure",),
        "raised_intracranial_pressure",
        lambda f: f.raised_intracranial_pressure is True,
        "Raised intracranial pressure or intracranial mass: ketamine raises ICP.",
        "Spravato USPI: do not give if an ICP rise poses a serious risk (clinical.md §3)",
        "Miller's Anesthesia: should not receive; ASRA 2018: avoid (clinical.md §3)",
    ),
    # Spravato USPI: psychosis - assess, start only if benefit outweighs risk; ACEP absolute
    _Rule(
        "psychosis_current",
        ("psychosis_current",),
        "psychosis_current",
        lambda f: f.psychosis_current is True,
        "Current psychosis: ketamine can worsen psychotic symptoms.",
        "Spravato USPI: assess; start only if benefit outweighs risk (clinical.md §3)",
        "ACEP 2011 absolute (schizophrenia); Miller's contraindication; APA relative "
        "(clinical.md §3)",
    ),
    # APA consensus [R]: history of psychosis is a relative contraindication
    _Rule(
        "psychosis_history",
        ("psychosis_history",),
        "psychosis_history",
        lambda f: f.psychosis_history is True,
        "History of psychosis: ketamine can transiently induce psychotic symptoms.",
        "Spravato USPI: assess psychosis risk (clinical.md §3)",
        "APA consensus (Sanacora 2017): relative [R] (clinical.md §1.6, §3)",
    ),
    # ELEKT-D excluded bipolar disorder (clinical.md §3)
    _Rule(
        "bipolar_or_mania",
        ("bipolar_or_mania",),
        "bipolar_or_mania",
        lambda f: f.bipolar_or_mania is True,
        "Bipolar disorder or history of mania: excluded from the pivotal trials; monitor for "
        "switch to mania.",
        "Trial exclusion criteria (clinical.md §3)",
        "ELEKT-D exclusion criteria (clinical.md §3)",
    ),
    # Spravato USPI: careful consideration with SUD; ASRA: no serial infusions if active
    _Rule(
        "substance_use_current",
        ("substance_use_disorder",),
        "substance_use_disorder",
        lambda f: f.substance_use_disorder == "current",
        "Current substance use disorder: abuse and misuse risk.",
        "Spravato USPI abuse and misuse warning (clinical.md §3)",
        "ASRA 2018: no serial infusions with active substance abuse (clinical.md §3)",
    ),
    # APA consensus [R]: past substance use disorder is a relative contraindication
    _Rule(
        "substance_use_past",
        ("substance_use_disorder",),
        "substance_use_disorder",
        lambda f: f.substance_use_disorder == "past",
        "Past substance use disorder: monitor for abuse and misuse.",
        "Spravato USPI abuse and misuse warning (clinical.md §3)",
        "APA consensus (Sanacora 2017): relative [R] (clinical.md §1.6, §3)",
    ),
    # No source lists epilepsy as a formal contraindication [?] (clinical.md §3)
    _Rule(
        "seizure_disorder",
        ("seizure_disorder",),
        "seizure_disorder",
        lambda f: f.seizure_disorder is True,
        "Seizure disorder: seizure-like movements can occur; no source makes it a formal "
        "contraindication.",
        "clinical.md §3 (no source lists epilepsy as a contraindication [?])",
        "Ketalar label: seizure-like movements (clinical.md §3) [?]",
    ),
    # Spravato USPI: Child-Pugh B higher exposure, longer monitoring (clinical.md §2.2)
    _Rule(
        "hepatic_child_pugh_b",
        ("hepatic_impairment",),
        "hepatic_impairment",
        lambda f: f.hepatic_impairment == "child_pugh_b",
        "Moderate hepatic impairment (Child-Pugh B): higher exposure; may need longer monitoring.",
        "Spravato USPI hepatic impairment (clinical.md §2.2)",
        "ASRA 2018: judicious use in moderate hepatic disease (clinical.md §3)",
    ),
    # Spravato USPI: Child-Pugh C not studied, not recommended; ASRA: avoid in severe
    _Rule(
        "hepatic_child_pugh_c",
        ("hepatic_impairment",),
        "hepatic_impairment",
        lambda f: f.hepatic_impairment == "child_pugh_c",
        "Severe hepatic impairment (Child-Pugh C): not studied / not recommended.",
        "Spravato USPI hepatic impairment: not recommended (clinical.md §2.2)",
        "ASRA 2018: avoid in severe hepatic disease (clinical.md §3)",
    ),
    # Spravato USPI drug interactions: CNS depressants -> more sedation
    _Rule(
        "benzodiazepines",
        ("medicines",),
        "medicines",
        _med("benzodiazepines"),
        "Takes benzodiazepines: more sedation; monitor closely.",
        _USPI_INTERACT,
        _KET_INTERACT,
    ),
    _Rule(
        "opioids",
        ("medicines",),
        "medicines",
        _med("opioids"),
        "Takes opioids: more sedation and respiratory depression; monitor closely.",
        _USPI_INTERACT,
        _KET_INTERACT,
    ),
    # Spravato USPI drug interactions: psychostimulants and MAOIs -> higher BP
    _Rule(
        "psychostimulants",
        ("medicines",),
        "medicines",
        _med("psychostimulants"),
        "Takes psychostimulants: blood pressure may rise more; monitor BP closely.",
        _USPI_INTERACT,
        _KET_INTERACT,
    ),
    _Rule(
        "maois",
        ("medicines",),
        "medicines",
        _med("maois"),
        "Takes an MAOI: blood pressure may rise more; monitor BP closely.",
        _USPI_INTERACT,
        _KET_INTERACT,
    ),
    # Spravato USPI TRD indication: >= 2 failed adequate oral antidepressant trials
    _Rule(
        "fewer_than_2_failed_trials",
        ("failed_antidepressant_trials",),
        "failed_antidepressant_trials",
        lambda f: (
            f.failed_antidepressant_trials is not None
            and f.failed_antidepressant_trials < 2
            and f.indication != "mdsi"
        ),
        "Fewer than 2 failed adequate antidepressant trials: does not meet the treatment-"
        "resistant depression definition.",
        "Spravato USPI Indications: TRD = inadequate response to >= 2 oral antidepressants "
        "(clinical.md §2.2)",
        "APA consensus: evidence strongest after failed adequate trials [R] (clinical.md §1.6)",
    ),
)

_RULES_BY_ID = {rule.rule_id: rule for rule in RULES}

_C, _W = Kind.CONTRAINDICATION, Kind.CAUTION

# Spravato USPI: label contraindications + age are locked hard stops; the rest are cautions.
ESKETAMINE_RULES: Mapping[str, Kind] = MappingProxyType(
    {rule.rule_id: _W for rule in RULES}
    | {
        "hypersensitivity": _C,
        "aneurysmal_vascular_disease_or_avm": _C,
        "intracerebral_haemorrhage_history": _C,
        "age_under_18": _C,
        "bp_severe": _C,  # session deferral, not a label contraindication
    }
)
ESKETAMINE_LOCKED = frozenset(
    {
        "hypersensitivity",
        "aneurysmal_vascular_disease_or_avm",
        "intracerebral_haemorrhage_history",
        "age_under_18",
    }
)

# Racemic ketamine defaults (clinical.md §3 table), editable by a clinic.  Conservative reading:
# where sources disagree (relative vs absolute), the default is the stricter kind.
KETAMINE_DEFAULT_RULES: Mapping[str, Kind] = MappingProxyType(
    {rule.rule_id: _W for rule in RULES}
    | {
        "hypersensitivity": _C,  # Ketalar label
        "uncontrolled_hypertension": _C,  # Ketalar label
        "aneurysmal_vascular_disease_or_avm": _C,  # Ketalar BP-hazard clause; Miller's
        "intracerebral_haemorrhage_history": _C,  # Ketalar BP-hazard clause
        "bp_severe": _C,  # session deferral
        "raised_intracranial_pressure": _C,  # Miller's "should not receive"; ASRA avoid
        "psychosis_current": _C,  # ACEP absolute; Miller's
        "substance_use_current": _C,  # ASRA: no serial infusions with active abuse
        "hepatic_child_pugh_c": _C,  # ASRA: avoid in severe hepatic disease
        "age_under_18": _C,  # adult evidence only
    }
)
KETAMINE_LOCKED = frozenset({"hypersensitivity", "uncontrolled_hypertension"})


# ---------------------------------------------------------------------------------------------
# assessment


@dataclass(frozen=True, slots=True)
class FiredFinding:
    rule_id: str
    kind: Kind
    message: str
    source: str


@dataclass(frozen=True, slots=True)
class Assessment:
    drug: str
    decision: Decision
    findings_fired: tuple[FiredFinding, ...]

    @property
    def contraindications(self) -> tuple[FiredFinding, ...]:
        return tuple(f for f in self.findings_fired if f.kind is Kind.CONTRAINDICATION)

    @property
    def cautions(self) -> tuple[FiredFinding, ...]:
        return tuple(f for f in self.findings_fired if f.kind is Kind.CAUTION)

    @property
    def can_override(self) -> bool:
        """True when a clinician may proceed by acknowledging the cautions (no hard stop)."""
        return self.decision is not Decision.NOT_ELIGIBLE

    @property
    def rule_ids(self) -> frozenset[str]:
        return frozenset(f.rule_id for f in self.findings_fired)


def _drug(drug: object) -> str:
    text = drug.strip().lower() if isinstance(drug, str) else ""
    if text in ("esketamine", "spravato"):
        return "esketamine"
    if text in ("ketamine", "racemic_ketamine", "racemic ketamine"):
        return "ketamine"
    raise ValueError(f"drug must be 'esketamine' or 'ketamine' (racemic, any route); got {drug!r}")


def _kind(value: object, rule_id: str) -> Kind:
    try:
        if not isinstance(value, str):
            raise ValueError
        return Kind(value.strip().lower())
    except ValueError:
        raise ValueError(
            f"rule {rule_id} must be 'contraindication', 'caution' or 'off'; got {value!r}"
        ) from None


_RANK = {Kind.OFF: 0, Kind.CAUTION: 1, Kind.CONTRAINDICATION: 2}


def _effective_rules(drug: str, rules: Mapping[str, object] | None) -> dict[str, Kind]:
    defaults = ESKETAMINE_RULES if drug == "esketamine" else KETAMINE_DEFAULT_RULES
    locked = ESKETAMINE_LOCKED if drug == "esketamine" else KETAMINE_LOCKED
    effective = dict(defaults)
    for rule_id, value in (rules or {}).items():
        if rule_id not in _RULES_BY_ID:
            raise ValueError(
                f"unknown rule {rule_id!r}; known rules: {', '.join(sorted(_RULES_BY_ID))}"
            )
        kind = _kind(value, rule_id)
        if rule_id in locked and kind is not Kind.CONTRAINDICATION:
            raise ValueError(
                f"rule {rule_id} is a label contraindication for {drug} and cannot be changed"
            )
        if drug == "esketamine" and _RANK[kind] < _RANK[defaults[rule_id]]:
            raise ValueError(
                f"esketamine follows its label: rule {rule_id} can be made stricter, not weaker"
            )
        effective[rule_id] = kind
    return effective


_GROUP_LABELS = {
    "age": "Age not recorded",
    "blood_pressure": "Blood pressure not recorded",
    "pregnancy": "Pregnancy status not assessed in a patient who could be pregnant",
}


def _pregnancy_relevant(f: Findings) -> bool:
    if f.can_become_pregnant is not None:
        return f.can_become_pregnant
    return f.sex != "male"


def _not_assessed(f: Findings, effective: Mapping[str, Kind], drug: str) -> list[FiredFinding]:
    """Cautions for findings left as None that would change the decision."""
    groups: dict[str, str] = {}
    for rule in RULES:
        kind = effective[rule.rule_id]
        if kind is Kind.OFF:
            continue
        missing = any(getattr(f, name) is None for name in rule.inputs)
        if not missing:
            continue
        matters = kind is Kind.CONTRAINDICATION or rule.group == "blood_pressure"
        if rule.group == "pregnancy":
            matters = _pregnancy_relevant(f)
        if matters and rule.group not in groups:
            groups[rule.group] = (
                rule.source_esketamine if drug == "esketamine" else rule.source_ketamine
            )
    out = []
    for group, source in groups.items():
        label = _GROUP_LABELS.get(group, f"{group.replace('_', ' ').capitalize()} not assessed")
        out.append(
            FiredFinding(
                f"{group}_not_assessed",
                Kind.CAUTION,
                f"{label}: screen before treatment (an unassessed item is not a pass).",
                source,
            )
        )
    return out


def assess(
    drug: str, findings: Findings, rules: Mapping[str, Kind | str] | None = None
) -> Assessment:
    """Screen ``findings`` for ``drug`` ("esketamine" or "ketamine").

    ``rules`` (optional) maps rule ids to "contraindication" / "caution" / "off" and is merged
    over the drug's defaults.  Fired findings are listed contraindications first.
    """
    which = _drug(drug)
    if not isinstance(findings, Findings):
        raise ValueError("findings must be a Findings record")
    effective = _effective_rules(which, rules)
    fired: list[FiredFinding] = []
    for rule in RULES:
        kind = effective[rule.rule_id]
        if kind is Kind.OFF or not rule.fires(findings):
            continue
        # the severe-BP hard stop already covers the milder BP caution
        if rule.rule_id == "bp_elevated" and effective["bp_severe"] is not Kind.OFF:
            if _bp_severe(findings):
                continue
        source = rule.source_esketamine if which == "esketamine" else rule.source_ketamine
        fired.append(FiredFinding(rule.rule_id, kind, rule.message, source))
    fired += _not_assessed(findings, effective, which)
    fired.sort(key=lambda item: 0 if item.kind is Kind.CONTRAINDICATION else 1)
    if any(item.kind is Kind.CONTRAINDICATION for item in fired):
        decision = Decision.NOT_ELIGIBLE
    elif fired:
        decision = Decision.ELIGIBLE_WITH_CAUTIONS
    else:
        decision = Decision.ELIGIBLE
    return Assessment(drug=which, decision=decision, findings_fired=tuple(fired))
