"""Dose arithmetic for IV racemic ketamine and esketamine nasal spray.

Pure functions: no Django, no I/O.  All doses, volumes and rates are ``Decimal``.
Inputs may be ``int``, ``float`` (converted through ``str`` so 70.1 stays 70.1) or ``Decimal``;
``bool``, ``str``, NaN and infinities are refused with ``ValueError``.

Rounding (all ROUND_HALF_UP):
- body weights (IBW, adjusted weight, dosing weight) and BMI: 0.1 kg / 0.1 kg/m^2;
- dose: 0.1 mg; volume: 0.01 mL; pump rates: 0.01 mL/h and 0.01 mg/h.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum

Number = int | float | Decimal

__all__ = [
    "ABSOLUTE_MAX_IV_MG_PER_KG",
    "DoseCheck",
    "DoseCheckStatus",
    "ESKETAMINE_DEVICE_MG",
    "InfusionPlan",
    "MAX_INFUSION_CONCENTRATION_MG_PER_ML",
    "Number",
    "REASON_REQUIRED_ABOVE_MG_PER_KG",
    "Sex",
    "WeightBasis",
    "adjusted_body_weight",
    "body_mass_index",
    "check_iv_dose",
    "dosing_weight",
    "esketamine_devices",
    "ideal_body_weight",
    "iv_infusion",
    "to_decimal",
]

TENTH = Decimal("0.1")
HUNDREDTH = Decimal("0.01")

MIN_WEIGHT_KG = Decimal(0)  # exclusive
MAX_WEIGHT_KG = Decimal(400)  # inclusive
MIN_HEIGHT_CM = Decimal(100)  # inclusive
MAX_HEIGHT_CM = Decimal(250)  # inclusive

# Devine 1974 IBW: base weight at 5 ft (152.4 cm), +2.3 kg per inch (2.54 cm) above 5 ft.
DEVINE_BASE_KG = {"male": Decimal(50), "female": Decimal("45.5")}
DEVINE_BASE_HEIGHT_CM = Decimal("152.4")
CM_PER_INCH = Decimal("2.54")
DEVINE_KG_PER_INCH = Decimal("2.3")
# Adjusted body weight = IBW + 0.4 x (actual - IBW) (conventional 0.4 correction factor).
ABW_FACTOR = Decimal("0.4")

# clinical.md §1.1/§1.2: 0.5 mg/kg over 40 min is the reference regimen; §9.3: require a
# prescriber co-sign (documented reason) above 0.5 mg/kg.
REASON_REQUIRED_ABOVE_MG_PER_KG = Decimal("0.5")
# Absolute sanity ceiling for one IV session (input-error guard, not a clinical maximum):
# clinical.md §1.2 says no authoritative cap exists; research used up to 1.0 mg/kg (Fava 2018)
# and the ASRA CRPS 4-h regimen totals 1.4 mg/kg (§1.7).  2.0 mg/kg is above every
# subanaesthetic regimen in the reference, so a larger figure is almost certainly a unit error.
ABSOLUTE_MAX_IV_MG_PER_KG = Decimal("2.0")
# Ketalar label (clinical.md §1.1): 100 mg/mL must not be given IV undiluted; the label dilution
# is an equal volume, so an infused solution stronger than 50 mg/mL is refused.
MAX_INFUSION_CONCENTRATION_MG_PER_ML = Decimal(50)
MAX_INFUSION_MINUTES = Decimal(24 * 60)

# Spravato USPI §2.1/§16: one device delivers 28 mg; kits are 56 mg (2) and 84 mg (3)
# (clinical.md §2.1).
ESKETAMINE_DEVICE_MG = 28
ESKETAMINE_MAX_DEVICES = 3


# ---------------------------------------------------------------------------------------------
# input helpers (shared with the other clinical modules)


def to_decimal(value: object, name: str) -> Decimal:
    """Convert an int, float (via ``str``) or Decimal to a finite Decimal, else ValueError."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise ValueError(f"{name} must be a number; got {value!r}")
    try:
        result = value if isinstance(value, Decimal) else Decimal(str(value))
    except InvalidOperation as exc:  # pragma: no cover - str(int/float) always parses
        raise ValueError(f"{name} must be a number; got {value!r}") from exc
    if not result.is_finite():
        raise ValueError(f"{name} must be a finite number; got {value!r}")
    return result


def _fmt(value: Decimal) -> str:
    """Human form of a Decimal: no exponent, no trailing zeros ('3', '70.1', '-3')."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _round(value: Decimal, step: Decimal) -> Decimal:
    return value.quantize(step, rounding=ROUND_HALF_UP)


def _weight(value: object, name: str = "weight") -> Decimal:
    kg = to_decimal(value, name)
    if not MIN_WEIGHT_KG < kg <= MAX_WEIGHT_KG:
        raise ValueError(
            f"{name} must be more than 0 kg and at most {_fmt(MAX_WEIGHT_KG)} kg; got {_fmt(kg)}"
        )
    return kg


def _height(value: object) -> Decimal:
    cm = to_decimal(value, "height")
    if not MIN_HEIGHT_CM <= cm <= MAX_HEIGHT_CM:
        raise ValueError(
            f"height must be between {_fmt(MIN_HEIGHT_CM)} cm and {_fmt(MAX_HEIGHT_CM)} cm; "
            f"got {_fmt(cm)}"
        )
    return cm


class Sex(StrEnum):
    """Sex assigned at birth, as used by the Devine ideal-body-weight formula."""

    FEMALE = "female"
    MALE = "male"


def _sex(value: object) -> str:
    text = value.strip().lower() if isinstance(value, str) else None
    if text not in DEVINE_BASE_KG:
        raise ValueError(
            "ideal body weight (Devine formula) needs sex assigned at birth as 'female' or "
            f"'male'; got {value!r}"
        )
    return text


# ---------------------------------------------------------------------------------------------
# body size


def ideal_body_weight(height_cm: Number, sex: str) -> Decimal:
    """Devine ideal body weight in kg, rounded to 0.1 kg (ROUND_HALF_UP).

    male 50 kg / female 45.5 kg + 2.3 kg per inch over 5 ft (152.4 cm).
    Below 152.4 cm the formula is applied linearly (it subtracts 2.3 kg per inch), which is
    the common convention and gives the lower, more conservative dosing weight.  Where the
    linear formula gives 0 kg or less (very short females near 100 cm) there is no meaningful
    IBW and ValueError is raised.  Height must be 100-250 cm.
    """
    cm = _height(height_cm)
    sex_key = _sex(sex)
    # Devine 1974 (clinical.md §1.3 IBW/ABW basis): 50/45.5 kg + 2.3 kg per inch over 60 in
    inches_over_5ft = (cm - DEVINE_BASE_HEIGHT_CM) / CM_PER_INCH
    ibw = _round(DEVINE_BASE_KG[sex_key] + DEVINE_KG_PER_INCH * inches_over_5ft, TENTH)
    if ibw <= 0:
        raise ValueError(
            f"the Devine formula gives no meaningful ideal body weight for a {sex_key} of "
            f"{_fmt(cm)} cm (result {_fmt(ibw)} kg); dose on actual body weight instead"
        )
    return ibw


def adjusted_body_weight(actual_kg: Number, height_cm: Number, sex: str) -> Decimal:
    """Adjusted body weight = IBW + 0.4 x (actual - IBW), rounded to 0.1 kg.

    Adjusted weight only applies when actual weight exceeds IBW; when actual <= IBW the actual
    weight (rounded to 0.1 kg) is returned, so the result never exceeds actual weight.
    IBW is the displayed (0.1 kg-rounded) value so the result can be reproduced by hand.
    """
    actual = _weight(actual_kg, "actual weight")
    ibw = ideal_body_weight(height_cm, sex)
    if actual <= ibw:
        return _round(actual, TENTH)
    # ABW convention (clinical.md §1.3): IBW + 0.4 x (actual - IBW)
    return _round(ibw + ABW_FACTOR * (actual - ibw), TENTH)


def body_mass_index(weight_kg: Number, height_cm: Number) -> Decimal:
    """BMI in kg/m^2 = weight / height(m)^2, rounded to 0.1 (ROUND_HALF_UP)."""
    kg = _weight(weight_kg)
    metres = _height(height_cm) / 100
    # WHO BMI definition (clinical.md §1.3 stores BMI): kg / m^2
    return _round(kg / (metres * metres), TENTH)


class WeightBasis(StrEnum):
    """Which weight a mg/kg dose is calculated on (clinical.md §1.3: store the basis)."""

    ACTUAL = "actual"
    IDEAL = "ideal"
    ADJUSTED = "adjusted"


def dosing_weight(
    basis: WeightBasis | str,
    actual_kg: Number,
    height_cm: Number | None = None,
    sex: str | None = None,
) -> Decimal:
    """Weight in kg (0.1 kg) to multiply a mg/kg dose by, for the prescriber-chosen basis.

    - actual: the measured weight (height and sex not needed);
    - ideal: Devine IBW, but never more than actual weight (the usual "IBW or actual, whichever
      is less" convention; a lean patient is not dosed on a weight they do not have);
    - adjusted: ``adjusted_body_weight`` (actual weight when actual <= IBW).
    """
    try:
        chosen = WeightBasis(basis.strip().lower() if isinstance(basis, str) else basis)
    except ValueError:
        valid = ", ".join(b.value for b in WeightBasis)
        raise ValueError(f"weight basis must be one of {valid}; got {basis!r}") from None
    actual = _weight(actual_kg, "actual weight")
    if chosen is WeightBasis.ACTUAL:
        # Trials dose on actual body weight (clinical.md §1.3)
        return _round(actual, TENTH)
    if height_cm is None or sex is None:
        raise ValueError(f"a dose on {chosen.value} body weight needs the height and sex")
    if chosen is WeightBasis.IDEAL:
        # clinical.md §1.3: IBW basis for obesity is clinic protocol [R][?]; capped at actual
        return min(ideal_body_weight(height_cm, sex), _round(actual, TENTH))
    return adjusted_body_weight(actual_kg, height_cm, sex)


# ---------------------------------------------------------------------------------------------
# IV infusion


@dataclass(frozen=True, slots=True)
class InfusionPlan:
    """Pump settings for one IV ketamine infusion.

    ``dose_mg`` is rounded to 0.1 mg; ``volume_ml`` = rounded dose / concentration, rounded to
    0.01 mL (the volume to be infused); ``rate_ml_per_h`` is computed from that rounded volume so
    that rate x duration equals the volume programmed into the pump; ``rate_mg_per_h`` is computed
    from the rounded dose.  Both rates are rounded to 0.01.
    """

    dose_mg: Decimal
    volume_ml: Decimal
    rate_ml_per_h: Decimal
    rate_mg_per_h: Decimal
    minutes: Decimal
    concentration_mg_per_ml: Decimal


def _positive_mg_per_kg(value: object, name: str = "dose") -> Decimal:
    mg_per_kg = to_decimal(value, name)
    if not 0 < mg_per_kg <= ABSOLUTE_MAX_IV_MG_PER_KG:
        raise ValueError(
            f"{name} must be more than 0 mg/kg and at most {_fmt(ABSOLUTE_MAX_IV_MG_PER_KG)} "
            f"mg/kg (a larger figure is above any subanaesthetic ketamine regimen and is "
            f"probably a unit error); got {_fmt(mg_per_kg)}"
        )
    return mg_per_kg


def iv_infusion(
    weight_kg: Number,
    mg_per_kg: Number,
    minutes: Number,
    concentration_mg_per_ml: Number,
) -> InfusionPlan:
    """Dose, volume and pump rate for a weight-based IV ketamine infusion.

    70 kg x 0.5 mg/kg = 35 mg; 35 mg / 10 mg/mL = 3.5 mL; 3.5 mL / 40 min x 60 = 5.25 mL/h.
    ``weight_kg`` is the dosing weight (see ``dosing_weight``).
    """
    kg = _weight(weight_kg)
    dose_per_kg = _positive_mg_per_kg(mg_per_kg)
    duration = to_decimal(minutes, "infusion time")
    if not 0 < duration <= MAX_INFUSION_MINUTES:
        raise ValueError(
            "infusion time must be more than 0 minutes and at most 1440 minutes (24 h); "
            f"got {_fmt(duration)}"
        )
    conc = to_decimal(concentration_mg_per_ml, "concentration")
    if not 0 < conc <= MAX_INFUSION_CONCENTRATION_MG_PER_ML:
        raise ValueError(
            "concentration must be more than 0 mg/mL and at most 50 mg/mL (Ketalar label: "
            "100 mg/mL must be diluted with an equal volume before IV use); "
            f"got {_fmt(conc)}"
        )
    # clinical.md §1.1: dose = mg/kg x kg; rate = dose / duration
    dose = _round(kg * dose_per_kg, TENTH)
    volume = _round(dose / conc, HUNDREDTH)
    rate_ml = _round(volume * 60 / duration, HUNDREDTH)
    rate_mg = _round(dose * 60 / duration, HUNDREDTH)
    if dose <= 0 or volume <= 0:
        raise ValueError(
            f"{_fmt(kg)} kg x {_fmt(dose_per_kg)} mg/kg at {_fmt(conc)} mg/mL rounds to no "
            "measurable dose or volume; check the figures"
        )
    return InfusionPlan(
        dose_mg=dose,
        volume_ml=volume,
        rate_ml_per_h=rate_ml,
        rate_mg_per_h=rate_mg,
        minutes=duration,
        concentration_mg_per_ml=conc,
    )


# ---------------------------------------------------------------------------------------------
# esketamine


def esketamine_devices(dose_mg: Number) -> int:
    """Number of 28 mg Spravato devices for a dose: 28 -> 1, 56 -> 2, 84 -> 3.

    Any other dose (0, 27, 29, 112, 42.5, ...) is a ValueError.  28 mg alone is a valid device
    count (non-US elderly start, clinical.md §2.2); whether 28 mg is an allowed *US dose* is
    checked by ``protocols.validate``.
    """
    mg = to_decimal(dose_mg, "esketamine dose")
    # Spravato USPI §2.1: 28 mg per device, 56 mg = 2 devices, 84 mg = 3 (clinical.md §2.1)
    devices, remainder = divmod(mg, ESKETAMINE_DEVICE_MG)
    if remainder != 0 or not 1 <= devices <= ESKETAMINE_MAX_DEVICES:
        raise ValueError(
            "esketamine dose must be 28, 56 or 84 mg (one to three 28 mg devices); "
            f"got {_fmt(mg)} mg"
        )
    return int(devices)


# ---------------------------------------------------------------------------------------------
# IV dose check


class DoseCheckStatus(StrEnum):
    OK = "ok"
    REASON_REQUIRED = "reason_required"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class DoseCheck:
    """Outcome of ``check_iv_dose``.

    - ``status`` OK: may be given (``reason_required`` tells whether a reason was needed and is
      being recorded);
    - ``status`` REASON_REQUIRED: above 0.5 mg/kg and no prescriber reason given yet;
    - ``status`` REFUSED: above the clinic maximum; no reason can unlock it (change the order
      or the clinic's signed maximum).
    """

    status: DoseCheckStatus
    mg_per_kg: Decimal
    clinic_max_mg_per_kg: Decimal
    reason_required: bool
    message: str
    source: str

    @property
    def ok(self) -> bool:
        return self.status is DoseCheckStatus.OK

    @property
    def refused(self) -> bool:
        return self.status is DoseCheckStatus.REFUSED

    @property
    def needs_reason(self) -> bool:
        """True while a required prescriber reason is still missing."""
        return self.status is DoseCheckStatus.REASON_REQUIRED


_DOSE_SOURCE = (
    "clinical.md §1.2 (no authoritative cap; clinic max is a prescriber-signed setting) and "
    "§9.3 (prescriber co-sign above 0.5 mg/kg)"
)


def check_iv_dose(
    mg_per_kg: Number,
    clinic_max_mg_per_kg: Number,
    prescriber_reason: str | None = None,
) -> DoseCheck:
    """Check an IV ketamine mg/kg order against the 0.5 mg/kg co-sign rule and the clinic max.

    Design: clinical outcomes are returned as a ``DoseCheck`` (never raised):
    <= 0.5 mg/kg -> OK; above 0.5 mg/kg -> REASON_REQUIRED unless a non-blank prescriber reason
    is given (then OK with ``reason_required`` True); above the clinic maximum -> REFUSED
    whatever the reason.  Only malformed input (dose <= 0 or a clinic maximum outside
    0-2 mg/kg) raises ValueError.
    """
    dose = to_decimal(mg_per_kg, "dose")
    if dose <= 0:
        raise ValueError(f"dose must be more than 0 mg/kg; got {_fmt(dose)}")
    clinic_max = _positive_mg_per_kg(clinic_max_mg_per_kg, "clinic maximum dose")
    reason = prescriber_reason.strip() if isinstance(prescriber_reason, str) else ""
    above_standard = dose > REASON_REQUIRED_ABOVE_MG_PER_KG
    # clinical.md §1.2/§9.3: configurable prescriber-signed maximum; refuse above it
    if dose > clinic_max:
        return DoseCheck(
            status=DoseCheckStatus.REFUSED,
            mg_per_kg=dose,
            clinic_max_mg_per_kg=clinic_max,
            reason_required=above_standard,
            message=(
                f"{_fmt(dose)} mg/kg is above this clinic's maximum of {_fmt(clinic_max)} mg/kg "
                "and cannot be given"
            ),
            source=_DOSE_SOURCE,
        )
    # clinical.md §9.3: a prescriber reason (co-sign) is needed above 0.5 mg/kg
    if above_standard and not reason:
        return DoseCheck(
            status=DoseCheckStatus.REASON_REQUIRED,
            mg_per_kg=dose,
            clinic_max_mg_per_kg=clinic_max,
            reason_required=True,
            message=(
                f"{_fmt(dose)} mg/kg is above the standard 0.5 mg/kg; the prescriber must "
                "record a reason"
            ),
            source=_DOSE_SOURCE,
        )
    message = (
        f"{_fmt(dose)} mg/kg is above 0.5 mg/kg; prescriber reason recorded"
        if above_standard
        else f"{_fmt(dose)} mg/kg is within the standard dose"
    )
    return DoseCheck(
        status=DoseCheckStatus.OK,
        mg_per_kg=dose,
        clinic_max_mg_per_kg=clinic_max,
        reason_required=above_standard,
        message=message,
        source=_DOSE_SOURCE,
    )
