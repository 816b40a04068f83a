"""Schemathesis hooks for the applicant API run (SCHEMATHESIS_HOOKS): the two documented cross-field rules.

JSON Schema cannot relate two fields, so the OpenAPI document states
"funded_amnt <= loan_amnt" and "sub_grade within grade" in prose
(``x-cross-field-rules``). Generated bodies are made to follow them: values
that are each schema-valid are swapped or re-lettered, never made invalid, so
a negative case keeps its violation and every check runs unchanged.
"""

from __future__ import annotations

import logging

import schemathesis

from credit_core.fields import ASCII_SPACE, FIELDS_BY_NAME, FieldError, clean_value

logger = logging.getLogger(__name__)

PAGE = "/api/v1/applicants"


def _valid(name: str, value):
    """The cleaned value if ``value`` is a usable, present value of field ``name``, else None."""
    try:
        return clean_value(FIELDS_BY_NAME[name], value)
    except FieldError:
        return None


def follow_cross_field_rules(item: dict) -> dict:
    """``item`` with funded_amnt <= loan_amnt (by swapping them) and sub_grade's letter = grade, when both
    values of a rule are valid on their own (so an invalid value stays invalid); the rest as generated."""
    if not isinstance(item, dict):
        return item
    out = dict(item)
    loan, funded = _valid("loan_amnt", out.get("loan_amnt")), _valid("funded_amnt", out.get("funded_amnt"))
    if loan is not None and funded is not None and funded > loan:
        out["loan_amnt"], out["funded_amnt"] = out["funded_amnt"], out["loan_amnt"]
    grade, sub = out.get("grade"), out.get("sub_grade")
    if _valid("grade", grade) and _valid("sub_grade", sub):
        letter = grade.strip(ASCII_SPACE)[0]
        core = sub.strip(ASCII_SPACE)
        if len(core) == 2 and core[0].upper() != letter.upper():
            start = sub.index(core)
            out["sub_grade"] = sub[:start] + letter + core[1] + sub[start + 2:]
    return out


@schemathesis.hook
def map_case(context, case):
    if case.method.upper() == "POST" and case.path == PAGE:
        body = case.body
        if isinstance(body, list):
            case.body = [follow_cross_field_rules(item) for item in body]
        elif isinstance(body, dict):
            case.body = follow_cross_field_rules(body)
    return case
