"""The dashboard's figures as JSON-ready dicts, computed from the kept scrapes (pure: no I/O, no clock)."""

from __future__ import annotations

import logging
from typing import Any, Callable, Iterable, Mapping

from dashboard import figures, promtext
from dashboard.history import Scrape, TargetView
from dashboard.promtext import Snapshot
from dashboard.targets import WORKER_PREFIX

logger = logging.getLogger(__name__)

STAGES = ("filter", "decision", "submit", "save")          # the topology's stages, in order
STATE_RANK = {"crashed": 3, "stalled": 2, "running": 1, "idle": 0}
DECIDED = ("approved", "declined_model", "declined_policy")
THROUGHPUT_STEP = 5.0            # seconds per point of the applicants/s chart
DECISIONS_STEP = 30.0            # seconds per bar of the decisions chart
LATENCY_STEP = 30.0              # seconds per point of the latency chart
RECENT = 60.0                    # "now" figures (latency quantiles, batch durations) cover this many seconds
QUANTILES = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
GRADE_NOTE = ("Decisions written to HBase, by the applicant's grade (credit_decisions_saved_total): the policy "
              "declines grades E-G whatever the model says.")

RECORDS_IN = "credit_stage_records_in_total"
RECORDS_OUT = "credit_stage_records_out_total"
E2E = "credit_end_to_end_latency_seconds_bucket"
BATCH = "credit_stage_batch_duration_seconds_bucket"
RETRIES = "credit_retries_total"
PUBLISHED = "credit_producer_applicants_published_total"
SCORES = "credit_risk_score_probability_bucket"
REFERENCE = "credit_risk_model_reference_share"
RISK_DECISIONS = "credit_risk_decisions_total"
SAVED_BY_GRADE = "credit_decisions_saved_total"


def is_worker(name: str) -> bool:
    return name.startswith(WORKER_PREFIX)


def _points(view: TargetView, value: Callable[[Snapshot], float | None]) -> list[figures.Point]:
    out = []
    for scrape in view.scrapes:
        v = value(scrape.snapshot)
        if v is not None:
            out.append((scrape.t, v))
    return out


def _add_rates(points: list[list[figures.Point]], bounds: list[float]) -> list[float]:
    """The per-second rates of several targets' counters, added up, in each interval of ``bounds``."""
    series = [figures.rates(p, bounds) for p in points]
    return [x or 0.0 for x in figures.add_series(series)] if series else [0.0] * (len(bounds) - 1)


def _latest(views: Iterable[TargetView]) -> list[Snapshot]:
    return [v.latest.snapshot for v in views if v.latest is not None]


def _total(snapshots: Iterable[Snapshot], name: str, **match: str) -> float | None:
    found = [promtext.total(s, name, **match) for s in snapshots]
    present = [f for f in found if f is not None]
    return sum(present) if present else None


def _int_or_none(value: float | None) -> int | None:
    return None if value is None else int(round(value))


# -- services --------------------------------------------------------------------------------------------------

def service_rows(targets: Mapping[str, TargetView], now: float, stale_after: float) -> list[dict[str, Any]]:
    """One row per scraped process: up or down, since when, and (workers) what /health says."""
    rows = []
    for view in targets.values():
        up = (view.last_ok is not None and view.last_attempt == view.last_ok and now - view.last_ok <= stale_after)
        started = promtext.total(view.latest.snapshot, "process_start_time_seconds") if view.latest else None
        row = {"name": view.name, "up": up, "error": None if up else (view.error or "not scraped yet"),
               "last_ok_age": None if view.last_ok is None else round(now - view.last_ok, 1),
               "uptime_seconds": None if started is None or not up else round(now - started),
               "worker": is_worker(view.name)}
        if is_worker(view.name):
            row["health"] = _health_row(view)
        rows.append(row)
    return rows


def _health_row(view: TargetView) -> dict[str, Any]:
    body = view.health or {}
    if view.health_code is None:
        status = "unreachable"
    else:
        status = body.get("status") or ("ok" if view.health_code == 200 else "failing")
    stages = {}
    for name, stage in (body.get("stages") or {}).items():
        if isinstance(stage, Mapping):
            stages[str(name)] = {k: stage.get(k) for k in ("state", "lag", "seconds_since_last_record", "error")}
    return {"status": status, "code": view.health_code, "error": view.health_error, "stages": stages,
            "lag_available": body.get("lag_available")}


# -- pipeline --------------------------------------------------------------------------------------------------

def counters(targets: Mapping[str, TargetView]) -> dict[str, Any]:
    """Totals since the processes started (each process' last scrape, added up)."""
    workers = _latest(v for v in targets.values() if is_worker(v.name))
    everyone = _latest(targets.values())

    def worker_total(name: str, **match: str) -> int | None:
        # a labelled counter appears at its first increment: once a worker answered, none yet means 0
        value = _total(workers, name, **match)
        return _int_or_none(value) if value is not None or not workers else 0

    out: dict[str, Any] = {o: worker_total(RECORDS_OUT, outcome=o) for o in DECIDED}
    out["saved"] = worker_total(RECORDS_OUT, outcome="saved")
    out["dead_lettered"] = worker_total(RECORDS_OUT, outcome="dead_lettered")
    out["published"] = _int_or_none(_total(everyone, PUBLISHED))
    out["records_in"] = {stage: worker_total(RECORDS_IN, stage=stage) for stage in _stages(workers)}
    out["hbase_rows_written"] = _int_or_none(_total(everyone, "credit_hbase_rows_written_total"))
    decided = [out[o] for o in DECIDED]
    out["decided"] = sum(decided) if all(d is not None for d in decided) else None
    return out


def _stages(snapshots: Iterable[Snapshot]) -> list[str]:
    found = set()
    for s in snapshots:
        for name in (RECORDS_IN, RECORDS_OUT, BATCH):
            found.update(promtext.label(labels, "stage") for labels, _ in promtext.select(s, name))
    found.discard("")
    return list(STAGES) + sorted(found - set(STAGES))


def throughput(targets: Mapping[str, TargetView], now: float, horizon: float) -> dict[str, Any]:
    """Applicants per second into each stage (and published by the producer) over the horizon."""
    bounds = figures.edges(now, horizon, THROUGHPUT_STEP)
    recent = [now - min(10.0, horizon), now]
    workers = [v for v in targets.values() if is_worker(v.name)]
    counted = {stage: [_points(v, lambda s, st=stage: promtext.total(s, RECORDS_IN, stage=st) or 0.0)
                       for v in workers] for stage in _stages(_latest(workers))}
    producers = [v for v in targets.values() if any(PUBLISHED in sc.snapshot for sc in v.scrapes[-1:])]
    if producers:
        counted["published"] = [_points(v, lambda s: promtext.total(s, PUBLISHED)) for v in producers]
    series, current = {}, {}
    for name, points in counted.items():
        series[name] = _add_rates(points, bounds)
        current[name] = round(_add_rates(points, recent)[0], 1)
    return {"t": [round(b * 1000) for b in bounds[1:]], "series": {k: [round(x, 2) for x in v]
                                                                  for k, v in series.items()},
            "current": current, "step_seconds": THROUGHPUT_STEP}


def stage_rows(targets: Mapping[str, TargetView], now: float) -> list[dict[str, Any]]:
    """Per stage: its state and lag (the workers' /health, added up), seconds since it last took a record, and
    its batch duration p95 over the last minute."""
    workers = [v for v in targets.values() if is_worker(v.name)]
    rows = []
    for stage in _stages(_latest(workers)):
        states, lags, idle, errors = [], [], [], []
        for view in workers:
            info = ((view.health or {}).get("stages") or {}).get(stage)
            if not isinstance(info, Mapping):
                continue
            if info.get("state") in STATE_RANK:
                states.append(info["state"])
            if isinstance(info.get("lag"), (int, float)) and not isinstance(info.get("lag"), bool):
                lags.append(info["lag"])
            if isinstance(info.get("seconds_since_last_record"), (int, float)):
                idle.append(info["seconds_since_last_record"])
            if info.get("error"):
                errors.append(f"{view.name}: {info['error']}")
        state = max(states, key=STATE_RANK.get) if states else None
        rows.append({"stage": stage, "state": state, "lag": sum(lags) if lags else None,
                     "seconds_since_last_record": round(min(idle), 1) if idle else None,
                     "errors": errors,
                     "batch_p95_seconds": _recent_quantile(workers, BATCH, 0.95, now, stage=stage)})
    return rows


def lag_series(targets: Mapping[str, TargetView], now: float, horizon: float) -> dict[str, Any]:
    """Lag per stage over the horizon (the workers' /health, added up), and whether the broker allows it."""
    bounds = figures.edges(now, horizon, THROUGHPUT_STEP)[1:]
    workers = [v for v in targets.values() if is_worker(v.name)]
    series = {}
    for stage in _stages(_latest(workers)):
        per_worker = []
        for view in workers:
            points = []
            for scrape in view.scrapes:
                info = ((scrape.health or {}).get("stages") or {}).get(stage)
                lag = info.get("lag") if isinstance(info, Mapping) else None
                if isinstance(lag, (int, float)) and not isinstance(lag, bool):
                    points.append((scrape.t, float(lag)))
            per_worker.append([figures.value_at(points, t) for t in bounds])
        series[stage] = figures.add_series(per_worker) if per_worker else [None] * len(bounds)
    return {"t": [round(b * 1000) for b in bounds], "series": series, "available": lag_available(workers)}


def lag_available(workers: Iterable[TargetView]) -> bool | None:
    """False when a worker says its broker's end offsets cannot be trusted (Tansu), True when every worker that
    says anything says they can, None when none says."""
    said = []
    for view in workers:
        flag = (view.health or {}).get("lag_available")
        if flag is None and view.latest is not None:
            metric = promtext.total(view.latest.snapshot, "credit_consumer_lag_available")
            flag = None if metric is None else metric >= 1
        if flag is not None:
            said.append(bool(flag))
    return None if not said else all(said)


def _buckets(snapshot: Snapshot, name: str, **match: str) -> list[figures.Bucket]:
    out = []
    for labels, value in promtext.select(snapshot, name):
        if all(promtext.label(labels, k) == v for k, v in match.items()):
            out.append((figures.parse_le(promtext.label(labels, "le")), value))
    return figures.normalise(out)


def _scrape_at(scrapes: tuple[Scrape, ...], t: float) -> Scrape | None:
    found = None
    for scrape in scrapes:
        if scrape.t > t:
            break
        found = scrape
    return found


def _recent_buckets(views: Iterable[TargetView], name: str, now: float, span: float,
                    **match: str) -> list[figures.Bucket]:
    """The observations of the last ``span`` seconds (since the first scrape, when that is more recent), all
    targets merged."""
    merged: list[figures.Bucket] = []
    for view in views:
        if view.latest is None:
            continue
        before = _scrape_at(view.scrapes, now - span) or view.scrapes[0]
        if before is view.latest:
            continue
        merged.extend(figures.bucket_increase(_buckets(before.snapshot, name, **match),
                                              _buckets(view.latest.snapshot, name, **match)))
    return figures.normalise(merged)


def _cumulative_buckets(views: Iterable[TargetView], name: str, **match: str) -> list[figures.Bucket]:
    merged: list[figures.Bucket] = []
    for snapshot in _latest(views):
        merged.extend(_buckets(snapshot, name, **match))
    return figures.normalise(merged)


def _recent_quantile(views: list[TargetView], name: str, q: float, now: float, **match: str) -> float | None:
    """The quantile over the last minute, else (nothing observed in it) since the processes started."""
    value = figures.quantile(q, _recent_buckets(views, name, now, RECENT, **match))
    if value is None:
        value = figures.quantile(q, _cumulative_buckets(views, name, **match))
    return None if value is None else round(value, 4)


def latency(targets: Mapping[str, TargetView], now: float, horizon: float) -> dict[str, Any]:
    """End-to-end latency (raw record -> HBase) p50/p95/p99 over the last minute (else since the workers
    started), and p50/p95/p99 per interval over the horizon."""
    workers = [v for v in targets.values() if is_worker(v.name)]
    buckets, window = _recent_buckets(workers, E2E, now, RECENT), "last minute"
    if not buckets or buckets[-1][1] <= 0:
        buckets, window = _cumulative_buckets(workers, E2E), "since the workers started"
    out: dict[str, Any] = {"window": window, "count": int(buckets[-1][1]) if buckets else 0}
    for label, q in QUANTILES:
        value = figures.quantile(q, buckets)
        out[label] = None if value is None else round(value, 4)
    bounds = figures.edges(now, horizon, LATENCY_STEP)
    per_interval: list[list[figures.Bucket]] = [[] for _ in bounds[1:]]
    for view in workers:
        per_scrape = [(sc.t, dict(_buckets(sc.snapshot, E2E))) for sc in view.scrapes if sc.t > bounds[0] - 60]
        for le in (sorted(per_scrape[-1][1]) if per_scrape else []):
            incs = figures.increases([(t, b[le]) for t, b in per_scrape if le in b], bounds)
            for i, inc in enumerate(incs):
                per_interval[i].append((le, inc))
    series: dict[str, list[float | None]] = {label: [] for label, _ in QUANTILES}
    for buckets_i in per_interval:
        for label, q in QUANTILES:
            value = figures.quantile(q, buckets_i)
            series[label].append(None if value is None else round(value, 4))
    out["t"] = [round(b * 1000) for b in bounds[1:]]
    out["series"] = series
    return out


def retries(targets: Mapping[str, TargetView]) -> dict[str, int]:
    """Retries since the workers started, by cause."""
    out: dict[str, float] = {}
    for snapshot in _latest(targets.values()):
        for cause, n in promtext.grouped(snapshot, RETRIES, "cause").items():
            out[cause] = out.get(cause, 0.0) + n
        hbase = promtext.total(snapshot, "credit_hbase_write_retries_total")
        if hbase:
            out["hbase write"] = out.get("hbase write", 0.0) + hbase
    return {k: int(v) for k, v in sorted(out.items())}


def dead_letter_groups(targets: Mapping[str, TargetView]) -> list[dict[str, Any]]:
    """Dead letters the workers counted since they started, by stage and reason."""
    out: dict[tuple[str, str], float] = {}
    for snapshot in _latest(v for v in targets.values() if is_worker(v.name)):
        for labels, value in promtext.select(snapshot, RECORDS_OUT):
            if promtext.label(labels, "outcome") == "dead_lettered":
                group = (promtext.label(labels, "stage"), promtext.label(labels, "reason"))
                out[group] = out.get(group, 0.0) + value
    return [{"stage": s, "reason": r, "count": int(n)}
            for (s, r), n in sorted(out.items(), key=lambda kv: (-kv[1], kv[0])) if n > 0]


def pipeline(targets: Mapping[str, TargetView], now: float, horizon: float, stale_after: float) -> dict[str, Any]:
    """The pipeline view's figures (services, counters, throughput, stages, lag, latency, retries)."""
    return {
        "generated_at": round(now * 1000),
        "services": service_rows(targets, now, stale_after),
        "counters": counters(targets),
        "throughput": throughput(targets, now, horizon),
        "stages": stage_rows(targets, now),
        "lag": lag_series(targets, now, horizon),
        "latency": latency(targets, now, horizon),
        "retries": retries(targets),
        "dead_letters_counted": dead_letter_groups(targets),
    }


# -- business --------------------------------------------------------------------------------------------------

def _category(outcome: str, reason: str) -> str | None:
    if outcome == "approved":
        return "approved"
    if outcome == "declined_model":
        return "declined by model"
    if outcome == "declined_policy":
        return f"declined by policy: {reason}" if reason else "declined by policy"
    return None


def _categories(snapshot: Snapshot) -> dict[str, float]:
    out: dict[str, float] = {}
    for labels, value in promtext.select(snapshot, RECORDS_OUT):
        cat = _category(promtext.label(labels, "outcome"), promtext.label(labels, "reason"))
        if cat is not None:
            out[cat] = out.get(cat, 0.0) + value
    return out


def decisions(targets: Mapping[str, TargetView], now: float, horizon: float) -> dict[str, Any]:
    """Decisions by outcome (each policy rule apart) per interval over the horizon, and in total."""
    workers = [v for v in targets.values() if is_worker(v.name)]
    totals: dict[str, float] = {}
    for snapshot in _latest(workers):
        for cat, n in _categories(snapshot).items():
            totals[cat] = totals.get(cat, 0.0) + n
    bounds = figures.edges(now, horizon, DECISIONS_STEP)
    order = sorted(totals, key=lambda c: (0 if c == "approved" else 1 if c == "declined by model" else 2, c))
    per_scrape = [[(sc.t, _categories(sc.snapshot)) for sc in v.scrapes] for v in workers]
    series = {}
    for cat in order:
        counts = [figures.increases([(t, c.get(cat, 0.0)) for t, c in scrapes], bounds) for scrapes in per_scrape]
        series[cat] = [int(x or 0) for x in figures.add_series(counts)]
    return {"t": [round(b * 1000) for b in bounds[1:]], "series": series,
            "totals": {cat: int(totals[cat]) for cat in order}, "step_seconds": DECISIONS_STEP}


def approval(targets: Mapping[str, TargetView]) -> dict[str, Any]:
    """Approval rates from the workers' counters, the policy declines by rule, the risk API's decisions."""
    c = counters(targets)
    approved, model, policy = (c[o] for o in DECIDED)
    workers = _latest(v for v in targets.values() if is_worker(v.name))
    rules: dict[str, float] = {}
    for snapshot in workers:
        for labels, value in promtext.select(snapshot, RECORDS_OUT):
            if promtext.label(labels, "outcome") == "declined_policy":
                rule = promtext.label(labels, "reason") or "(no rule named)"
                rules[rule] = rules.get(rule, 0.0) + value
    risk: dict[str, float] = {}
    for snapshot in _latest(targets.values()):
        for outcome, n in promtext.grouped(snapshot, RISK_DECISIONS, "outcome").items():
            risk[outcome] = risk.get(outcome, 0.0) + n
    decided = c["decided"]
    scored = None if approved is None or model is None else approved + model
    return {
        "overall": _round(figures.ratio(approved, decided)),
        "scored": _round(figures.ratio(approved, scored)),
        "decided": decided, "scored_count": scored, "approved": approved,
        "policy_declines_by_rule": {k: int(v) for k, v in sorted(rules.items(), key=lambda kv: -kv[1])},
        "policy_share": _round(figures.ratio(policy, decided)),
        "risk_api_decisions": {k: int(v) for k, v in sorted(risk.items())},
        "by_grade": approval_by_grade(workers),
        "by_grade_note": GRADE_NOTE,
    }


def approval_by_grade(snapshots: Iterable[Snapshot]) -> dict[str, dict[str, Any]]:
    """grade -> {approved, declined, rate}: the workers' saved decisions by grade, summed over the workers."""
    counts: dict[str, dict[str, float]] = {}
    for snapshot in snapshots:
        for labels, value in promtext.select(snapshot, SAVED_BY_GRADE):
            grade = promtext.label(labels, "grade")
            verdict = "approved" if promtext.label(labels, "decision") == "approve" else "declined"
            row = counts.setdefault(grade, {"approved": 0.0, "declined": 0.0})
            row[verdict] += value
    return {grade: {"approved": int(row["approved"]), "declined": int(row["declined"]),
                    "rate": _round(figures.ratio(row["approved"], row["approved"] + row["declined"]))}
            for grade, row in sorted(counts.items())}


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def scores(targets: Mapping[str, TargetView]) -> dict[str, Any]:
    """The live score distribution (the risk API's histogram, over the kept history, else since it started) for
    the model version that scored most, its training reference, and their PSI with its band."""
    holders = [v for v in targets.values() if v.latest is not None and SCORES in v.latest.snapshot]
    if not holders:
        return {"model_version": None, "bins": [], "live_share": [], "reference_share": [], "count": 0,
                "basis": None, "psi": None, "band": None, "thresholds": [figures.PSI_WATCH, figures.PSI_SHIFT]}
    versions: dict[str, float] = {}
    for view in holders:
        for labels, value in promtext.select(view.latest.snapshot, SCORES):
            if promtext.label(labels, "le") == "+Inf":
                version = promtext.label(labels, "model_version")
                versions[version] = versions.get(version, 0.0) + value
    version = max(versions, key=lambda v: (versions[v], v))
    window: list[figures.Bucket] = []
    for view in holders:
        first = view.scrapes[0].snapshot
        window.extend(figures.bucket_increase(_buckets(first, SCORES, model_version=version),
                                              _buckets(view.latest.snapshot, SCORES, model_version=version))
                      if len(view.scrapes) > 1 else [])
    window = figures.normalise(window)
    basis = "the last 15 minutes"
    if not window or window[-1][1] <= 0:
        window, basis = _cumulative_buckets(holders, SCORES, model_version=version), "since the risk API started"
    reference: dict[float, float] = {}
    for view in holders:
        for labels, value in promtext.select(view.latest.snapshot, REFERENCE):
            if promtext.label(labels, "model_version") == version:
                try:
                    reference[float(promtext.label(labels, "bin"))] = value
                except ValueError:
                    continue
    live_bins = figures.bin_counts(window)
    if reference:
        bounds, live, ref = figures.align_bins(live_bins, reference)
    else:
        bounds, live, ref = [b for b, _ in live_bins], [n for _, n in live_bins], []
    live_share = figures.shares(live) or [0.0] * len(live)
    value = figures.psi(live, ref) if ref else None
    return {"model_version": version, "bins": [f"{b:g}" for b in bounds],
            "live_share": [round(x, 4) for x in live_share], "reference_share": [round(x, 4) for x in ref],
            "count": int(sum(live)), "basis": basis, "psi": _round(value), "band": figures.psi_band(value),
            "thresholds": [figures.PSI_WATCH, figures.PSI_SHIFT]}


def business(targets: Mapping[str, TargetView], now: float, horizon: float) -> dict[str, Any]:
    """The business view's figures (decisions over time, approval, score distribution and PSI)."""
    return {"generated_at": round(now * 1000), "decisions": decisions(targets, now, horizon),
            "approval": approval(targets), "scores": scores(targets)}
