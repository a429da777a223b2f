"""Search keys: names folded to plain lower-case letters and digits so a B-tree index serves
prefix search on both SQLite and PostgreSQL ("José" finds "jose", "O'Brien" finds "obrien")."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime

_NON_ALNUM = re.compile(r"[^a-z0-9]")


def name_key(value: str) -> str:
    decomposed = unicodedata.normalize("NFKD", value)
    ascii_only = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _NON_ALNUM.sub("", ascii_only.lower())


_KEY_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"


def prefix_upper_bound(prefix: str) -> str | None:
    """The smallest key greater than every key that starts with `prefix` (None: no bound).

    Range queries (key >= prefix AND key < bound) use the index on either database without
    LIKE, collation or operator-class tricks. Keys only hold [a-z0-9] and so does the bound:
    bump the last character within that alphabet, carrying past a trailing "z" ("lopez" ->
    "lopf"). A bound such as "lope{" would sort below "lopez" under linguistic collations
    (ICU, glibc en_US), which give punctuation no weight.
    """
    stem = prefix.rstrip("z")
    if not stem:
        return None
    return stem[:-1] + _KEY_ALPHABET[_KEY_ALPHABET.index(stem[-1]) + 1]


@dataclass(frozen=True)
class ParsedQuery:
    date_of_birth: date | None = None
    mrn: str | None = None
    name_tokens: tuple[str, ...] = ()


_HAND_ENTERED_MRN = re.compile(r"^(?=[A-Za-z0-9-]*[0-9])[A-Za-z0-9-]+$")
_DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y", "%m-%d-%Y", "%d.%m.%Y")


def parse_query(raw: str) -> ParsedQuery:
    text = raw.strip()
    for fmt in _DATE_FORMATS:
        try:
            return ParsedQuery(date_of_birth=datetime.strptime(text, fmt).date())  # noqa: DTZ007
        except ValueError:
            continue
    compact = text.replace("-", "").replace(" ", "")
    if compact.isdigit():
        return ParsedQuery(mrn=compact)
    if _HAND_ENTERED_MRN.match(text):
        # An MRN kept from another system (letters, digits and dashes, at least one digit).
        return ParsedQuery(mrn=text)
    tokens = tuple(t for t in (name_key(part) for part in re.split(r"[\s,]+", text)) if t)
    return ParsedQuery(name_tokens=tokens)
