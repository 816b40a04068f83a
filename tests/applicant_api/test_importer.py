"""The importer against a real MariaDB: shared sample, quirk fixtures, gz/zip, re-import, rejects, the CLI."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import orjson
import pymysql
import pytest

from applicant_api import importer
from credit_core import synthetic
from credit_core.lendingclub import BLANK, NOTICE, SUMMARY, iter_records

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO.parent / "shared" / "data" / "lendingclub_loanstats_sample.csv"
QUIRKS = Path(__file__).resolve().parent.parent / "fixtures" / "loanstats_quirks.csv"

QUIRKS_REJECTS = [
    (7, "37822187", [{"field": "dti", "reason": "must be a number, got letters in '12.5a'"}]),
    (8, None, [{"field": "$row", "reason": "expected 111 fields, got 20"}]),
    (10, "", [{"field": "id", "reason": "is required"}, {"field": "grade", "reason": "must be one of A-G, got 'H'"}]),
]


def fetch(conn, sql, args=None):
    with conn.cursor() as cur:
        cur.execute(sql, args)
        return cur.fetchall()


def rows_by_id(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT * FROM applications ORDER BY seq")
        names = [d[0] for d in cur.description]
        return {row[names.index("id")]: dict(zip(names, row)) for row in cur.fetchall()}


def test_shared_sample_imported_with_correct_values(db_url, db_conn):
    report = importer.import_file(SAMPLE, db_url, source="lc-sample")
    assert (report.rows, report.imported, report.duplicates, report.rejected) == (4, 4, 0, 0)
    assert report.ignored_lines == {NOTICE: 1, BLANK: 0, SUMMARY: 0}
    rows = rows_by_id(db_conn)
    assert list(rows) == [38098114, 36805548, 37822187, 37612354]      # file order = seq order
    first = rows[38098114]
    assert first["member_id"] == 40860827 and first["loan_amnt"] == 15000.0 and first["funded_amnt"] == 15000.0
    assert first["term"] == 60 and first["int_rate"] == 12.39 and first["installment"] == 336.64
    assert (first["grade"], first["sub_grade"], first["emp_title"]) == ("C", "C1", "MANAGEMENT")
    assert first["emp_length"] == 10 and first["home_ownership"] == "RENT" and first["annual_inc"] == 78000.0
    assert first["issue_d"] == "2014-12" and first["earliest_cr_line"] == "1994-08"
    assert first["dti"] == 12.03 and first["revol_util"] == 29.0 and first["bc_util"] == 4.7
    assert first["bc_open_to_buy"] == 9525.0 and first["total_il_high_credit_limit"] == 12000.0
    assert first["loan_status"] == "Current" and first["true_pd"] is None and first["source"] == "lc-sample"
    assert rows[36805548]["int_rate"] == 6.99 and rows[36805548]["emp_length"] == 8
    assert rows[37612354]["revol_util"] == 100.9 and rows[37822187]["loan_status"] == "Fully Paid"
    seqs = [r["seq"] for r in rows.values()]
    assert seqs == sorted(seqs)


def test_reimport_does_not_duplicate(db_url, db_conn):
    first = importer.import_file(SAMPLE, db_url)
    again = importer.import_file(SAMPLE, db_url)
    assert (first.imported, first.duplicates) == (4, 0)
    assert (again.rows, again.imported, again.duplicates, again.rejected) == (4, 0, 4, 0)
    assert fetch(db_conn, "SELECT COUNT(*) FROM applications")[0][0] == 4


@pytest.mark.parametrize("packing", ["plain", "gz", "zip"])
def test_quirks_fixture(db_url, db_conn, tmp_path, packing):
    path = QUIRKS
    if packing == "gz":
        path = tmp_path / "LoanStats_quirks.csv.gz"
        path.write_bytes(gzip.compress(QUIRKS.read_bytes()))
    elif packing == "zip":
        path = tmp_path / "LoanStats_quirks.zip"
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("notes.txt", "not the data\n")
            zf.writestr("LoanStats_quirks.csv", QUIRKS.read_text().replace("\n", "\r\n"))
    rejects_file = tmp_path / "rejects.jsonl"
    report = importer.import_file(path, db_url, batch_size=2, rejects_file=rejects_file)
    # 8 data rows: 4 new, 1 repeats an id already seen in the file, 3 rejected
    assert (report.rows, report.imported, report.duplicates, report.rejected) == (8, 4, 1, 3)
    assert report.ignored_lines == {NOTICE: 1, BLANK: 3, SUMMARY: 2}
    assert [(r.line_no, r.id, r.errors) for r in report.rejects] == QUIRKS_REJECTS
    written = [orjson.loads(line) for line in rejects_file.read_bytes().splitlines()]
    assert [(r["line"], r["id"], r["errors"]) for r in written] == QUIRKS_REJECTS
    assert written[0]["reason"] == "dti: must be a number, got letters in '12.5a'"
    rows = rows_by_id(db_conn)
    assert sorted(rows) == [36805548, 37612354, 38098114, 40000001]
    assert rows[38098114]["loan_amnt"] == 15000.0          # the first row with that id stays
    assert rows[36805548]["emp_title"] == "Manager, Operations"
    assert rows[37612354]["emp_length"] == 0 and rows[37612354]["bc_util"] == 0.0
    assert rows[40000001]["emp_length"] is None and rows[40000001]["revol_util"] is None
    assert rows[40000001]["issue_d"] == "2015-01"


@pytest.mark.parametrize("writer_process", [False, True], ids=["writer-thread", "writer-process"])
def test_synthetic_dirty_file_counts_reconcile(db_url, db_conn, tmp_path, writer_process):
    path = tmp_path / "dirty.csv.gz"
    gen = synthetic.generate(path, 5_000, seed=21, dirty=0.04)
    report = importer.import_file(path, db_url, batch_size=700, source="synthetic", max_rejects_kept=10,
                                  writer_process=writer_process)
    assert report.rows == 5_000
    assert report.rejected == gen.dirty_rows > 100
    assert report.imported == 5_000 - gen.dirty_rows and report.duplicates == 0
    assert len(report.rejects) == 10 and all(r.errors and r.line_no > 2 for r in report.rejects)
    count, with_pd, sources = fetch(
        db_conn, "SELECT COUNT(*), COUNT(true_pd), COUNT(DISTINCT source) FROM applications")[0]
    assert (count, with_pd, sources) == (report.imported, report.imported, 1)
    again = importer.import_file(path, db_url, batch_size=5_000, writer_process=writer_process)
    assert (again.imported, again.duplicates, again.rejected) == (0, report.imported, gen.dirty_rows)
    # values survive the trip (through the writer process too): compare with the cleaned file
    expected = {rec["id"]: rec for _, rec, err in iter_records(path) if err is None}
    stored = rows_by_id(db_conn)
    assert stored.keys() == expected.keys()
    for row_id in list(expected)[::97]:
        assert {k: stored[row_id][k] for k in expected[row_id]} == expected[row_id]
    seqs = [stored[i]["seq"] for i in expected]          # file order is kept
    assert seqs == sorted(seqs)


@pytest.mark.parametrize("writer_process", [False, True], ids=["writer-thread", "writer-process"])
def test_rows_the_server_refuses_are_rejected_not_fatal(db_url, db_conn, writer_process):
    """If MySQL refuses a batch (here: a CHECK constraint), the rows are retried one by one and reported."""
    with db_conn.cursor() as cur:
        cur.execute("ALTER TABLE applications ADD CONSTRAINT chk_small_loans CHECK (loan_amnt < 12000)")
    report = importer.import_file(SAMPLE, db_url, batch_size=10, writer_process=writer_process)
    assert (report.rows, report.imported, report.duplicates, report.rejected) == (4, 2, 0, 2)
    assert sorted((r.line_no, r.id) for r in report.rejects) == [(3, "38098114"), (6, "37612354")]
    assert all(r.errors[0]["field"] == "$db" and "chk_small_loans" in r.errors[0]["reason"] for r in report.rejects)
    assert sorted(rows_by_id(db_conn)) == [36805548, 37822187]


@pytest.mark.parametrize("writer_process", [False, True], ids=["writer-thread", "writer-process"])
def test_statement_errors_stop_the_import_instead_of_rejecting_every_row(db_url, db_conn, writer_process):
    with db_conn.cursor() as cur:
        cur.execute("DROP TABLE applications")
    with pytest.raises(pymysql.err.ProgrammingError) as info:
        importer.import_file(SAMPLE, db_url, create_schema=False, writer_process=writer_process)
    assert info.value.args[0] == 1146                     # no such table


def test_large_files_get_a_writer_process_by_default(db_url, tmp_path, monkeypatch):
    path = tmp_path / "big.csv"
    synthetic.generate(path, 3_000, seed=8)
    started = []
    real = importer._ProcessSink.__init__

    def spy(self, *args, **kwargs):
        started.append(True)
        real(self, *args, **kwargs)

    monkeypatch.setattr(importer._ProcessSink, "__init__", spy)
    monkeypatch.setattr(importer, "WRITER_PROCESS_MIN_BYTES", path.stat().st_size)
    assert importer.import_file(path, db_url).imported == 3_000
    assert started == [True]
    monkeypatch.setattr(importer, "WRITER_PROCESS_MIN_BYTES", path.stat().st_size + 1)
    assert importer.import_file(path, db_url).duplicates == 3_000
    assert started == [True]


def test_statements_are_split_by_size(monkeypatch):
    monkeypatch.setattr(importer, "MAX_STATEMENT_CHARS", 25)
    rows = ["(" + "1" * 10 + ")"] * 5
    statements = list(importer._statements(rows))
    assert len(statements) == 3
    assert sum(s.count("(1111111111)") for s in statements) == 5
    assert all(s.startswith("INSERT INTO `applications`") and s.endswith("`id` = `id`") for s in statements)


def test_bad_arguments_rejected(db_url):
    with pytest.raises(ValueError):
        importer.import_file(SAMPLE, db_url, batch_size=0)
    with pytest.raises(ValueError):
        importer.import_file(SAMPLE, db_url, source="x" * 65)
    with pytest.raises(TypeError):
        importer.import_file(None, db_url)


def run_cli(*args, url):
    env = dict(os.environ, MYSQL_URL=url)
    return subprocess.run([sys.executable, "-m", "applicant_api", *args], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=120)


def test_cli_init_db_and_import(db_url, db_conn, tmp_path):
    with db_conn.cursor() as cur:
        cur.execute("DROP TABLE applications")
    for _ in range(2):                                    # idempotent
        result = run_cli("init-db", url=db_url)
        assert result.returncode == 0, result.stderr
    assert fetch(db_conn, "SELECT COUNT(*) FROM applications")[0][0] == 0
    rejects = tmp_path / "rejects.jsonl"
    result = run_cli("import", str(QUIRKS), "--batch-size", "3", "--source", "cli", "--rejects", str(rejects),
                     "--show-rejects", "2", url=db_url)
    assert result.returncode == 0, result.stderr
    summary = orjson.loads(result.stdout.strip().splitlines()[-1])
    assert {k: summary[k] for k in ("rows", "imported", "duplicates", "rejected", "source")} == {
        "rows": 8, "imported": 4, "duplicates": 1, "rejected": 3, "source": "cli"}
    assert "line 7: skipped" in result.stderr and "line 8: skipped" in result.stderr
    assert "line 10" not in result.stderr and "1 more rejected rows; all in" in result.stderr
    assert len(rejects.read_bytes().splitlines()) == 3
    assert fetch(db_conn, "SELECT COUNT(*) FROM applications WHERE source = 'cli'")[0][0] == 4


def test_cli_reports_a_file_that_is_not_loanstats(db_url, tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("a,b\n1,2\n")
    result = run_cli("import", str(path), url=db_url)
    assert result.returncode == 1
    assert "no LoanStats header" in result.stderr
    assert result.stdout == ""


def test_cli_reports_a_truncated_archive_after_importing_what_it_could(db_url, db_conn, tmp_path):
    data = gzip.compress(QUIRKS.read_bytes())
    path = tmp_path / "truncated.csv.gz"
    path.write_bytes(data[: len(data) * 2 // 3])
    result = run_cli("import", str(path), "--batch-size", "1", url=db_url)
    assert result.returncode == 1
    assert "cannot read past line" in result.stderr and "Traceback" not in result.stderr
    assert fetch(db_conn, "SELECT id FROM applications") == ((38098114,),)
