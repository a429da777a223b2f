"""Rating-scale definitions and scoring (instruments.md is the source of every rule).

    from ketaclinic.clinical.instruments import get_instrument, list_instruments, score

    result = score("phq9", [1, 2, 0, 1, 3, 0, 0, 1, 1])       # answers in item order
    result = score("phq2", {"q1": 1, "q2": 1}, cutoff=2)       # or by item id, with options
    result.total, result.band, result.flags, result.complete, result.errors

Answers are a sequence in item order (trailing items may be left off) or a mapping of item id
to value; ``None`` means not answered or not asked; yes/no items take True/False. Invalid
answers never score: ``errors`` says which item and why, ``total`` is None.

Adding a scale: write one module defining its ``Instrument``s in an ``INSTRUMENTS`` tuple, and
list the module in ``_MODULES`` below.
"""

from __future__ import annotations

import re

from ketaclinic.clinical.instruments import (
    bprs,
    cadss,
    cssrs,
    gad7,
    hamd,
    madrs,
    pain,
    pcl5,
    phq,
    qids,
    recovery,
)
from ketaclinic.clinical.instruments.model import (
    PROVISIONAL_PTSD,
    SUICIDALITY,
    SUICIDALITY_UNKNOWN,
    Answer,
    Band,
    Instrument,
    Item,
    Option,
    ScoreResult,
    ScoringOption,
    Subscale,
)
from ketaclinic.clinical.instruments.scoring import score_instrument

__all__ = [
    "INSTRUMENT_CODES",
    "PROVISIONAL_PTSD",
    "SUICIDALITY",
    "SUICIDALITY_UNKNOWN",
    "Answer",
    "Band",
    "Instrument",
    "Item",
    "Option",
    "ScoreResult",
    "ScoringOption",
    "Subscale",
    "UnknownInstrumentError",
    "get_instrument",
    "list_instruments",
    "score",
]

_MODULES = (phq, gad7, qids, pcl5, cssrs, madrs, hamd, cadss, bprs, pain, recovery)

_REGISTRY: dict[str, Instrument] = {
    instrument.code: instrument for module in _MODULES for instrument in module.INSTRUMENTS
}
INSTRUMENT_CODES: tuple[str, ...] = tuple(_REGISTRY)
# Lenient look-up: "PHQ-9", "qids-sr16" and "QIDS_SR16" all name their instrument.
_BY_LOOSE_CODE = {re.sub(r"[^0-9a-z]", "", code): code for code in _REGISTRY}


class UnknownInstrumentError(KeyError, ValueError):
    """No instrument has this code (both a KeyError and a ValueError, for either idiom)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def get_instrument(code: str) -> Instrument:
    """The instrument with this code (e.g. "phq9"); raises UnknownInstrumentError otherwise."""
    if isinstance(code, str):
        found = _REGISTRY.get(code) or _REGISTRY.get(
            _BY_LOOSE_CODE.get(re.sub(r"[^0-9a-z]", "", code.lower()), "")
        )
        if found is not None:
            return found
    raise UnknownInstrumentError(
        f"Unknown instrument {code!r}; valid codes are: {', '.join(INSTRUMENT_CODES)}."
    )


def list_instruments() -> tuple[Instrument, ...]:
    """Every instrument, in a stable order (their codes are INSTRUMENT_CODES)."""
    return tuple(_REGISTRY.values())


def score(code: str | Instrument, answers: object, **options: object) -> ScoreResult:
    """Score one administration of an instrument.

    ``code`` is an instrument code or an ``Instrument`` (e.g. one with licensed wording from
    ``with_wording``; wording never changes scoring). ``options`` are the instrument's scoring
    options (e.g. ``cutoff=2`` for the PHQ-2, ``bands="consensus"`` for the HAM-D17); an
    unknown option or value raises ValueError. Answers that are not a list or a mapping raise
    TypeError; everything wrong with the answers themselves is reported in ``errors``.
    """
    instrument = code if isinstance(code, Instrument) else get_instrument(code)
    return score_instrument(instrument.configured(**options), answers)
