from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ketaclinic.clinical.dosing import (
    DoseCheckStatus,
    WeightBasis,
    adjusted_body_weight,
    body_mass_index,
    check_iv_dose,
    dosing_weight,
    esketamine_devices,
    ideal_body_weight,
    iv_infusion,
)

D = Decimal


# --- ideal body weight ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("height", "sex", "expected"),
    [
        # 152.4 cm = 5 ft exactly: base weight only
        (152.4, "male", D("50.0")),
        (152.4, "female", D("45.5")),
        # 180 cm: (180 - 152.4) / 2.54 = 10.866 in; 50 + 2.3 x 10.866 = 74.99 -> 75.0
        (180, "male", D("75.0")),
        # 165 cm: 12.6 / 2.54 = 4.961 in; 45.5 + 11.409 = 56.909 -> 56.9
        (165, "female", D("56.9")),
        # 6 ft = 182.88 cm = 12 in over: 50 + 27.6 = 77.6
        (D("182.88"), "male", D("77.6")),
        # below 5 ft the formula is applied linearly: 150 cm = -0.945 in;
        # 45.5 - 2.173 = 43.327 -> 43.3
        (150, "female", D("43.3")),
        # 100 cm (lowest allowed): 52.4 / 2.54 = 20.63 in; 50 - 47.45 = 2.55 -> 2.6 (HALF_UP)
        (100, "male", D("2.6")),
        # 250 cm (highest allowed): 97.6 / 2.54 = 38.425 in; 50 + 88.378 = 138.378 -> 138.4
        (250, "male", D("138.4")),
    ],
)
def test_ibw_devine(height: object, sex: str, expected: Decimal) -> None:
    assert ideal_body_weight(height, sex) == expected  # type: ignore[arg-type]


def test_ibw_accepts_int_float_decimal_and_case() -> None:
    assert ideal_body_weight(180, "MALE ") == ideal_body_weight(180.0, "male")
    assert ideal_body_weight(D("180"), "male") == D("75.0")
    # float goes through str: 165.1 stays 165.1 (12.7 cm = 5 in -> 45.5 + 11.5 = 57.0)
    assert ideal_body_weight(165.1, "female") == D("57.0")


@pytest.mark.parametrize("height", [99.9, 99, 250.1, 251, 0, -170])
def test_ibw_height_out_of_range(height: float) -> None:
    with pytest.raises(ValueError, match="height must be between 100 cm and 250 cm"):
        ideal_body_weight(height, "male")


@pytest.mark.parametrize("sex", ["other", "", "m", "f", None, 1])
def test_ibw_needs_female_or_male(sex: object) -> None:
    with pytest.raises(ValueError, match="'female' or 'male'"):
        ideal_body_weight(170, sex)  # type: ignore[arg-type]


def test_ibw_not_meaningful_for_very_short_female() -> None:
    # 100 cm female: 45.5 - 47.45 = -1.95 kg -> no meaningful IBW
    with pytest.raises(ValueError, match="no meaningful ideal body weight"):
        ideal_body_weight(100, "female")


@pytest.mark.parametrize("bad", [True, "170", float("nan"), float("inf"), D("NaN")])
def test_ibw_rejects_non_numbers(bad: object) -> None:
    with pytest.raises(ValueError):
        ideal_body_weight(bad, "male")  # type: ignore[arg-type]


@given(
    st.decimals(min_value=110, max_value=249, places=1),
    st.decimals(min_value=D("0.1"), max_value=1, places=1),
    st.sampled_from(["male", "female"]),
)
def test_ibw_monotone_in_height(height: Decimal, step: Decimal, sex: str) -> None:
    assert ideal_body_weight(height, sex) <= ideal_body_weight(height + step, sex)


@given(st.decimals(min_value=110, max_value=250, places=1))
def test_ibw_male_exceeds_female_by_4_5(height: Decimal) -> None:
    diff = ideal_body_weight(height, "male") - ideal_body_weight(height, "female")
    assert abs(diff - D("4.5")) <= D("0.1")


# --- adjusted body weight / BMI ---------------------------------------------------------------


def test_adjusted_body_weight() -> None:
    # IBW(180, male) = 75.0; 75.0 + 0.4 x (100 - 75.0) = 85.0
    assert adjusted_body_weight(100, 180, "male") == D("85.0")
    # IBW(165, female) = 56.9; 56.9 + 0.4 x (120 - 56.9) = 56.9 + 25.24 = 82.14 -> 82.1
    assert adjusted_body_weight(120, 165, "female") == D("82.1")
    # 90.5 kg, 152.4 cm male: 50 + 0.4 x 40.5 = 66.2
    assert adjusted_body_weight(90.5, 152.4, "male") == D("66.2")


def test_adjusted_body_weight_returns_actual_when_not_above_ibw() -> None:
    assert adjusted_body_weight(60, 180, "male") == D("60.0")  # 60 < IBW 75.0
    assert adjusted_body_weight(75, 180, "male") == D("75.0")  # equal to IBW


@pytest.mark.parametrize("weight", [0, -3, 400.1, 1000])
def test_adjusted_body_weight_rejects_bad_weight(weight: float) -> None:
    with pytest.raises(ValueError, match="more than 0 kg and at most 400 kg"):
        adjusted_body_weight(weight, 170, "male")


def test_weight_error_message_is_readable() -> None:
    with pytest.raises(ValueError) as err:
        body_mass_index(-3, 170)
    assert str(err.value) == "weight must be more than 0 kg and at most 400 kg; got -3"


@given(
    st.decimals(min_value=1, max_value=400, places=1),
    st.decimals(min_value=140, max_value=220, places=1),
    st.sampled_from(["male", "female"]),
)
def test_adjusted_between_ibw_and_actual(actual: Decimal, height: Decimal, sex: str) -> None:
    ibw = ideal_body_weight(height, sex)
    abw = adjusted_body_weight(actual, height, sex)
    assert abw <= actual
    if actual > ibw:
        assert ibw <= abw


def test_bmi() -> None:
    # 70 / 1.75^2 = 70 / 3.0625 = 22.857 -> 22.9
    assert body_mass_index(70, 175) == D("22.9")
    # 120 / 1.6^2 = 46.875 -> 46.9 (HALF_UP)
    assert body_mass_index(120, 160) == D("46.9")
    # 400 kg at 250 cm: 400 / 6.25 = 64.0 (both boundaries allowed)
    assert body_mass_index(400, 250) == D("64.0")
    with pytest.raises(ValueError, match="height"):
        body_mass_index(70, 99)


# --- weight basis -----------------------------------------------------------------------------


def test_dosing_weight_bases() -> None:
    assert dosing_weight(WeightBasis.ACTUAL, 100) == D("100.0")
    assert dosing_weight("actual", 100.04) == D("100.0")
    assert dosing_weight(WeightBasis.IDEAL, 100, 180, "male") == D("75.0")
    assert dosing_weight("adjusted", 100, 180, "male") == D("85.0")
    # ideal basis never exceeds actual weight
    assert dosing_weight(WeightBasis.IDEAL, 60, 180, "male") == D("60.0")


def test_dosing_weight_errors() -> None:
    with pytest.raises(ValueError, match="weight basis must be one of actual, ideal, adjusted"):
        dosing_weight("lean", 80, 170, "male")
    with pytest.raises(ValueError, match="needs the height and sex"):
        dosing_weight(WeightBasis.IDEAL, 80)


# --- IV infusion ------------------------------------------------------------------------------


def test_iv_infusion_hand_worked() -> None:
    # 70 kg x 0.5 mg/kg = 35 mg; 35 / 10 mg/mL = 3.5 mL; 3.5 mL / 40 min x 60 = 5.25 mL/h;
    # 35 mg / 40 min x 60 = 52.5 mg/h
    plan = iv_infusion(70, 0.5, 40, 10)
    assert plan.dose_mg == D("35")
    assert plan.volume_ml == D("3.5")
    assert plan.rate_ml_per_h == D("5.25")
    assert plan.rate_mg_per_h == D("52.5")


def test_iv_infusion_reference_1_mg_per_ml() -> None:
    # clinical.md §1.1: 70 kg, 35 mg over 40 min at 1 mg/mL = 52.5 mL/h
    plan = iv_infusion(70, 0.5, 40, 1)
    assert (plan.volume_ml, plan.rate_ml_per_h) == (D("35"), D("52.5"))


def test_iv_infusion_rounding() -> None:
    # 83.3 kg x 0.75 = 62.475 -> 62.5 mg; 62.5 / 3 = 20.8333 -> 20.83 mL;
    # rate from the rounded volume: 20.83 x 60 / 45 = 27.7733 -> 27.77 mL/h;
    # 62.5 x 60 / 45 = 83.333 -> 83.33 mg/h
    plan = iv_infusion(83.3, 0.75, 45, 3)
    assert plan.dose_mg == D("62.5")
    assert plan.volume_ml == D("20.83")
    assert plan.rate_ml_per_h == D("27.77")
    assert plan.rate_mg_per_h == D("83.33")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0, 0.5, 40, 10), "weight must be more than 0 kg"),
        ((400.1, 0.5, 40, 10), "at most 400 kg"),
        ((70, 0, 40, 10), "more than 0 mg/kg"),
        ((70, -0.5, 40, 10), "more than 0 mg/kg"),
        ((70, 2.1, 40, 10), "at most 2 mg/kg"),
        ((70, 0.5, 0, 10), "infusion time must be more than 0 minutes"),
        ((70, 0.5, 1441, 10), "at most 1440 minutes"),
        ((70, 0.5, 40, 0), "concentration must be more than 0 mg/mL"),
        ((70, 0.5, 40, 100), "100 mg/mL must be diluted"),
    ],
)
def test_iv_infusion_refuses_bad_input(args: tuple[float, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        iv_infusion(*args)


def test_iv_infusion_boundaries_allowed() -> None:
    assert iv_infusion(400, 2.0, 1440, 50).dose_mg == D("800")
    assert iv_infusion(1, D("0.1"), 1, D("0.1")).dose_mg == D("0.1")


@settings(max_examples=200)
@given(
    st.decimals(min_value=30, max_value=200, places=1),
    st.decimals(min_value=D("0.1"), max_value=2, places=2),
    st.integers(min_value=10, max_value=240),
    st.sampled_from([D("0.5"), D(1), D(2), D(5), D(10), D(50)]),
)
def test_iv_infusion_volume_times_concentration_is_dose(
    weight: Decimal, mg_per_kg: Decimal, minutes: int, conc: Decimal
) -> None:
    plan = iv_infusion(weight, mg_per_kg, minutes, conc)
    # volume rounded to 0.01 mL -> error at most 0.005 mL x concentration
    assert abs(plan.volume_ml * conc - plan.dose_mg) <= D("0.005") * conc
    # dose rounded to 0.1 mg
    assert abs(plan.dose_mg - weight * mg_per_kg) <= D("0.05")
    # rate x duration reproduces the programmed volume within the 0.01 mL/h rounding
    # Half a rounding step of the rate over the whole infusion (plus Decimal context slack).
    assert abs(plan.rate_ml_per_h * minutes / 60 - plan.volume_ml) <= D("0.005") * minutes / 60 + D(
        "1e-9"
    )


# --- esketamine devices -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dose", "devices"), [(28, 1), (56, 2), (84, 3), (D("56.0"), 2), (84.0, 3)]
)
def test_esketamine_devices(dose: object, devices: int) -> None:
    assert esketamine_devices(dose) == devices  # type: ignore[arg-type]


@pytest.mark.parametrize("dose", [0, 27, 29, 55, 57, 83, 85, 112, -28, 42.5, D("56.1")])
def test_esketamine_devices_rejects(dose: object) -> None:
    with pytest.raises(ValueError, match="must be 28, 56 or 84 mg"):
        esketamine_devices(dose)  # type: ignore[arg-type]


# --- IV dose check ----------------------------------------------------------------------------


def test_check_iv_dose_standard() -> None:
    result = check_iv_dose(0.5, 1.0)  # exactly 0.5 mg/kg: no reason needed
    assert result.ok and not result.reason_required and not result.refused
    assert result.status is DoseCheckStatus.OK


def test_check_iv_dose_above_half_needs_reason() -> None:
    result = check_iv_dose(0.51, 1.0)
    assert result.status == "reason_required"
    assert result.needs_reason and not result.ok and not result.refused
    blank = check_iv_dose(0.51, 1.0, "   ")
    assert blank.needs_reason
    given_reason = check_iv_dose(0.75, 1.0, "partial response at 0.5 mg/kg x 4")
    assert given_reason.ok and given_reason.reason_required


def test_check_iv_dose_clinic_max() -> None:
    assert check_iv_dose(0.75, 0.75, "reason").ok  # equal to the maximum is allowed
    refused = check_iv_dose(0.76, 0.75, "reason")
    assert refused.refused and not refused.ok
    assert "maximum of 0.75 mg/kg" in refused.message
    # a clinic maximum below 0.5 refuses even standard doses
    assert check_iv_dose(0.5, 0.4).refused


@pytest.mark.parametrize(
    ("dose", "clinic_max", "message"),
    [
        (0, 1.0, "dose must be more than 0 mg/kg"),
        (-0.5, 1.0, "dose must be more than 0 mg/kg"),
        (0.5, 0, "clinic maximum dose must be more than 0"),
        (0.5, 2.5, "clinic maximum dose must be more than 0 mg/kg and at most 2 mg/kg"),
    ],
)
def test_check_iv_dose_bad_input(dose: float, clinic_max: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_iv_dose(dose, clinic_max)
