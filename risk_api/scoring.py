"""Scores applicants with numpy from a JSON artifact: probability, risk band, decision and reason codes."""

from __future__ import annotations

import gc
import logging
import math
from contextlib import contextmanager
from typing import Any, Mapping, Sequence

import numpy as np

from risk_api import features, reasons
from risk_api.artifact import ArtifactError
from risk_api.ids import MAX_ID, MIN_ID, parse_id

logger = logging.getLogger(__name__)

MAX_REASONS = 4
# Upper probability bound of each risk band; the last band takes everything above.
RISK_BANDS: tuple[tuple[float, str], ...] = (
    (0.05, "very_low"), (0.10, "low"), (0.20, "medium"), (0.35, "high"), (math.inf, "very_high"))
_BAND_EDGES = np.array([b for b, _ in RISK_BANDS[:-1]])
_BAND_NAMES = tuple(name for _, name in RISK_BANDS)
_CHUNK = 4096
# The ten probability bins of the training score reference and of the live scores' histogram (Prometheus "le"
# buckets): bin k holds SCORE_BIN_EDGES[k-1] < p <= SCORE_BIN_EDGES[k] (the first from 0).
SCORE_BIN_EDGES: tuple[float, ...] = tuple(round(0.1 * k, 1) for k in range(1, 11))
SHARE_TOLERANCE = 1e-6


def score_distribution(p: np.ndarray) -> list[float]:
    """The share of probabilities ``p`` in each of the ten bins (SCORE_BIN_EDGES), as the live histogram counts."""
    p = np.asarray(p, dtype=np.float64)
    if p.size == 0:
        raise ValueError("no probabilities to bin")
    counts = np.bincount(np.searchsorted(SCORE_BIN_EDGES, p, side="left"), minlength=len(SCORE_BIN_EDGES))
    return (counts[:len(SCORE_BIN_EDGES)] / p.size).tolist()


def _floats(value: Any, n: int, what: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != (n,) or not np.isfinite(arr).all():
        raise ArtifactError(f"{what} must be {n} finite numbers")
    return arr


class Model:
    """An immutable scorer built from a sealed artifact dict; share one instance between threads freely."""

    def __init__(self, artifact: Mapping[str, Any]):
        if not isinstance(artifact, Mapping):
            raise TypeError(f"artifact must be a mapping, got {type(artifact).__name__}")
        try:
            self._build(artifact)
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, ArtifactError):
                raise
            raise ArtifactError(f"artifact is malformed: {exc!r}") from None
        self.artifact = artifact
        self.version: str = artifact["version"]

    def _build(self, a: Mapping[str, Any]) -> None:
        if a.get("feature_spec_version") != features.FEATURE_SPEC_VERSION:
            raise ArtifactError(f"artifact feature_spec_version {a.get('feature_spec_version')!r} does not match "
                                f"this code ({features.FEATURE_SPEC_VERSION})")
        num, cat = a["numeric"], a["categorical"]
        names = tuple(f["name"] for f in num) + tuple(f["name"] for f in cat)
        if names != features.FEATURE_NAMES:
            raise ArtifactError(f"artifact features {names} do not match this code's {features.FEATURE_NAMES}")
        p = len(num)
        self.median = _floats([f["impute"] for f in num], p, "impute")
        self.mean = _floats([f["mean"] for f in num], p, "mean")
        self.scale = _floats([f["scale"] for f in num], p, "scale")
        self.coef = _floats([f["coef"] for f in num], p, "coef")
        if (self.scale <= 0).any():
            raise ArtifactError("scale must be positive")
        if any("range" not in f for f in num):
            raise ArtifactError("artifact has no training ranges (numeric[].range): it predates out-of-range "
                                "handling; retrain it (python -m risk_api train) to serve it")
        ranges = np.array([_floats(f["range"], 2, f"{f['name']} range") for f in num])
        self.lo, self.hi = ranges[:, 0].copy(), ranges[:, 1].copy()
        if (self.lo > self.hi).any():
            raise ArtifactError("a training range has its lower bound above its upper bound")
        ind = [(j, f["indicator"]) for j, f in enumerate(num) if f.get("indicator") is not None]
        self.ind_cols = np.array([j for j, _ in ind], dtype=np.intp)
        self.ind_mean = _floats([i["mean"] for _, i in ind], len(ind), "indicator mean")
        self.ind_scale = _floats([i["scale"] for _, i in ind], len(ind), "indicator scale")
        self.ind_coef = _floats([i["coef"] for _, i in ind], len(ind), "indicator coef")
        self.intercept = float(a["intercept"])
        if not math.isfinite(self.intercept):
            raise ArtifactError("intercept must be finite")
        self.threshold = float(a["decision_threshold"])
        if not 0.0 <= self.threshold <= 1.0:
            raise ArtifactError("decision_threshold must be in [0, 1]")
        self.score_reference = _score_reference(a.get("score_reference"))
        self.level_coef: list[np.ndarray] = []
        self.level_ref: list[float] = []
        for spec, f in zip(features.CATEGORICAL, cat):
            if tuple(f["levels"]) != spec.levels:
                raise ArtifactError(f"artifact levels of {spec.name} do not match this code's {spec.levels}")
            coef = _floats(f["coef"], len(spec.levels), f"{spec.name} coef")
            ref = _floats(f["reference"], len(spec.levels), f"{spec.name} reference")
            self.level_coef.append(coef)
            self.level_ref.append(float(ref @ coef))
        # Probability fast path: the scaler folded into the coefficients.
        self.w = self.coef / self.scale
        self.ind_w = self.ind_coef / self.ind_scale
        self.bias = (self.intercept - float(self.coef @ (self.mean / self.scale))
                     - float(self.ind_coef @ (self.ind_mean / self.ind_scale)))
        self._build_reasons()

    def _build_reasons(self) -> None:
        groups: list[str] = []
        for f in features.NUMERIC:
            if f.group not in groups:
                groups.append(f.group)
        self.num_groups = tuple(groups)
        self.groups = self.num_groups + tuple(f.group for f in features.CATEGORICAL)
        self.num_group_of = np.array([groups.index(f.group) for f in features.NUMERIC], dtype=np.intp)
        # The column whose value decides HIGH / LOW for each numeric group: its first feature.
        self.primary = np.array([next(j for j, f in enumerate(features.NUMERIC) if f.group == g) for g in groups])
        self.extra_members = tuple((j, int(g)) for j, g in enumerate(self.num_group_of.tolist())
                                   if j != self.primary[g])
        # Reason templates (code, feature, text), numeric groups x (HIGH, LOW, MISSING) then every level.
        adverse = [(g, reasons.ADVERSE_DIRECTION[name] == "HIGH") for g, name in enumerate(groups)
                   if name in reasons.ADVERSE_DIRECTION]
        self.adverse_cols = np.array([g for g, _ in adverse], dtype=np.intp)
        self.adverse_high = np.array([h for _, h in adverse], dtype=bool)
        templates = []
        for g in groups:
            for d in ("HIGH", "LOW", "MISSING"):
                code, text = reasons.numeric_reason(g, d)
                templates.append({"code": code, "feature": g, "text": text})
        offsets = []
        for f in features.CATEGORICAL:
            offsets.append(len(templates))
            for lvl in f.levels:
                code, text = reasons.level_reason(f.group, lvl)
                templates.append({"code": code, "feature": f.group, "text": text})
        self.templates = tuple(templates)
        self.level_offsets = np.array(offsets, dtype=np.intp)

    # -- numbers -------------------------------------------------------------------------------------------------

    def probabilities(self, matrix: np.ndarray) -> np.ndarray:
        """P(default) for each row of a raw feature matrix (features.extract)."""
        # einsum, not @: BLAS would start threads, which only fight the web workers for the cores.
        x = matrix[:, :features.N_NUMERIC]
        miss = np.isnan(x)
        xi = np.where(miss, self.median, np.clip(x, self.lo, self.hi))   # never beyond the training range
        z = np.einsum("ij,j->i", xi, self.w) + self.bias
        if self.ind_cols.size:
            z += np.einsum("ij,j->i", miss[:, self.ind_cols].astype(np.float64), self.ind_w)
        for k, coef in enumerate(self.level_coef):
            z += coef[matrix[:, features.N_NUMERIC + k].astype(np.intp)]
        with np.errstate(over="ignore"):        # exp overflow gives p = 0 exactly, which is right
            return 1.0 / (1.0 + np.exp(-z))

    def contributions(self, matrix: np.ndarray) -> np.ndarray:
        """(n, groups) contributions to the log-odds: coefficient x (standardised value - training reference)."""
        x = matrix[:, :features.N_NUMERIC]
        miss = np.isnan(x)
        zs = (np.where(miss, self.median, np.clip(x, self.lo, self.hi)) - self.mean) / self.scale
        per_column = zs * self.coef
        out = np.empty((x.shape[0], len(self.groups)))
        out[:, :len(self.num_groups)] = per_column[:, self.primary]
        for j, g in self.extra_members:          # group members beyond the first (e.g. log_annual_inc)
            out[:, g] += per_column[:, j]
        if self.ind_cols.size:
            ind = (miss[:, self.ind_cols] - self.ind_mean) / self.ind_scale * self.ind_coef
            for k, g in enumerate(self.num_group_of[self.ind_cols].tolist()):
                out[:, g] += ind[:, k]
        for k, coef in enumerate(self.level_coef):
            out[:, len(self.num_groups) + k] = coef[matrix[:, features.N_NUMERIC + k].astype(np.intp)] \
                - self.level_ref[k]
        return out

    def top_reasons(self, matrix: np.ndarray, limit: int = MAX_REASONS) -> list[list[dict[str, Any]]]:
        """Per row, up to ``limit`` groups with positive contributions, largest first (ties by group order).

        A group with a known adverse direction (reasons.ADVERSE_DIRECTION) is only named in that direction.
        """
        n = matrix.shape[0]
        if n == 0:
            return []
        contrib = self.contributions(matrix)
        n_num = len(self.num_groups)
        primary = matrix[:, :features.N_NUMERIC][:, self.primary]
        high = primary > self.mean[self.primary]
        missing = np.isnan(primary)
        work = contrib                            # contributions() returns a fresh array: safe to overwrite
        if self.adverse_cols.size:
            cols = self.adverse_cols
            wrong_way = ~missing[:, cols] & (high[:, cols] != self.adverse_high)
            work[:, cols] = np.where(wrong_way, -np.inf, work[:, cols])
        # The top ``limit`` by repeated argmax: argmax returns the first maximum, so ties go by group order.
        rows = np.arange(n)
        order = np.empty((n, min(limit, work.shape[1])), dtype=np.intp)
        top = np.empty(order.shape)
        for k in range(order.shape[1]):
            best = work.argmax(axis=1)
            order[:, k] = best
            top[:, k] = work[rows, best]
            work[rows, best] = -np.inf
        top = np.round(top, 6)
        # Template id of every (row, group): numeric 3*g + (HIGH 0, LOW 1, MISSING 2); categorical offset + level.
        tid = np.empty((n, len(self.groups)), dtype=np.intp)
        tid[:, :n_num] = np.arange(n_num) * 3 + np.where(missing, 2, np.where(high, 0, 1))
        tid[:, n_num:] = matrix[:, features.N_NUMERIC:].astype(np.intp) + self.level_offsets
        chosen = np.take_along_axis(tid, order, axis=1)
        templates = self.templates
        return [[{**templates[t], "contribution": c} for t, c in zip(ts, cs) if c > 0.0]
                for ts, cs in zip(chosen.tolist(), top.tolist())]

    def out_of_range(self, matrix: np.ndarray) -> list[list[dict[str, Any]]]:
        """Per row, a reason for each feature group with an input outside the training range (first feature of
        the group that is), in feature order; its contribution is 0: it says the input was clipped."""
        x = matrix[:, :features.N_NUMERIC]
        with np.errstate(invalid="ignore"):
            low, high = x < self.lo, x > self.hi
        out: list[list[dict[str, Any]]] = [[] for _ in range(x.shape[0])]
        for i in np.flatnonzero((low | high).any(axis=1)).tolist():
            seen = set()
            for j in np.flatnonzero(low[i] | high[i]).tolist():
                feat = features.NUMERIC[j]
                if feat.group in seen:
                    continue
                seen.add(feat.group)
                code, text = reasons.range_reason(feat.group, feat.name, float(x[i, j]), float(self.lo[j]),
                                                  float(self.hi[j]))
                out[i].append({"code": code, "feature": feat.group, "text": text, "contribution": 0.0})
        return out

    def bands(self, p: np.ndarray) -> list[str]:
        return [_BAND_NAMES[i] for i in np.searchsorted(_BAND_EDGES, p, side="right").tolist()]

    # -- records -------------------------------------------------------------------------------------------------

    def score_records(self, records: Sequence[Any], threshold: float | None = None,
                      out_of_range: str = "flag") -> list[dict[str, Any]]:
        """One result per record, in order: a score or ``{"id", "error": {"field", "reason"}}``.

        An applicant with an input outside the training range is scored with it clipped and gets an out-of-range
        reason first (``out_of_range="flag"``), or is also declined (``"decline"``).
        """
        if out_of_range not in ("flag", "decline"):
            raise ValueError(f"out_of_range must be 'flag' or 'decline', got {out_of_range!r}")
        threshold = self.threshold if threshold is None else threshold
        # Building millions of result dicts would trigger full cyclic-GC passes over everything alive (they
        # hold no cycles; reference counting frees them), so the collector waits until the results are built.
        with _gc_paused():
            if len(records) <= _CHUNK:
                return self._score_chunk(records, threshold, out_of_range == "decline")
            # Chunks keep big inputs cache-friendly; the results are the same.
            return [r for start in range(0, len(records), _CHUNK)
                    for r in self._score_chunk(records[start:start + _CHUNK], threshold, out_of_range == "decline")]

    def _score_chunk(self, records: Sequence[Any], threshold: float, decline_out_of_range: bool
                     ) -> list[dict[str, Any]]:
        batch = features.extract(records)
        ids = [_id_of(r) for r in records]
        for i, v in enumerate(ids):
            if v is not None and type(v) is not int:
                ids[i], why = parse_id(v)                           # None when unusable: never echoed
                if why is not None:
                    batch.errors[i] = {"field": "id", "reason": why}     # the id first: it names the applicant
                    batch.ok[i] = False
            elif v is not None and not MIN_ID <= v <= MAX_ID:
                ids[i] = None
                batch.errors[i] = {"field": "id", "reason": parse_id(v)[1]}
                batch.ok[i] = False
        ok_rows = np.flatnonzero(batch.ok)
        m = batch.matrix if len(ok_rows) == len(records) else batch.matrix[ok_rows]
        p = self.probabilities(m)
        why = self.top_reasons(m)
        bands = self.bands(p)
        decision = ["decline" if d else "approve" for d in (p >= threshold).tolist()]
        for k, flags in enumerate(self.out_of_range(m)):
            if flags:
                why[k] = (flags + why[k])[:MAX_REASONS]
                if decline_out_of_range:
                    decision[k] = "decline"
        results: list[dict[str, Any]] = [None] * len(records)   # type: ignore[list-item]
        version = self.version
        for k, (i, pd) in enumerate(zip(ok_rows.tolist(), p.tolist())):
            results[i] = {"id": ids[i], "probability_of_default": pd, "risk_band": bands[k],
                          "decision": decision[k], "reasons": why[k], "model_version": version}
        for i, err in batch.errors.items():
            results[i] = {"id": ids[i], "error": err}
        return results


def _score_reference(ref: Any) -> tuple[float, ...] | None:
    """The training scores' share per bin (``score_reference.share``); None for an artifact trained before it
    (it still serves; only the reference metric is missing)."""
    if ref is None:
        return None
    if not isinstance(ref, Mapping) or tuple(ref.get("bins") or ()) != SCORE_BIN_EDGES:
        raise ArtifactError(f"score_reference.bins must be {list(SCORE_BIN_EDGES)}")
    share = _floats(ref.get("share"), len(SCORE_BIN_EDGES), "score_reference.share")
    if (share < 0).any() or abs(float(share.sum()) - 1.0) > SHARE_TOLERANCE:
        raise ArtifactError("score_reference.share must be ten shares >= 0 that add up to 1")
    return tuple(share.tolist())


@contextmanager
def _gc_paused():
    # Thread-safe enough: whoever found the collector enabled turns it back on, so it always ends enabled.
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _id_of(record: Any) -> Any:
    """The record's ``id`` as sent (checked by ids.parse_id before it is echoed)."""
    if type(record) is dict or isinstance(record, Mapping):
        return record.get("id")
    return None
