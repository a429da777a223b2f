"""Controlled-substance arithmetic and record-keeping rules (Schedule III ketamine, esketamine).

Quantities are integers of one unit: the microgram (µg) of drug as labelled (ketamine base
equivalent per mL; esketamine 28 mg base per device). 1 mg = 1,000 µg; a 50 mg/mL vial of
10 mL holds 500,000 µg; 0.05 mL of it is 2,500 µg. Integers never round: the ledger reconciles
to the microgram. Pure functions: no Django, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import MAX_PREC, Decimal, InvalidOperation, localcontext

UG_PER_MG = 1000
# Measurable volume: syringes used for ketamine are graduated to 0.01 mL (1 mL syringes).
ML_PLACES = 2
MG_PLACES = 3  # 1 µg
# Sanity bounds on typed figures (not a regulation): no figure needs more than 13 digits
# before the point, and no single movement is over 10 kg of drug.
MAX_EXPONENT = 12
MAX_QUANTITY_UG = 10**10


def _decimal(value: object, what: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | str | Decimal | float):
        raise ValueError(f"{what} must be a number; got {_short(value)}.")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{what} must be a number; got {_short(value)}.") from None
    if not number.is_finite():
        raise ValueError(f"{what} must be a finite number; got {_short(value)}.")
    if number and number.adjusted() > MAX_EXPONENT:
        # Refused before any arithmetic: '1E+9999999999' would overflow the decimal context
        # and '1e999999' would become an integer of a million digits. (A tiny figure is
        # refused later, for its precision.)
        raise ValueError(f"{what} is out of range; got {_short(value)}.")
    return number


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 30 else text[:27] + "..."


def decimal_value(value: object, what: str) -> Decimal:
    """A finite number in a sane range as a Decimal; ValueError naming `what` otherwise."""
    return _decimal(value, what)


def decimal_places(number: Decimal) -> int:
    """Digits after the point that matter: Decimal('2.50') -> 1."""
    with localcontext(prec=MAX_PREC):  # exact, as in mg_to_ug
        return _places(number)


def _places(number: Decimal) -> int:
    exponent = number.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def mg_to_ug(mg: object, *, what: str = "Quantity") -> int:
    """A positive amount in mg as integer µg; refuses more precision than 1 µg."""
    # Exact arithmetic: the default 28-digit context would round '0.1000…0001' (31 digits)
    # to 0.1 inside normalize() and accept it as 100 µg.
    with localcontext(prec=MAX_PREC):
        return _mg_to_ug(mg, what)


def _mg_to_ug(mg: object, what: str) -> int:
    number = _decimal(mg, what)
    if number <= 0:
        raise ValueError(f"{what} must be more than 0 mg; got {number} mg.")
    if _places(number) > MG_PLACES:
        raise ValueError(
            f"{what} {number} mg has more precision than the ledger's unit (1 µg = 0.001 mg); "
            "round it to at most 3 decimal places."
        )
    ug = int(number * UG_PER_MG)
    if ug > MAX_QUANTITY_UG:
        raise ValueError(f"{what} {number} mg is more than the ledger takes in one entry.")
    return ug


def ml_to_ug(ml: object, concentration_mg_per_ml: object, *, what: str = "Volume") -> int:
    """A positive volume in mL of a solution as integer µg; mL to at most 0.01."""
    with localcontext(prec=MAX_PREC):  # exact, as in mg_to_ug
        return _ml_to_ug(ml, concentration_mg_per_ml, what)


def _ml_to_ug(ml: object, concentration_mg_per_ml: object, what: str) -> int:
    volume = _decimal(ml, what)
    concentration = _decimal(concentration_mg_per_ml, "Concentration")
    if volume <= 0:
        raise ValueError(f"{what} must be more than 0 mL; got {volume} mL.")
    if concentration <= 0:
        raise ValueError(f"Concentration must be more than 0 mg/mL; got {concentration}.")
    if _places(volume) > ML_PLACES:
        raise ValueError(
            f"{what} {volume} mL is finer than a syringe measures (0.01 mL); "
            "round it to 2 decimal places."
        )
    ug = volume * concentration * UG_PER_MG
    if ug != ug.to_integral_value():
        raise ValueError(f"{volume} mL at {concentration} mg/mL is not a whole number of µg.")
    if ug > MAX_QUANTITY_UG:
        raise ValueError(f"{what} {volume} mL is more than the ledger takes in one entry.")
    return int(ug)


def ug_to_mg(ug: int) -> Decimal:
    """500,000 µg -> Decimal('500') (never '5E+2': it is written onto records such as
    Form 41 with str()); 462,500 -> Decimal('462.5')."""
    mg = (Decimal(ug) / UG_PER_MG).normalize() if ug else Decimal(0)
    return mg.quantize(Decimal(1)) if mg == mg.to_integral_value() else mg


def ug_to_ml(ug: int, concentration_mg_per_ml: Decimal) -> Decimal:
    return (Decimal(ug) / UG_PER_MG / concentration_mg_per_ml).quantize(Decimal("0.001"))


def format_mg(ug: int) -> str:
    """'462.5 mg', '35 mg', '0.001 mg' (never scientific notation)."""
    return f"{ug_to_mg(ug):f} mg"


# --- replaying the ledger (used by `ketaclinic ledger verify` and the property tests) -------

DRAW = "draw"
ADMINISTRATION = "administration"
WASTE = "waste"


@dataclass(frozen=True)
class Movement:
    """One ledger entry reduced to what the arithmetic needs."""

    entry_id: int
    container_id: int
    lot_id: int
    delta_ug: int  # signed change to the container's balance
    kind: str = ""
    quantity_ug: int = 0
    draw_id: int | None = None  # administrations and syringe wastes name their draw
    voided: bool = False  # reversed by a later entry
    stated_container_balance: int | None = None
    stated_lot_balance: int | None = None


@dataclass
class Replay:
    container_balance: dict[int, int] = field(default_factory=dict)
    lot_balance: dict[int, int] = field(default_factory=dict)
    problems: list[tuple[int, str]] = field(default_factory=list)

    @property
    def first_problem(self) -> tuple[int, str] | None:
        return self.problems[0] if self.problems else None


def replay(movements: Iterable[Movement]) -> Replay:
    """Recompute every running balance and check the invariants, in ledger order.

    Invariants (21 CFR 1304.21: records current, complete and accurate): no container or lot
    balance below zero; each stored running balance equals the recomputed one; what is
    administered plus wasted from a syringe never exceeds what was drawn into it.
    """
    state = Replay()
    drawn: dict[int, int] = {}
    used: dict[int, int] = {}
    for m in movements:
        container = state.container_balance.get(m.container_id, 0) + m.delta_ug
        lot = state.lot_balance.get(m.lot_id, 0) + m.delta_ug
        state.container_balance[m.container_id] = container
        state.lot_balance[m.lot_id] = lot
        if container < 0:
            state.problems.append((m.entry_id, f"container balance below zero ({container} µg)"))
        if lot < 0:
            state.problems.append((m.entry_id, f"lot balance below zero ({lot} µg)"))
        if m.stated_container_balance is not None and m.stated_container_balance != container:
            state.problems.append(
                (
                    m.entry_id,
                    f"stored container balance "
                    f"{m.stated_container_balance} µg, recomputed {container} µg",
                )
            )
        if m.stated_lot_balance is not None and m.stated_lot_balance != lot:
            state.problems.append(
                (m.entry_id, f"stored lot balance {m.stated_lot_balance} µg, recomputed {lot} µg")
            )
        if m.voided:
            continue
        if m.kind == DRAW:
            drawn[m.entry_id] = m.quantity_ug
        elif m.kind in (ADMINISTRATION, WASTE) and m.draw_id is not None:
            used[m.draw_id] = used.get(m.draw_id, 0) + m.quantity_ug
            if used[m.draw_id] > drawn.get(m.draw_id, 0):
                state.problems.append(
                    (
                        m.entry_id,
                        (
                            f"administered plus wasted ({used[m.draw_id]} µg) exceeds what draw "
                            f"{m.draw_id} took ({drawn.get(m.draw_id, 0)} µg)"
                        ),
                    )
                )
    return state


# --- deadlines ------------------------------------------------------------------------------


def next_business_day_end(discovered: datetime, holidays: Sequence[date] = ()) -> date:
    """Theft or significant loss: written notice to the DEA Field Division within one
    business day of discovery (21 CFR 1301.76(b), as amended by 88 FR 40707). Weekends and
    the given holidays are not business days."""
    day = discovered.date() + timedelta(days=1)
    while day.weekday() >= 5 or day in holidays:
        day += timedelta(days=1)
    return day


def form_106_due(discovered: datetime) -> date:
    """DEA Form 106 filed electronically within 45 days of discovery (88 FR 40707)."""
    return discovered.date() + timedelta(days=45)


def next_inventory_due(last_inventory: date, *, annual: bool = False) -> date:
    """Biennial inventory: within 2 years of the previous one (21 CFR 1304.11(c)); some states
    require annual (clinical.md §5.4, §5.9)."""
    years = 1 if annual else 2
    try:
        return last_inventory.replace(year=last_inventory.year + years)
    except ValueError:  # 29 February
        return last_inventory.replace(year=last_inventory.year + years, day=28)


def opened_container_may_be_estimated(units_in_container: int | None) -> bool:
    """Opened CIII-V containers may be estimated unless they hold more than 1,000 tablets or
    capsules (21 CFR 1304.11(e)(3), clinical.md §5.4). Liquids and sprays: None -> True."""
    return units_in_container is None or units_in_container <= 1000
