"""HBase's filter language (ParseFilter syntax) parsed into filters with HBase's per-row and per-cell semantics."""

# A cell is a tuple (col, ts, value) where col is b"family:qualifier". Return codes are reduced to what
# matters when a scan returns one version per column: INCLUDE, SKIP (this version: an older one is tried
# next) and NEXT_ROW (the rest of this family in this row, as an HBase store scanner applies it).

from __future__ import annotations

import logging
import re
import struct

logger = logging.getLogger(__name__)

INCLUDE, SKIP, NEXT_ROW = 0, 1, 2
MAX_FILTER_LENGTH = 65_536
MAX_DEPTH = 64

_pack_i32 = struct.Struct(">i").pack


class FilterError(ValueError):
    """A filter string that cannot be parsed or names an unsupported filter."""


def family_of(col: bytes) -> bytes:
    return col.partition(b":")[0]


def qualifier_of(col: bytes) -> bytes:
    return col.partition(b":")[2]


def _cmp(a: bytes, b: bytes) -> int:
    return (a > b) - (a < b)


# -- comparators ---------------------------------------------------------------
class Comparator:
    """compare_to(value) follows HBase: 0 = match; the sign is comparator value vs cell value."""

    only_equality = False

    def __init__(self, value: bytes):
        self.value = value

    def compare_to(self, value: bytes) -> int:
        raise NotImplementedError


class BinaryComparator(Comparator):
    def compare_to(self, value: bytes) -> int:
        return _cmp(self.value, value)


class BinaryPrefixComparator(Comparator):
    def compare_to(self, value: bytes) -> int:
        return _cmp(self.value, value[:len(self.value)])


class SubstringComparator(Comparator):
    only_equality = True

    def __init__(self, value: bytes):
        super().__init__(value)
        self.needle = value.decode("utf-8", errors="replace").lower()

    def compare_to(self, value: bytes) -> int:
        return 0 if self.needle in value.decode("utf-8", errors="replace").lower() else 1


class RegexStringComparator(Comparator):
    only_equality = True

    def __init__(self, value: bytes):
        super().__init__(value)
        try:
            self.pattern = re.compile(value.decode("utf-8", errors="replace"), re.DOTALL)
        except re.error as exc:
            raise FilterError(f"bad regular expression {value!r}: {exc}") from None

    def compare_to(self, value: bytes) -> int:
        return 0 if self.pattern.search(value.decode("utf-8", errors="replace")) else 1


COMPARATORS = {b"binary": BinaryComparator, b"binaryprefix": BinaryPrefixComparator,
               b"substring": SubstringComparator, b"regexstring": RegexStringComparator}

# True means "filter the cell/row out", as CompareFilter.compare(op, comparator.compareTo(cell)).
COMPARE_OPS = {
    b"<": lambda r: r <= 0, b"<=": lambda r: r < 0, b"=": lambda r: r != 0,
    b"!=": lambda r: r == 0, b">=": lambda r: r > 0, b">": lambda r: r >= 0,
}


# -- filters ---------------------------------------------------------------------
class Filter:
    """Base filter: includes everything (FilterBase's defaults)."""

    reversed = False

    def reset(self) -> None:
        pass

    def filter_all_remaining(self) -> bool:
        return False

    def filter_row_key(self, row: bytes) -> bool:
        return False

    def filter_cell(self, row: bytes, cell: tuple) -> int:
        return INCLUDE

    def transform_cell(self, cell: tuple) -> tuple:
        return cell

    def filter_row_cells(self, cells: list) -> list:
        return cells

    def filter_row(self) -> bool:
        return False

    def has_filter_row(self) -> bool:
        return False

    def set_reversed(self, value: bool) -> None:
        self.reversed = value


class KeyOnlyFilter(Filter):
    def __init__(self, len_as_val: bool = False):
        self.len_as_val = len_as_val

    def transform_cell(self, cell):
        return (cell[0], cell[1], _pack_i32(len(cell[2])) if self.len_as_val else b"")


class FirstKeyOnlyFilter(Filter):
    def __init__(self):
        self.found = False

    def reset(self):
        self.found = False

    def filter_cell(self, row, cell):
        if self.found:
            return NEXT_ROW
        self.found = True
        return INCLUDE


class PrefixFilter(Filter):
    def __init__(self, prefix: bytes):
        self.prefix = prefix
        self.passed = False
        self.filter_out = True

    def reset(self):
        self.filter_out = True

    def filter_all_remaining(self):
        return self.passed

    def filter_row_key(self, row):
        if self.passed:
            return True
        if len(row) < len(self.prefix):
            return True
        cmp = _cmp(row[:len(self.prefix)], self.prefix)
        if (cmp < 0) if self.reversed else (cmp > 0):
            self.passed = True
        self.filter_out = cmp != 0
        return self.filter_out

    def filter_cell(self, row, cell):
        return NEXT_ROW if self.filter_out else INCLUDE

    def filter_row(self):
        return self.filter_out


class ColumnPrefixFilter(Filter):
    def __init__(self, prefix: bytes):
        self.prefix = prefix

    def filter_cell(self, row, cell):
        qual = qualifier_of(cell[0])
        cmp = _cmp(qual[:len(self.prefix)], self.prefix)
        if cmp == 0 and len(qual) >= len(self.prefix):
            return INCLUDE
        return SKIP if cmp <= 0 else NEXT_ROW


class MultipleColumnPrefixFilter(Filter):
    def __init__(self, *prefixes: bytes):
        self.prefixes = tuple(sorted(set(prefixes)))

    def filter_cell(self, row, cell):
        qual = qualifier_of(cell[0])
        if qual.startswith(self.prefixes):
            return INCLUDE
        return NEXT_ROW if self.prefixes and all(qual > p for p in self.prefixes) else SKIP


class ColumnRangeFilter(Filter):
    def __init__(self, min_col: bytes, min_inclusive: bool, max_col: bytes, max_inclusive: bool):
        self.min_col = min_col or None
        self.min_inclusive = min_inclusive
        self.max_col = max_col or None
        self.max_inclusive = max_inclusive

    def filter_cell(self, row, cell):
        qual = qualifier_of(cell[0])
        if self.min_col is not None:
            cmp_min = _cmp(qual, self.min_col)
            if cmp_min < 0 or (cmp_min == 0 and not self.min_inclusive):
                return SKIP
        if self.max_col is None:
            return INCLUDE
        cmp_max = _cmp(qual, self.max_col)
        if cmp_max < 0 or (cmp_max == 0 and self.max_inclusive):
            return INCLUDE
        return NEXT_ROW


class ColumnCountGetFilter(Filter):
    """Returns the first N columns; once a row has more, the scan ends (HBase's filterAllRemaining)."""

    def __init__(self, limit: int):
        if limit < 0:
            raise FilterError("ColumnCountGetFilter limit must be >= 0")
        self.limit = limit
        self.count = 0

    def reset(self):
        self.count = 0

    def filter_all_remaining(self):
        return self.count > self.limit

    def filter_cell(self, row, cell):
        self.count += 1
        return SKIP if self.count > self.limit else INCLUDE


class PageFilter(Filter):
    def __init__(self, page_size: int):
        if page_size < 0:
            raise FilterError("PageFilter page size must be >= 0")
        self.page_size = page_size
        self.accepted = 0

    def filter_all_remaining(self):
        return self.accepted >= self.page_size

    def filter_row_key(self, row):
        return self.filter_all_remaining()

    def filter_row(self):
        self.accepted += 1
        return self.accepted > self.page_size

    def has_filter_row(self):
        return True


class InclusiveStopFilter(Filter):
    def __init__(self, stop_row: bytes):
        self.stop_row = stop_row
        self.done = False

    def filter_all_remaining(self):
        return self.done

    def filter_row_key(self, row):
        if self.done:
            return True
        cmp = _cmp(row, self.stop_row)
        self.done = (cmp < 0) if self.reversed else (cmp > 0)
        return self.done

    def filter_cell(self, row, cell):
        return NEXT_ROW if self.done else INCLUDE


class CompareFilter(Filter):
    def __init__(self, op: bytes, comparator: Comparator):
        if comparator.only_equality and op not in (b"=", b"!="):
            raise FilterError("A regexstring comparator and substring comparator can only be used "
                              "with EQUAL and NOT_EQUAL")
        self.op = op
        self.fails = COMPARE_OPS[op]
        self.comparator = comparator

    def out(self, value: bytes) -> bool:
        return self.fails(self.comparator.compare_to(value))


class RowFilter(CompareFilter):
    def __init__(self, op, comparator):
        super().__init__(op, comparator)
        self.filter_out = False

    def reset(self):
        self.filter_out = False

    def filter_row_key(self, row):
        if self.out(row):
            self.filter_out = True
        return self.filter_out

    def filter_cell(self, row, cell):
        return NEXT_ROW if self.filter_out else INCLUDE

    def filter_row(self):
        return self.filter_out


class FamilyFilter(CompareFilter):
    def filter_cell(self, row, cell):
        return NEXT_ROW if self.out(family_of(cell[0])) else INCLUDE


class QualifierFilter(CompareFilter):
    def filter_cell(self, row, cell):
        return SKIP if self.out(qualifier_of(cell[0])) else INCLUDE


class ValueFilter(CompareFilter):
    def filter_cell(self, row, cell):
        return SKIP if self.out(cell[2]) else INCLUDE


class SingleColumnValueFilter(Filter):
    def __init__(self, family: bytes, qualifier: bytes, op: bytes, comparator: Comparator,
                 filter_if_missing: bool = False, latest_version_only: bool = True):
        self.test = CompareFilter(op, comparator)
        self.column = family + b":" + qualifier
        self.filter_if_missing = filter_if_missing
        self.latest_version_only = latest_version_only
        self.found = self.matched = False

    def reset(self):
        self.found = self.matched = False

    def filter_cell(self, row, cell):
        if self.matched:
            return INCLUDE
        if self.latest_version_only and self.found:
            return NEXT_ROW
        if cell[0] != self.column:
            return INCLUDE
        self.found = True
        if self.test.out(cell[2]):
            return NEXT_ROW if self.latest_version_only else INCLUDE
        self.matched = True
        return INCLUDE

    def filter_row(self):
        return (not self.matched) if self.found else self.filter_if_missing

    def has_filter_row(self):
        return True


class SingleColumnValueExcludeFilter(SingleColumnValueFilter):
    def filter_row_cells(self, cells):
        return [c for c in cells if c[0] != self.column]


class TimestampsFilter(Filter):
    def __init__(self, *timestamps: int):
        if any(t < 0 for t in timestamps):
            raise FilterError("TimestampsFilter timestamps must be >= 0")
        self.timestamps = frozenset(timestamps)

    def filter_cell(self, row, cell):
        return INCLUDE if cell[1] in self.timestamps else SKIP


class SkipFilter(Filter):
    """SKIP f: a row is left out entirely when f leaves out any of its cells."""

    def __init__(self, inner: Filter):
        self.inner = inner
        self.skip_row = False

    def reset(self):
        self.inner.reset()
        self.skip_row = False

    def filter_cell(self, row, cell):
        rc = self.inner.filter_cell(row, cell)
        self.skip_row = self.skip_row or rc != INCLUDE
        return rc

    def transform_cell(self, cell):
        return self.inner.transform_cell(cell)

    def filter_row(self):
        return self.skip_row

    def has_filter_row(self):
        return True

    def set_reversed(self, value):
        self.reversed = value
        self.inner.set_reversed(value)


class WhileMatchFilter(Filter):
    """WHILE f: the scan ends as soon as f leaves out a row or a cell."""

    def __init__(self, inner: Filter):
        self.inner = inner
        self.stop = False

    def reset(self):
        self.inner.reset()

    def filter_all_remaining(self):
        return self.stop or self.inner.filter_all_remaining()

    def filter_row_key(self, row):
        if self.filter_all_remaining():
            return True
        value = self.inner.filter_row_key(row)
        self.stop = self.stop or value
        return value

    def filter_cell(self, row, cell):
        rc = self.inner.filter_cell(row, cell)
        self.stop = self.stop or rc != INCLUDE
        return rc

    def transform_cell(self, cell):
        return self.inner.transform_cell(cell)

    def filter_row(self):
        value = self.inner.filter_row()
        self.stop = self.stop or value
        return value

    def has_filter_row(self):
        return True

    def set_reversed(self, value):
        self.reversed = value
        self.inner.set_reversed(value)


class FilterList(Filter):
    def __init__(self, filters: list[Filter]):
        self.filters = filters

    def reset(self):
        for f in self.filters:
            f.reset()

    def filter_row_cells(self, cells):
        for f in self.filters:
            cells = f.filter_row_cells(cells)
        return cells

    def has_filter_row(self):
        return any(f.has_filter_row() for f in self.filters)

    def set_reversed(self, value):
        self.reversed = value
        for f in self.filters:
            f.set_reversed(value)


class FilterListAnd(FilterList):
    """MUST_PASS_ALL: every sub-filter sees every cell; the most restrictive answer wins."""

    def filter_all_remaining(self):
        return any(f.filter_all_remaining() for f in self.filters)

    def filter_row_key(self, row):
        out = False
        for f in self.filters:  # no short cut: PrefixFilter and friends track state here
            if f.filter_all_remaining() or f.filter_row_key(row):
                out = True
        return out

    def filter_cell(self, row, cell):
        rc = INCLUDE
        for f in self.filters:
            if f.filter_all_remaining():
                return NEXT_ROW
            rc = max(rc, f.filter_cell(row, cell))
        return rc

    def transform_cell(self, cell):
        for f in self.filters:
            cell = f.transform_cell(cell)
        return cell

    def filter_row(self):
        out = False
        for f in self.filters:
            if f.filter_row():
                out = True
        return out


class FilterListOr(FilterList):
    """MUST_PASS_ONE: the least restrictive answer wins; a sub-filter that said NEXT_ROW sits out the row."""

    def __init__(self, filters):
        super().__init__(filters)
        self._row = None
        self._done: set[int] = set()
        self._included: list[Filter] = []

    def reset(self):
        super().reset()
        self._row = None
        self._done = set()

    def filter_all_remaining(self):
        return all(f.filter_all_remaining() for f in self.filters)

    def filter_row_key(self, row):
        out = True
        for f in self.filters:
            if not f.filter_all_remaining() and not f.filter_row_key(row):
                out = False
        return out

    def filter_cell(self, row, cell):
        # NEXT_ROW ends a sub-filter's say for the rest of this family only (a store scanner's seek)
        where = (row, family_of(cell[0]))
        if where != self._row:
            self._row, self._done = where, set()
        rc = None
        self._included = []
        for i, f in enumerate(self.filters):
            if f.filter_all_remaining():
                continue
            if i in self._done:
                local = NEXT_ROW
            else:
                local = f.filter_cell(row, cell)
                if local == NEXT_ROW:
                    self._done.add(i)
            if local == INCLUDE:
                self._included.append(f)
            rc = local if rc is None else min(rc, local)
        return SKIP if rc is None else rc

    def transform_cell(self, cell):
        for f in self._included:
            cell = f.transform_cell(cell)
        return cell

    def filter_row(self):
        for f in self.filters:
            if not f.filter_row():
                return False
        return True


# -- row driver -------------------------------------------------------------------
def apply_filter(filt: Filter, row: bytes, cells: list) -> tuple[list | None, bool]:
    """Run one row's cells through ``filt`` as HBase's region scanner does.

    ``cells`` may hold several versions of a column, newest first: as in HBase, a version the filter
    skips lets the next older one be tried, and the first one included is the column's answer.

    Returns (cells to return or None when the row is left out, whether the scan is over).
    """
    if filt.filter_all_remaining():
        return None, True
    done = False
    out: list | None = None
    if not filt.filter_row_key(row):
        kept = []
        skip_family = None
        included = None  # the column whose (one) version is in: its older versions are not looked at
        for cell in cells:
            if filt.filter_all_remaining():
                done = True  # HBase's matcher answers DONE_SCAN here
                break
            if skip_family is not None and cell[0].startswith(skip_family):
                continue
            if cell[0] == included:
                continue
            rc = filt.filter_cell(row, cell)
            if rc == INCLUDE:
                included = cell[0]
                kept.append(filt.transform_cell(cell))
            elif rc == NEXT_ROW:
                skip_family = family_of(cell[0]) + b":"
        if kept:
            kept = filt.filter_row_cells(kept)
            if kept and not filt.filter_row():
                out = kept
    filt.reset()
    return out, done or filt.filter_all_remaining()


# -- parser -------------------------------------------------------------------------
_TOKEN = re.compile(rb"""
    \s*(?:
      (?P<quoted>'(?:[^']|'')*')
    | (?P<op><=|>=|!=|<|>|=)
    | (?P<punct>[(),])
    | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<number>-?[0-9]+)
    )""", re.VERBOSE | re.DOTALL)

FILTERS = {
    "KeyOnlyFilter": KeyOnlyFilter, "FirstKeyOnlyFilter": FirstKeyOnlyFilter,
    "PrefixFilter": PrefixFilter, "ColumnPrefixFilter": ColumnPrefixFilter,
    "MultipleColumnPrefixFilter": MultipleColumnPrefixFilter, "ColumnRangeFilter": ColumnRangeFilter,
    "ColumnCountGetFilter": ColumnCountGetFilter, "PageFilter": PageFilter,
    "InclusiveStopFilter": InclusiveStopFilter, "RowFilter": RowFilter, "QualifierFilter": QualifierFilter,
    "ValueFilter": ValueFilter, "FamilyFilter": FamilyFilter,
    "SingleColumnValueFilter": SingleColumnValueFilter,
    "SingleColumnValueExcludeFilter": SingleColumnValueExcludeFilter, "TimestampsFilter": TimestampsFilter,
}

# argument kinds per filter: s = quoted bytes, i = integer, b = boolean, o = compare operator, c = comparator
SIGNATURES = {
    "KeyOnlyFilter": ("", "b"), "FirstKeyOnlyFilter": ("",), "PrefixFilter": ("s",),
    "ColumnPrefixFilter": ("s",), "MultipleColumnPrefixFilter": None, "ColumnRangeFilter": ("sbsb",),
    "ColumnCountGetFilter": ("i",), "PageFilter": ("i",), "InclusiveStopFilter": ("s",),
    "RowFilter": ("oc",), "QualifierFilter": ("oc",), "ValueFilter": ("oc",), "FamilyFilter": ("oc",),
    "SingleColumnValueFilter": ("ssoc", "ssocbb"), "SingleColumnValueExcludeFilter": ("ssoc", "ssocbb"),
    "TimestampsFilter": None,
}


class _Parser:
    def __init__(self, text: bytes):
        self.tokens = []
        pos = 0
        text = text.rstrip()
        while pos < len(text):
            m = _TOKEN.match(text, pos)
            if not m or m.end() == pos:
                raise FilterError(f"cannot parse filter string at byte {pos}: {text[pos:pos + 20]!r}")
            kind = m.lastgroup
            self.tokens.append((kind, m.group(kind), pos))
            pos = m.end()
        self.i = 0
        self.depth = 0

    def peek(self):
        return self.tokens[self.i] if self.i < len(self.tokens) else (None, None, -1)

    def take(self):
        tok = self.peek()
        if tok[0] is None:
            raise FilterError("filter string ends too early")
        self.i += 1
        return tok

    def expect(self, value: bytes):
        kind, text, pos = self.take()
        if text != value:
            raise FilterError(f"expected {value.decode()!r} at byte {pos}, found {text!r}")

    def parse(self) -> Filter:
        if not self.tokens:
            raise FilterError("empty filter string")
        filt = self.parse_or()
        if self.peek()[0] is not None:
            raise FilterError(f"unexpected {self.peek()[1]!r} at byte {self.peek()[2]}")
        return filt

    def parse_or(self) -> Filter:
        items = [self.parse_and()]
        while self.peek()[0] == "word" and self.peek()[1] == b"OR":
            self.take()
            items.append(self.parse_and())
        return items[0] if len(items) == 1 else FilterListOr(items)

    def parse_and(self) -> Filter:
        items = [self.parse_unary()]
        while self.peek()[0] == "word" and self.peek()[1] == b"AND":
            self.take()
            items.append(self.parse_unary())
        return items[0] if len(items) == 1 else FilterListAnd(items)

    def parse_unary(self) -> Filter:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise FilterError(f"filter nested deeper than {MAX_DEPTH}")
        try:
            kind, text, pos = self.peek()
            if kind == "word" and text == b"SKIP":
                self.take()
                return SkipFilter(self.parse_unary())
            if kind == "word" and text == b"WHILE":
                self.take()
                return WhileMatchFilter(self.parse_unary())
            if kind == "punct" and text == b"(":
                self.take()
                inner = self.parse_or()
                self.expect(b")")
                return inner
            return self.parse_filter()
        finally:
            self.depth -= 1

    def parse_filter(self) -> Filter:
        kind, text, pos = self.take()
        if kind != "word":
            raise FilterError(f"expected a filter name at byte {pos}, found {text!r}")
        name = text.decode()
        if name not in FILTERS:
            raise FilterError(f"filter {name} is not supported by the embedded HBase server "
                              f"(supported: {', '.join(sorted(FILTERS))})")
        self.expect(b"(")
        args = []
        if self.peek()[1] != b")":
            while True:
                args.append(self.take())
                if self.peek()[1] == b",":
                    self.take()
                    continue
                break
        self.expect(b")")
        return build_filter(name, args)


def _unquote(tok) -> bytes:
    kind, text, pos = tok
    if kind != "quoted":
        raise FilterError(f"expected a quoted string at byte {pos}, found {text!r}")
    return text[1:-1].replace(b"''", b"'")


def _convert(kind_code: str, tok, name: str):
    kind, text, pos = tok
    if kind_code == "s":
        return _unquote(tok)
    if kind_code == "i":
        if kind != "number":
            raise FilterError(f"{name}: expected an integer at byte {pos}, found {text!r}")
        value = int(text)
        if not -2**63 <= value < 2**63:
            raise FilterError(f"{name}: integer out of range at byte {pos}")
        return value
    if kind_code == "b":
        if kind == "word" and text.lower() in (b"true", b"false"):
            return text.lower() == b"true"
        raise FilterError(f"{name}: expected true or false at byte {pos}, found {text!r}")
    if kind_code == "o":
        if kind != "op":
            raise FilterError(f"{name}: expected a compare operator (<, <=, =, !=, >=, >) at byte {pos}, "
                              f"found {text!r}")
        return text
    if kind_code == "c":
        raw = _unquote(tok)
        ctype, sep, value = raw.partition(b":")
        if not sep or ctype.lower() not in COMPARATORS:
            raise FilterError(f"{name}: comparator must be 'binary:', 'binaryprefix:', 'regexstring:' or "
                              f"'substring:' followed by its value, found {raw!r}")
        return COMPARATORS[ctype.lower()](value)
    raise AssertionError(kind_code)


def build_filter(name: str, args: list) -> Filter:
    signatures = SIGNATURES[name]
    if signatures is None:  # variadic: MultipleColumnPrefixFilter('a', ...), TimestampsFilter(1, ...)
        code = "s" if name == "MultipleColumnPrefixFilter" else "i"
        values = [_convert(code, a, name) for a in args]
        return FILTERS[name](*values)
    for sig in signatures:
        if len(sig) == len(args):
            return FILTERS[name](*(_convert(c, a, name) for c, a in zip(sig, args)))
    counts = " or ".join(str(len(s)) for s in signatures)
    raise FilterError(f"{name} takes {counts} arguments, got {len(args)}")


def parse_filter(text: bytes | str, *, reversed: bool = False) -> Filter:
    """Parse an HBase filter string; FilterError with the position on a bad one."""
    if isinstance(text, str):
        text = text.encode("utf-8")
    if not isinstance(text, bytes):
        raise TypeError("filter string must be bytes or str")
    if len(text) > MAX_FILTER_LENGTH:
        raise FilterError(f"filter string longer than {MAX_FILTER_LENGTH} bytes")
    filt = _Parser(text).parse()
    filt.set_reversed(reversed)
    return filt
