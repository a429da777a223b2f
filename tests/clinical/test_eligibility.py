from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketaclinic.clinical.eligibility import (
    ESKETAMINE_RULES,
    KETAMINE_DEFAULT_RULES,
    Decision,
    Findings,
    Kind,
    Medicines,
    assess,
)

# Fully screened adult with nothing to report.
CLEAN = Findings(
    age_years=40,
    sex="female",
    pregnant=False,
    breastfeeding=False,
    systolic_bp=130,
    diastolic_bp=80,
    uncontrolled_hypertension=False,
    hypertensive_encephalopathy_history=False,
    heart_rate=80,
    aneurysmal_vascular_disease_or_avm=False,
    intracerebral_haemorrhage_history=False,
    raised_intracranial_pressure=False,
    psychosis_history=False,
    psychosis_current=False,
    bipolar_or_mania=False,
    substance_use_disorder="none",
    seizure_disorder=False,
    hepatic_impairment="none",
    hypersensitivity_to_ketamine_or_esketamine=False,
    medicines=Medicines(benzodiazepines=False, opioids=False, psychostimulants=False, maois=False),
    failed_antidepressant_trials=2,
)

DRUGS = ("esketamine", "ketamine")


@pytest.mark.parametrize("drug", DRUGS)
def test_clean_findings_are_eligible(drug: str) -> None:
    result = assess(drug, CLEAN)
    assert result.decision is Decision.ELIGIBLE
    assert result.findings_fired == ()
    assert result.can_override


@pytest.mark.parametrize(
    "change",
    [
        {"aneurysmal_vascular_disease_or_avm": True},
        {"intracerebral_haemorrhage_history": True},
        {"hypersensitivity_to_ketamine_or_esketamine": True},
        {"age_years": 17},
    ],
)
def test_esketamine_label_contraindications_are_hard_stops(change: dict[str, object]) -> None:
    result = assess("esketamine", replace(CLEAN, **change))  # type: ignore[arg-type]
    assert result.decision == "not_eligible"
    assert not result.can_override
    (fired,) = result.findings_fired
    assert fired.kind is Kind.CONTRAINDICATION
    assert "Spravato USPI" in fired.source


def test_esketamine_age_18_is_eligible() -> None:
    assert assess("esketamine", replace(CLEAN, age_years=18)).decision == "eligible"


@pytest.mark.parametrize(
    ("change", "rule_id"),
    [
        ({"pregnant": True}, "pregnant"),
        ({"breastfeeding": True}, "breastfeeding"),
        ({"uncontrolled_hypertension": True}, "uncontrolled_hypertension"),
        ({"psychosis_current": True}, "psychosis_current"),
        ({"psychosis_history": True}, "psychosis_history"),
        ({"substance_use_disorder": "current"}, "substance_use_current"),
        ({"substance_use_disorder": "past"}, "substance_use_past"),
        ({"seizure_disorder": True}, "seizure_disorder"),
        ({"hepatic_impairment": "child_pugh_b"}, "hepatic_child_pugh_b"),
        ({"hepatic_impairment": "child_pugh_c"}, "hepatic_child_pugh_c"),
        ({"raised_intracranial_pressure": True}, "raised_intracranial_pressure"),
        ({"bipolar_or_mania": True}, "bipolar_or_mania"),
        ({"failed_antidepressant_trials": 1}, "fewer_than_2_failed_trials"),
        ({"medicines": {"opioids"}}, "opioids"),
        ({"medicines": Medicines(maois=True)}, "maois"),
    ],
)
def test_esketamine_cautions(change: dict[str, object], rule_id: str) -> None:
    result = assess("esketamine", replace(CLEAN, **change))  # type: ignore[arg-type]
    assert result.decision is Decision.ELIGIBLE_WITH_CAUTIONS
    assert result.can_override
    assert rule_id in result.rule_ids
    assert all(f.kind is Kind.CAUTION for f in result.findings_fired)
    assert all(f.source and f.message for f in result.findings_fired)


def test_child_pugh_a_is_no_finding() -> None:
    assert assess("esketamine", replace(CLEAN, hepatic_impairment="child_pugh_a")).decision == (
        "eligible"
    )


def test_mdsi_indication_does_not_need_failed_trials() -> None:
    findings = replace(CLEAN, failed_antidepressant_trials=0, indication="mdsi")
    assert assess("esketamine", findings).decision is Decision.ELIGIBLE
    assert assess("esketamine", replace(findings, indication="trd")).decision is (
        Decision.ELIGIBLE_WITH_CAUTIONS
    )


@pytest.mark.parametrize(
    ("sbp", "dbp", "decision", "rule_id"),
    [
        (140, 90, Decision.ELIGIBLE, None),
        (141, 90, Decision.ELIGIBLE_WITH_CAUTIONS, "bp_elevated"),
        (140, 91, Decision.ELIGIBLE_WITH_CAUTIONS, "bp_elevated"),
        (179, 109, Decision.ELIGIBLE_WITH_CAUTIONS, "bp_elevated"),
        (180, 100, Decision.NOT_ELIGIBLE, "bp_severe"),
        (170, 110, Decision.NOT_ELIGIBLE, "bp_severe"),
    ],
)
@pytest.mark.parametrize("drug", DRUGS)
def test_blood_pressure_boundaries(
    drug: str, sbp: int, dbp: int, decision: Decision, rule_id: str | None
) -> None:
    result = assess(drug, replace(CLEAN, systolic_bp=sbp, diastolic_bp=dbp))
    assert result.decision is decision
    assert result.rule_ids == (frozenset({rule_id}) if rule_id else frozenset())


@pytest.mark.parametrize(("hr", "fires"), [(110, False), (111, True)])
def test_heart_rate(hr: int, fires: bool) -> None:
    assert (
        "heart_rate_high" in assess("ketamine", replace(CLEAN, heart_rate=hr)).rule_ids
    ) is fires


@pytest.mark.parametrize(
    "change",
    [
        {"hypersensitivity_to_ketamine_or_esketamine": True},
        {"uncontrolled_hypertension": True},
        {"psychosis_current": True},
        {"substance_use_disorder": "current"},
        {"raised_intracranial_pressure": True},
        {"hepatic_impairment": "child_pugh_c"},
        {"aneurysmal_vascular_disease_or_avm": True},
        {"age_years": 16},
    ],
)
def test_ketamine_default_contraindications(change: dict[str, object]) -> None:
    result = assess("ketamine", replace(CLEAN, **change))  # type: ignore[arg-type]
    assert result.decision is Decision.NOT_ELIGIBLE and not result.can_override


@pytest.mark.parametrize(
    "change",
    [
        {"psychosis_history": True},
        {"seizure_disorder": True},
        {"substance_use_disorder": "past"},
        {"pregnant": True},
        {"medicines": {"benzodiazepines": True}},
    ],
)
def test_ketamine_default_cautions(change: dict[str, object]) -> None:
    result = assess("ketamine", replace(CLEAN, **change))  # type: ignore[arg-type]
    assert result.decision is Decision.ELIGIBLE_WITH_CAUTIONS


def test_ketamine_rules_are_editable() -> None:
    psychotic = replace(CLEAN, psychosis_current=True)
    assert KETAMINE_DEFAULT_RULES["psychosis_current"] == "contraindication"
    relaxed = assess("ketamine", psychotic, rules={"psychosis_current": "caution"})
    assert relaxed.decision is Decision.ELIGIBLE_WITH_CAUTIONS
    # a full edited copy works too
    edited = {**KETAMINE_DEFAULT_RULES, "psychosis_current": Kind.CAUTION}
    assert assess("ketamine", psychotic, rules=edited).decision is Decision.ELIGIBLE_WITH_CAUTIONS
    stricter = assess("ketamine", replace(CLEAN, seizure_disorder=True), rules={
        "seizure_disorder": "contraindication"
    })  # fmt: skip
    assert stricter.decision is Decision.NOT_ELIGIBLE
    off = assess(
        "ketamine", replace(CLEAN, seizure_disorder=True), rules={"seizure_disorder": "off"}
    )
    assert off.decision is Decision.ELIGIBLE


def test_rule_edit_errors() -> None:
    with pytest.raises(ValueError, match="cannot be changed"):
        assess("ketamine", CLEAN, rules={"hypersensitivity": "caution"})
    with pytest.raises(ValueError, match="cannot be changed"):
        assess("esketamine", CLEAN, rules={"intracerebral_haemorrhage_history": "off"})
    with pytest.raises(ValueError, match="stricter, not weaker"):
        assess("esketamine", CLEAN, rules={"pregnant": "off"})
    with pytest.raises(ValueError, match="unknown rule"):
        assess("ketamine", CLEAN, rules={"psychosis": "caution"})
    with pytest.raises(ValueError, match="'contraindication', 'caution' or 'off'"):
        assess("ketamine", CLEAN, rules={"psychosis_current": "maybe"})
    # esketamine cautions can be made stricter
    strict = assess(
        "esketamine",
        replace(CLEAN, psychosis_current=True),
        rules={"psychosis_current": "contraindication"},
    )
    assert strict.decision is Decision.NOT_ELIGIBLE
    assert ESKETAMINE_RULES["psychosis_current"] == "caution"


def test_default_rule_sets_are_read_only() -> None:
    with pytest.raises(TypeError):
        KETAMINE_DEFAULT_RULES["seizure_disorder"] = Kind.OFF  # type: ignore[index]


# --- not assessed -----------------------------------------------------------------------------


def test_nothing_assessed_is_not_a_silent_pass() -> None:
    for drug in DRUGS:
        result = assess(drug, Findings())
        assert result.decision is Decision.ELIGIBLE_WITH_CAUTIONS
        assert {
            "blood_pressure_not_assessed",
            "pregnancy_not_assessed",
            "age_not_assessed",
            "hypersensitivity_not_assessed",
        } <= result.rule_ids
        assert all(f.kind is Kind.CAUTION for f in result.findings_fired)


def test_pregnancy_status_only_matters_if_pregnancy_possible() -> None:
    unknown = replace(CLEAN, pregnant=None)
    assert "pregnancy_not_assessed" in assess("esketamine", unknown).rule_ids
    assert assess("esketamine", replace(unknown, sex="male")).decision is Decision.ELIGIBLE
    no = replace(unknown, can_become_pregnant=False)
    assert assess("esketamine", no).decision is Decision.ELIGIBLE


def test_missing_bp_is_a_caution() -> None:
    result = assess("ketamine", replace(CLEAN, diastolic_bp=None))
    assert result.rule_ids == {"blood_pressure_not_assessed"}


def test_missing_ketamine_contraindication_input_is_a_caution() -> None:
    # psychosis_current is a ketamine contraindication but an esketamine caution
    findings = replace(CLEAN, psychosis_current=None)
    assert assess("ketamine", findings).rule_ids == {"psychosis_current_not_assessed"}
    assert assess("esketamine", findings).decision is Decision.ELIGIBLE


def test_contraindications_listed_first() -> None:
    result = assess(
        "esketamine", replace(CLEAN, pregnant=True, intracerebral_haemorrhage_history=True)
    )
    assert [f.kind for f in result.findings_fired] == [Kind.CONTRAINDICATION, Kind.CAUTION]
    assert len(result.contraindications) == 1 and len(result.cautions) == 1


# --- input validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"age_years": -1}, "age must be between 0 and 130"),
        ({"systolic_bp": 0}, "systolic blood pressure must be between 1 and 300"),
        ({"systolic_bp": 120, "diastolic_bp": 130}, "diastolic blood pressure must be lower"),
        ({"heart_rate": 400}, "heart rate"),
        ({"substance_use_disorder": "yes"}, "substance use disorder must be one of"),
        ({"hepatic_impairment": "severe"}, "hepatic impairment must be one of"),
        ({"pregnant": "no"}, "pregnant must be yes"),
        ({"failed_antidepressant_trials": -1}, "0 or more"),
        ({"medicines": {"ssri"}}, "unknown medicine"),
        ({"sex": "x"}, "sex must be one of"),
    ],
)
def test_findings_validation(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Findings(**kwargs)  # type: ignore[arg-type]


def test_drug_must_be_known() -> None:
    with pytest.raises(ValueError, match="'esketamine' or 'ketamine'"):
        assess("midazolam", CLEAN)
    assert assess("Spravato", CLEAN).drug == "esketamine"


def test_hepatic_spelling_is_normalised() -> None:
    assert Findings(hepatic_impairment="Child-Pugh C").hepatic_impairment == "child_pugh_c"


@given(
    st.booleans(),
    st.booleans(),
    st.booleans(),
    st.integers(90, 200),
    st.sampled_from(DRUGS),
)
def test_any_contraindication_blocks_override(
    avm: bool, ich: bool, allergy: bool, sbp: int, drug: str
) -> None:
    findings = replace(
        CLEAN,
        aneurysmal_vascular_disease_or_avm=avm,
        intracerebral_haemorrhage_history=ich,
        hypersensitivity_to_ketamine_or_esketamine=allergy,
        systolic_bp=sbp,
    )
    result = assess(drug, findings)
    hard = bool(result.contraindications)
    assert hard == (avm or ich or allergy or sbp >= 180)
    assert result.can_override is (not hard)
    assert (result.decision is Decision.NOT_ELIGIBLE) is hard
