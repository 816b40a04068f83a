"""Training: LoanStats file -> labelled records -> scikit-learn pipeline -> metrics report -> sealed JSON artifact."""

from __future__ import annotations

import hashlib
import logging
import os
import time
import warnings
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from credit_core import fields as appfields
from credit_core.lendingclub import iter_records
from risk_api import artifact as artifacts
from risk_api import features, reasons
from risk_api.scoring import SCORE_BIN_EDGES, score_distribution

logger = logging.getLogger(__name__)

DEFAULT_HOLDOUT_SHARE = 0.2        # share of labelled rows held out
DEFAULT_MIN_OOT_MONTHS = 12        # issue_d must span at least this many months for an out-of-time holdout
DEFAULT_DECLINE_SHARE = 0.20       # the stored threshold declines this share of eligible holdout applicants
DEFAULT_C = 1.0                    # inverse L2 regularisation strength of the logistic regression
DEFAULT_SEED = 42
MIN_ROWS = 50                      # below this, no model is trained
# Eligible for scoring = what the topology's decision policy lets through (grades A-D, income >= 20,000).
ELIGIBLE_GRADES = ("A", "B", "C", "D")
ELIGIBLE_MIN_INCOME = 20_000.0

# The direction a credit officer expects of each numeric feature's effect on the probability of default (+1: more
# of it never lowers PD, -1: never raises it): the groups' adverse directions, plus the loan's size. A fitted
# coefficient of the other sign is a correlation artefact; the feature is dropped (coefficient 0) and the model
# refitted, so PD is monotone in income, DTI and the loan amount.
EXPECTED_SIGN: dict[str, int] = {
    **{f.name: 1 if reasons.ADVERSE_DIRECTION[f.group] == "HIGH" else -1
       for f in features.NUMERIC if f.group in reasons.ADVERSE_DIRECTION},
    "loan_amnt": 1, "funded_amnt": 1, "installment": 1,
}

BAD_STATUSES = frozenset({"charged off", "default"})
GOOD_STATUSES = frozenset({"fully paid"})
POLICY_PREFIX = "does not meet the credit policy. status:"


def target_of(status: Any) -> int | None:
    """1 = bad (Charged Off, Default), 0 = good (Fully Paid), None = not a finished loan (left out)."""
    if not isinstance(status, str):
        return None
    text = " ".join(status.split()).lower()
    if text.startswith(POLICY_PREFIX):
        text = text[len(POLICY_PREFIX):].strip()
    if text in BAD_STATUSES:
        return 1
    if text in GOOD_STATUSES:
        return 0
    return None


@dataclass
class Dataset:
    """Labelled rows of a LoanStats file and the counts of everything left out."""

    matrix: np.ndarray
    y: np.ndarray
    true_pd: np.ndarray | None          # None unless every labelled row has one
    issue_month: np.ndarray             # month index, NaN when unknown
    grade: np.ndarray                   # 0 (A) .. 6 (G)
    annual_inc: np.ndarray
    counts: dict[str, Any] = field(default_factory=dict)
    fingerprint: dict[str, Any] = field(default_factory=dict)


def file_fingerprint(path: Path) -> dict[str, Any]:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return {"file": path.name, "bytes": path.stat().st_size, "sha256": digest.hexdigest()}


def load_dataset(path: str | os.PathLike, *, progress: bool = False) -> Dataset:
    """Read ``path`` with the LoanStats reader; keep finished loans, count the rest and the bad rows."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such data file: {path}")
    records, ys, pds = [], [], []
    excluded: Counter[str] = Counter()
    bad_examples: list[str] = []
    bad = total = 0
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(unit=" rows", desc="reading", mininterval=0.5)
    for line_no, rec, err in iter_records(path):
        total += 1
        if bar is not None and total % 10_000 == 0:
            bar.update(10_000)
        if rec is None:
            bad += 1
            if len(bad_examples) < 5:
                bad_examples.append(f"line {line_no}: {err}")
            continue
        y = target_of(rec.get("loan_status"))
        if y is None:
            excluded[str(rec.get("loan_status"))] += 1
            continue
        records.append(rec)
        ys.append(y)
        pds.append(rec.get("true_pd"))
    if bar is not None:
        bar.close()
    for example in bad_examples:
        logger.warning("skipped bad row: %s", example)
    batch = features.extract(records)
    keep = batch.ok
    rejected = int((~keep).sum())
    if rejected:
        logger.warning("%d labelled rows rejected by the model's input checks, e.g. %s", rejected,
                       next(iter(batch.errors.values())))
    kept = np.flatnonzero(keep)
    matrix = batch.matrix[kept]
    y = np.asarray(ys, dtype=np.int64)[kept]
    have_pd = bool(pds) and all(p is not None for p in pds)
    true_pd = np.asarray(pds, dtype=np.float64)[kept] if have_pd else None
    months = np.array([_month(records[i].get("issue_d")) for i in kept.tolist()], dtype=np.float64)
    grade = np.array([appfields.GRADES.index(records[i]["grade"]) for i in kept.tolist()], dtype=np.int64)
    income = np.array([records[i]["annual_inc"] for i in kept.tolist()], dtype=np.float64)
    counts = {"rows_read": total, "rows_bad": bad, "rows_excluded_status": int(sum(excluded.values())),
              "excluded_by_status": dict(sorted(excluded.items())), "rows_rejected_inputs": rejected,
              "rows_labelled": int(len(y)), "bad_rate": float(y.mean()) if len(y) else None}
    return Dataset(matrix, y, true_pd, months, grade, income, counts, file_fingerprint(path))


def _month(value: Any) -> float:
    if isinstance(value, str) and len(value) == 7:
        return int(value[:4]) * 12 + int(value[5:]) - 1
    return float("nan")


def _month_text(index: float) -> str:
    i = int(index)
    return f"{i // 12:04d}-{i % 12 + 1:02d}"


def split_holdout(data: Dataset, *, share: float = DEFAULT_HOLDOUT_SHARE, min_months: int = DEFAULT_MIN_OOT_MONTHS,
                  seed: int = DEFAULT_SEED) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(train index, holdout index, description): out-of-time on issue_d when it spans enough months."""
    if not 0.0 < share < 1.0:
        raise ValueError(f"share must be in (0, 1), got {share!r}")
    n = len(data.y)
    months = data.issue_month
    known = np.isfinite(months)
    if known.all() and len(np.unique(months)) >= min_months:
        cutoff = float(np.quantile(months, 1.0 - share, method="higher"))
        hold = months >= cutoff
        if 0 < hold.sum() < n and len(np.unique(data.y[hold])) == 2 and len(np.unique(data.y[~hold])) == 2:
            return (np.flatnonzero(~hold), np.flatnonzero(hold),
                    {"method": "out_of_time", "holdout_from": _month_text(cutoff),
                     "train_months": f"{_month_text(months[~hold].min())}..{_month_text(months[~hold].max())}",
                     "holdout_months": f"{_month_text(cutoff)}..{_month_text(months.max())}"})
    train, hold = train_test_split(np.arange(n), test_size=share, random_state=seed, stratify=data.y)
    why = "issue_d missing on some rows" if not known.all() else f"issue_d spans < {min_months} months"
    return np.sort(train), np.sort(hold), {"method": "stratified_random", "reason": why, "seed": seed}


class RangeClip(BaseEstimator, TransformerMixin):
    """Learns each column's training range (NaN ignored) and clips to it: the model never extrapolates."""

    def fit(self, x, y=None):
        x = np.asarray(x, dtype=np.float64)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)   # an all-NaN column: handled below
            lo, hi = np.nanmin(x, axis=0), np.nanmax(x, axis=0)
        empty = ~np.isfinite(lo) | ~np.isfinite(hi)          # a column with no value at all: no bound
        self.lo_ = np.where(empty, -features.MAX_ABS_VALUE, lo)
        self.hi_ = np.where(empty, features.MAX_ABS_VALUE, hi)
        return self

    def transform(self, x):
        return np.clip(np.asarray(x, dtype=np.float64), self.lo_, self.hi_)   # NaN stays NaN


class DropColumns(BaseEstimator, TransformerMixin):
    """Sets the given columns to 0, so their coefficient fits to exactly 0 (a feature dropped, the layout kept)."""

    def __init__(self, columns: tuple[int, ...] = ()):
        self.columns = columns

    def fit(self, x, y=None):
        return self

    def transform(self, x):
        x = np.array(x, dtype=np.float64)
        x[:, list(self.columns)] = 0.0
        return x


def build_pipeline(c: float = DEFAULT_C, dropped: tuple[int, ...] = ()) -> Pipeline:
    """clip to the training range -> drop columns -> impute (median, missing indicators) -> scale | one-hot -> LR."""
    numeric = Pipeline([("clip", RangeClip()), ("drop", DropColumns(tuple(dropped))),
                        ("impute", SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)),
                        ("scale", StandardScaler())])
    onehot = OneHotEncoder(categories=[np.arange(len(f.levels), dtype=np.float64) for f in features.CATEGORICAL],
                           handle_unknown="ignore", sparse_output=False)
    prep = ColumnTransformer([("num", numeric, list(range(features.N_NUMERIC))),
                              ("cat", onehot, list(range(features.N_NUMERIC, len(features.FEATURE_NAMES))))],
                             sparse_threshold=0.0)
    return Pipeline([("prep", prep), ("model", LogisticRegression(C=c, max_iter=2000))])


def wrong_signs(pipe: Pipeline) -> dict[int, float]:
    """Numeric columns whose fitted coefficient contradicts EXPECTED_SIGN: column -> coefficient."""
    coef = pipe.named_steps["model"].coef_[0]
    out = {}
    for j, feat in enumerate(features.NUMERIC):
        sign = EXPECTED_SIGN.get(feat.name)
        if sign is not None and coef[j] * sign < 0:
            out[j] = float(coef[j])
    return out


def fit_monotone(x: np.ndarray, y: np.ndarray, c: float = DEFAULT_C) -> tuple[Pipeline, dict[str, Any]]:
    """Fit; while a coefficient has the wrong sign, drop the worst such feature and refit (backward elimination).

    Returns the pipeline and what was dropped, with the coefficient each had when dropped.
    """
    dropped: dict[int, float] = {}
    while True:
        pipe = build_pipeline(c, tuple(sorted(dropped)))
        pipe.fit(x, y)
        wrong = wrong_signs(pipe)
        if not wrong:
            break
        worst = max(wrong, key=lambda j: abs(wrong[j]))
        logger.info("dropping %s: coefficient %.4f contradicts the expected direction",
                    features.NUMERIC[worst].name, wrong[worst])
        dropped[worst] = wrong[worst]
    return pipe, {"expected_sign": {k: EXPECTED_SIGN[k] for k in sorted(EXPECTED_SIGN)},
                  "dropped": {features.NUMERIC[j].name: coef for j, coef in sorted(dropped.items())}}


def export(pipe: Pipeline, train_matrix: np.ndarray) -> dict[str, Any]:
    """The fitted parameters as JSON-ready numbers (the scoring-relevant part of the artifact)."""
    prep = pipe.named_steps["prep"]
    lr = pipe.named_steps["model"]
    num = prep.named_transformers_["num"].named_steps
    imp, sc, clip = num["impute"], num["scale"], num["clip"]
    dropped = set(num["drop"].columns)
    p = features.N_NUMERIC
    ind_cols = [int(j) for j in imp.indicator_.features_] if imp.indicator_ is not None else []
    coef = lr.coef_[0].tolist()
    mean, scale = sc.mean_.tolist(), sc.scale_.tolist()
    impute = imp.statistics_.tolist()
    # A dropped column was zeroed before the scaler: its coefficient is 0, so any centre scores the same; the
    # real training statistics are stored instead, because reason codes judge HIGH / LOW against the mean.
    clipped = clip.transform(train_matrix[:, :p])
    for j in dropped:
        col = clipped[:, j][np.isfinite(clipped[:, j])]
        if len(col):
            mean[j], impute[j] = float(col.mean()), float(np.median(col))
            scale[j] = float(col.std()) or 1.0
    numeric = []
    for j, feat in enumerate(features.NUMERIC):
        indicator = None
        if j in ind_cols:
            k = p + ind_cols.index(j)
            indicator = {"mean": mean[k], "scale": scale[k], "coef": coef[k]}
        numeric.append({"name": feat.name, "group": feat.group, "sources": list(feat.sources),
                        "impute": impute[j], "mean": mean[j], "scale": scale[j], "coef": coef[j],
                        "indicator": indicator, "range": [float(clip.lo_[j]), float(clip.hi_[j])],
                        "dropped": j in dropped})
    pos = p + len(ind_cols)
    categorical = []
    for k, feat in enumerate(features.CATEGORICAL):
        levels = len(feat.levels)
        codes = train_matrix[:, p + k].astype(np.intp)
        share = np.bincount(codes, minlength=levels) / max(len(codes), 1)
        categorical.append({"name": feat.name, "group": feat.group, "source": feat.source,
                            "levels": list(feat.levels), "coef": coef[pos:pos + levels],
                            "reference": share.tolist()})
        pos += levels
    if pos != len(coef):
        raise RuntimeError(f"exported {pos} coefficients, the model has {len(coef)}")
    return {"numeric": numeric, "categorical": categorical, "intercept": float(lr.intercept_[0])}


def ks_statistic(y: np.ndarray, p: np.ndarray) -> float:
    fpr, tpr, _ = roc_curve(y, p)
    return float(np.max(tpr - fpr))


def calibration_table(y: np.ndarray, p: np.ndarray, bins: int = 10) -> list[dict[str, Any]]:
    """Deciles of predicted probability: rows, mean predicted, observed bad rate."""
    order = np.argsort(p, kind="stable")
    rows = []
    for k, idx in enumerate(np.array_split(order, bins), start=1):
        if len(idx) == 0:
            continue
        rows.append({"decile": k, "rows": int(len(idx)), "p_min": float(p[idx].min()), "p_max": float(p[idx].max()),
                     "predicted": float(p[idx].mean()), "observed": float(y[idx].mean())})
    return rows


def evaluate(data: Dataset, hold: np.ndarray, p: np.ndarray) -> dict[str, Any]:
    y = data.y[hold]
    out: dict[str, Any] = {
        "auc": float(roc_auc_score(y, p)), "ks": ks_statistic(y, p),
        "brier": float(np.mean((p - y) ** 2)),
        # Grade alone: a worse grade means more risk, so the grade index is the score.
        "grade_auc": float(roc_auc_score(y, data.grade[hold])),
        "calibration": calibration_table(y, p),
        "holdout_bad_rate": float(y.mean()), "mean_predicted": float(p.mean()),
    }
    if data.true_pd is not None:
        out["bayes_auc"] = float(roc_auc_score(y, data.true_pd[hold]))
    return out


def decision_threshold(data: Dataset, hold: np.ndarray, p: np.ndarray,
                       decline_share: float = DEFAULT_DECLINE_SHARE) -> tuple[float, dict[str, Any]]:
    """The probability that declines ``decline_share`` of eligible holdout applicants."""
    grade_ok = data.grade[hold] < len(ELIGIBLE_GRADES)
    eligible = grade_ok & (data.annual_inc[hold] >= ELIGIBLE_MIN_INCOME)
    pool = p[eligible] if eligible.any() else p
    threshold = float(np.quantile(pool, 1.0 - decline_share))
    declined = float(np.mean(pool >= threshold))
    return threshold, {"target_decline_share": decline_share, "eligible_holdout_rows": int(eligible.sum()),
                       "eligible_decline_share": declined,
                       "eligible_bad_rate_declined": float(data.y[hold][eligible][pool >= threshold].mean())
                       if eligible.any() else None}


@dataclass
class TrainResult:
    artifact: dict[str, Any]
    pipeline: Pipeline
    data: Dataset
    train_index: np.ndarray
    holdout_index: np.ndarray

    @property
    def headline(self) -> dict[str, Any]:
        return headline(self.artifact)


def headline(art: dict[str, Any], path: str | None = None) -> dict[str, Any]:
    m = art["report"]["metrics"]
    out = {k: round(m[k], 4) for k in ("auc", "ks", "brier", "grade_auc", "bayes_auc") if k in m}
    out.update(rows_train=art["report"]["rows_train"], rows_holdout=art["report"]["rows_holdout"],
               model_version=art["version"])
    if path is not None:
        out["artifact"] = path
    return out


def _created_at() -> str:
    # SOURCE_DATE_EPOCH (reproducible builds convention) pins the timestamp, so a rebuild has the same version.
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    ts = datetime.fromtimestamp(int(epoch), timezone.utc) if epoch else datetime.now(timezone.utc)
    return ts.isoformat(timespec="seconds").replace("+00:00", "Z")


def train(path: str | os.PathLike, *, c: float = DEFAULT_C, holdout_share: float = DEFAULT_HOLDOUT_SHARE,
          seed: int = DEFAULT_SEED, progress: bool = False) -> TrainResult:
    """Train on a LoanStats file; return the sealed artifact (with its report) and the fitted pipeline."""
    if not (isinstance(c, (int, float)) and c > 0):
        raise ValueError(f"c must be a positive number, got {c!r}")
    started = time.perf_counter()
    data = load_dataset(path, progress=progress)
    if len(data.y) < MIN_ROWS or len(np.unique(data.y)) < 2:
        raise ValueError(f"{path}: {len(data.y)} labelled rows with outcomes {sorted(set(data.y.tolist()))}; "
                         f"need at least {MIN_ROWS} with both good and bad loans")
    train_idx, hold_idx, holdout = split_holdout(data, share=holdout_share, seed=seed)
    pipe, monotone = fit_monotone(data.matrix[train_idx], data.y[train_idx], c)
    p = pipe.predict_proba(data.matrix[hold_idx])[:, 1]
    metrics = evaluate(data, hold_idx, p)
    threshold, decisions = decision_threshold(data, hold_idx, p)
    params = export(pipe, data.matrix[train_idx])
    train_p = pipe.predict_proba(data.matrix[train_idx])[:, 1]
    content = {
        "format": artifacts.FORMAT,
        "feature_spec_version": features.FEATURE_SPEC_VERSION,
        "features": list(features.FEATURE_NAMES),
        **params,
        "decision_threshold": threshold,
        # The training scores' distribution over the live histogram's bins: the reference of the population
        # stability index (credit_risk_model_reference_share).
        "score_reference": {"bins": list(SCORE_BIN_EDGES), "share": score_distribution(train_p),
                            "rows": int(len(train_idx)), "sample": "train"},
        "report": {"metrics": metrics, "holdout": holdout, "decision": decisions, "counts": data.counts,
                   "rows_train": int(len(train_idx)), "rows_holdout": int(len(hold_idx))},
        "training": {"estimator": "LogisticRegression", "C": c, "seed": seed, "holdout_share": holdout_share,
                     "sklearn": sklearn.__version__, "numpy": np.__version__, "monotone": monotone},
        "data": data.fingerprint,
        "created_at": _created_at(),
    }
    logger.info("trained on %d rows in %.1f s", len(train_idx), time.perf_counter() - started)
    return TrainResult(artifacts.seal(content), pipe, data, train_idx, hold_idx)


def format_report(art: dict[str, Any]) -> str:
    """The report as text for a terminal."""
    r = art["report"]
    m = r["metrics"]
    lines = [f"model {art['version']}  ({r['rows_train']} train / {r['rows_holdout']} holdout rows, "
             f"holdout: {r['holdout']['method']})",
             f"rows: {r['counts']['rows_read']} read, {r['counts']['rows_bad']} bad, "
             f"{r['counts']['rows_excluded_status']} left out by status {r['counts']['excluded_by_status']}, "
             f"{r['counts']['rows_rejected_inputs']} rejected inputs",
             f"AUC {m['auc']:.4f}  KS {m['ks']:.4f}  Brier {m['brier']:.4f}  grade-only AUC {m['grade_auc']:.4f}"
             + (f"  Bayes AUC {m['bayes_auc']:.4f}" if "bayes_auc" in m else ""),
             f"decision threshold {art['decision_threshold']:.4f} declines "
             f"{r['decision']['eligible_decline_share']:.1%} of eligible holdout applicants",
             "decile  rows  predicted  observed"]
    lines += [f"{row['decile']:>6} {row['rows']:>5}  {row['predicted']:9.4f}  {row['observed']:8.4f}"
              for row in m["calibration"]]
    return "\n".join(lines)
