"""Numpy scoring from the JSON artifact equals scikit-learn; reason codes are right, ordered and stable."""

from __future__ import annotations

import ast

import numpy as np
import pytest

from risk_api import artifact as artifacts
from risk_api import features, settings, training
from risk_api.scoring import MAX_REASONS, Model


def test_numpy_equals_sklearn_on_holdout(trained):
    model = Model(artifacts.loads(artifacts.dumps(trained.artifact)))    # through the JSON text
    x = trained.data.matrix[trained.holdout_index]
    assert len(x) >= 5000
    np.testing.assert_allclose(model.probabilities(x), trained.pipeline.predict_proba(x)[:, 1], rtol=0, atol=1e-9)


def test_numpy_equals_sklearn_with_missing_values_and_indicators(trained):
    # Training rows with missing optional inputs make the imputer add indicator columns: check those too.
    rng = np.random.default_rng(3)
    x = trained.data.matrix[:30_000].copy()
    y = trained.data.y[:30_000]
    for name in ("revol_util", "installment", "credit_history_months"):
        j = features.FEATURE_NAMES.index(name)
        x[rng.random(len(x)) < 0.07, j] = np.nan
    pipe = training.build_pipeline()
    pipe.fit(x[:25_000], y[:25_000])
    params = training.export(pipe, x[:25_000])
    assert sum(f["indicator"] is not None for f in params["numeric"]) == 3
    art = artifacts.seal({"format": artifacts.FORMAT, "feature_spec_version": features.FEATURE_SPEC_VERSION,
                          "features": list(features.FEATURE_NAMES), **params, "decision_threshold": 0.2})
    model = Model(artifacts.loads(artifacts.dumps(art)))
    test = x[25_000:]
    assert np.isnan(test).any()
    np.testing.assert_allclose(model.probabilities(test), pipe.predict_proba(test)[:, 1], rtol=0, atol=1e-9)


def _sklearn_contributions(trained, x):
    """coef x (standardised value - reference) per pipeline column, from scikit-learn's own transform."""
    prep = trained.pipeline.named_steps["prep"]
    coef = trained.pipeline.named_steps["model"].coef_[0]
    t = prep.transform(x)
    ref = prep.transform(trained.data.matrix[trained.train_index]).mean(axis=0)
    n_scaled = len(coef) - sum(len(f.levels) for f in features.CATEGORICAL)
    ref[:n_scaled] = 0.0                        # standardised columns: the training mean is 0 by construction
    return coef * (t - ref)


def test_contributions_match_definition_and_add_up(trained):
    model = Model(trained.artifact)
    x = trained.data.matrix[trained.holdout_index[:3000]]
    per_column = _sklearn_contributions(trained, x)
    groups = model.contributions(x)
    # All contributions plus the log-odds of the training reference give the log-odds of each applicant.
    p = trained.pipeline.predict_proba(x)[:, 1]
    base = np.log(p / (1 - p)) - per_column.sum(axis=1)
    np.testing.assert_allclose(groups.sum(axis=1) + base, np.log(p / (1 - p)), atol=1e-9)
    np.testing.assert_allclose(groups.sum(axis=1), per_column.sum(axis=1), atol=1e-9)
    # The grade group equals the sum of the grade one-hot columns.
    start = len(per_column[0]) - sum(len(f.levels) for f in features.CATEGORICAL)
    grade = per_column[:, start:start + len(features.CATEGORICAL[0].levels)].sum(axis=1)
    np.testing.assert_allclose(groups[:, model.groups.index("grade")], grade, atol=1e-9)


def test_reasons_are_top_positive_ordered_and_stable(trained):
    model = Model(trained.artifact)
    x = trained.data.matrix[trained.holdout_index[:2000]]
    reasons = model.top_reasons(x)
    contrib = model.contributions(x)
    assert len(reasons) == len(x)
    for row, items in enumerate(reasons):
        assert len(items) <= MAX_REASONS
        values = [r["contribution"] for r in items]
        assert values == sorted(values, reverse=True) and all(v > 0 for v in values)
        for r in items:
            g = model.groups.index(r["feature"])
            assert r["contribution"] == pytest.approx(contrib[row, g], abs=1e-6)
            assert r["code"] and r["text"]
        # Nothing left out that should be there: any larger positive, direction-allowed group is listed.
        if len(items) == MAX_REASONS:
            assert all(contrib[row, model.groups.index(r["feature"])] >= values[-1] - 1e-6 for r in items)
    assert sum(1 for items in reasons if items) > 0.95 * len(x)
    # Stable: the same applicant gets the same reasons, whatever the batch around it.
    perm = np.random.default_rng(1).permutation(len(x))
    again = model.top_reasons(x[perm])
    assert [again[k] for k in np.argsort(perm)] == reasons
    assert model.top_reasons(x[:1]) == reasons[:1]


def test_reason_directions_make_sense(trained):
    model = Model(trained.artifact)
    x = trained.data.matrix[trained.holdout_index[:2000]]
    codes = {r["code"] for items in model.top_reasons(x) for r in items}
    assert {"INCOME_LOW", "DTI_HIGH", "RATE_HIGH"} <= codes
    assert not codes & {"INCOME_HIGH", "DTI_LOW", "PUBREC_LOW", "DELINQ_LOW", "INQ_LOW"}


def test_ties_are_broken_by_group_order(trained):
    art = dict(trained.artifact)
    # Make two categorical groups contribute exactly the same amount for everybody.
    cats = [dict(c) for c in art["categorical"]]
    for c in cats[1:3]:
        c["coef"] = [1.0] * len(c["coef"])
        c["reference"] = [0.0] * len(c["reference"])
    model = Model(artifacts.seal({**art, "categorical": cats}))
    items = model.top_reasons(trained.data.matrix[:50])
    for row in items:
        feats = [r["feature"] for r in row]
        a, b = cats[1]["group"], cats[2]["group"]
        assert a in feats and b in feats and feats.index(a) < feats.index(b)


def test_model_rejects_mismatched_artifacts(trained):
    with pytest.raises(artifacts.ArtifactError, match="feature_spec_version"):
        Model(dict(trained.artifact, feature_spec_version=999))
    with pytest.raises(artifacts.ArtifactError, match="features"):
        Model(dict(trained.artifact, numeric=trained.artifact["numeric"][:-1]))
    bad = [dict(f) for f in trained.artifact["numeric"]]
    bad[0]["coef"] = float("nan")
    with pytest.raises(artifacts.ArtifactError, match="finite"):
        Model(dict(trained.artifact, numeric=bad))
    with pytest.raises(TypeError):
        Model(["not", "a", "mapping"])


def test_score_records_keeps_order_and_errors(trained, clean_records):
    model = Model(trained.artifact)
    recs = clean_records[:30] + [{"id": 5, "dti": "x"}] + clean_records[30:40]
    out = model.score_records(recs, threshold=0.0)
    assert len(out) == len(recs)
    assert [r["id"] for r in out] == [r.get("id") for r in recs]
    assert "error" in out[30] and all("error" not in r for i, r in enumerate(out) if i != 30)
    assert all(r["decision"] == "decline" for i, r in enumerate(out) if i != 30)
    assert all(r["decision"] == "approve" for r in model.score_records(clean_records[:30], threshold=1.0))


def test_packaged_default_artifact_loads():
    path = settings.DEFAULT_MODEL_PATH
    model = Model(artifacts.load(path))
    assert model.artifact["report"]["metrics"]["auc"] > model.artifact["report"]["metrics"]["grade_auc"]


def test_no_pickle_anywhere_in_the_package():
    # (risk_api.__file__ is unusable here: tests/risk_api shadows the package as a namespace package.)
    for src in settings.PACKAGE_DIR.rglob("*.py"):
        tree = ast.parse(src.read_text())
        names = {a.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
                 for a in node.names} | {node.module.split(".")[0] for node in ast.walk(tree)
                                          if isinstance(node, ast.ImportFrom) and node.module}
        assert not names & {"pickle", "joblib", "dill", "cloudpickle", "shelve"}, src
