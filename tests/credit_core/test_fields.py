"""The application record: each cleaning rule and each validation rule of credit_core.fields."""

from __future__ import annotations

import math

import pytest

from credit_core.fields import (FIELDS_BY_NAME, FieldError, RecordError, clean_record, clean_value,
                                  fund_rate)


def good(**overrides):
    rec = {"id": "38098114", "member_id": "40860827", "loan_amnt": "15000", "funded_amnt": "15000",
           "term": " 60 months", "int_rate": " 12.39%", "grade": "C", "sub_grade": "C1",
           "emp_length": "10+ years", "annual_inc": "78000", "dti": "12.03", "issue_d": "Dec-2014",
           "revol_util": "29%", "bc_open_to_buy": "9525", "bc_util": "4.7",
           "total_il_high_credit_limit": "12000"}
    rec.update(overrides)
    return rec


def field_errors(raw):
    with pytest.raises(RecordError) as info:
        clean_record(raw)
    return {e.field: e.reason for e in info.value.errors}


@pytest.mark.parametrize("raw, expected", [
    (" 12.39%", 12.39), ("  6.99%", 6.99), ("29%", 29.0), (12.5, 12.5), ("100.9%", 100.9)])
def test_percent_strips_sign_and_spaces(raw, expected):
    assert clean_value(FIELDS_BY_NAME["revol_util"], raw) == expected


@pytest.mark.parametrize("raw, expected", [(" 36 months", 36), (" 60 months", 60), ("36", 36), (60, 60)])
def test_term_strips_months(raw, expected):
    assert clean_value(FIELDS_BY_NAME["term"], raw) == expected


@pytest.mark.parametrize("raw", [" 40 months", "36 weeks", "abc", 12])
def test_term_other_than_36_or_60_is_rejected(raw):
    with pytest.raises(FieldError, match="36 or 60"):
        clean_value(FIELDS_BY_NAME["term"], raw)


@pytest.mark.parametrize("raw, expected", [
    ("10+ years", 10), ("< 1 year", 0), ("1 year", 1), ("7 years", 7), ("n/a", None), ("", None), (3, 3)])
def test_emp_length(raw, expected):
    assert clean_value(FIELDS_BY_NAME["emp_length"], raw) == expected


@pytest.mark.parametrize("name", ["bc_open_to_buy", "bc_util", "total_il_high_credit_limit"])
@pytest.mark.parametrize("empty", ["", "  ", None])
def test_original_defaults_to_zero_when_empty(name, empty):
    assert clean_record(good(**{name: empty}))[name] == 0.0


@pytest.mark.parametrize("name", ["dti", "annual_inc"])
def test_letters_in_dti_or_income_are_rejected(name):
    errors = field_errors(good(**{name: "12a3"}))
    assert "letters" in errors[name]


@pytest.mark.parametrize("overrides, field, words", [
    ({"id": ""}, "id", "required"),
    ({"id": "-4"}, "id", "from 1 to 9223372036854775807"),
    ({"annual_inc": "0"}, "annual_inc", "> 0"),
    ({"annual_inc": "-5"}, "annual_inc", "> 0"),
    ({"dti": "-1"}, "dti", ">= 0"),
    ({"dti": "1000"}, "dti", "< 1000"),
    ({"loan_amnt": "0"}, "loan_amnt", "> 0"),
    ({"loan_amnt": "-100"}, "loan_amnt", "> 0"),
    ({"funded_amnt": "16000"}, "funded_amnt", "<= loan_amnt"),
    ({"grade": "H"}, "grade", "A-G"),
    ({"grade": ""}, "grade", "required"),
    ({"sub_grade": "B2"}, "sub_grade", "grade C"),
    ({"int_rate": "nan"}, "int_rate", "finite"),
    ({"loan_amnt": True}, "loan_amnt", "boolean"),
    ({"loan_amnt": [1]}, "loan_amnt", "number"),
    ({"issue_d": "Foo-2014"}, "issue_d", "month"),
])
def test_validation_rules(overrides, field, words):
    errors = field_errors(good(**overrides))
    assert field in errors and words in errors[field], errors


def test_every_bad_field_is_reported_at_once():
    errors = field_errors(good(dti="x1", grade="Z", term="12"))
    assert set(errors) == {"dti", "grade", "term"}


def test_not_an_object():
    errors = field_errors(["id", 1])
    assert "$" in errors


def test_clean_record_types_and_unknown_fields_dropped():
    rec = clean_record(good(url="https://example.invalid", total_pymnt="99"))
    assert rec["id"] == 38098114 and isinstance(rec["id"], int)
    assert rec["term"] == 60 and rec["int_rate"] == 12.39 and rec["issue_d"] == "2014-12"
    assert "url" not in rec and "total_pymnt" not in rec
    assert math.isclose(fund_rate(rec), 100.0)


def test_clean_record_is_idempotent():
    once = clean_record(good())
    assert clean_record(once) == once


def test_integers_beyond_bigint_are_rejected():
    errors = field_errors(good(id=str(2**63)))
    assert "from 1 to 9223372036854775807" in errors["id"]


def test_huge_integer_in_a_float_field_is_a_field_error():
    errors = field_errors(good(annual_inc=10**400))
    assert "finite" in errors["annual_inc"]
