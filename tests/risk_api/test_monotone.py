"""The model as a credit officer expects: training ranges in the artifact, out-of-range inputs clipped and flagged
(or declined), PD monotone in income, DTI and loan size, fitted coefficients with the expected signs."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings as hsettings
from hypothesis import strategies as st

from risk_api import artifact as artifacts
from risk_api import features, settings, training
from risk_api.app import create_app
from risk_api.scoring import Model

INCOMES = [1, 100, 1_000, 4_000, 10_000, 20_000, 40_000, 65_000, 100_000, 250_000, 1e6, 5e6, 1e9]
DTIS = [0, 0.5, 5, 10, 18, 25, 35, 45, 60, 100, 500, 999.99]
LOANS = [1, 500, 1_000, 2_500, 5_000, 10_000, 20_000, 35_000, 40_000, 100_000, 500_000, 1_000_000]
SLACK = 1e-12


def absurd(**overrides) -> dict:
    """A $35,000 loan at 25% over 36 months (the issue's case), income 1 unless overridden."""
    rec = {"id": 1, "loan_amnt": 35_000.0, "funded_amnt": 35_000.0, "term": 36, "int_rate": 25.0,
           "installment": 1391.6, "grade": "D", "annual_inc": 1.0, "dti": 20.0, "bc_open_to_buy": 0.0,
           "bc_util": 0.0, "total_il_high_credit_limit": 0.0}
    rec.update(overrides)
    return rec


def instalment(loan: float, rate: float, term: int) -> float:
    r = rate / 1200.0
    return loan * r / (1 - (1 + r) ** -term)


@pytest.fixture(scope="module")
def models(trained) -> dict[str, Model]:
    return {"trained": Model(trained.artifact), "packaged": Model(artifacts.load(settings.DEFAULT_MODEL_PATH))}


def _pds(model: Model, records: list[dict]) -> np.ndarray:
    out = model.score_records(records)
    assert all("error" not in r for r in out), [r for r in out if "error" in r][:2]
    return np.array([r["probability_of_default"] for r in out])


def _variants(base: dict, field: str, values: list[float]) -> list[dict]:
    out = []
    for v in values:
        rec = dict(base, **{field: float(v)})
        if field == "loan_amnt":                 # a larger loan: fully funded, its instalment follows
            rec["funded_amnt"] = float(v)
            rec["installment"] = instalment(v, rec["int_rate"], rec["term"])
        out.append(rec)
    return out


@pytest.mark.parametrize("which", ["trained", "packaged"])
def test_pd_is_monotone_over_a_grid_of_applicants(models, clean_records, which):
    model = models[which]
    bases = clean_records[:60] + [absurd(annual_inc=50_000.0)]
    for base in bases:
        by_income = _pds(model, _variants(base, "annual_inc", INCOMES))
        assert (np.diff(by_income) <= SLACK).all(), ("more income raised PD", base["id"], by_income)
        by_dti = _pds(model, _variants(base, "dti", DTIS))
        assert (np.diff(by_dti) >= -SLACK).all(), ("lower DTI raised PD", base["id"], by_dti)
        by_loan = _pds(model, _variants(base, "loan_amnt", LOANS))
        assert (np.diff(by_loan) >= -SLACK).all(), ("a larger loan lowered PD", base["id"], by_loan)
        no_instalment = {k: v for k, v in base.items() if k != "installment"}
        by_loan = _pds(model, _variants(no_instalment, "loan_amnt", LOANS))
        assert (np.diff(by_loan) >= -SLACK).all(), ("a larger loan lowered PD", base["id"], by_loan)
    # The grid is not flat: income and DTI do move PD.
    assert by_income[0] > by_income[-1] and by_dti[-1] > by_dti[0]


@hsettings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(i=st.integers(0, 199), inc=st.lists(st.floats(1, 1e9), min_size=2, max_size=2),
       dti=st.lists(st.floats(0, 999.99), min_size=2, max_size=2),
       loan=st.lists(st.floats(1, 1e6), min_size=2, max_size=2))
def test_pd_is_monotone_for_any_pair(models_and_records, i, inc, dti, loan):
    models, records = models_and_records
    model = models["packaged"]
    base = records[i]
    lo, hi = sorted(inc)
    a, b = _pds(model, _variants(base, "annual_inc", [lo, hi]))
    assert b <= a + SLACK
    lo, hi = sorted(dti)
    a, b = _pds(model, _variants(base, "dti", [lo, hi]))
    assert b >= a - SLACK
    lo, hi = sorted(loan)
    a, b = _pds(model, _variants(base, "loan_amnt", [lo, hi]))
    assert b >= a - SLACK


@pytest.fixture(scope="module")
def models_and_records(models, clean_records):
    return models, clean_records[:200]


@pytest.mark.parametrize("which", ["trained", "packaged"])
def test_fitted_coefficients_have_the_expected_signs(models, trained, which):
    art = models[which].artifact
    for f in art["numeric"]:
        sign = training.EXPECTED_SIGN.get(f["name"])
        if sign is not None:
            assert f["coef"] * sign >= 0, f
        assert f["dropped"] == (f["name"] in art["training"]["monotone"]["dropped"])
        if f["dropped"]:
            assert f["coef"] == 0.0
    assert training.wrong_signs(trained.pipeline) == {}
    # The income, DTI and loan-size directions are all pinned down.
    for name in ("annual_inc", "log_annual_inc", "loan_to_income", "dti", "loan_amnt", "funded_amnt", "installment"):
        assert name in training.EXPECTED_SIGN


@pytest.mark.parametrize("income", [1.0, 100.0])
def test_absurd_applicants_are_flagged_and_declined(models, income):
    for which, model in models.items():
        result = model.score_records([absurd(annual_inc=income)])[0]
        codes = [r["code"] for r in result["reasons"]]
        assert codes[:2] == ["INCOME_OUT_OF_RANGE", "LTI_OUT_OF_RANGE"], (which, result)
        assert "Annual income is below the range the model was trained on" in result["reasons"][0]["text"]
        assert "Loan amount relative to income is above" in result["reasons"][1]["text"]
        assert result["reasons"][0]["contribution"] == 0.0 and len(result["reasons"]) <= 4
        # Scored as the lowest income seen in training: a high PD, never 0, and declined.
        assert result["probability_of_default"] > 0.3 and result["decision"] == "decline", (which, result)
        assert model.score_records([absurd(annual_inc=income)], out_of_range="decline")[0]["decision"] == "decline"


def test_out_of_range_setting_declines_what_flag_mode_approves(serve, model_path, models, clean_records):
    model = models["trained"]
    lo, hi = model.lo[features.FEATURE_NAMES.index("revol_util")], model.hi[features.FEATURE_NAMES.index(
        "revol_util")]
    assert hi < 1000
    # A good applicant with one input beyond the training range (revolving utilisation 999%).
    approved = [r for r in clean_records[:300]
                if model.score_records([r])[0]["decision"] == "approve" and r.get("revol_util") is not None]
    rec = dict(approved[0], revol_util=999.0)
    flagged = serve(model_path).request("POST", "/api/v1/score", json=rec).json()
    declined = serve(model_path, OUT_OF_RANGE="decline").request("POST", "/api/v1/score", json=rec).json()
    assert flagged["reasons"][0]["code"] == "REVUTIL_OUT_OF_RANGE"
    assert "Revolving credit utilisation is above the range" in flagged["reasons"][0]["text"]
    assert declined["probability_of_default"] == flagged["probability_of_default"]
    assert declined["decision"] == "decline" and declined["reasons"] == flagged["reasons"]
    # In range, the setting changes nothing.
    ok = approved[1]
    a = serve(model_path, OUT_OF_RANGE="decline").request("POST", "/api/v1/score", json=ok).json()
    assert a["decision"] == "approve" and not any(r["code"].endswith("_OUT_OF_RANGE") for r in a["reasons"])
    assert settings.from_env({"RISK_OUT_OF_RANGE": "decline"})["OUT_OF_RANGE"] == "decline"
    assert settings.from_env({})["OUT_OF_RANGE"] == "flag"
    with pytest.raises(settings.SettingsError, match="RISK_OUT_OF_RANGE"):
        settings.from_env({"RISK_OUT_OF_RANGE": "clip"})


def test_artifact_records_training_ranges_under_its_version(trained):
    art = trained.artifact
    x = trained.data.matrix[trained.train_index]
    for j, f in enumerate(art["numeric"]):
        col = x[:, j][np.isfinite(x[:, j])]
        assert f["range"] == [float(col.min()), float(col.max())], f["name"]
    changed = [dict(f) for f in art["numeric"]]
    changed[2]["range"] = [changed[2]["range"][0] - 1, changed[2]["range"][1]]
    assert artifacts.content_version({**art, "numeric": changed}) != art["version"]


def test_clipping_is_part_of_the_model_numpy_equals_sklearn_beyond_the_range(trained):
    model = Model(artifacts.loads(artifacts.dumps(trained.artifact)))
    x = trained.data.matrix[trained.holdout_index[:2000]].copy()
    rng = np.random.default_rng(5)
    n = features.N_NUMERIC
    x[:, :n] *= rng.choice([0.001, 1.0, 1000.0], size=(len(x), n))       # far outside on both sides
    np.testing.assert_allclose(model.probabilities(x), trained.pipeline.predict_proba(x)[:, 1], rtol=0, atol=1e-9)


def test_an_artifact_without_ranges_fails_clearly(trained, tmp_path):
    old = artifacts.seal({**trained.artifact, "numeric": [{k: v for k, v in f.items() if k != "range"}
                                                          for f in trained.artifact["numeric"]]})
    with pytest.raises(artifacts.ArtifactError, match="no training ranges"):
        Model(old)
    path = artifacts.save(old, tmp_path / "old.json")
    with pytest.raises(artifacts.ArtifactError, match="retrain it"):
        create_app({"MODEL_PATH": str(path), "API_TOKEN": "t", "WATCH_SECONDS": 0.0})


@pytest.mark.timeout(300)
def test_packaged_model_is_what_the_training_command_builds(tmp_path):
    out = tmp_path / "default.json"
    proc = subprocess.run([sys.executable, "-m", "risk_api", "build-default", "--out", str(out)],
                          capture_output=True, text=True, timeout=280)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert out.read_bytes() == settings.DEFAULT_MODEL_PATH.read_bytes()
    art = artifacts.load(out)
    assert all(len(f["range"]) == 2 and f["range"][0] <= f["range"][1] for f in art["numeric"])
    assert art["training"]["monotone"]["dropped"]
