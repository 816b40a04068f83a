"""The synthetic LoanStats generator: format, determinism, marginals, ground truth and dirty rows."""

from __future__ import annotations

import collections
import csv
import gzip
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from credit_core import fields, synthetic
from applicant_api.__main__ import cli
from credit_core.lendingclub import LOANSTATS_COLUMNS, SUMMARY, Row, iter_records, read_loanstats

SAMPLE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "lendingclub_loanstats_sample.csv"
MARGINAL_ROWS = 50_000
RUNNING = ("Current", "Late (31-120 days)", "Late (16-30 days)", "In Grace Period")


@pytest.fixture(scope="module")
def marginal_records(tmp_path_factory):
    path = tmp_path_factory.mktemp("synthetic") / "marginals.csv.gz"
    report = synthetic.generate(path, MARGINAL_ROWS, seed=2024)
    records = []
    for line, rec, err in iter_records(path):
        assert err is None, (line, err)
        records.append(rec)
    return report, records


def column(records, name):
    return np.array([r[name] for r in records])


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    a, b, c = tmp_path / "a.csv.gz", tmp_path / "b.csv.gz", tmp_path / "c.csv.gz"
    synthetic.generate(a, 3_000, seed=5, dirty=0.05)
    synthetic.generate(b, 3_000, seed=5, dirty=0.05)
    synthetic.generate(c, 3_000, seed=6, dirty=0.05)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    plain = tmp_path / "a.csv"
    synthetic.generate(plain, 3_000, seed=5, dirty=0.05)
    assert gzip.decompress(a.read_bytes()) == plain.read_bytes()


def test_loanstats_format(tmp_path):
    path = tmp_path / "format.csv"
    report = synthetic.generate(path, 200, seed=1)
    lines = path.read_text().split("\n")
    assert lines[0].startswith("Notes offered by Prospectus")
    sample_header = next(csv.reader([SAMPLE.read_text().splitlines()[1]]))
    header = next(csv.reader([lines[1]]))
    assert header[:-1] == sample_header == list(LOANSTATS_COLUMNS)
    assert header[-1] == "true_pd"
    assert lines[-5:] == ["", "", f"Total amount funded in policy code 1: {int(report.funded_total)}",
                          "Total amount funded in policy code 2: 0", ""]
    rows = [item.raw for item in read_loanstats(path) if isinstance(item, Row)]
    assert len(rows) == 200
    assert [item.kind for item in read_loanstats(path) if not isinstance(item, Row)][-2:] == [SUMMARY, SUMMARY]
    for raw in rows:
        assert re.fullmatch(r" {1,2}\d{1,2}\.\d\d%", raw["int_rate"]) and len(raw["int_rate"]) == 7
        assert raw["term"] in (" 36 months", " 60 months")
        assert raw["emp_length"] in synthetic._EMP_LENGTHS
        assert re.fullmatch(r"[A-Z][a-z]{2}-20(1[2-8])", raw["issue_d"])
        assert re.fullmatch(r"[A-Z][a-z]{2}-(19|20)\d\d", raw["earliest_cr_line"])
        assert raw["revol_util"].endswith("%")
        assert raw["url"].endswith("loan_id=" + raw["id"])
    assert any("," in raw["emp_title"] for raw in synthetic_titles(tmp_path))


def synthetic_titles(tmp_path):
    path = tmp_path / "titles.csv"
    synthetic.generate(path, 2_000, seed=2)
    return [item.raw for item in read_loanstats(path) if isinstance(item, Row)]


def test_grade_mix(marginal_records):
    _, records = marginal_records
    counts = collections.Counter(column(records, "grade").tolist())
    for grade, target in zip(synthetic.GRADES, synthetic.GRADE_MIX):
        assert abs(counts[grade] / MARGINAL_ROWS - target) < 0.012, grade


def test_default_rate_rises_with_grade_in_lendingclub_range(marginal_records):
    _, records = marginal_records
    status = column(records, "loan_status")
    grade = column(records, "grade")
    finished = ~np.isin(status, RUNNING)
    charged = np.array(["Charged Off" in s or s.endswith("Default") for s in status.tolist()])
    rates = [charged[finished & (grade == g)].mean() for g in synthetic.GRADES]
    assert all(a < b for a, b in zip(rates, rates[1:])), rates
    assert 0.04 <= rates[0] <= 0.09, rates
    assert 0.33 <= rates[-1] <= 0.58, rates
    overall = charged[finished].mean()
    assert 0.14 <= overall <= 0.20, overall
    assert 0.07 <= 1 - finished.mean() <= 0.14          # share of loans still running
    assert {"Fully Paid", "Charged Off", "Current"} <= set(status.tolist())


def test_true_pd_is_the_documented_formula_and_calibrated(marginal_records):
    _, records = marginal_records
    pd = column(records, "true_pd")
    assert max(abs(synthetic.true_pd_of_record(r) - r["true_pd"]) for r in records[:5_000]) < 1e-6
    status = column(records, "loan_status")
    finished = ~np.isin(status, RUNNING)
    charged = np.array(["Charged Off" in s or s.endswith("Default") for s in status.tolist()])
    # the outcome is drawn from true_pd: calibrated overall and in the top and bottom deciles
    assert abs(charged[finished].mean() - pd[finished].mean()) < 0.01
    order = np.argsort(pd[finished])
    low, high = order[: order.size // 10], order[-(order.size // 10):]
    assert abs(charged[finished][low].mean() - pd[finished][low].mean()) < 0.015
    assert abs(charged[finished][high].mean() - pd[finished][high].mean()) < 0.03


def test_int_rate_monotone_by_sub_grade(marginal_records):
    _, records = marginal_records
    sub = column(records, "sub_grade")
    rate = column(records, "int_rate")
    means = [rate[sub == g + str(k)].mean() for g in synthetic.GRADES for k in range(1, 6)]
    assert all(a < b for a, b in zip(means, means[1:])), means
    assert 5.0 <= means[0] <= 7.0 and 25.0 <= means[-1] <= 30.0


def test_other_marginals(marginal_records):
    report, records = marginal_records
    grade = column(records, "grade")
    term = column(records, "term")
    long_share = [(term[grade == g] == 60).mean() for g in synthetic.GRADES[:5]]
    assert all(a < b for a, b in zip(long_share, long_share[1:])), long_share
    assert 55_000 <= np.median(column(records, "annual_inc")) <= 75_000
    dti = column(records, "dti")
    assert dti.min() >= 0 and np.mean(dti <= 40) > 0.98
    loan = column(records, "loan_amnt")
    assert loan.min() >= 1_000 and loan.max() <= 40_000 and np.all(loan % 25 == 0)
    for name in ("revol_util", "bc_util"):
        values = column(records, name)
        assert values.min() >= 0 and values.max() <= 100
    ids = column(records, "id")
    assert len(set(ids.tolist())) == len(ids) and np.all(np.diff(ids) > 0)
    assert len(set(column(records, "member_id").tolist())) == len(ids)
    years = collections.Counter(r["issue_d"][:4] for r in records)
    assert sorted(years) == [str(y) for y in range(2012, 2019)]
    assert years["2018"] > years["2012"]                 # volume grows
    assert report.first_id == ids[0] and report.last_id == ids[-1]


def test_dirty_rows_all_fail_validation(tmp_path):
    path = tmp_path / "dirty.csv.gz"
    report = synthetic.generate(path, 20_000, seed=9, dirty=0.05)
    assert 800 <= report.dirty_rows <= 1_200
    assert set(report.dirty_by_kind) == set(synthetic.DIRTY_KINDS)
    assert sum(report.dirty_by_kind.values()) == report.dirty_rows
    bad_fields = collections.Counter()
    good = bad = 0
    for _line, rec, err in iter_records(path):
        if err is None:
            good += 1
        else:
            bad += 1
            assert isinstance(err, fields.RecordError) and err.errors
            bad_fields.update(e["field"] for e in err.as_list())
    assert bad == report.dirty_rows
    assert good == 20_000 - report.dirty_rows
    assert {"dti", "annual_inc", "grade", "id", "loan_amnt"} <= set(bad_fields)


def test_bad_arguments_rejected(tmp_path):
    with pytest.raises(ValueError):
        synthetic.generate(tmp_path / "x.csv", -1, seed=1)
    with pytest.raises(ValueError):
        synthetic.generate(tmp_path / "x.csv", 10, seed=1, dirty=1.5)
    with pytest.raises(ValueError):
        synthetic.generate(tmp_path / "x.csv", 10, seed="1")
    with pytest.raises(TypeError):
        synthetic.generate(None, 10, seed=1)


def test_generate_command(tmp_path):
    out = tmp_path / "cli.csv.gz"
    result = CliRunner().invoke(cli, ["generate", "--rows", "500", "--seed", "3", "--out", str(out), "--dirty", "0.1"])
    assert result.exit_code == 0, result.output
    assert '"rows":500' in result.stdout.splitlines()[-1]
    again = tmp_path / "api.csv.gz"
    synthetic.generate(again, 500, seed=3, dirty=0.1)
    assert out.read_bytes() == again.read_bytes()
