"""The application record: every field the pipeline keeps, how a raw value is cleaned, and the rules it must pass.

One definition serves the CSV importer, the applicant API, the topology's
filter agent and the risk model, so a record means the same thing everywhere.
A cleaned record is a dict of JSON-friendly values:

- ``int`` / ``float`` fields are numbers; ``percent`` fields are numbers in
  percent (``" 12.39%"`` -> ``12.39``); ``term`` is months (``" 36 months"`` -> 36);
- ``emp_length`` is whole years 0..10 (``"< 1 year"`` -> 0, ``"10+ years"`` -> 10,
  ``"n/a"``/empty -> None);
- ``month`` fields are ``"YYYY-MM"`` (``"Dec-2014"`` -> ``"2014-12"``);
- text fields are stripped strings or None.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

GRADES = ("A", "B", "C", "D", "E", "F", "G")
TERMS = (36, 60)
MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1)}
MAX_TEXT = 255
MIN_INT = -2**63      # the BIGINT columns' range
MAX_INT = 2**63 - 1
MAX_EXACT_FLOAT = 2**53  # every integer up to here is exact as a float; beyond, a float may be a rounded integer
MAX_AMOUNT = 1e12        # money fields without a business limit: nothing real comes near, and DOUBLE stays exact to the cent
ASCII_SPACE = " \t\n\r\f\v"  # the only whitespace trimmed around values (str.strip() also removes Unicode spaces)


class FieldError(ValueError):
    """One field failed cleaning or validation."""

    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "reason": self.reason}


class RecordError(ValueError):
    """A record failed; ``errors`` lists every field error found."""

    def __init__(self, errors: list[FieldError]):
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors

    def as_list(self) -> list[dict[str, str]]:
        return [e.as_dict() for e in self.errors]


@dataclass(frozen=True)
class Field:
    name: str
    kind: str                 # int, float, percent, term, emp_length, grade, sub_grade, text, month
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False
    default: Any = None       # used when the raw value is missing or empty


# Application-time fields plus the outcome (loan_status, training data only).
FIELDS: tuple[Field, ...] = (
    Field("id", "int", required=True, minimum=1),
    Field("member_id", "int", minimum=1),
    Field("loan_amnt", "float", required=True, minimum=0, exclusive_minimum=True, maximum=1_000_000),
    Field("funded_amnt", "float", required=True, minimum=0, maximum=1_000_000),
    Field("funded_amnt_inv", "float", minimum=0, maximum=1_000_000),
    Field("term", "term", required=True),
    Field("int_rate", "percent", required=True, minimum=0, exclusive_minimum=True, maximum=100),
    Field("installment", "float", minimum=0, maximum=MAX_AMOUNT),
    Field("grade", "grade", required=True),
    Field("sub_grade", "sub_grade"),
    Field("emp_title", "text"),
    Field("emp_length", "emp_length"),
    Field("home_ownership", "text"),
    Field("annual_inc", "float", required=True, minimum=0, exclusive_minimum=True, maximum=1e9),
    Field("verification_status", "text"),
    Field("issue_d", "month"),
    Field("purpose", "text"),
    Field("addr_state", "text"),
    Field("dti", "float", required=True, minimum=0, maximum=1000, exclusive_maximum=True),
    Field("delinq_2yrs", "int", minimum=0),
    Field("earliest_cr_line", "month"),
    Field("inq_last_6mths", "int", minimum=0),
    Field("open_acc", "int", minimum=0),
    Field("pub_rec", "int", minimum=0),
    Field("revol_bal", "float", minimum=0, maximum=MAX_AMOUNT),
    Field("revol_util", "percent", minimum=0, maximum=1000),
    Field("total_acc", "int", minimum=0),
    # The original FilterBolt defaulted these three to 0 when empty.
    Field("bc_open_to_buy", "float", minimum=0, maximum=MAX_AMOUNT, default=0.0),
    Field("bc_util", "percent", minimum=0, maximum=1000, default=0.0),
    Field("total_il_high_credit_limit", "float", minimum=0, maximum=MAX_AMOUNT, default=0.0),
    Field("loan_status", "text"),
)
FIELDS_BY_NAME: dict[str, Field] = {f.name: f for f in FIELDS}
FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in FIELDS)
# The ten numeric inputs of the original SubmitBolt (fund_rate is derived).
ORIGINAL_MODEL_FIELDS = ("bc_open_to_buy", "total_il_high_credit_limit", "annual_inc", "bc_util",
                         "dti", "int_rate", "term", "loan_amnt", "fund_rate", "funded_amnt")

# Every pattern is ASCII-only (re.ASCII: \d is 0-9, \s is ASCII whitespace) and used with fullmatch.
_LETTERS = re.compile(r"[A-Za-z]")
_NOT_FINITE = frozenset({"nan", "-nan", "+nan", "inf", "-inf", "+inf", "infinity", "-infinity", "+infinity"})
_INT_TEXT = re.compile(r"([+-]?)([0-9]+)", re.ASCII)
_DECIMAL_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)", re.ASCII)
_TERM = re.compile(r"\s*([0-9]+)\s*(?:months?)?\s*", re.ASCII | re.IGNORECASE)
_EMP_YEARS = re.compile(r"(<\s*1|[0-9]+)\s*\+?\s*years?", re.ASCII | re.IGNORECASE)
_MONTH_TEXT = re.compile(r"([A-Za-z]{3})-([0-9]{4})", re.ASCII)
_MONTH_ISO = re.compile(r"([0-9]{4})-([0-9]{2})(?:-[0-9]{2})?", re.ASCII)
_SUB_GRADE = re.compile(r"[A-G][1-5]", re.ASCII)


def _is_empty(raw: Any) -> bool:
    return raw is None or (isinstance(raw, str) and raw.strip(ASCII_SPACE) == "")


def _shown(raw: Any) -> str:
    """repr of a raw value for an error reason, cut short (a reason must not echo a 1 MB value)."""
    text = repr(raw)
    return text if len(text) <= 60 else text[:57] + "..."


def _range_reason(lo: int, hi: int) -> str:
    column = " (the BIGINT column's range)" if (lo, hi) in ((MIN_INT, MAX_INT), (0, MAX_INT), (1, MAX_INT)) else ""
    return f"must be a whole number from {lo} to {hi}{column}"


def parse_int(raw: Any, *, lo: int = MIN_INT, hi: int = MAX_INT) -> int:
    """The exact integer in ``raw`` if it is one within lo..hi; else ValueError whose message is the reason.

    Accepted: a Python int (not bool); a whole float up to 2**53 (beyond, a float may already be a
    rounded integer: it must come as an integer or as text); text of ASCII decimal digits 0-9 with
    surrounding ASCII whitespace and a sign only when ``lo`` < 0. Refused with a reason: other scripts'
    digits ("١", "１"), superscripts ("²"), underscores ("1_000"), fractions, exponents, NaN/Infinity.
    Never converts through float, so every integer in range comes back exactly.
    """
    if isinstance(raw, bool):
        raise ValueError("must be a whole number, got a boolean")
    if isinstance(raw, int):
        value = raw
    elif isinstance(raw, float):
        if not math.isfinite(raw):
            raise ValueError("must be a finite number")
        if not raw.is_integer():
            raise ValueError(f"must be a whole number, got {raw!r}")
        if abs(raw) > MAX_EXACT_FLOAT:
            raise ValueError(f"must be sent as an integer or a decimal string: {raw!r} is a float above 2^53, "
                             "which cannot hold every whole number exactly")
        value = int(raw)
    elif isinstance(raw, str):
        m = _INT_TEXT.fullmatch(raw.strip(ASCII_SPACE))
        if m is None:
            raise ValueError(f"must be a whole number in ASCII decimal digits 0-9"
                             f"{' with an optional sign' if lo < 0 else ''}, got {_shown(raw)}")
        if m.group(1) and lo >= 0:
            raise ValueError(f"{_range_reason(lo, hi)}, written without a sign, got {_shown(raw)}")
        digits = m.group(2).lstrip("0") or "0"
        if len(digits) > len(str(max(abs(lo), abs(hi)))):   # out of range: not converted (int() refuses 4301+ digits)
            raise ValueError(f"{_range_reason(lo, hi)}, got a number of {len(digits)} digits")
        value = -int(digits) if m.group(1) == "-" else int(digits)
    else:
        raise ValueError(f"must be a whole number, got {type(raw).__name__}")
    if not lo <= value <= hi:
        shown = str(value) if abs(value) < 10**40 else f"a number of {len(str(abs(value)))} digits"
        raise ValueError(f"{_range_reason(lo, hi)}, got {shown}")
    return value


def parse_float(raw: Any, *, percent: bool = False, signed: bool = True) -> float:
    """The finite float in ``raw`` (a number, or plain ASCII decimal text such as " 12.39" or " 12.39%"
    when ``percent``); ValueError with the reason otherwise. No exponents, underscores or other scripts'
    digits in text; a sign only when ``signed``."""
    if isinstance(raw, bool):
        raise ValueError("must be a number, got a boolean")
    if isinstance(raw, (int, float)):
        try:
            value = float(raw)
        except OverflowError:
            raise ValueError("must be a finite number within the DOUBLE range") from None
    elif isinstance(raw, str):
        text = raw.strip(ASCII_SPACE)
        if percent and text.endswith("%"):
            text = text[:-1].rstrip(ASCII_SPACE)
        if text.lower() in _NOT_FINITE:
            raise ValueError("must be a finite number")
        if not _DECIMAL_TEXT.fullmatch(text) or (not signed and text[:1] in "+-"):
            if _LETTERS.search(text):
                raise ValueError(f"must be a number, got letters in {_shown(raw)}")
            raise ValueError(f"must be a plain decimal number in ASCII digits 0-9"
                             f"{' (optionally with %)' if percent else ''}, got {_shown(raw)}")
        value = float(text)
    else:
        raise ValueError(f"must be a number, got {type(raw).__name__}")
    if not math.isfinite(value):
        raise ValueError("must be a finite number within the DOUBLE range")
    return value


def _number(field: Field, raw: Any, *, integer: bool) -> float | int:
    try:
        if integer:
            lo = MIN_INT if field.minimum is None else max(MIN_INT, math.ceil(field.minimum))
            hi = MAX_INT if field.maximum is None else min(MAX_INT, math.floor(field.maximum))
            return parse_int(raw, lo=lo, hi=hi)
        signed = field.minimum is None or field.minimum < 0
        if not signed and isinstance(raw, str) and raw.strip(ASCII_SPACE)[:1] in ("-", "+"):
            parse_float(raw.strip(ASCII_SPACE)[1:], percent=field.kind == "percent", signed=False)
            op = ">" if field.exclusive_minimum else ">="
            raise ValueError(f"must be {op} {field.minimum:g}, written without a sign, got {_shown(raw)}")
        value = parse_float(raw, percent=field.kind == "percent", signed=signed)
    except ValueError as exc:
        raise FieldError(field.name, str(exc)) from None
    _check_range(field, value)
    return value


def _check_range(field: Field, value: float) -> None:
    lo, hi = field.minimum, field.maximum
    if lo is not None and (value <= lo if field.exclusive_minimum else value < lo):
        raise FieldError(field.name, f"must be {'>' if field.exclusive_minimum else '>='} {lo:g}, got {value:g}")
    if hi is not None and (value >= hi if field.exclusive_maximum else value > hi):
        raise FieldError(field.name, f"must be {'<' if field.exclusive_maximum else '<='} {hi:g}, got {value:g}")


def _whole(raw: Any) -> int | None:
    """A JSON number that is a finite whole value, as int; None otherwise (NaN, inf, 2.5, bool, text)."""
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        return None
    if isinstance(raw, float) and not (math.isfinite(raw) and raw.is_integer()):
        return None
    return int(raw)


def clean_value(field: Field, raw: Any) -> Any:
    """Clean one raw value (CSV text or JSON value) for ``field``; raise FieldError when it is unusable."""
    if _is_empty(raw):
        if field.default is not None:
            return field.default
        if field.required:
            raise FieldError(field.name, "is required")
        return None
    kind = field.kind
    if kind in ("int", "float", "percent"):
        return _number(field, raw, integer=kind == "int")
    if kind == "term":
        if isinstance(raw, str) and (m := _TERM.fullmatch(raw)):
            digits = m.group(1).lstrip("0") or "0"
            months = int(digits) if len(digits) <= 3 else None
        else:
            months = _whole(raw)
        if months not in TERMS:
            raise FieldError(field.name, f"must be 36 or 60 months, got {_shown(raw)}")
        return months
    if kind == "emp_length":
        if isinstance(raw, str):
            text = raw.strip(ASCII_SPACE)
            if text.lower() == "n/a":
                return None
            m = _EMP_YEARS.fullmatch(text)
            if not m:
                raise FieldError(field.name, f"must look like '3 years', '< 1 year' or '10+ years', got {_shown(raw)}")
            digits = m.group(1).lstrip("0") or "0"
            years = 0 if m.group(1).startswith("<") else int(digits) if len(digits) <= 3 else None
        elif isinstance(raw, (int, float)) and not isinstance(raw, bool):
            years = _whole(raw)
        else:
            raise FieldError(field.name, f"must be years, got {type(raw).__name__}")
        if years is None or not 0 <= years <= 10:
            raise FieldError(field.name, f"must be 0..10 years, got {_shown(raw)}")
        return years
    if kind == "grade":
        if not isinstance(raw, str) or raw.strip(ASCII_SPACE).upper() not in GRADES:
            raise FieldError(field.name, f"must be one of A-G, got {_shown(raw)}")
        return raw.strip(ASCII_SPACE).upper()
    if kind == "sub_grade":
        if not isinstance(raw, str) or not _SUB_GRADE.fullmatch(raw.strip(ASCII_SPACE).upper()):
            raise FieldError(field.name, f"must be a grade A-G and a digit 1-5, got {_shown(raw)}")
        return raw.strip(ASCII_SPACE).upper()
    if kind == "month":
        if not isinstance(raw, str):
            raise FieldError(field.name, f"must be a month like 'Dec-2014', got {type(raw).__name__}")
        text = raw.strip(ASCII_SPACE)
        if m := _MONTH_TEXT.fullmatch(text):
            month = MONTHS.get(m.group(1).title())
            year = int(m.group(2))
        elif m := _MONTH_ISO.fullmatch(text):
            year, month = int(m.group(1)), int(m.group(2))
        else:
            month = None
        if not month or not 1 <= month <= 12:
            raise FieldError(field.name, f"must be a month like 'Dec-2014' or '2014-12' in ASCII digits, "
                                         f"got {_shown(raw)}")
        return f"{year:04d}-{month:02d}"
    if kind == "text":
        if isinstance(raw, bool) or not isinstance(raw, (str, int, float)):
            raise FieldError(field.name, f"must be text, got {type(raw).__name__}")
        if isinstance(raw, int) and not -10**(MAX_TEXT - 1) < raw < 10**MAX_TEXT:
            raise FieldError(field.name, f"must be at most {MAX_TEXT} characters")
        text = raw if isinstance(raw, str) else str(raw)
        if len(text) > MAX_TEXT:   # the raw length: what the API document promises (maxLength)
            raise FieldError(field.name, f"must be at most {MAX_TEXT} characters")
        return text.strip(ASCII_SPACE)
    raise AssertionError(f"unknown field kind {kind!r}")


DEFAULT_CLEAN_CACHE_SIZE = 4096  # cleaned values memoised per field (low-cardinality fields repeat a lot)


class RecordCleaner:
    """``clean_record`` for a fixed field list: the one implementation, memoised per field value.

    Cleaning a value is a pure function of (field, raw value), and most fields
    repeat the same few texts (" 36 months", "RENT", "0", "Dec-2016"...), so a
    bounded cache per field (text and missing values only; the first
    ``cache_size`` distinct ones) makes cleaning 2-3x faster. A cached failure
    gives a fresh FieldError with the same field and reason, so every record's
    RecordError is its own.
    """

    def __init__(self, field_list: Iterable[Field] = FIELDS, cache_size: int = DEFAULT_CLEAN_CACHE_SIZE):
        if isinstance(cache_size, bool) or not isinstance(cache_size, int) or cache_size < 0:
            raise ValueError(f"cache_size must be an int >= 0, got {cache_size!r}")
        self.fields: tuple[Field, ...] = tuple(field_list)
        if not all(isinstance(f, Field) for f in self.fields):
            raise TypeError("fields must be Field instances")
        self.cache_size = cache_size
        self._names = tuple(f.name for f in self.fields)
        self._caches: list[dict[Any, tuple[bool, Any]]] = [{} for _ in self.fields]

    def __call__(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Clean a record given as a mapping of raw values; RecordError lists every bad field."""
        if not isinstance(raw, Mapping):
            raise RecordError([FieldError("$", f"must be an object, got {type(raw).__name__}")])
        get = raw.get
        return self._clean([get(name) for name in self._names])

    def clean_values(self, raws) -> dict[str, Any]:
        """Clean raw values given in the order of ``self.fields``."""
        return self._clean(raws)

    def _clean(self, raws) -> dict[str, Any]:
        out: dict[str, Any] = {}
        errors: list[FieldError] = []
        limit = self.cache_size
        for field, name, cache, value in zip(self.fields, self._names, self._caches, raws):
            cacheable = value is None or type(value) is str
            hit = cache.get(value) if cacheable else None
            if hit is None:
                try:
                    hit = (True, clean_value(field, value))
                except FieldError as exc:
                    errors.append(exc)
                    if cacheable and len(cache) < limit:
                        cache[value] = (False, (exc.field, exc.reason))
                    continue
                if cacheable and len(cache) < limit:
                    cache[value] = hit
            if hit[0]:
                out[name] = hit[1]
            else:
                errors.append(FieldError(*hit[1]))
        if not errors:
            errors.extend(cross_checks(out))
        if errors:
            raise RecordError(errors)
        return out


_DEFAULT_CLEANER = RecordCleaner(FIELDS)
_cleaners: dict[tuple[Field, ...], RecordCleaner] = {}


def clean_record(raw: Mapping[str, Any], *, fields: Iterable[Field] = FIELDS) -> dict[str, Any]:
    """Clean and validate a record; unknown keys are dropped. Raise RecordError listing every bad field."""
    if fields is FIELDS:
        return _DEFAULT_CLEANER(raw)
    key = tuple(fields)
    cleaner = _cleaners.get(key)
    if cleaner is None:
        if len(_cleaners) >= 16:   # callers with ever-new field lists must not grow memory without bound
            _cleaners.clear()
        cleaner = _cleaners[key] = RecordCleaner(key)
    return cleaner(raw)


def cross_checks(rec: dict[str, Any]) -> list[FieldError]:
    """The rules that relate two fields (funded <= loan, sub_grade within grade), on a cleaned record."""
    errors = []
    loan, funded = rec.get("loan_amnt"), rec.get("funded_amnt")
    if loan is not None and funded is not None and funded > loan:
        errors.append(FieldError("funded_amnt", f"must be <= loan_amnt ({loan:g}), got {funded:g}"))
    grade, sub = rec.get("grade"), rec.get("sub_grade")
    if grade and sub and sub[0] != grade:
        errors.append(FieldError("sub_grade", f"must belong to grade {grade}, got {sub}"))
    return errors


def fund_rate(rec: Mapping[str, Any]) -> float:
    """funded_amnt / loan_amnt * 100, as the original SubmitBolt computed it."""
    return float(rec["funded_amnt"]) / float(rec["loan_amnt"]) * 100.0
