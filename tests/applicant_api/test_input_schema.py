"""The OpenAPI input schema of each field accepts exactly what the cleaner accepts (applicant_api.input_schema)."""

from __future__ import annotations

import re

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from credit_core.fields import FIELDS, MAX_EXACT_FLOAT, MAX_INT, FieldError, clean_value
from applicant_api.input_schema import digits_at_most, field_input_schema, integer_text_pattern

NAMES = [f.name for f in FIELDS]
BY_NAME = {f.name: f for f in FIELDS}
VALIDATORS = {f.name: jsonschema.Draft202012Validator(field_input_schema(f)) for f in FIELDS}
TEXT_PATTERNS = {f.name: [o["pattern"] for o in field_input_schema(f).get("anyOf", [field_input_schema(f)])
                          if "pattern" in o and o["pattern"] != "^[ \\t\\n\\r\\f\\v]*$"] for f in FIELDS}
# Characters the cleaner's text forms are made of, plus look-alikes it must refuse.
ALPHABET = st.sampled_from(list("0123456789.%+-<>/ \t\n abcdeghimnorstyADGJMNOSY_,e") + ["١", "２", "²", "\u00a0"])


def cleaner_accepts(name: str, value) -> bool:
    try:
        clean_value(BY_NAME[name], value)
    except FieldError:
        return False
    return True


def agree(name: str, value) -> None:
    assert VALIDATORS[name].is_valid(value) == cleaner_accepts(name, value), (name, value)


def test_digits_at_most_matches_exactly_the_numbers_up_to_the_limit():
    for limit in (1, 9, 10, 99, 100, 105, 2047, 5000):
        pattern = re.compile(digits_at_most(limit))
        assert [n for n in range(0, 6000) if pattern.fullmatch(str(n))] == list(range(1, limit + 1))
    bigint = re.compile(integer_text_pattern(1, MAX_INT))
    assert bigint.fullmatch(f" {MAX_INT}\t") and bigint.fullmatch("0009007199254740993")
    assert not bigint.fullmatch(str(MAX_INT + 1)) and not bigint.fullmatch("0")


@pytest.mark.parametrize("name", NAMES)
@given(data=st.data())
@settings(max_examples=150, deadline=None)
def test_every_text_the_pattern_allows_is_cleaned(name, data):
    for pattern in TEXT_PATTERNS[name]:
        value = data.draw(st.from_regex(pattern.removeprefix("^").removesuffix("$"), fullmatch=True))
        assert cleaner_accepts(name, value), (name, value)
        agree(name, value)


@pytest.mark.parametrize("name", NAMES)
@given(value=st.text(ALPHABET, max_size=12))
@settings(max_examples=300, deadline=None)
def test_schema_and_cleaner_agree_on_any_short_text(name, value):
    agree(name, value)


@pytest.mark.parametrize("name", NAMES)
@given(value=st.one_of(st.integers(-10, 10**20), st.floats(allow_nan=False, allow_infinity=False), st.booleans(),
                       st.none(), st.lists(st.integers(), max_size=1)))
@settings(max_examples=200, deadline=None)
def test_schema_and_cleaner_agree_on_json_values(name, value):
    # (NaN and Infinity are not JSON: the cleaner's own tests refuse them)
    if isinstance(value, float) and value.is_integer() and abs(value) > MAX_EXACT_FLOAT:
        return   # a whole float beyond 2**53 is a JSON Schema integer the cleaner refuses (documented)
    agree(name, value)
