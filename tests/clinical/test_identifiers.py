from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ketaclinic.clinical import identifiers


@pytest.mark.parametrize("number", ["BK1234563", "bm7654329", " AB1234563 "])
def test_valid_dea_numbers_pass_and_are_upper_cased(number: str) -> None:
    assert identifiers.dea_number(number) == number.strip().upper()


@pytest.mark.parametrize(
    ("number", "problem"),
    [
        ("BK1234564", "check digit"),
        ("B1234563", "2 letters"),
        ("BK123456", "2 letters"),
        ("1K1234563", "2 letters"),
        ("BK12345X3", "2 letters"),
    ],
)
def test_bad_dea_numbers_say_what_is_wrong(number: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        identifiers.dea_number(number)


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("F33.2", "F33.2"),
        ("f332", "F33.2"),
        ("F32.A", "F32.A"),
        ("G90.511", "G90.511"),
        ("M79.7", "M79.7"),
        ("F43.10", "F43.10"),
        ("Z00", "Z00"),
        ("S72.001A", "S72.001A"),
    ],
)
def test_icd10cm_codes_are_canonicalised(raw: str, canonical: str) -> None:
    assert identifiers.icd10cm_code(raw) == canonical


@pytest.mark.parametrize("raw", ["XYZ", "F3", "33.2", "F33.21234", "F33..2", "", "F-33"])
def test_malformed_icd10cm_codes_are_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="ICD-10-CM"):
        identifiers.icd10cm_code(raw)


def test_mrn_has_luhn_check_digit() -> None:
    # Luhn of 0000001: double the rightmost digit 1 -> 2; (10 - 2) % 10 = 8.
    assert identifiers.medical_record_number(1) == "00000018"
    with pytest.raises(ValueError):
        identifiers.medical_record_number(0)


@given(
    st.integers(min_value=1, max_value=9_999_999),
    st.integers(min_value=0, max_value=7),
    st.integers(min_value=1, max_value=9),
)
def test_luhn_catches_every_single_digit_typo(sequence: int, position: int, bump: int) -> None:
    mrn = identifiers.medical_record_number(sequence)
    typo = mrn[:position] + str((int(mrn[position]) + bump) % 10) + mrn[position + 1 :]
    assert identifiers.luhn_check_digit(typo[:-1]) != int(typo[-1])
