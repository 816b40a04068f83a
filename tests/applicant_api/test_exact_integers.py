"""Integers stay exact on the applicant side: the cleaner, the importer and the API's parameters (issue 10, item 2)."""

from __future__ import annotations

import csv
import io
import math
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from applicant_api import importer
from applicant_api.api import MAX_SEQ
from credit_core.fields import (FIELDS_BY_NAME, MAX_INT, MIN_INT, FieldError, RecordError, clean_record,
                                  clean_value, parse_float, parse_int)
from credit_core.lendingclub import iter_records

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO.parent / "shared" / "data" / "lendingclub_loanstats_sample.csv"
PAGE = "/api/v1/applicants"
ID = FIELDS_BY_NAME["id"]
ASCII_SPACE = " \t\n\r\f\v"
# Characters str.isdigit()/int()/float() take for digits that are not ASCII 0-9: other scripts, fullwidth, superscripts.
NON_ASCII_DIGITS = st.characters(categories=("Nd", "No"), exclude_characters="0123456789")

# The named cases of the issue.
BEYOND_2_53 = 9007199254740993          # 2**53 + 1: float() reads it as 2**53


def good(**overrides) -> dict:
    rec = {"id": "38098114", "loan_amnt": "15000", "funded_amnt": "15000", "term": " 36 months",
           "int_rate": " 12.39%", "grade": "C", "annual_inc": "78000", "dti": "12.03"}
    rec.update(overrides)
    return rec


def reason(field: str, raw) -> str:
    with pytest.raises(FieldError) as info:
        clean_value(FIELDS_BY_NAME[field], raw)
    return info.value.reason


# --- the cleaner ---------------------------------------------------------------------------------


def test_ids_above_2_53_keep_their_value():
    assert clean_record(good(id=str(BEYOND_2_53)))["id"] == BEYOND_2_53
    assert clean_record(good(id=9007199254740995))["id"] == 9007199254740995
    assert clean_record(good(id=MAX_INT))["id"] == MAX_INT
    assert clean_record(good(id=f" {MAX_INT}\t"))["id"] == MAX_INT


@pytest.mark.parametrize("raw, words", [
    ("١", "ASCII decimal digits"),           # Arabic-Indic one: int() reads it as 1
    ("１２３", "ASCII decimal digits"),        # fullwidth
    ("²", "ASCII decimal digits"),            # superscript two: passes str.isdigit()
    ("1_000", "ASCII decimal digits"),        # int() accepts underscores
    ("12.5", "ASCII decimal digits"),
    ("1e3", "ASCII decimal digits"),
    ("\u00a042", "ASCII decimal digits"),     # a no-break space is not trimmed
    (str(2**63), "from 1 to 9223372036854775807"),
    ("-4", "from 1 to 9223372036854775807"),
    ("0", "from 1 to 9223372036854775807"),
    ("9" * 5000, "from 1 to 9223372036854775807"),   # beyond int()'s 4300-digit limit: still a reason
    (2**63, "from 1 to 9223372036854775807"),
    (2.5, "whole number"),
    (1.8446744073709552e19, "float above 2^53"),    # what orjson makes of an integer beyond 64 bits
    (math.nan, "finite"),
    (True, "boolean"),
    ([1], "whole number"),
])
def test_ids_that_are_not_plain_ascii_decimals_in_range_are_refused(raw, words):
    assert words in reason("id", raw)


@pytest.mark.parametrize("field, raw, words", [
    ("issue_d", "２０１４-１２", "month"),      # fullwidth digits passed as a date
    ("issue_d", "Dec-٢٠١٤", "month"),
    ("issue_d", "2014-12\n", None),           # ASCII whitespace around a value is trimmed
    ("term", "３６ months", "36 or 60"),
    ("term", " 36 months", None),
    ("term", "000 months", "36 or 60"),      # all zeros: was an unhandled ValueError
    ("emp_length", "١ years", "look like"),
    ("emp_length", math.nan, "0..10"),
    ("emp_length", math.inf, "0..10"),
    ("loan_amnt", "١٢٠٠٠", "ASCII digits"),
    ("loan_amnt", "12_000", "ASCII digits"),
    ("loan_amnt", "1e4", "letters"),
    ("loan_amnt", "Infinity", "finite"),
    ("loan_amnt", math.inf, "finite"),
    ("loan_amnt", "-5", "> 0"),
    ("loan_amnt", 10**400, "finite"),
    ("revol_bal", 1e13, "<= 1e+12"),
    ("int_rate", "12.39%%", "plain decimal"),
    ("delinq_2yrs", "²", "ASCII decimal digits"),
    ("delinq_2yrs", "-1", "from 0 to 9223372036854775807"),
])
def test_other_fields_take_ascii_digits_only(field, raw, words):
    if words is None:
        clean_value(FIELDS_BY_NAME[field], raw)
    else:
        assert words in reason(field, raw)


@given(st.integers(1, MAX_INT), st.sampled_from(["int", "text", "padded", "zeros"]))
@example(BEYOND_2_53, "text").via("the issue")
@example(MAX_INT, "int").via("the issue")
@settings(max_examples=500, deadline=None)
def test_every_id_in_range_round_trips_exactly(value, form):
    raw = {"int": value, "text": str(value), "padded": f" \t{value}\r\n", "zeros": f"000{value}"}[form]
    cleaned = clean_value(ID, raw)
    assert cleaned == value and type(cleaned) is int


@given(st.one_of(st.integers(max_value=0), st.integers(min_value=MAX_INT + 1)), st.booleans())
@settings(max_examples=300, deadline=None)
def test_every_id_out_of_range_is_refused_with_the_range(value, as_text):
    assert "from 1 to 9223372036854775807" in reason("id", str(value) if as_text else value)


@given(st.text(st.characters(codec="ascii"), max_size=3), NON_ASCII_DIGITS, st.text(max_size=3))
@settings(max_examples=400, deadline=None)
def test_every_text_with_a_non_ascii_digit_is_refused_with_a_reason(before, digit, after):
    raw = before + digit + after
    for field in ("id", "member_id", "open_acc", "loan_amnt", "int_rate", "issue_d", "term", "emp_length"):
        try:
            clean_value(FIELDS_BY_NAME[field], raw)
        except FieldError as exc:
            assert exc.field == field and exc.reason
        else:
            # Only a value read as missing (empty or n/a) can pass, and no digit can be in one.
            raise AssertionError(f"{field} accepted {raw!r}")


@given(st.integers(MIN_INT, MAX_INT), st.sampled_from(["", " ", "\t"]))
@settings(max_examples=300, deadline=None)
def test_parse_int_with_signed_range_round_trips(value, pad):
    assert parse_int(f"{pad}{value}{pad}") == value
    assert parse_int(value) == value


@given(st.floats(min_value=0, max_value=1e12, allow_nan=False))
@settings(max_examples=300, deadline=None)
def test_every_float_in_range_round_trips_through_its_plain_decimal_text(value):
    text = format(Decimal(value), "f")          # the exact decimal expansion, no exponent
    assert clean_value(FIELDS_BY_NAME["revol_bal"], text) == value
    assert clean_value(FIELDS_BY_NAME["revol_bal"], value) == value


def test_parse_float_refuses_non_finite_values():
    for raw in (math.nan, math.inf, -math.inf, "nan", "-Infinity", 10**400, "9" * 400):
        with pytest.raises(ValueError, match="finite"):
            parse_float(raw)


def test_every_bad_field_is_still_reported_at_once():
    with pytest.raises(RecordError) as info:
        clean_record(good(id="١", loan_amnt="1_000", issue_d="２０１４-１２"))
    assert {e.field for e in info.value.errors} == {"id", "loan_amnt", "issue_d"}


# --- the importer (LendingClub reader and the MariaDB writer) ----------------------------------------


def loanstats_with_ids(path: Path, ids: list[str]) -> Path:
    """The shared sample's notice, header and first data row, once per id (quoted like LendingClub's)."""
    lines = SAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)
    header, row = list(csv.reader([lines[1]]))[0], list(csv.reader([lines[2]]))[0]
    out = io.StringIO()
    out.write(lines[0])
    writer = csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n")
    writer.writerow(header)
    id_at, member_at = header.index("id"), header.index("member_id")
    for i, value in enumerate(ids):
        writer.writerow([value if k == id_at else str(i + 1) if k == member_at else v for k, v in enumerate(row)])
    path.write_text(out.getvalue(), encoding="utf-8")
    return path


@given(st.lists(st.integers(1, MAX_INT), min_size=1, max_size=20, unique=True))
@example([BEYOND_2_53, MAX_INT])
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_every_id_round_trips_through_the_lendingclub_reader(tmp_path, ids):
    path = loanstats_with_ids(tmp_path / "ids.csv", [f" {i} " for i in ids])
    assert [rec["id"] for _line, rec, _err in iter_records(path)] == ids


def test_importer_stores_exact_ids_and_rejects_bad_digits_by_line(tmp_path, db_conn, db_url):
    ids = [str(BEYOND_2_53), "9007199254740995", str(MAX_INT), "١", "1_000", "²", str(2**63), "１２"]
    path = loanstats_with_ids(tmp_path / "ids.csv", ids)
    report = importer.import_file(path, db_url, writer_process=False)
    with db_conn.cursor() as cur:
        cur.execute("SELECT id FROM applications ORDER BY seq")
        assert [r[0] for r in cur.fetchall()] == [BEYOND_2_53, 9007199254740995, MAX_INT]
    assert (report.imported, report.rejected) == (3, 5)
    rejected = {r.line_no: r.errors[0] for r in report.rejects}
    assert sorted(rejected) == [6, 7, 8, 9, 10]          # lines 3-5 are the good ones (notice, header first)
    assert all(e["field"] == "id" for e in rejected.values())
    assert "ASCII decimal digits" in rejected[6]["reason"] and "from 1 to" in rejected[9]["reason"]


# --- the applicant API over HTTP -----------------------------------------------------------------------


def test_api_stores_and_answers_ids_up_to_its_documented_maximum(api, applicant_factory):
    records = [applicant_factory(1, id=MAX_INT), applicant_factory(2, id=str(BEYOND_2_53)),
               applicant_factory(3, id=9007199254740995)]
    created = api.post(PAGE, json=records)
    assert created.status_code == 201, created.text
    assert [a["id"] for a in created.json()["applicants"]] == [MAX_INT, BEYOND_2_53, 9007199254740995]
    for value in (MAX_INT, BEYOND_2_53, 9007199254740995):
        one = api.get(f"{PAGE}/{value}")
        assert one.status_code == 200 and one.json()["id"] == value
    page = api.get(PAGE, params={"after": 0}).json()
    assert [a["id"] for a in page["applicants"]] == [MAX_INT, BEYOND_2_53, 9007199254740995]
    assert api.get(PAGE, params={"after": MAX_INT}).json()["count"] == 0
    assert api.get(PAGE, params={"after": MAX_SEQ}).status_code == 200


@pytest.mark.parametrize("bad", ["١", "²", "1_000", "١٢٣", "+5", " 5", "5 ", "0x10", "1e3", str(MAX_SEQ + 1)])
def test_api_query_parameters_refuse_what_is_not_a_plain_decimal(api, bad):
    for name in ("after", "limit"):
        resp = api.get(PAGE, params={name: bad})
        assert resp.status_code == 400, (name, bad)
        [error] = resp.json()["errors"]
        assert error["field"] == name and error["reason"]


@pytest.mark.parametrize("path, words", [
    ("١", "ASCII decimal digits"), ("1_000", "ASCII decimal digits"), ("0", "from 1 to"),
    (str(2**63), "from 1 to 9223372036854775807"), ("-1", "ASCII decimal digits")])
def test_api_applicant_id_in_the_path_is_parsed_exactly(api, path, words):
    resp = api.get(f"{PAGE}/{path}")
    assert resp.status_code == 400
    [error] = resp.json()["errors"]
    assert error["field"] == "id" and words in error["reason"]


@given(after=st.integers(0, MAX_SEQ), limit=st.integers(1, 5000), applicant_id=st.integers(1, MAX_INT))
@example(after=MAX_SEQ, limit=5000, applicant_id=MAX_INT)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_every_parameter_in_range_reaches_the_query_exactly(api, after, limit, applicant_id):
    # The table is empty (fresh per test, not per example): any cursor gives an empty page.
    page = api.get(PAGE, params={"after": str(after), "limit": str(limit)})
    assert page.status_code == 200 and page.json()["count"] == 0
    one = api.get(f"{PAGE}/{applicant_id}")
    assert one.status_code == 404 and one.json()["error"] == f"applicant {applicant_id} not found"


@given(st.one_of(st.integers(max_value=-1), st.integers(min_value=MAX_SEQ + 1)))
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_every_after_out_of_range_is_a_400_naming_the_range(api, after):
    resp = api.get(PAGE, params={"after": str(after)})
    assert resp.status_code == 400
    [error] = resp.json()["errors"]
    assert error["field"] == "after"
    assert ("ASCII decimal digits" if after < 0 else f"from 0 to {MAX_SEQ}") in error["reason"]
