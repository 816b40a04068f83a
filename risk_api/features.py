"""Model inputs: the explicit allow-list of application-time fields, the leakage deny-list, and records -> matrix.

The raw feature matrix has one float column per numeric feature (NaN when missing) followed by one column per
categorical feature holding a level code (0..len(levels)-1). Training and scoring build it with the same code,
so the artifact only has to carry the fitted parameters.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from itertools import chain
from operator import itemgetter
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np

from credit_core import fields as appfields

logger = logging.getLogger(__name__)

FEATURE_SPEC_VERSION = 1
MAX_ABS_VALUE = 1e12     # numeric features are capped to +-this before scoring (and training)
# The largest value accepted in a numeric input that the record definition leaves unbounded (revol_bal, counts...):
# stated in the OpenAPI document so that a client knows exactly what is accepted.
MAX_INPUT = 1e15

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
    except (OverflowError, ValueError, TypeError, RecursionError):   # an integer beyond float range, deep nesting
        pass
    return fallback


def _error(errors: dict, row: int, name: str, value: Any, fallback: str) -> None:
    if row not in errors:
        errors[row] = {"field": name, "reason": _reason(name, value, fallback)}


_NUM_GETTER = itemgetter(*NUMBER_SOURCES)
_OTHER_SOURCES = MONTH_SOURCES + TEXT_SOURCES
_OTHER_GETTER = itemgetter(*_OTHER_SOURCES)


def _rows(records: Sequence[Any], errors: dict) -> tuple[list[tuple], list[tuple]]:
    """(numeric tuples, month+text tuples) per record; the fast path needs dicts holding every source key."""
    try:
        return list(map(_NUM_GETTER, records)), list(map(_OTHER_GETTER, records))
    except (KeyError, TypeError):
        pass
    nums, others = [], []
    for i, r in enumerate(records):
        if isinstance(r, Mapping):
            nums.append(tuple(r.get(k) for k in NUMBER_SOURCES))
            others.append(tuple(r.get(k) for k in _OTHER_SOURCES))
        else:
            errors.setdefault(i, {"field": "$", "reason": f"must be an object, got {type(r).__name__}"})
            nums.append((None,) * len(NUMBER_SOURCES))
            others.append((None,) * len(_OTHER_SOURCES))
    return nums, others


def _number_block(nums: list[tuple], errors: dict) -> np.ndarray:
    """The numeric sources as a (k, n) float matrix (a contiguous row per source); NaN where missing or unusable
    (an unusable value also gets an error)."""
    types = set(map(type, chain.from_iterable(nums)))
    if types <= _OK_NUMBER_OR_NONE:
        flat = list(chain.from_iterable(nums))
        if type(None) in types:
            # Missing values are few: find them with list.index (a C loop) rather than a Python loop.
            i = -1
            try:
                while True:
                    i = flat.index(None, i + 1)
                    flat[i] = math.nan
            except ValueError:
                pass
        try:
            block = np.fromiter(flat, dtype=np.float64, count=len(flat))
            return block.reshape(len(nums), len(NUMBER_SOURCES)).T.copy()
        except OverflowError:
            pass
    cols = dict(zip(NUMBER_SOURCES, zip(*nums))) if nums else {k: () for k in NUMBER_SOURCES}
    block = np.empty((len(NUMBER_SOURCES), len(nums)), dtype=np.float64)
    for j, name in enumerate(NUMBER_SOURCES):
        col = cols[name]
        if set(map(type, col)) <= _OK_NUMBER:
            try:
                block[j] = col
                continue
            except OverflowError:
                pass
        block[j] = _number_column(name, col, errors)
    return block


def _number_column(name: str, col: tuple, errors: dict) -> np.ndarray:
    """One numeric source as floats: NaN for None, and for a wrong type (which also records an error)."""
    out = np.empty(len(col), dtype=np.float64)
    for i, v in enumerate(col):
        if v is None:
            out[i] = math.nan
        elif type(v) not in _OK_NUMBER:
            out[i] = math.nan
            _error(errors, i, name, v, f"must be a number, got {type(v).__name__}")
        else:
            try:
                out[i] = v
            except OverflowError:                # an integer beyond float range
                out[i] = math.inf
    return out


def _month_index(v: Any) -> float | None:
    if type(v) is str and len(v) == 7 and v.isascii() and v[4] == "-" and v[:4].isdigit() and v[5:].isdigit() \
            and 1 <= int(v[5:]) <= 12:
        return float(int(v[:4]) * 12 + int(v[5:]) - 1)
    return None


_MONTHS: dict[Any, float] = {None: math.nan}    # "YYYY-MM" -> month index, filled as seen (few thousand at most)
_MAX_CACHED = 100_000


def _month_column(name: str, col: tuple, errors: dict) -> np.ndarray:
    try:
        return np.fromiter(map(_MONTHS.__getitem__, col), dtype=np.float64, count=len(col))
    except (KeyError, TypeError):               # a month not seen yet, or an unhashable value
        pass
    out = np.empty(len(col), dtype=np.float64)
    for i, v in enumerate(col):
        m = None if v is None else _month_index(v)
        out[i] = math.nan if m is None else m
        if v is not None and m is None:
            _error(errors, i, name, v, "must be a month 'YYYY-MM'")
        elif m is not None and len(_MONTHS) < _MAX_CACHED:
            _MONTHS[v] = m
    return out


def _level_code(feature: CategoricalFeature, v: Any) -> float:
    if type(v) is not str:
        return float(len(feature.levels) - 1)
    return float(_LEVEL_CODES[feature.name].get(v.strip().lower().replace(" ", "_"), len(feature.levels) - 1))


_LEVELS: dict[str, dict[Any, float]] = {f.name: {} for f in CATEGORICAL}   # raw text -> code, filled as seen


def _level_column(feature: CategoricalFeature, col: tuple, errors: dict) -> np.ndarray:
    cache = _LEVELS[feature.name]
    try:
        return np.fromiter(map(cache.__getitem__, col), dtype=np.float64, count=len(col))
    except (KeyError, TypeError):               # a text not seen yet, or an unhashable value
        pass
    out = np.empty(len(col), dtype=np.float64)
    for i, v in enumerate(col):
        if v is not None and type(v) is not str:
            _error(errors, i, feature.source, v, f"must be text, got {type(v).__name__}")
        out[i] = code = _level_code(feature, v)
        # Only short texts are cached, so odd inputs cannot grow the cache's memory much.
        if (v is None or (type(v) is str and len(v) <= 64)) and len(cache) < _MAX_CACHED:
            cache[v] = code
    return out


CHUNK = 2048    # records converted at a time: keeps the intermediate tuples in cache on big inputs


def extract(records: Sequence[Mapping[str, Any]]) -> Batch:
    """Validate the model inputs of ``records`` and build the raw feature matrix (unknown keys are ignored)."""
    if not isinstance(records, Sequence) or isinstance(records, (str, bytes)):
        raise TypeError(f"records must be a sequence of mappings, got {type(records).__name__}")
    n = len(records)
    if n <= CHUNK:
        return _extract(records)
    matrix = np.empty((n, len(FEATURE_NAMES)), dtype=np.float64)
    errors: dict[int, dict[str, str]] = {}
    for start in range(0, n, CHUNK):
        part = _extract(records[start:start + CHUNK])
        matrix[start:start + len(part.matrix)] = part.matrix
        errors.update((start + i, e) for i, e in part.errors.items())
    return Batch(matrix, errors)


def _extract(records: Sequence[Any]) -> Batch:
    n = len(records)
    errors: dict[int, dict[str, str]] = {}
    nums, others = _rows(records, errors)
    block = _number_block(nums, errors)
    cols = dict(zip(_OTHER_SOURCES, zip(*others))) if n else {k: () for k in _OTHER_SOURCES}
    raw: dict[str, np.ndarray] = {name: block[j] for j, name in enumerate(NUMBER_SOURCES)}
    for name in MONTH_SOURCES:
        raw[name] = _month_column(name, cols[name], errors)

    def value(name: str, i: int) -> Any:
        if name in cols:
            return cols[name][i]
        return nums[i][NUMBER_SOURCES.index(name)]

    _validate_numbers(raw, value, errors)
    matrix = np.empty((n, len(FEATURE_NAMES)), dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        for j, feat in enumerate(NUMERIC):
            matrix[:, j] = feat.compute(raw)
    # Fields without an upper bound (revol_bal, counts...) may hold absurd but finite values; capping them keeps
    # every product in the scorer finite. No real application comes near the cap.
    np.clip(matrix[:, :N_NUMERIC], -MAX_ABS_VALUE, MAX_ABS_VALUE, out=matrix[:, :N_NUMERIC])
    for j, feat in enumerate(CATEGORICAL, start=N_NUMERIC):
        if feat.name == "emp_length":
            emp = raw["emp_length"]
            known = np.isfinite(emp) & (emp >= 0) & (emp <= 10)
            matrix[:, j] = np.where(known, _EMP_BUCKET[np.where(known, emp, 0).astype(np.intp)],
                                    len(feat.levels) - 1)
        else:
            matrix[:, j] = _level_column(feat, cols[feat.source], errors)
    for i, g in enumerate(cols["grade"]):
        if type(g) is not str or g not in _GRADE_SET:     # exactly "A".."G", as a cleaned record holds it
            _error(errors, i, "grade", g, "must be one of A-G")
    return Batch(matrix, errors)


_GRADE_SET = frozenset(appfields.GRADES)
_INTEGER_SOURCES = ("delinq_2yrs", "inq_last_6mths", "open_acc", "pub_rec", "total_acc", "emp_length")
_CHECKED = NUMBER_SOURCES + MONTH_SOURCES


def _bounds() -> tuple[np.ndarray, ...]:
    """Per checked source: lower bound, upper bound, exclusive flags (NaN bound = none), integer and required."""
    lo, hi, lo_x, hi_x = [], [], [], []
    for name in _CHECKED:
        f = appfields.FIELDS_BY_NAME[name]
        lo.append(math.nan if f.minimum is None else f.minimum)
        hi.append((MAX_INPUT if name in NUMBER_SOURCES else math.nan) if f.maximum is None else f.maximum)
        lo_x.append(f.exclusive_minimum)
        hi_x.append(f.exclusive_maximum)
    if "emp_length" in _CHECKED:
        lo[_CHECKED.index("emp_length")], hi[_CHECKED.index("emp_length")] = 0.0, 10.0
    col = lambda values, dtype=np.float64: np.array(values, dtype=dtype)[:, None]   # noqa: E731
    return (col(lo), col(hi), col(lo_x, bool), col(hi_x, bool),
            col([n in _INTEGER_SOURCES for n in _CHECKED], bool), col([n in REQUIRED_SOURCES for n in _CHECKED], bool))


_LO, _HI, _LO_X, _HI_X, _INTEGER, _REQUIRED = _bounds()
_TERM_ROW = _CHECKED.index("term")


def _validate_numbers(raw: dict[str, np.ndarray], value: Callable[[str, int], Any], errors: dict) -> None:
    """Vectorised required / finite / range / whole-number checks; the reasons come from the record definition."""
    v = np.stack([raw[name] for name in _CHECKED])            # (sources, records)
    missing = np.isnan(v)
    with np.errstate(invalid="ignore"):
        bad = np.isinf(v)
        bad |= np.where(_LO_X, v <= _LO, v < _LO)              # NaN bounds compare False: no check
        bad |= np.where(_HI_X, v >= _HI, v > _HI)
        bad |= _INTEGER & ~missing & (v != np.floor(v))
        term = v[_TERM_ROW]
        bad[_TERM_ROW] |= ~missing[_TERM_ROW] & (term != 36) & (term != 60)
    if missing.any():
        for j, i in zip(*np.nonzero(missing)):
            original = value(_CHECKED[j], i)
            # NaN from a JSON NaN is an error; None is a missing value, allowed for optional inputs only.
            if (original is not None and type(original) in _OK_NUMBER) or (original is None and _REQUIRED[j, 0]):
                bad[j, i] = True
    if bad.any():
        for i, j in sorted(zip(*np.nonzero(bad.T))):             # by record, then in field order
            original = value(_CHECKED[j], i)
            x = v[j, i]
            fallback = ("is required" if original is None else
                        f"must be <= {_HI[j, 0]:g}" if math.isfinite(x) and x > _HI[j, 0] else
                        "must be a finite number")
            _error(errors, int(i), _CHECKED[j], original, fallback)
    # funded_amnt > loan_amnt is not refused here: fund_rate then lies above its training range, and the applicant
    # is scored with it clipped and flagged (the pipeline's filter refuses such records before they come here).


def matrix_of(records: Iterable[Mapping[str, Any]]) -> np.ndarray:
    """The raw feature matrix of records that must all be valid (training); raise ValueError otherwise."""
    batch = extract(list(records))
    if batch.errors:
        row, err = next(iter(batch.errors.items()))
        raise ValueError(f"record {row}: {err['field']}: {err['reason']} ({len(batch.errors)} bad records)")
    return batch.matrix
