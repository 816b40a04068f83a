"""Read LendingClub ``LoanStats`` exports (plain, .gz or .zip), streaming, with every skipped line reported.

The one reader of LoanStats files: the importer and the risk model's training
both go through it, so real and synthetic data take the same path.

A LoanStats export looks like this::

    Notes offered by Prospectus (https://www.lendingclub.com/info/prospectus.action)
    "id","member_id","loan_amnt",...          <- the header: first line whose first field is "id"
    "38098114","40860827","15000",...         <- data rows, every field quoted
                                              <- blank lines
    Total amount funded in policy code 1: ... <- summary lines at the end

``read_loanstats(path)`` yields a :class:`Row` (line number, field texts,
``.raw`` dict by column name) for every data row and a :class:`Skip` (line
number, kind, reason) for every other line but the header: the notice, blank
lines, summary lines and malformed rows (wrong field count), in file order, in
constant memory. Line numbers are physical lines, 1-based; a row whose quoted
field spans lines has the number of its first line. ``iter_records(path)``
cleans the rows as :func:`credit_core.fields.clean_record` does (plus the
synthetic ``true_pd`` column) and yields ``(line_no, record, error)`` triples.
A file that cannot be read at all (no header, a damaged archive) raises
:class:`LoanStatsError`.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import operator
import os
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, NamedTuple

from credit_core import fields
from credit_core.fields import FIELDS, Field, FieldError, RecordError

logger = logging.getLogger(__name__)

# The header must appear within this many lines of the top of the file.
DEFAULT_HEADER_SEARCH_LINES = 50
# Entries memoised per field by the cleaner (low-cardinality fields repeat a lot).
DEFAULT_CLEAN_CACHE_SIZE = fields.DEFAULT_CLEAN_CACHE_SIZE

# The 111 columns of a 2016 LoanStats export, in file order (the synthetic
# generator writes exactly these, plus TRUE_PD_COLUMN).
LOANSTATS_COLUMNS: tuple[str, ...] = (
    "id", "member_id", "loan_amnt", "funded_amnt", "funded_amnt_inv", "term", "int_rate", "installment",
    "grade", "sub_grade", "emp_title", "emp_length", "home_ownership", "annual_inc", "verification_status",
    "issue_d", "loan_status", "pymnt_plan", "url", "desc", "purpose", "title", "zip_code", "addr_state", "dti",
    "delinq_2yrs", "earliest_cr_line", "inq_last_6mths", "mths_since_last_delinq", "mths_since_last_record",
    "open_acc", "pub_rec", "revol_bal", "revol_util", "total_acc", "initial_list_status", "out_prncp",
    "out_prncp_inv", "total_pymnt", "total_pymnt_inv", "total_rec_prncp", "total_rec_int", "total_rec_late_fee",
    "recoveries", "collection_recovery_fee", "last_pymnt_d", "last_pymnt_amnt", "next_pymnt_d",
    "last_credit_pull_d", "collections_12_mths_ex_med", "mths_since_last_major_derog", "policy_code",
    "application_type", "annual_inc_joint", "dti_joint", "verification_status_joint", "acc_now_delinq",
    "tot_coll_amt", "tot_cur_bal", "open_acc_6m", "open_il_6m", "open_il_12m", "open_il_24m",
    "mths_since_rcnt_il", "total_bal_il", "il_util", "open_rv_12m", "open_rv_24m", "max_bal_bc", "all_util",
    "total_rev_hi_lim", "inq_fi", "total_cu_tl", "inq_last_12m", "acc_open_past_24mths", "avg_cur_bal",
    "bc_open_to_buy", "bc_util", "chargeoff_within_12_mths", "delinq_amnt", "mo_sin_old_il_acct",
    "mo_sin_old_rev_tl_op", "mo_sin_rcnt_rev_tl_op", "mo_sin_rcnt_tl", "mort_acc", "mths_since_recent_bc",
    "mths_since_recent_bc_dlq", "mths_since_recent_inq", "mths_since_recent_revol_delinq",
    "num_accts_ever_120_pd", "num_actv_bc_tl", "num_actv_rev_tl", "num_bc_sats", "num_bc_tl", "num_il_tl",
    "num_op_rev_tl", "num_rev_accts", "num_rev_tl_bal_gt_0", "num_sats", "num_tl_120dpd_2m", "num_tl_30dpd",
    "num_tl_90g_dpd_24m", "num_tl_op_past_12m", "pct_tl_nvr_dlq", "percent_bc_gt_75", "pub_rec_bankruptcies",
    "tax_liens", "tot_hi_cred_lim", "total_bal_ex_mort", "total_bc_limit", "total_il_high_credit_limit",
)
# Synthetic files carry the ground-truth probability of default in an extra last column.
TRUE_PD_COLUMN = "true_pd"
TRUE_PD_FIELD = Field(TRUE_PD_COLUMN, "float", minimum=0, maximum=1)
RECORD_FIELDS: tuple[Field, ...] = FIELDS + (TRUE_PD_FIELD,)

# Kinds of skipped lines. Only MALFORMED is a data row that was lost; the others carry no loan.
NOTICE, BLANK, SUMMARY, MALFORMED = "notice", "blank", "summary", "malformed"
# Text lines LendingClub puts among or after the data rows.
_NOTE_PREFIXES = ("total amount funded in policy code", "loans that do not meet the credit policy")


class LoanStatsError(ValueError):
    """The file is not a LoanStats export (no header, unreadable archive...)."""


class Row(NamedTuple):
    """A data row: its first physical line number (1-based) and its field texts in header order."""

    line_no: int
    values: list[str]
    header: tuple[str, ...]

    @property
    def raw(self) -> dict[str, str]:
        """The fields by header name."""
        return dict(zip(self.header, self.values))


@dataclass(frozen=True, slots=True)
class Skip:
    """A line that is not a data row: notice, blank, summary, or a malformed row (wrong field count)."""

    line_no: int
    kind: str
    reason: str


class LoanStatsReader:
    """An open LoanStats file; iterate for Row/Skip items. ``position``/``size`` are bytes, for progress bars."""

    def __init__(self, path: str | os.PathLike, *, header_search_lines: int = DEFAULT_HEADER_SEARCH_LINES):
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or PathLike, got {type(path).__name__}")
        if not isinstance(header_search_lines, int) or header_search_lines < 1:
            raise ValueError(f"header_search_lines must be a positive int, got {header_search_lines!r}")
        self.path = Path(path)
        self.size = self.path.stat().st_size
        self._header_search_lines = header_search_lines
        self._disk = open(self.path, "rb")
        self._archive: zipfile.ZipFile | None = None
        try:
            self._text = self._open_text()
            self._csv = csv.reader(self._text, strict=False)
            self.skips_before_header: list[Skip] = []
            self.header: tuple[str, ...] = self._find_header()
        except BaseException:
            self.close()
            raise
        self.has_true_pd = TRUE_PD_COLUMN in self.header

    def _open_text(self) -> io.TextIOBase:
        magic = self._disk.read(4)
        self._disk.seek(0)
        name = self.path.name.lower()
        if name.endswith(".gz") or magic[:2] == b"\x1f\x8b":
            binary: Any = gzip.GzipFile(fileobj=self._disk, mode="rb")
        elif name.endswith(".zip") or magic == b"PK\x03\x04":
            try:
                self._archive = zipfile.ZipFile(self._disk)
            except zipfile.BadZipFile as exc:
                raise LoanStatsError(f"{self.path}: not a readable zip archive: {exc}") from None
            members = [i for i in self._archive.infolist() if not i.is_dir()]
            csvs = [i for i in members if i.filename.lower().endswith(".csv")]
            if not (csvs or members):
                raise LoanStatsError(f"{self.path}: the zip archive holds no file")
            member = (csvs or members)[0]
            logger.debug("%s: reading member %s", self.path, member.filename)
            binary = self._archive.open(member)
        else:
            binary = self._disk
        # LendingClub files are UTF-8; a stray byte must not abort a multi-GB import.
        return io.TextIOWrapper(binary, encoding="utf-8", errors="replace", newline="")

    def _find_header(self) -> tuple[str, ...]:
        try:
            for row in self._csv:
                line_no = self._csv.line_num
                if row and row[0].strip().lstrip("\ufeff") == "id":
                    header = tuple(c.strip() for c in row)
                    header = (header[0].lstrip("\ufeff"),) + header[1:]
                    self._line_end = line_no
                    return header
                if line_no >= self._header_search_lines:
                    break
                kind = BLANK if not any(c.strip() for c in row) else NOTICE
                self.skips_before_header.append(Skip(line_no, kind, f"{kind} line before the header"))
        except (OSError, EOFError, csv.Error, zipfile.BadZipFile) as exc:
            raise LoanStatsError(f"{self.path}: cannot read: {exc}") from None
        raise LoanStatsError(
            f"{self.path}: no LoanStats header (a line whose first field is \"id\") "
            f"in the first {self._header_search_lines} lines")

    @property
    def position(self) -> int:
        """Bytes of the file on disk consumed so far (read-ahead included)."""
        try:
            return min(self._disk.tell(), self.size)
        except (OSError, ValueError):
            return self.size

    def __iter__(self) -> Iterator[Row | Skip]:
        yield from self.skips_before_header
        header = self.header
        width = len(header)
        reader = self._csv
        prev_end = self._line_end
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except (OSError, EOFError, zipfile.BadZipFile) as exc:
                # A truncated .gz or a damaged zip: the rows before this point were good and were yielded.
                raise LoanStatsError(f"{self.path}: cannot read past line {prev_end}: {exc}") from None
            except csv.Error as exc:
                # The csv module cannot resynchronise inside a broken quoted field; say where it stopped.
                end = reader.line_num
                yield Skip(prev_end + 1, MALFORMED, f"unreadable CSV from line {prev_end + 1}: {exc}")
                prev_end = end
                continue
            line_no = prev_end + 1
            prev_end = reader.line_num
            if len(row) == width:
                yield Row(line_no, row, header)
                continue
            if not row or not any(c.strip() for c in row):
                yield Skip(line_no, BLANK, "blank line")
                continue
            first = row[0].strip().lower()
            if len(row) == 1 and first.startswith(_NOTE_PREFIXES):
                yield Skip(line_no, SUMMARY, f"summary line: {row[0].strip()[:80]}")
                continue
            span = f" (lines {line_no}-{prev_end}: a quote left open?)" if prev_end > line_no else ""
            yield Skip(line_no, MALFORMED, f"expected {width} fields, got {len(row)}{span}")

    def close(self) -> None:
        for obj in (getattr(self, "_text", None), self._archive, self._disk):
            if obj is not None:
                try:
                    obj.close()
                except Exception:  # closing after a read error must not hide that error
                    pass

    def __enter__(self) -> "LoanStatsReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_loanstats(path: str | os.PathLike) -> Iterator[Row | Skip]:
    """Yield a Row for every data row and a Skip for every other line, in file order, streaming."""
    with LoanStatsReader(path) as reader:
        yield from reader


class RecordCleaner(fields.RecordCleaner):
    """fields.clean_record for LoanStats rows (plus ``true_pd``): the same memoised cleaner, picking from CSV rows.

    The result is identical to ``fields.clean_record(raw, fields=RECORD_FIELDS)``
    (a test checks it).
    """

    def __init__(self, field_list: tuple[Field, ...] = RECORD_FIELDS, cache_size: int = DEFAULT_CLEAN_CACHE_SIZE):
        super().__init__(field_list, cache_size)

    def getter(self, header: tuple[str, ...]) -> Callable[[list[str]], list[Any]]:
        """A function picking this cleaner's raw values out of a row of `header` (absent columns read None)."""
        index = {name: i for i, name in enumerate(header)}
        if all(f.name in index for f in self.fields):
            pick = operator.itemgetter(*(index[f.name] for f in self.fields))
            return lambda values: pick(values)
        positions = [index.get(f.name) for f in self.fields]
        return lambda values: [None if i is None else values[i] for i in positions]


def row_error(skip: Skip) -> RecordError:
    """A malformed row's reason as a RecordError (field "$row"), like any other rejected row."""
    return RecordError([FieldError("$row", skip.reason)])


def iter_records(path: str | os.PathLike, *, on_skip: Callable[[Skip], None] | None = None
                 ) -> Iterator[tuple[int, dict[str, Any] | None, RecordError | None]]:
    """Yield (line_no, record, None) for good rows and (line_no, None, RecordError) for bad ones.

    Malformed rows (wrong field count) are yielded as errors too; notice, blank
    and summary lines carry no loan and go only to ``on_skip`` (if given).
    Every record has a ``true_pd`` key (None unless the file has that column).
    """
    cleaner = RecordCleaner()
    with LoanStatsReader(path) as reader:
        pick = cleaner.getter(reader.header)
        clean = cleaner.clean_values
        for item in reader:
            if type(item) is Row:
                try:
                    yield item.line_no, clean(pick(item.values)), None
                except RecordError as exc:
                    yield item.line_no, None, exc
            elif item.kind == MALFORMED:
                if on_skip is not None:
                    on_skip(item)
                yield item.line_no, None, row_error(item)
            elif on_skip is not None:
                on_skip(item)


def _main(argv: list[str]) -> int:
    """Debug aid: python -m credit_core.lendingclub FILE prints counts of good, bad and skipped lines."""
    good = bad = 0
    skipped: dict[str, int] = {}

    def count(skip: Skip) -> None:
        skipped[skip.kind] = skipped.get(skip.kind, 0) + 1

    for _line, rec, _err in iter_records(argv[0], on_skip=count):
        if rec is None:
            bad += 1
        else:
            good += 1
    print(f"good={good} bad={bad} skipped={skipped}")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
