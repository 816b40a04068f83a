"""Training: target mapping, holdout choice, report, quality on >= 100,000 synthetic rows, the CLI."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import numpy as np
import orjson
import pytest

from credit_core.lendingclub import iter_records
from risk_api import artifact as artifacts
from risk_api import training


@pytest.mark.parametrize("status, expected", [
    ("Charged Off", 1), ("Default", 1), ("Fully Paid", 0),
    ("Does not meet the credit policy. Status:Charged Off", 1),
    ("Does not meet the credit policy. Status:Fully Paid", 0),
    ("  does not meet the credit policy.  status: charged off ", 1),
    ("Current", None), ("Late (31-120 days)", None), ("Late (16-30 days)", None), ("In Grace Period", None),
    ("Issued", None), ("", None), (None, None), (3, None),
])
def test_target_mapping(status, expected):
    assert training.target_of(status) == expected


def test_report_counts_every_row(trained, big_file):
    statuses = Counter(rec["loan_status"] for _, rec, _ in iter_records(big_file) if rec is not None)
    excluded = {s: n for s, n in statuses.items() if training.target_of(s) is None}
    counts = trained.artifact["report"]["counts"]
    assert excluded and counts["excluded_by_status"] == excluded
    assert counts["rows_excluded_status"] == sum(excluded.values())
    assert counts["rows_labelled"] == sum(statuses.values()) - sum(excluded.values())
    assert counts["rows_read"] == counts["rows_labelled"] + counts["rows_excluded_status"] + counts["rows_bad"]
    report = trained.artifact["report"]
    assert report["rows_train"] + report["rows_holdout"] == counts["rows_labelled"]
    # Policy-form statuses are labelled, not excluded.
    assert any(s.startswith("Does not meet") for s in statuses)
    assert not any(s.startswith("Does not meet") for s in excluded)


def test_out_of_time_holdout_on_synthetic(trained):
    holdout = trained.artifact["report"]["holdout"]
    assert holdout["method"] == "out_of_time"
    months = trained.data.issue_month
    assert months[trained.holdout_index].min() > months[trained.train_index].max()


def test_stratified_holdout_when_few_months(trained):
    data = trained.data
    one_month = training.Dataset(data.matrix, data.y, data.true_pd, np.full(len(data.y), 24000.0), data.grade,
                                 data.annual_inc)
    train_idx, hold_idx, desc = training.split_holdout(one_month)
    assert desc["method"] == "stratified_random"
    assert abs(data.y[hold_idx].mean() - data.y[train_idx].mean()) < 0.005
    assert len(np.intersect1d(train_idx, hold_idx)) == 0 and len(train_idx) + len(hold_idx) == len(data.y)


def test_quality_near_bayes_and_above_grade(trained):
    m = trained.artifact["report"]["metrics"]
    assert trained.artifact["report"]["rows_train"] + trained.artifact["report"]["rows_holdout"] >= 100_000 * 0.85
    assert abs(m["auc"] - m["bayes_auc"]) <= 0.02, m
    assert m["auc"] > m["grade_auc"], m
    assert 0.0 < m["brier"] < 0.25 and 0.0 < m["ks"] < 1.0
    cal = m["calibration"]
    assert [row["decile"] for row in cal] == list(range(1, 11))
    # Calibrated: each decile's mean prediction within 0.03 of its observed bad rate.
    assert all(abs(row["predicted"] - row["observed"]) < 0.03 for row in cal), cal


def test_threshold_declines_a_fifth_of_eligible(trained):
    decision = trained.artifact["report"]["decision"]
    assert 0.15 <= decision["eligible_decline_share"] <= 0.25
    assert 0.0 < trained.artifact["decision_threshold"] < 1.0


def test_artifact_is_sealed_json(trained, tmp_path):
    art = trained.artifact
    assert art["version"] == artifacts.content_version(art)
    path = artifacts.save(art, tmp_path / "m.json")
    assert artifacts.load(path) == art
    tampered = dict(art, intercept=art["intercept"] + 0.1)
    (tmp_path / "bad.json").write_bytes(artifacts.dumps(tampered))
    with pytest.raises(artifacts.ArtifactError, match="does not match its content"):
        artifacts.load(tmp_path / "bad.json")
    (tmp_path / "junk.json").write_bytes(b"\x80\x04pickle")
    with pytest.raises(artifacts.ArtifactError, match="not valid JSON"):
        artifacts.load(tmp_path / "junk.json")
    for key in ("numeric", "categorical", "intercept", "report", "data", "created_at", "features"):
        assert key in art
    assert art["data"]["sha256"] and art["data"]["bytes"] > 0


def test_too_little_data_is_refused(tmp_path):
    from credit_core import synthetic
    path = tmp_path / "tiny.csv"
    synthetic.generate(path, 20, seed=1)
    with pytest.raises(ValueError, match="labelled rows"):
        training.train(path)


def test_train_cli_prints_headline_last(small_file, tmp_path):
    out = tmp_path / "out"
    install = tmp_path / "serving" / "model.json"
    proc = subprocess.run([sys.executable, "-m", "risk_api", "train", "--data", str(small_file), "--out", str(out),
                           "--install", str(install)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    head = orjson.loads(proc.stdout.strip().splitlines()[-1])
    assert set(head) == {"auc", "ks", "brier", "grade_auc", "bayes_auc", "rows_train", "rows_holdout",
                         "model_version", "artifact"}
    art = artifacts.load(head["artifact"])
    assert art["version"] == head["model_version"] == artifacts.load(install)["version"]
    assert (out / f"model-{head['model_version']}.report.json").is_file()
    # The dirty rows of the file were counted, not lost, and the report says so.
    assert art["report"]["counts"]["rows_bad"] > 0
    assert "AUC" in proc.stderr and "left out by status" in proc.stderr


def test_train_cli_rejects_missing_file(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "risk_api", "train", "--data", str(tmp_path / "nope.csv")],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "does not exist" in proc.stderr


def test_score_reference_is_the_training_scores_distribution(trained):
    """The artifact carries its training scores' share per bin of the live probability histogram (upper edges
    0.1 .. 1.0, a score on an edge in the bin it closes, as Prometheus' le): the reference of the population
    stability index."""
    ref = trained.artifact["score_reference"]
    p = trained.pipeline.predict_proba(trained.data.matrix[trained.train_index])[:, 1]
    edges = [k / 10 for k in range(1, 11)]
    counts = [0] * 10
    for x in p.tolist():
        counts[next(k for k, edge in enumerate(edges) if x <= edge)] += 1
    assert ref["bins"] == edges and ref["rows"] == len(p) == trained.artifact["report"]["rows_train"]
    assert ref["share"] == [n / len(p) for n in counts]
    assert abs(sum(ref["share"]) - 1.0) < 1e-9 and ref["sample"] == "train"
    assert sum(1 for s in ref["share"] if s > 0.01) >= 3          # a spread, not one bin
