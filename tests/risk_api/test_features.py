"""Feature rules: only allow-listed application-time fields can reach the model; input validation per record."""

from __future__ import annotations

import math

import numpy as np
import pytest

from credit_core import fields as appfields
from risk_api import artifact as artifacts
from risk_api import features, settings
from risk_api.scoring import Model


class RecordingDict(dict):
    """A record that remembers every key read from it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.read: set[str] = set()

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key, default=None):
        self.read.add(key)
        return super().get(key, default)


def test_allow_and_deny_lists_are_disjoint_and_complete():
    assert not features.ALLOWED_FIELDS & features.POST_ORIGINATION_FIELDS
    for name in ("total_pymnt", "total_pymnt_inv", "total_rec_prncp", "total_rec_int", "recoveries",
                 "collection_recovery_fee", "last_pymnt_d", "last_pymnt_amnt", "out_prncp", "out_prncp_inv",
                 "next_pymnt_d", "last_credit_pull_d", "loan_status", "true_pd"):
        assert name in features.POST_ORIGINATION_FIELDS
    assert set(features.SOURCES) <= features.ALLOWED_FIELDS
    for feat in features.NUMERIC:
        assert set(feat.sources) <= features.ALLOWED_FIELDS
    assert {f.source for f in features.CATEGORICAL} <= features.ALLOWED_FIELDS
    assert set(appfields.ORIGINAL_MODEL_FIELDS) <= set(features.FEATURE_NAMES)


def test_extraction_reads_only_allowed_fields(clean_records):
    # Both the fast path (all keys present) and the fallback (a key missing) are checked.
    full = [RecordingDict(r) for r in clean_records[:50]]
    partial = [RecordingDict({k: v for k, v in r.items() if k != "revol_util"}) for r in clean_records[:50]]
    for recs in (full, partial):
        features.extract(recs)
        read = set().union(*(r.read for r in recs))
        assert read and read <= features.ALLOWED_FIELDS, read - features.ALLOWED_FIELDS


def test_post_origination_values_cannot_change_the_matrix(clean_records):
    base = features.extract(clean_records[:500]).matrix
    rng = np.random.default_rng(0)
    leaky = []
    for r in clean_records[:500]:
        r = dict(r)
        for name in features.POST_ORIGINATION_FIELDS:
            r[name] = float(rng.normal() * 1e6)
        r["loan_status"] = "Charged Off"
        r["something_new"] = {"nested": [1, 2]}
        leaky.append(r)
    np.testing.assert_array_equal(features.extract(leaky).matrix, base)


def test_trained_model_uses_no_post_origination_field(trained):
    art = trained.artifact
    used = {s for f in art["numeric"] for s in f["sources"]} | {f["source"] for f in art["categorical"]}
    assert used <= features.ALLOWED_FIELDS
    assert not used & features.POST_ORIGINATION_FIELDS
    assert not set(art["features"]) & features.POST_ORIGINATION_FIELDS


def _one(rec) -> dict:
    return features.extract([rec]).errors.get(0)


@pytest.mark.parametrize("field, value, reason", [
    ("dti", math.nan, "finite"), ("annual_inc", math.inf, "finite"), ("loan_amnt", -math.inf, "finite"),
    ("dti", "12.5", "must be a number"), ("annual_inc", True, "boolean"), ("int_rate", [12], "must be a number"),
    ("loan_amnt", None, "is required"), ("grade", None, "is required"), ("grade", "Z", "A-G"),
    ("grade", 3, "A-G"), ("term", 37, "36 or 60"), ("emp_length", 11, "0..10"), ("emp_length", 2.5, "0..10"),
    ("annual_inc", 0, "> 0"), ("dti", 1000, "< 1000"), ("funded_amnt", 10 ** 400, "finite"),
    ("issue_d", "Dec-2014", "month"), ("issue_d", 201412, "month"), ("purpose", 7, "must be text"),
    ("open_acc", 2.5, "whole number"), ("open_acc", 10 ** 16, "<= 1e+15"), ("grade", "b", "A-G"),
])
def test_bad_values_are_rejected_with_field_and_reason(clean_records, field, value, reason):
    rec = dict(clean_records[0], **{field: value})
    err = _one(rec)
    assert err is not None and err["field"] == field and reason in err["reason"], err


def test_funded_above_requested_is_scored_clipped_and_flagged(clean_records):
    # The pipeline's filter refuses it; a direct caller gets the fund rate flagged as outside the training range.
    rec = dict(clean_records[0], funded_amnt=clean_records[0]["loan_amnt"] * 2)
    assert _one(rec) is None
    result = Model(artifacts.load(settings.DEFAULT_MODEL_PATH)).score_records([rec])[0]
    assert result["reasons"][0]["code"] == "FUNDED_OUT_OF_RANGE", result


def test_missing_optional_inputs_are_allowed(clean_records):
    rec = dict(clean_records[0], revol_util=None, emp_length=None, earliest_cr_line=None, purpose=None)
    del rec["installment"]
    batch = features.extract([rec])
    assert not batch.errors
    row = dict(zip(features.FEATURE_NAMES, batch.matrix[0]))
    assert math.isnan(row["revol_util"]) and math.isnan(row["installment"])
    assert math.isnan(row["credit_history_months"])
    assert row["emp_length"] == features.EMP_LENGTH_LEVELS.index("OTHER")


def test_bad_records_do_not_disturb_good_ones(clean_records):
    good = clean_records[:20]
    mixed = list(good)
    mixed.insert(3, "not an object")
    mixed.insert(7, dict(good[0], dti=math.nan))
    batch = features.extract(mixed)
    assert set(batch.errors) == {3, 7}
    assert batch.errors[3] == {"field": "$", "reason": "must be an object, got str"}
    np.testing.assert_array_equal(batch.matrix[batch.ok], features.extract(good).matrix)


def test_categorical_levels_are_normalised(clean_records):
    rec = clean_records[0]
    a = features.extract([dict(rec, verification_status="Source Verified", home_ownership="RENT")]).matrix
    b = features.extract([dict(rec, verification_status=" source verified ", home_ownership="rent")]).matrix
    c = features.extract([dict(rec, home_ownership="MARS")]).matrix
    np.testing.assert_array_equal(a, b)
    j = features.FEATURE_NAMES.index("home_ownership")
    assert c[0, j] == len(features.CATEGORICAL[1].levels) - 1


def test_extract_rejects_non_sequences():
    with pytest.raises(TypeError):
        features.extract({"a": 1})
    assert features.extract([]).matrix.shape == (0, len(features.FEATURE_NAMES))


WEIRD = [None, True, False, "", " ", "x", "12", "2014-13", "2014-1\u00b2", "\u0662\u0660\u0661\u0664-12", [], {},
         [1], {"a": 1}, -1, 0, 0.5, 1e308, -1e308, 10 ** 30, 10 ** 400, math.nan, math.inf, -math.inf, "A" * 10_000]


def test_no_value_of_any_field_can_crash_extraction(clean_records):
    base = clean_records[0]
    recs = [dict(base, **{name: value}) for name in features.SOURCES for value in WEIRD]
    recs += [{name: value} for name in features.SOURCES for value in WEIRD]
    batch = features.extract(recs)
    assert batch.matrix.shape == (len(recs), len(features.FEATURE_NAMES))
    assert np.isfinite(batch.matrix[batch.ok][:, features.N_NUMERIC:]).all()
    for i, err in batch.errors.items():
        assert set(err) == {"field", "reason"} and err["reason"]
    # A record either scores (a probability in [0, 1]) or says why not.
    model = Model(artifacts.load(settings.DEFAULT_MODEL_PATH))
    results = model.score_records(recs)
    assert len(results) == len(recs)
    for r in results:
        assert "error" in r or 0.0 <= r["probability_of_default"] <= 1.0, r
        # Reasons add to the risk, or (contribution 0) say an input was outside the training range.
        assert all(math.isfinite(x["contribution"]) and (x["contribution"] > 0 or (
            x["contribution"] == 0 and x["code"].endswith("_OUT_OF_RANGE"))) for x in r.get("reasons", ())), r
    assert sum("error" not in r for r in results) > len(features.SOURCES)
