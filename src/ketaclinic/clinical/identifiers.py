"""Format and check-digit rules for identifiers the clinic records.

Pure functions: each returns a normalised value or raises ValueError that says what is wrong.
"""

from __future__ import annotations

import re

# DEA registration number: two letters then seven digits; the seventh digit is a check digit.
# Source: DEA Diversion Control, registration number format (21 CFR 1301; public check-digit rule).
_DEA_RE = re.compile(r"^[A-Z][A-Z9][0-9]{7}$")

# ICD-10-CM code: letter, digit, letter-or-digit, then optionally a dot and 1-4 more characters.
# Source: CDC/NCHS ICD-10-CM Official Guidelines, code structure (3-7 characters).
_ICD10CM_RE = re.compile(r"^[A-Z][0-9][0-9A-Z](\.[0-9A-Z]{1,4})?$")


def dea_number(value: str) -> str:
    """The DEA number upper-cased; ValueError if its form or check digit is wrong."""
    number = value.strip().upper()
    if not _DEA_RE.match(number):
        raise ValueError(
            f"A DEA number is 2 letters followed by 7 digits, for example AB1234563; got {value!r}."
        )
    digits = [int(c) for c in number[2:]]
    total = digits[0] + digits[2] + digits[4] + 2 * (digits[1] + digits[3] + digits[5])
    if total % 10 != digits[6]:
        raise ValueError(
            f"{number} fails the DEA check digit: the last digit should be {total % 10}. "
            "Check the number against the registration certificate."
        )
    return number


def icd10cm_code(value: str) -> str:
    """Return an ICD-10-CM code in canonical form (upper case, dot after 3 characters)."""
    code = value.strip().upper()
    if len(code) > 3 and "." not in code:
        code = code[:3] + "." + code[3:]
    if not _ICD10CM_RE.match(code):
        raise ValueError(
            f"{value!r} is not an ICD-10-CM code: use a letter, two characters, then optionally "
            "a dot and up to 4 more, for example F33.2 or F32.A."
        )
    return code


def luhn_check_digit(digits: str) -> int:
    """The Luhn (mod 10) check digit for a string of digits: catches any single-digit typo."""
    if not digits.isdigit():
        raise ValueError(f"Luhn check digit needs digits only; got {digits!r}")
    total = 0
    for position, char in enumerate(reversed(digits)):
        d = int(char)
        if position % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return (10 - total % 10) % 10


def medical_record_number(sequence: int) -> str:
    """The MRN for a clinic's n-th patient: 7 digits and a Luhn check digit (e.g. 00000018)."""
    if sequence < 1 or sequence > 9_999_999:
        raise ValueError(f"MRN sequence must be between 1 and 9,999,999; got {sequence}")
    body = f"{sequence:07d}"
    return body + str(luhn_check_digit(body))
