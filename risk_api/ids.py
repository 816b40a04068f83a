"""Application ids: exact integers (a JSON integer or a plain ASCII decimal string), range-checked, never rounded."""

from __future__ import annotations

import logging
import re
from decimal import Decimal
from typing import Any

from credit_core.fields import MAX_INT

logger = logging.getLogger(__name__)

MIN_ID = 1
MAX_ID = MAX_INT                                # the applicant store's BIGINT limit
# A string id: plain ASCII decimal (no sign, spaces, '_', other scripts' digits, leading zero), at most 18 digits so
# that every string the pattern allows is in range (larger ids are sent as JSON integers). The pattern is ECMA-262
# for the OpenAPI document; the server matches it in full.
ID_PATTERN = "^[1-9][0-9]{0,17}$"
_ID_STRING = re.compile("[1-9][0-9]{0,17}")


def parse_id(value: Any) -> tuple[int | str | None, str | None]:
    """(the id to echo, None) for a usable id or none at all; (None, the reason) otherwise.

    A JSON number with a fraction part or exponent reaches here as a Decimal (risk_api.body.exact_ids: read from
    the text, never through a float) and is accepted when it is a whole number in range ("7.0" -> 7); a float
    (from a Python caller) is refused, as it may already be rounded.
    """
    kind = type(value)
    if value is None or (kind is int and MIN_ID <= value <= MAX_ID):
        return value, None
    if kind is int:
        return None, f"must be between {MIN_ID} and {MAX_ID}"
    if kind is str:
        if _ID_STRING.fullmatch(value):
            return value, None
        return None, ("must be an integer, or a string of 1 to 18 ASCII decimal digits without a leading zero "
                      "(send larger ids as JSON integers)")
    if kind is Decimal:
        if not value.is_finite() or value != value.to_integral_value():
            return None, "must be a whole number"
        if not MIN_ID <= value <= MAX_ID:
            return None, f"must be between {MIN_ID} and {MAX_ID}"
        return int(value), None
    if kind is bool:
        return None, "must be an integer, got a boolean"
    if kind is float:
        return None, "must be an integer (a float may have been rounded)"
    return None, f"must be an integer or a string of ASCII decimal digits, got {kind.__name__}"
