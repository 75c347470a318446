from pathlib import Path

import pytest

from finance_app.accounts.identifiers import (
    USCC_ALPHABET, normalise_email, validate_country, validate_credit_code, validate_customs_code,
)
from finance_app.errors import ValidationFailed

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "uscc"
CODES = (SHARED / "valid_uscc_sample_from_python-stdnum_tests.txt").read_text().split()


def test_the_sample_has_all_143_codes():
    assert len(CODES) == 143


@pytest.mark.parametrize("code", CODES)
def test_every_real_credit_code_is_accepted(code):
    assert validate_credit_code(code) == code


@pytest.mark.parametrize("code", CODES)
def test_changing_the_last_character_is_refused_naming_the_field(code):
    replacement = next(c for c in USCC_ALPHABET if c != code[-1])
    with pytest.raises(ValidationFailed) as caught:
        validate_credit_code(code[:-1] + replacement)
    assert caught.value.field == "credit_code"
    assert "check character" in caught.value.message


def test_letter_in_first_position_is_allowed_by_gb32100():
    # python-stdnum refuses these; GB 32100 allows letters for the registration authority
    # (e.g. "N" farmers' cooperatives, "Y" other authorities) and the category.
    from stdnum.cn import uscc
    for prefix in ("N2", "Y1", "A1", "G3"):
        body = prefix + "440400MA0000012"
        code = body + uscc.calc_check_digit(body)
        assert not uscc.is_valid(code)
        assert validate_credit_code(code) == code


@pytest.mark.parametrize("bad, words", [
    ("", "Enter"), ("91110000600037341", "18 characters"), ("91110000600037341I", "does not use"),
    ("9111AB00600037341L", "administrative division"), ("01110000600037341L", "cannot be 0"),
])
def test_malformed_codes_say_what_is_wrong(bad, words):
    with pytest.raises(ValidationFailed) as caught:
        validate_credit_code(bad)
    assert words in caught.value.message and caught.value.field == "credit_code"


def test_lowercase_and_spaces_are_normalised():
    assert validate_credit_code(" 91110000600037341l ") == "91110000600037341L"


def test_customs_code_is_ten_characters():
    assert validate_customs_code("4404960011") == "4404960011"
    assert validate_customs_code("") is None
    with pytest.raises(ValidationFailed) as caught:
        validate_customs_code("44049")
    assert caught.value.field == "customs_code"


def test_country_and_email():
    assert validate_country("pt") == "PT"
    with pytest.raises(ValidationFailed):
        validate_country("XX")
    assert normalise_email("Buyer@Example.TEST") == "buyer@example.test"
    with pytest.raises(ValidationFailed) as caught:
        normalise_email("not-an-email")
    assert caught.value.field == "email"
