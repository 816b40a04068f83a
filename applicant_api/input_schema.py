"""JSON Schemas of posted fields: exactly the values credit_core.fields accepts, text forms included.

The OpenAPI document promises what the server takes, both ways: a value the
schema allows is cleaned without error, a value it refuses gets a 400. So the
text forms ("15000", " 12.39%", " 36 months", "10+ years", "Dec-2014") have
patterns that encode the field's range too (a string has no ``minimum``), and
every pattern is ASCII, like the cleaner. Two rules relate two fields and have
no JSON Schema form; the document states them in prose (CROSS_FIELD_RULES).
"""

from __future__ import annotations

import logging
import math
from typing import Any

from credit_core.fields import FIELDS, MAX_EXACT_FLOAT, MAX_INT, MAX_TEXT, MIN_INT, MONTHS, Field

logger = logging.getLogger(__name__)

WS = "[ \\t\\n\\r\\f\\v]*"          # fields.ASCII_SPACE: the whitespace trimmed around a value
BLANK = f"^{WS}$"                   # an empty or blank string counts as missing
CROSS_FIELD_RULES = ("funded_amnt <= loan_amnt", "sub_grade starts with the grade's letter (B3 for grade B)")


def _ci(word: str) -> str:
    """A case-insensitive ASCII pattern for ``word`` (JSON Schema patterns have no flags)."""
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in word)


def digits_at_most(limit: int) -> str:
    """A pattern for decimal digit strings without leading zeros whose value is 1..limit."""
    text = str(limit)
    n = len(text)
    alternatives = [f"[1-9][0-9]{{0,{n - 2}}}"] if n > 1 else []
    for i, digit in enumerate(text):
        low = 1 if i == 0 else 0
        if int(digit) > low:
            alternatives.append(f"{text[:i]}[{low}-{int(digit) - 1}]" + (f"[0-9]{{{n - i - 1}}}" if n - i - 1 else ""))
    alternatives.append(text)
    return "(?:" + "|".join(alternatives) + ")"


def integer_text_pattern(lo: int, hi: int) -> str:
    """Text fields.parse_int accepts for lo..hi when lo is 0 or 1 (no sign: these fields are not signed)."""
    if lo not in (0, 1):
        raise ValueError(f"only ranges starting at 0 or 1 have a text pattern, got {lo}")
    body = digits_at_most(hi) if lo == 1 else f"(?:0|{digits_at_most(hi)})"
    return f"^{WS}0*{body}{WS}$"


def _power_of_ten(value: float) -> int:
    k = round(math.log10(value))
    if value <= 0 or 10.0**k != value:
        raise ValueError(f"a text pattern needs a power of ten as maximum, got {value!r}")
    return k


def decimal_text_pattern(field: Field) -> str:
    """Text fields.parse_float accepts for ``field``: plain decimal, no sign, within the field's range."""
    if field.minimum != 0 or field.maximum is None:
        raise ValueError(f"{field.name}: a text pattern needs minimum 0 and a maximum")
    k = _power_of_ten(field.maximum)
    fraction = "(?:\\.[0-9]*)?"
    if field.exclusive_minimum:            # > 0: some digit is not zero
        below = [f"0*[1-9][0-9]{{0,{k - 1}}}{fraction}", "0*\\.[0-9]*[1-9][0-9]*"]
    else:
        below = [f"0*[0-9]{{1,{k}}}{fraction}", "\\.[0-9]+"]
    if not field.exclusive_maximum:
        below.append(f"0*10{{{k}}}(?:\\.0*)?")
    number = "(?:" + "|".join(below) + ")"
    suffix = f"(?:%{WS})?" if field.kind == "percent" else ""
    return f"^{WS}{number}{WS}{suffix}$"


_MONTH_NAMES = "|".join(_ci(m) for m in MONTHS)
MONTH_TEXT_PATTERN = f"^{WS}(?:(?:{_MONTH_NAMES})-[0-9]{{4}}|[0-9]{{4}}-(?:0[1-9]|1[0-2])(?:-[0-9]{{2}})?){WS}$"
TERM_TEXT_PATTERN = f"^{WS}0*(?:36|60){WS}(?:{_ci('month')}[sS]?)?{WS}$"
EMP_LENGTH_TEXT_PATTERN = (f"^{WS}(?:(?:<{WS}1|0*(?:[0-9]|10)){WS}\\+?{WS}{_ci('year')}[sS]?|[nN]/[aA]){WS}$")
GRADE_TEXT_PATTERN = f"^{WS}[A-Ga-g]{WS}$"
SUB_GRADE_TEXT_PATTERN = f"^{WS}[A-Ga-g][1-5]{WS}$"


def number_range(field: Field) -> dict[str, Any]:
    """The JSON Schema bounds of a numeric field (minimum/maximum, exclusive where the field says so)."""
    out: dict[str, Any] = {}
    if field.minimum is not None:
        out["exclusiveMinimum" if field.exclusive_minimum else "minimum"] = field.minimum
    if field.maximum is not None:
        out["exclusiveMaximum" if field.exclusive_maximum else "maximum"] = field.maximum
    return out


def _int_bounds(field: Field) -> tuple[int, int]:
    lo = MIN_INT if field.minimum is None else max(MIN_INT, math.ceil(field.minimum))
    hi = MAX_INT if field.maximum is None else min(MAX_INT, math.floor(field.maximum))
    return lo, hi


def field_input_schema(field: Field) -> dict[str, Any]:
    """The schema of one posted field: the canonical JSON value or a text form, or missing when allowed."""
    kind = field.kind
    if kind == "int":
        lo, hi = _int_bounds(field)
        options = [{"type": "integer", "minimum": lo, "maximum": hi,
                    "description": f"a JSON integer (a whole JSON float only up to {MAX_EXACT_FLOAT}: beyond, "
                                   "floats are not exact) or its ASCII decimal text"},
                   {"type": "string", "pattern": integer_text_pattern(lo, hi)}]
    elif kind in ("float", "percent"):
        options = [{"type": "number", **number_range(field)},
                   {"type": "string", "pattern": decimal_text_pattern(field)}]
    elif kind == "term":
        options = [{"enum": [36, 60]}, {"type": "string", "pattern": TERM_TEXT_PATTERN}]
    elif kind == "emp_length":
        options = [{"type": "integer", "minimum": 0, "maximum": 10},
                   {"type": "string", "pattern": EMP_LENGTH_TEXT_PATTERN}]
    elif kind == "grade":
        options = [{"type": "string", "pattern": GRADE_TEXT_PATTERN}]
    elif kind == "sub_grade":
        options = [{"type": "string", "pattern": SUB_GRADE_TEXT_PATTERN}]
    elif kind == "month":
        options = [{"type": "string", "pattern": MONTH_TEXT_PATTERN}]
    elif kind == "text":
        options = [{"type": "string", "maxLength": MAX_TEXT}, {"type": "number"}]
    else:
        raise AssertionError(f"unknown field kind {kind!r}")
    if not field.required or field.default is not None:
        options += [{"type": "null"}, {"type": "string", "pattern": BLANK}]
    return options[0] if len(options) == 1 else {"anyOf": options}


def applicant_input_schema() -> dict[str, Any]:
    """The posted application object."""
    return {
        "type": "object",
        "description": ("A new application. Values may be canonical JSON (12.39, 36) or the LendingClub export "
                        "text forms (\" 12.39%\", \" 36 months\", \"10+ years\", \"Dec-2014\"), in ASCII digits, "
                        "with ASCII whitespace around them. Unknown keys are ignored. Null, empty and blank strings "
                        "count as missing. Rules between fields: " + "; ".join(CROSS_FIELD_RULES) + "."),
        "properties": {
            **{f.name: field_input_schema(f) for f in FIELDS},
            "source": {"type": "string", "pattern": "^[A-Za-z0-9_.:\\-]{1,64}$", "default": "api"},
        },
        "required": [f.name for f in FIELDS if f.required and f.default is None],
        "x-cross-field-rules": list(CROSS_FIELD_RULES),
    }
