"""Application ids: exact integers (a JSON integer or a plain ASCII decimal string), range-checked, never rounded."""

from __future__ import annotations

import logging
import re
from typing import Any

from applicant_api.fields import MAX_INT

logger = logging.getLogger(__name__)

MIN_ID = 1
MAX_ID = MAX_INT                                # the applicant store's BIGINT limit
# A string id: plain ASCII decimal (no sign, spaces, '_', other scripts' digits, leading zero), at most 18 digits so
# that every string the pattern allows is in range (larger ids are sent as JSON integers). The pattern is ECMA-262
# for the OpenAPI document; the server matches it in full.
ID_PATTERN = "^[1-9][0-9]{0,17}$"
_ID_STRING = re.compile("[1-9][0-9]{0,17}")


def check_id(value: Any) -> str | None:
    """None when ``value`` is a usable id (or absent), else the reason it is not."""
    kind = type(value)
    if value is None or (kind is int and MIN_ID <= value <= MAX_ID):
        return None
    if kind is int:
        return f"must be between {MIN_ID} and {MAX_ID}"
    if kind is str:
        if _ID_STRING.fullmatch(value):
            return None
        return ("must be an integer, or a string of 1 to 18 ASCII decimal digits without a leading zero "
                "(send larger ids as JSON integers)")
    if kind is bool:
        return "must be an integer, got a boolean"
    if kind is float:
        return "must be an integer written without a decimal point or exponent"
    return f"must be an integer or a string of ASCII decimal digits, got {kind.__name__}"
