"""The LoanStats reader: notice/header detection, blank and summary lines, bad rows, gz/zip, cleaning."""

from __future__ import annotations

import gzip
import zipfile
from pathlib import Path

import pytest

from credit_core import fields, synthetic
from credit_core.lendingclub import (BLANK, LOANSTATS_COLUMNS, MALFORMED, NOTICE, RECORD_FIELDS, SUMMARY,
                                       LoanStatsError, LoanStatsReader, RecordCleaner, Row, Skip, iter_records,
                                       read_loanstats)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
SAMPLE = SHARED_DATA / "lendingclub_loanstats_sample.csv"
QUIRKS = FIXTURES / "loanstats_quirks.csv"

# (line, kind) of every item in loanstats_quirks.csv; "row" for data rows.
QUIRKS_LAYOUT = [
    (1, NOTICE), (3, "row"), (4, BLANK), (5, "row"), (7, "row"), (8, MALFORMED), (9, "row"), (10, "row"),
    (11, "row"), (12, "row"), (13, BLANK), (14, BLANK), (15, SUMMARY), (16, SUMMARY),
]


def layout(path):
    return [(item.line_no, "row" if isinstance(item, Row) else item.kind) for item in read_loanstats(path)]


def as_gzip(src, dst):
    dst.write_bytes(gzip.compress(src.read_bytes()))
    return dst


def as_zip(src, dst, *, crlf=False, quoted_summary=False):
    """A zip whose first member is not a CSV, like some LendingClub downloads carry a readme."""
    text = src.read_text()
    if quoted_summary:
        text = text.replace("Total amount funded in policy code 1: 64000", '"Total amount funded in policy code 1: 64000"')
    if crlf:
        text = text.replace("\n", "\r\n")
    with zipfile.ZipFile(dst, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("README.txt", "LendingClub statistics\n")
        zf.writestr("LoanStats_quirks.csv", text)
    return dst


def test_shared_sample_header_rows_and_line_numbers():
    items = list(read_loanstats(SAMPLE))
    assert items[0] == Skip(1, NOTICE, "notice line before the header")
    rows = items[1:]
    assert [r.line_no for r in rows] == [3, 4, 5, 6]
    assert all(isinstance(r, Row) for r in rows)
    assert rows[0].header == LOANSTATS_COLUMNS
    assert rows[0].raw["id"] == "38098114"
    assert rows[0].raw["int_rate"] == " 12.39%"
    assert rows[1].raw["emp_title"] == "Truck Driver Delivery Personel"


def test_shared_sample_records_are_cleaned():
    out = list(iter_records(SAMPLE))
    assert [(line, err) for line, _, err in out] == [(3, None), (4, None), (5, None), (6, None)]
    rec = out[0][1]
    assert rec["id"] == 38098114 and rec["member_id"] == 40860827
    assert rec["term"] == 60 and rec["int_rate"] == 12.39 and rec["emp_length"] == 10
    assert rec["issue_d"] == "2014-12" and rec["earliest_cr_line"] == "1994-08"
    assert rec["revol_util"] == 29.0 and rec["bc_util"] == 4.7 and rec["true_pd"] is None
    assert out[3][1]["revol_util"] == 100.9 and out[1][1]["int_rate"] == 6.99


def test_quirks_layout_every_line_accounted_for():
    assert layout(QUIRKS) == QUIRKS_LAYOUT


def test_quirks_records_errors_and_line_numbers():
    skipped = []
    out = list(iter_records(QUIRKS, on_skip=skipped.append))
    assert [line for line, _, _ in out] == [3, 5, 7, 8, 9, 10, 11, 12]
    good = {line: rec for line, rec, err in out if err is None}
    bad = {line: err for line, rec, err in out if err is not None}
    assert sorted(good) == [3, 5, 9, 11, 12]
    assert bad[7].as_list() == [{"field": "dti", "reason": "must be a number, got letters in '12.5a'"}]
    assert bad[8].as_list() == [{"field": "$row", "reason": "expected 111 fields, got 20"}]
    assert [e["field"] for e in bad[10].as_list()] == ["id", "grade"]
    # quoted comma and a quoted field spanning two physical lines
    assert good[5]["emp_title"] == "Manager, Operations"
    # empty bc_* / il limit default to 0 as the original FilterBolt did; "< 1 year" is 0, "n/a" is None
    assert (good[9]["bc_util"], good[9]["bc_open_to_buy"], good[9]["total_il_high_credit_limit"]) == (0.0, 0.0, 0.0)
    assert good[9]["emp_length"] == 0
    assert good[11]["emp_length"] is None and good[11]["revol_util"] is None and good[11]["int_rate"] == 6.03
    assert sorted(s.kind for s in skipped) == sorted([NOTICE, BLANK, BLANK, BLANK, MALFORMED, SUMMARY, SUMMARY])


def test_multiline_field_keeps_its_text():
    rows = [item for item in read_loanstats(QUIRKS) if isinstance(item, Row)]
    assert rows[1].raw["desc"] == 'Borrower added on 12/01/14 > Paying off\ncards, and a "new" car'


def test_gzip_and_zip_read_like_plain(tmp_path):
    plain = list(iter_records(QUIRKS))
    gz = as_gzip(QUIRKS, tmp_path / "LoanStats.csv.gz")
    zp = as_zip(QUIRKS, tmp_path / "LoanStats.csv.zip", crlf=True, quoted_summary=True)
    for path in (gz, zp):
        assert layout(path) == QUIRKS_LAYOUT
        got = list(iter_records(path))
        assert [(line, rec, str(err)) for line, rec, err in got] == [(line, rec, str(err)) for line, rec, err in plain]


def test_compression_detected_by_content_not_name(tmp_path):
    gz = as_gzip(SAMPLE, tmp_path / "sample.data")
    assert [line for line, _, _ in iter_records(gz)] == [3, 4, 5, 6]


def test_no_header_is_an_error(tmp_path):
    path = tmp_path / "not_loanstats.csv"
    path.write_text("name,value\n" + "a,1\n" * 100)
    with pytest.raises(LoanStatsError, match="no LoanStats header"):
        list(read_loanstats(path))


def test_broken_zip_is_an_error(tmp_path):
    path = tmp_path / "broken.zip"
    path.write_bytes(b"PK\x03\x04 this is not really a zip archive")
    with pytest.raises(LoanStatsError, match="zip"):
        list(read_loanstats(path))


def test_bad_arguments_rejected_early():
    with pytest.raises(TypeError):
        LoanStatsReader(42)
    with pytest.raises(ValueError):
        LoanStatsReader(SAMPLE, header_search_lines=0)
    with pytest.raises(ValueError):
        RecordCleaner(cache_size=-1)


def test_true_pd_passes_through_and_is_validated(tmp_path):
    path = tmp_path / "synthetic.csv"
    synthetic.generate(path, 50, seed=3)
    recs = [rec for _, rec, err in iter_records(path)]
    assert all(rec is not None and 0.0 < rec["true_pd"] < 1.0 for rec in recs)
    text = path.read_text().splitlines()
    # put an out-of-range probability in the last column of the first data row
    first = text[2].rsplit(",", 1)[0] + ',"1.5"'
    path.write_text("\n".join([text[0], text[1], first] + text[3:]) + "\n")
    line, rec, err = next(iter_records(path))
    assert (line, rec) == (3, None)
    assert err.as_list() == [{"field": "true_pd", "reason": "must be <= 1, got 1.5"}]


def test_reader_streams_without_reading_the_whole_file(tmp_path):
    path = tmp_path / "big.csv"
    synthetic.generate(path, 20_000, seed=4)
    with LoanStatsReader(path) as reader:
        first = next(item for item in reader if isinstance(item, Row))
        assert first.line_no == 3
        assert reader.position < reader.size / 20


def uncached(raw):
    """The definition without any cache: clean_value per field, then the cross-field rules."""
    out, errors = {}, []
    for field in RECORD_FIELDS:
        try:
            out[field.name] = fields.clean_value(field, raw.get(field.name))
        except fields.FieldError as exc:
            errors.append(exc)
    if not errors:
        errors = fields.cross_checks(out)
    return [e.as_dict() for e in errors] if errors else out


def test_memoised_cleaner_matches_the_uncached_definition_exactly(tmp_path):
    """The cached cleaner (which clean_record uses) gives what clean_value + cross_checks give, errors included."""
    path = tmp_path / "dirty.csv"
    synthetic.generate(path, 4_000, seed=11, dirty=0.25)
    cleaner = RecordCleaner(cache_size=64)   # small: exercises both cache hits and a full cache
    compared = failures = 0
    for source in (path, QUIRKS, SAMPLE):
        with LoanStatsReader(source) as reader:
            pick = cleaner.getter(reader.header)
            for item in reader:
                if not isinstance(item, Row):
                    continue
                expected = uncached(item.raw)
                try:
                    got = cleaner.clean_values(pick(item.values))
                except fields.RecordError as exc:
                    got = exc.as_list()
                    failures += 1
                assert got == expected, item.line_no
                assert cleaner(item.raw) == got if isinstance(got, dict) else True
                compared += 1
    assert compared > 4_000 and failures > 800


def test_truncated_gzip_is_an_error_after_the_good_rows(tmp_path):
    data = gzip.compress(QUIRKS.read_bytes())
    path = tmp_path / "truncated.csv.gz"
    path.write_bytes(data[: len(data) * 2 // 3])
    seen = []
    with pytest.raises(LoanStatsError, match="cannot read past line"):
        for item in read_loanstats(path):
            seen.append(item.line_no)
    assert seen[:3] == [1, 3, 4]


def test_oversized_field_is_reported_and_reading_goes_on(tmp_path):
    lines = QUIRKS.read_text().split("\n")
    path = tmp_path / "huge.csv"
    path.write_text("\n".join(lines[:6] + ['"' + "x" * 200_000 + '"'] + lines[6:]))
    items = [(item.line_no, "row" if isinstance(item, Row) else item.kind) for item in read_loanstats(path)]
    assert items[4] == (7, MALFORMED)
    assert (8, "row") in items and items[-1] == (17, SUMMARY)
