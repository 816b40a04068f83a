"""Model inputs: the explicit allow-list of application-time fields, the leakage deny-list, and records -> matrix.

The raw feature matrix has one float column per numeric feature (NaN when missing) followed by one column per
categorical feature holding a level code (0..len(levels)-1). Training and scoring build it with the same code,
so the artifact only has to carry the fitted parameters.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from applicant_api import fields as appfields

logger = logging.getLogger(__name__)

FEATURE_SPEC_VERSION = 1

# Fields known when the application is made: the only record keys the model may ever read.
ALLOWED_FIELDS: frozenset[str] = frozenset({
    "loan_amnt", "funded_amnt", "term", "int_rate", "installment", "grade", "emp_length", "home_ownership",
    "annual_inc", "verification_status", "issue_d", "purpose", "dti", "delinq_2yrs", "earliest_cr_line",
    "inq_last_6mths", "open_acc", "pub_rec", "revol_bal", "revol_util", "total_acc", "bc_open_to_buy", "bc_util",
    "total_il_high_credit_limit",
})
# Fields known only after origination (payments, recoveries, the outcome): these leak the target and must never
# reach the model. A test proves none of them can influence the feature matrix.
POST_ORIGINATION_FIELDS: frozenset[str] = frozenset({
    "loan_status", "total_pymnt", "total_pymnt_inv", "total_rec_prncp", "total_rec_int", "total_rec_late_fee",
    "recoveries", "collection_recovery_fee", "last_pymnt_d", "last_pymnt_amnt", "out_prncp", "out_prncp_inv",
    "next_pymnt_d", "last_credit_pull_d", "last_fico_range_high", "last_fico_range_low", "pymnt_plan",
    "hardship_flag", "debt_settlement_flag", "settlement_status", "settlement_amount", "funded_amnt_inv",
    "true_pd",
})
if ALLOWED_FIELDS & POST_ORIGINATION_FIELDS:   # pragma: no cover - a programming error, caught at import
    raise RuntimeError(f"fields both allowed and denied: {sorted(ALLOWED_FIELDS & POST_ORIGINATION_FIELDS)}")

# Raw numeric inputs (cleaned numbers, None when missing) and month inputs ("YYYY-MM").
NUMBER_SOURCES: tuple[str, ...] = (
    "loan_amnt", "funded_amnt", "term", "int_rate", "installment", "annual_inc", "dti", "bc_open_to_buy",
    "bc_util", "total_il_high_credit_limit", "revol_util", "revol_bal", "delinq_2yrs", "inq_last_6mths",
    "open_acc", "pub_rec", "total_acc", "emp_length",
)
MONTH_SOURCES: tuple[str, ...] = ("issue_d", "earliest_cr_line")
TEXT_SOURCES: tuple[str, ...] = ("grade", "home_ownership", "purpose", "verification_status")
SOURCES: tuple[str, ...] = NUMBER_SOURCES + MONTH_SOURCES + TEXT_SOURCES
# A model input the applicant must supply: required in the record definition, or defaulted there (never empty).
REQUIRED_SOURCES: frozenset[str] = frozenset(
    name for name in SOURCES
    if appfields.FIELDS_BY_NAME[name].required or appfields.FIELDS_BY_NAME[name].default is not None)


@dataclass(frozen=True)
class NumericFeature:
    name: str
    group: str                                  # the reason-code group it explains
    compute: Callable[[dict[str, np.ndarray]], np.ndarray]
    sources: tuple[str, ...]


@dataclass(frozen=True)
class CategoricalFeature:
    name: str
    group: str
    source: str
    levels: tuple[str, ...]                     # the last level, OTHER, takes unknown and missing values


def _col(name: str) -> NumericFeature:
    return NumericFeature(name, name, lambda c, n=name: c[n], (name,))


def _safe_log(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log1p(np.maximum(x, 0.0))


NUMERIC: tuple[NumericFeature, ...] = (
    *(_col(n) for n in ("bc_open_to_buy", "total_il_high_credit_limit", "annual_inc", "bc_util", "dti",
                        "int_rate", "term", "loan_amnt")),
    NumericFeature("fund_rate", "fund_rate", lambda c: c["funded_amnt"] / c["loan_amnt"] * 100.0,
                   ("funded_amnt", "loan_amnt")),
    _col("funded_amnt"),
    NumericFeature("log_annual_inc", "annual_inc", lambda c: _safe_log(c["annual_inc"]), ("annual_inc",)),
    NumericFeature("loan_to_income", "loan_to_income", lambda c: c["loan_amnt"] / c["annual_inc"],
                   ("loan_amnt", "annual_inc")),
    _col("installment"),
    _col("revol_util"),
    NumericFeature("log_revol_bal", "revol_bal", lambda c: _safe_log(c["revol_bal"]), ("revol_bal",)),
    *(_col(n) for n in ("delinq_2yrs", "inq_last_6mths", "open_acc", "pub_rec", "total_acc")),
    NumericFeature("credit_history_months", "credit_history_months",
                   lambda c: c["issue_d"] - c["earliest_cr_line"], ("issue_d", "earliest_cr_line")),
)

EMP_LENGTH_LEVELS = ("0", "1-2", "3-5", "6-9", "10", "OTHER")
CATEGORICAL: tuple[CategoricalFeature, ...] = (
    CategoricalFeature("grade", "grade", "grade", (*appfields.GRADES, "OTHER")),
    CategoricalFeature("home_ownership", "home_ownership", "home_ownership", ("MORTGAGE", "RENT", "OWN", "OTHER")),
    CategoricalFeature("purpose", "purpose", "purpose", (
        "debt_consolidation", "credit_card", "home_improvement", "major_purchase", "small_business", "car",
        "medical", "moving", "vacation", "house", "wedding", "renewable_energy", "educational", "OTHER")),
    CategoricalFeature("verification_status", "verification_status", "verification_status",
                       ("not_verified", "source_verified", "verified", "OTHER")),
    CategoricalFeature("emp_length", "emp_length", "emp_length", EMP_LENGTH_LEVELS),
)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in NUMERIC) + tuple(f.name for f in CATEGORICAL)
N_NUMERIC = len(NUMERIC)

for _f in NUMERIC:
    assert set(_f.sources) <= set(SOURCES), _f
for _name in SOURCES:
    assert _name in ALLOWED_FIELDS and _name not in POST_ORIGINATION_FIELDS, _name

_GETTER = itemgetter(*SOURCES)
_NUMBER_TYPES = (int, float)
_OK_NUMBER = {int, float}
_OK_NUMBER_OR_NONE = {int, float, type(None)}
_OK_TEXT_OR_NONE = {str, type(None)}
# Level codes: normalised text -> code, per categorical feature.
_LEVEL_CODES = {f.name: {lvl.lower(): i for i, lvl in enumerate(f.levels) if lvl != "OTHER"} for f in CATEGORICAL}
_EMP_BUCKET = np.array([0, 1, 1, 2, 2, 2, 3, 3, 3, 3, 4], dtype=np.float64)


class Batch:
    """The raw feature matrix of a list of records, with the first bad field of every rejected record."""

    __slots__ = ("matrix", "errors", "ok")

    def __init__(self, matrix: np.ndarray, errors: dict[int, dict[str, str]]):
        self.matrix = matrix                    # rows of rejected records hold arbitrary values
        self.errors = errors                    # row index -> {"field", "reason"}
        ok = np.ones(matrix.shape[0], dtype=bool)
        if errors:
            ok[list(errors)] = False
        self.ok = ok


def _reason(name: str, value: Any, fallback: str) -> str:
    try:
        appfields.clean_value(appfields.FIELDS_BY_NAME[name], value)
    except appfields.FieldError as exc:
        return exc.reason
    return fallback


def _error(errors: dict, row: int, name: str, value: Any, fallback: str) -> None:
    if row not in errors:
        errors[row] = {"field": name, "reason": _reason(name, value, fallback)}


def _rows(records: Sequence[Any], errors: dict) -> list[tuple]:
    try:
        return [_GETTER(r) for r in records]
    except (KeyError, TypeError):
        pass
    rows = []
    for i, r in enumerate(records):
        if isinstance(r, Mapping):
            rows.append(tuple(r.get(k) for k in SOURCES))
        else:
            errors.setdefault(i, {"field": "$", "reason": f"must be an object, got {type(r).__name__}"})
            rows.append((None,) * len(SOURCES))
    return rows


def _number_column(name: str, col: tuple, errors: dict) -> np.ndarray:
    types = set(map(type, col))
    if types <= _OK_NUMBER:
        try:
            return np.array(col, dtype=np.float64)
        except OverflowError:
            pass
    elif not types <= _OK_NUMBER_OR_NONE:
        for i, v in enumerate(col):
            if v is not None and type(v) not in _OK_NUMBER:
                _error(errors, i, name, v, f"must be a number, got {type(v).__name__}")
    out = np.empty(len(col), dtype=np.float64)
    for i, v in enumerate(col):
        if v is None or type(v) not in _OK_NUMBER:
            out[i] = math.nan
        else:
            try:
                out[i] = v
            except OverflowError:
                out[i] = math.inf
    return out


def _month_column(name: str, col: tuple, errors: dict) -> np.ndarray:
    out = np.empty(len(col), dtype=np.float64)
    for i, v in enumerate(col):
        if v is None:
            out[i] = math.nan
            continue
        if type(v) is str and len(v) == 7 and v[4] == "-" and v[:4].isdigit() and v[5:].isdigit() \
                and 1 <= int(v[5:]) <= 12:
            out[i] = int(v[:4]) * 12 + int(v[5:]) - 1
        else:
            out[i] = math.nan
            _error(errors, i, name, v, "must be a month 'YYYY-MM'")
    return out


def _level_column(feature: CategoricalFeature, col: tuple, errors: dict) -> np.ndarray:
    codes = _LEVEL_CODES[feature.name]
    other = float(len(feature.levels) - 1)
    if not set(map(type, col)) <= _OK_TEXT_OR_NONE:
        for i, v in enumerate(col):
            if v is not None and type(v) is not str:
                _error(errors, i, feature.source, v, f"must be text, got {type(v).__name__}")
    get = codes.get
    return np.array([other if type(v) is not str else get(v.strip().lower().replace(" ", "_"), other)
                     for v in col], dtype=np.float64)


def extract(records: Sequence[Mapping[str, Any]]) -> Batch:
    """Validate the model inputs of ``records`` and build the raw feature matrix (unknown keys are ignored)."""
    if not isinstance(records, Sequence) or isinstance(records, (str, bytes)):
        raise TypeError(f"records must be a sequence of mappings, got {type(records).__name__}")
    n = len(records)
    errors: dict[int, dict[str, str]] = {}
    rows = _rows(records, errors)
    cols = dict(zip(SOURCES, zip(*rows))) if n else {k: () for k in SOURCES}
    raw: dict[str, np.ndarray] = {}
    for name in NUMBER_SOURCES:
        raw[name] = _number_column(name, cols[name], errors)
    for name in MONTH_SOURCES:
        raw[name] = _month_column(name, cols[name], errors)
    _validate_numbers(raw, cols, errors)
    matrix = np.empty((n, len(FEATURE_NAMES)), dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        for j, feat in enumerate(NUMERIC):
            matrix[:, j] = feat.compute(raw)
    for j, feat in enumerate(CATEGORICAL, start=N_NUMERIC):
        if feat.name == "emp_length":
            emp = raw["emp_length"]
            known = np.isfinite(emp) & (emp >= 0) & (emp <= 10)
            matrix[:, j] = np.where(known, _EMP_BUCKET[np.where(known, emp, 0).astype(np.intp)],
                                    len(feat.levels) - 1)
        else:
            matrix[:, j] = _level_column(feat, cols[feat.source], errors)
    grades = cols["grade"]
    for i in np.flatnonzero(matrix[:, N_NUMERIC] == len(appfields.GRADES)):
        _error(errors, int(i), "grade", grades[i], "must be one of A-G")
    return Batch(matrix, errors)


def _validate_numbers(raw: dict[str, np.ndarray], cols: dict[str, tuple], errors: dict) -> None:
    """Vectorised required / finite / range checks; reasons come from the record definition."""
    for name in NUMBER_SOURCES + MONTH_SOURCES:
        x = raw[name]
        field = appfields.FIELDS_BY_NAME[name]
        missing = np.isnan(x)
        bad = ~np.isfinite(x) & ~missing
        # A NaN that came from a JSON NaN (not None) is an error, not a missing value.
        if missing.any():
            col = cols[name]
            for i in np.flatnonzero(missing):
                v = col[i]
                if v is not None and type(v) in _OK_NUMBER:
                    bad[i] = True
                elif v is None and name in REQUIRED_SOURCES:
                    bad[i] = True
        with np.errstate(invalid="ignore"):
            if field.minimum is not None:
                bad |= (x <= field.minimum) if field.exclusive_minimum else (x < field.minimum)
            if field.maximum is not None:
                bad |= (x >= field.maximum) if field.exclusive_maximum else (x > field.maximum)
            if name == "term":
                bad |= ~missing & (x != 36) & (x != 60)
            if name == "emp_length":
                bad |= ~missing & ((x != np.floor(x)) | (x < 0) | (x > 10))
            if name in ("delinq_2yrs", "inq_last_6mths", "open_acc", "pub_rec", "total_acc"):
                bad |= ~missing & (x != np.floor(x))
        if bad.any():
            col = cols[name]
            for i in np.flatnonzero(bad):
                v = col[i]
                _error(errors, int(i), name, v, "must be a finite number" if v is not None else "is required")
    with np.errstate(invalid="ignore"):
        over = raw["funded_amnt"] > raw["loan_amnt"]
    for i in np.flatnonzero(over):
        errors.setdefault(int(i), {"field": "funded_amnt", "reason": "must be <= loan_amnt"})


def matrix_of(records: Iterable[Mapping[str, Any]]) -> np.ndarray:
    """The raw feature matrix of records that must all be valid (training); raise ValueError otherwise."""
    batch = extract(list(records))
    if batch.errors:
        row, err = next(iter(batch.errors.items()))
        raise ValueError(f"record {row}: {err['field']}: {err['reason']} ({len(batch.errors)} bad records)")
    return batch.matrix
