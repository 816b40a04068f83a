"""Synthetic LendingClub LoanStats files with a known ground-truth default model (deterministic per seed).

No real LendingClub data can be downloaded here, so the project writes its
own in the same ``LoanStats`` format (notice line, the 111-column header in
LendingClub's order plus an extra last column ``true_pd``, ``" 12.39%"``,
``" 36 months"``, ``"10+ years"``, ``"Dec-2014"``, blank lines and the
``Total amount funded in policy code ...`` summary lines at the end), so real
and synthetic data take the same import path.

Marginals (close to LendingClub 2007-2018)
------------------------------------------
- grade A 19%, B 29%, C 28%, D 14%, E 7%, F 2%, G 1%; sub-grade 1-5 uniform in a grade;
- int_rate = 5.6 + 0.66 * s + N(0, 0.35) percent, s = sub-grade index 0 (A1) .. 34 (G5), at least 5.31:
  about 5.6% at A1 to 28% at G5, strictly rising with the sub-grade on average;
- term 60 months with probability 8/17/28/40/52/62/68% for grades A..G, else 36;
- loan_amnt log-normal (median ~11,000; x1.4 for 60 months), 1,000..40,000 in steps of 25;
- annual_inc log-normal, median ~65,000 (sigma 0.55, a little lower at worse grades), 4,000..5,000,000;
- dti gamma, mean ~17 at A rising to ~23 at G, 0..39.99 (0.5% of rows 40..60);
- revol_util, bc_util beta-shaped, 0..100%; delinq_2yrs, inq_last_6mths Poisson;
- issue_d spread over Jan-2012 .. Dec-2018 with volume growing ~2.5% a month; rows
  are written in issue order with rising ids, so an out-of-time holdout is a date split.

Ground-truth default model
--------------------------
Each row's true probability of default is::

    z = -2.00
        + 1.50  * ln(int_rate / 12)          # int_rate in percent (carries grade / sub-grade)
        + 0.30  * (term == 60)
        + 0.020 * (dti - 18)
        - 0.35  * ln(annual_inc / 65000)
        + 0.006 * (revol_util - 50)          # revol_util in percent
        + 0.20  * min(delinq_2yrs, 5)
        + 0.07  * min(inq_last_6mths, 6)
    true_pd = 1 / (1 + exp(-z))

(:func:`true_pd` computes it from arrays or a cleaned record.) The overall
charge-off rate is about 16%, rising from ~6% at A to ~45% at G. The outcome
is drawn as ``default ~ Bernoulli(true_pd)``, written in ``true_pd`` with six
decimals, and ``loan_status`` says it:

- finished loans: ``Charged Off`` (``Default`` for 1% of them) if default, else ``Fully Paid``;
  for 2% of the 2012 loans the status carries the prefix
  ``Does not meet the credit policy. Status:``;
- loans still running (about 10% of rows, the most recent issue months): ``Current``, or if the
  draw says default, one of ``Late (31-120 days)``, ``Late (16-30 days)``, ``In Grace Period``
  (half of them) and ``Current`` (the rest).

For training, label ``Charged Off`` / ``Default`` (with or without the prefix) as 1,
``Fully Paid`` as 0, and drop the running loans; or use ``true_pd`` directly.

Dirty rows (``dirty`` fraction) each carry one defect that fields.clean_record
rejects: letters in dti or annual_inc, an empty required field, an unknown
grade, a negative amount, a missing id, or a wrong type ("abc" in loan_amnt,
"36 mo" terms, ...).
"""

from __future__ import annotations

import gzip
import io
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from credit_core.fields import FIELD_NAMES, MAX_INT
from credit_core.lendingclub import LOANSTATS_COLUMNS, TRUE_PD_COLUMN

logger = logging.getLogger(__name__)

# Rows generated per chunk; part of the seed -> bytes contract (changing it changes the output).
CHUNK_ROWS = 50_000
DEFAULT_ID_START = 1_000_000
MEMBER_ID_OFFSET = 1_700_000  # member id = id + this: member ids stay unique too
MAX_ID_STEP = 3               # ids grow by 1..3 per row
DEFAULT_GZIP_LEVEL = 6
NOTICE_LINE = "Notes offered by Prospectus (https://www.lendingclub.com/info/prospectus.action)"
COLUMNS: tuple[str, ...] = LOANSTATS_COLUMNS + (TRUE_PD_COLUMN,)

GRADES = ("A", "B", "C", "D", "E", "F", "G")
GRADE_MIX = (0.19, 0.29, 0.28, 0.14, 0.07, 0.02, 0.01)
TERM60_BY_GRADE = (0.08, 0.17, 0.28, 0.40, 0.52, 0.62, 0.68)
FIRST_YEAR, LAST_YEAR = 2012, 2018
MONTH_GROWTH = 0.025
CURRENT_WINDOW_MONTHS = 15      # loans issued in the last months are still running
CURRENT_MAX_SHARE = 0.50        # ... at most this share of a month's loans (ramping up to the end)

# Ground truth: coefficients of the logistic model documented above.
PD_INTERCEPT = -2.00
PD_COEF = {
    "log_int_rate": 1.50, "term60": 0.30, "dti": 0.020, "log_income": -0.35,
    "revol_util": 0.006, "delinq_2yrs": 0.20, "inq_last_6mths": 0.07,
}

_MONTH_ABBR = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_EMP_LENGTHS = ("n/a", "< 1 year", "1 year", "2 years", "3 years", "4 years", "5 years", "6 years",
                "7 years", "8 years", "9 years", "10+ years")
_EMP_LENGTH_P = (0.06, 0.08, 0.065, 0.09, 0.08, 0.06, 0.06, 0.045, 0.045, 0.045, 0.04, 0.33)
_HOME = ("MORTGAGE", "RENT", "OWN")
_HOME_P = (0.49, 0.40, 0.11)
_VERIFICATION = ("Not Verified", "Source Verified", "Verified")
_VERIFICATION_P = (0.32, 0.38, 0.30)
_PURPOSES = (
    ("debt_consolidation", "Debt consolidation", 0.58), ("credit_card", "Credit card refinancing", 0.22),
    ("home_improvement", "Home improvement", 0.06), ("other", "Other", 0.05),
    ("major_purchase", "Major purchase", 0.02), ("small_business", "Business", 0.012),
    ("car", "Car financing", 0.011), ("medical", "Medical expenses", 0.011), ("moving", "Moving and relocation", 0.007),
    ("vacation", "Vacation", 0.006), ("house", "Home buying", 0.005), ("wedding", "Wedding", 0.003),
    ("renewable_energy", "Green loan", 0.001), ("educational", "Learning and training", 0.001),
)
_EMP_TITLES = (
    "Teacher", "Manager", "Registered Nurse", "Owner", "RN", "Supervisor", "Sales", "Project Manager",
    "Driver", "Office Manager", "General Manager", "Director", "Truck Driver", "Engineer", "President",
    "Operations Manager", "Police Officer", "Accountant", "Store Manager", "Sales Manager", "Analyst",
    "Administrative Assistant", "Software Engineer", "Account Manager", "Mechanic", "Technician",
    "Nurse", "Customer Service", "Server", "Electrician", "Attorney", "Vice President", "Consultant",
    "Manager, Operations", "Admin Specialist", "Senior Sales Professional", "MANAGEMENT", "Cashier",
    "Warehouse Associate", "Pharmacist",
)
_STATES = (
    ("CA", 14.0), ("NY", 8.3), ("TX", 8.2), ("FL", 7.1), ("IL", 4.0), ("NJ", 3.6), ("PA", 3.4), ("OH", 3.3),
    ("GA", 3.3), ("VA", 2.8), ("NC", 2.8), ("MI", 2.6), ("AZ", 2.4), ("MD", 2.4), ("MA", 2.3), ("CO", 2.1),
    ("WA", 2.1), ("MN", 1.8), ("IN", 1.6), ("MO", 1.6), ("TN", 1.6), ("NV", 1.5), ("CT", 1.5), ("WI", 1.3),
    ("AL", 1.2), ("OR", 1.2), ("SC", 1.2), ("LA", 1.1), ("KY", 1.0), ("OK", 0.9), ("KS", 0.8), ("AR", 0.8),
    ("UT", 0.8), ("NM", 0.5), ("HI", 0.5), ("MS", 0.5), ("NH", 0.5), ("RI", 0.4), ("WV", 0.4), ("MT", 0.3),
    ("DE", 0.3), ("DC", 0.2), ("AK", 0.2), ("WY", 0.2), ("SD", 0.2), ("VT", 0.2), ("NE", 0.2), ("ME", 0.2),
    ("ND", 0.1), ("ID", 0.1),
)
_RUNNING_LATE = ("Late (31-120 days)", "Late (16-30 days)", "In Grace Period")
_POLICY_PREFIX = "Does not meet the credit policy. Status:"

# Defects injected into dirty rows; every one makes fields.clean_record fail.
DIRTY_KINDS = ("dti_letters", "annual_inc_letters", "empty_required", "unknown_grade",
               "negative_amount", "missing_id", "wrong_type")
_EMPTY_REQUIRED = ("loan_amnt", "funded_amnt", "term", "int_rate", "grade", "annual_inc", "dti")
_WRONG_TYPES = (("loan_amnt", "abc"), ("loan_amnt", "ten thousand"), ("term", " 36 mo"), ("term", "3 years"),
                ("int_rate", "twelve%"), ("id", "12.5"), ("emp_length", "lots"), ("issue_d", "Dec/2014"),
                ("funded_amnt", "1O000"))


@dataclass
class GenerateReport:
    """What generate() wrote."""

    path: str
    rows: int
    seed: int
    dirty_rows: int = 0
    dirty_by_kind: dict[str, int] = field(default_factory=dict)
    defaults: int = 0                 # rows whose outcome draw was a default (finished or running)
    running: int = 0                  # rows with a still-running status (Current, Late...)
    funded_total: float = 0.0
    first_id: int = 0
    last_id: int = 0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def true_pd(int_rate, term, dti, annual_inc, revol_util, delinq_2yrs, inq_last_6mths):
    """The ground-truth probability of default (numpy arrays or scalars), as documented in the module."""
    c = PD_COEF
    z = (PD_INTERCEPT
         + c["log_int_rate"] * np.log(np.asarray(int_rate, dtype=float) / 12.0)
         + c["term60"] * (np.asarray(term) == 60)
         + c["dti"] * (np.asarray(dti, dtype=float) - 18.0)
         + c["log_income"] * np.log(np.asarray(annual_inc, dtype=float) / 65000.0)
         + c["revol_util"] * (np.nan_to_num(np.asarray(revol_util, dtype=float), nan=50.0) - 50.0)
         + c["delinq_2yrs"] * np.minimum(np.nan_to_num(np.asarray(delinq_2yrs, dtype=float)), 5)
         + c["inq_last_6mths"] * np.minimum(np.nan_to_num(np.asarray(inq_last_6mths, dtype=float)), 6))
    return 1.0 / (1.0 + np.exp(-z))


def true_pd_of_record(rec: Mapping[str, Any]) -> float:
    """true_pd for one cleaned record (fields.clean_record output); missing optional counts read as 0."""
    def opt(name: str, default: float) -> float:
        value = rec.get(name)
        return default if value is None else float(value)

    return float(true_pd(rec["int_rate"], rec["term"], rec["dti"], rec["annual_inc"],
                         opt("revol_util", 50.0), opt("delinq_2yrs", 0.0), opt("inq_last_6mths", 0.0)))


def _month_names(first_year: int, last_year: int) -> np.ndarray:
    return np.array([f"{m}-{y}" for y in range(first_year, last_year + 1) for m in _MONTH_ABBR])


_CREDIT_FIRST_YEAR = 1950
_CREDIT_MONTHS = _month_names(_CREDIT_FIRST_YEAR, LAST_YEAR)


def _row_months(start: int, n: int, rows: int) -> np.ndarray:
    """Issue month index (0 = Jan of FIRST_YEAR) of rows start..start+n, by position (volume grows)."""
    months = 12 * (LAST_YEAR - FIRST_YEAR + 1)
    weights = np.exp(MONTH_GROWTH * np.arange(months))
    cum = np.cumsum(weights) / weights.sum()
    pos = (np.arange(start, start + n) + 0.5) / rows
    return np.minimum(np.searchsorted(cum, pos, side="right"), months - 1)


def _fmt(values: np.ndarray, spec: str) -> list[str]:
    return [format(v, spec) for v in values.tolist()]


def _ints(values: np.ndarray) -> list[str]:
    return list(map(str, values.astype(np.int64).tolist()))


def _chunk(rng: np.random.Generator, start: int, n: int, rows: int, first_id: int
           ) -> tuple[dict[str, list[str]], dict[str, Any]]:
    """Columns (as text) for rows start..start+n of the file, and facts for the report."""
    grade_idx = rng.choice(7, size=n, p=GRADE_MIX)
    sub = rng.integers(0, 5, size=n)
    s = grade_idx * 5 + sub
    int_rate = np.round(np.maximum(5.6 + 0.66 * s + rng.normal(0.0, 0.35, n), 5.31), 2)
    term = np.where(rng.random(n) < np.asarray(TERM60_BY_GRADE)[grade_idx], 60, 36)

    loan = np.exp(rng.normal(math.log(11000), 0.6, n)) * np.where(term == 60, 1.4, 1.0)
    loan = np.clip(np.round(loan / 25) * 25, 1000, 40000)
    cut = rng.random(n) < 0.03
    funded = np.where(cut, np.maximum(np.round(loan * rng.uniform(0.5, 0.98, n) / 25) * 25, 500), loan)
    funded_inv = np.where(rng.random(n) < 0.1, np.round(funded - rng.uniform(0, 200, n), 2), funded)
    r = int_rate / 1200.0
    installment = np.round(funded * r / (1 - (1 + r) ** (-term)), 2)

    annual_inc = np.exp(rng.normal(math.log(65000) + 0.05 * (2 - grade_idx), 0.55, n))
    annual_inc = np.clip(np.round(annual_inc / 100) * 100, 4000, 5_000_000)
    dti = rng.gamma(4.0, (16.5 + 1.0 * grade_idx) / 4.0, n)
    dti = np.where(rng.random(n) < 0.005, rng.uniform(40, 60, n), np.minimum(dti, 39.99))
    dti = np.round(dti, 2)
    revol_util = np.round(np.clip(rng.beta(2.2, 2.0, n) * 100 + 3 * (grade_idx - 2), 0, 100), 1)
    bc_util = np.round(np.clip(rng.beta(2.0, 1.6, n) * 100, 0, 100), 1)
    delinq = np.minimum(rng.poisson(0.3, n), 15)
    inq = np.minimum(rng.poisson(0.55 + 0.12 * grade_idx), 25)
    open_acc = 1 + rng.poisson(10.5, n)
    total_acc = open_acc + rng.poisson(13, n)
    pub_rec = np.where(rng.random(n) < 0.15, 1 + rng.poisson(0.1, n), 0)
    revol_bal = np.round(np.exp(rng.normal(math.log(11000), 0.9, n)))
    bc_open = np.round(np.exp(rng.normal(math.log(5000), 1.2, n)))
    il_limit = np.where(rng.random(n) < 0.25, 0, np.round(np.exp(rng.normal(math.log(30000), 0.9, n))))

    pd = true_pd(int_rate, term, dti, annual_inc, revol_util, delinq, inq)
    default = rng.random(n) < pd

    month = _row_months(start, n, rows)
    months_total = 12 * (LAST_YEAR - FIRST_YEAR + 1)
    ramp = np.clip((month - (months_total - CURRENT_WINDOW_MONTHS) + 1) / CURRENT_WINDOW_MONTHS, 0, 1)
    running = rng.random(n) < CURRENT_MAX_SHARE * ramp
    u = rng.random(n)
    status = np.where(default, np.where(u < 0.01, "Default", "Charged Off"), "Fully Paid").astype(object)
    late = np.asarray(_RUNNING_LATE, dtype=object)[rng.integers(0, 3, n)]
    status = np.where(running, np.where(default & (u < 0.5), late, "Current"), status)
    policy = (~running) & (month < 12) & (rng.random(n) < 0.02)
    status = np.where(policy, _POLICY_PREFIX + status.astype(str), status).astype(str)

    ids = first_id + np.cumsum(rng.integers(1, MAX_ID_STEP + 1, n))
    member_ids = ids + MEMBER_ID_OFFSET

    issue_abs = (FIRST_YEAR - _CREDIT_FIRST_YEAR) * 12 + month
    history = np.round(12 * (3 + rng.gamma(2.2, 7.0, n))).astype(np.int64)
    credit_abs = np.maximum(issue_abs - history, 0)
    emp_len = rng.choice(len(_EMP_LENGTHS), size=n, p=_EMP_LENGTH_P)
    emp_title = np.asarray(_EMP_TITLES, dtype=object)[rng.integers(0, len(_EMP_TITLES), n)]
    emp_title = np.where((emp_len == 0) | (rng.random(n) < 0.03), "", emp_title)
    home = rng.choice(3, size=n, p=_HOME_P)
    verification = rng.choice(3, size=n, p=_VERIFICATION_P)
    purpose_p = np.array([p for _, _, p in _PURPOSES])
    purpose = rng.choice(len(_PURPOSES), size=n, p=purpose_p / purpose_p.sum())
    state_w = np.array([w for _, w in _STATES])
    state = rng.choice(len(_STATES), size=n, p=state_w / state_w.sum())
    zip3 = rng.integers(10, 999, n)
    bc_missing = rng.random(n) < 0.01
    mort_acc = np.where(home == 0, 1 + rng.poisson(1.5, n), rng.poisson(0.3, n))
    tot_cur_bal = np.round(revol_bal + il_limit * 0.6 + mort_acc * rng.uniform(0, 150000, n))
    total_rev_hi_lim = np.round(revol_bal / np.maximum(revol_util, 1) * 100)
    initial_w = rng.random(n) < 0.6

    month_names = _CREDIT_MONTHS
    cols: dict[str, list[str]] = {
        "id": _ints(ids),
        "member_id": _ints(member_ids),
        "loan_amnt": _ints(loan),
        "funded_amnt": _ints(funded),
        "funded_amnt_inv": _fmt(funded_inv, ".2f"),
        "term": [" 60 months" if t == 60 else " 36 months" for t in term.tolist()],
        "int_rate": [f"{v:6.2f}%" for v in int_rate.tolist()],     # " 12.39%", "  6.99%"
        "installment": _fmt(installment, ".2f"),
        "grade": np.asarray(GRADES)[grade_idx].tolist(),
        "sub_grade": [GRADES[g] + str(k + 1) for g, k in zip(grade_idx.tolist(), sub.tolist())],
        "emp_title": emp_title.tolist(),
        "emp_length": np.asarray(_EMP_LENGTHS)[emp_len].tolist(),
        "home_ownership": np.asarray(_HOME)[home].tolist(),
        "annual_inc": _ints(annual_inc),
        "verification_status": np.asarray(_VERIFICATION)[verification].tolist(),
        "issue_d": month_names[issue_abs].tolist(),
        "loan_status": status.tolist(),
        "pymnt_plan": ["n"] * n,
        "url": ["https://lendingclub.com/browse/loanDetail.action?loan_id=" + i for i in _ints(ids)],
        "purpose": np.asarray([p for p, _, _ in _PURPOSES])[purpose].tolist(),
        "title": np.asarray([t for _, t, _ in _PURPOSES])[purpose].tolist(),
        "zip_code": [f"{z:03d}xx" for z in zip3.tolist()],
        "addr_state": np.asarray([st for st, _ in _STATES])[state].tolist(),
        "dti": _fmt(dti, ".2f"),
        "delinq_2yrs": _ints(delinq),
        "earliest_cr_line": month_names[credit_abs].tolist(),
        "inq_last_6mths": _ints(inq),
        "open_acc": _ints(open_acc),
        "pub_rec": _ints(pub_rec),
        "revol_bal": _ints(revol_bal),
        "revol_util": [f"{v:g}%" for v in revol_util.tolist()],
        "total_acc": _ints(total_acc),
        "initial_list_status": np.where(initial_w, "w", "f").tolist(),
        "policy_code": ["1"] * n,
        "application_type": ["INDIVIDUAL"] * n,
        "tot_cur_bal": _ints(tot_cur_bal),
        "total_rev_hi_lim": _ints(total_rev_hi_lim),
        "bc_open_to_buy": np.where(bc_missing, "", np.asarray(_ints(bc_open), dtype=object)).tolist(),
        "bc_util": np.where(bc_missing, "", np.asarray([f"{v:g}" for v in bc_util.tolist()], dtype=object)).tolist(),
        "mort_acc": _ints(mort_acc),
        "num_sats": _ints(open_acc),
        "pub_rec_bankruptcies": _ints(np.minimum(pub_rec, 1)),
        "tax_liens": ["0"] * n,
        "total_il_high_credit_limit": _ints(il_limit),
        TRUE_PD_COLUMN: _fmt(pd, ".6f"),
    }
    facts = {"defaults": int(default.sum()), "running": int(running.sum()),
             "funded_total": float(funded.sum()), "last_id": int(ids[-1]), "first_id": int(ids[0])}
    return cols, facts


def _make_dirty(rng: np.random.Generator, cols: dict[str, list[str]], fraction: float,
                counts: dict[str, int]) -> int:
    """Give a `fraction` of the chunk's rows one defect each (in place); return how many."""
    n = len(cols["id"])
    picked = np.flatnonzero(rng.random(n) < fraction)
    kinds = rng.integers(0, len(DIRTY_KINDS), picked.size)
    choice = rng.integers(0, 1 << 30, picked.size)
    for row, kind_idx, c in zip(picked.tolist(), kinds.tolist(), choice.tolist()):
        kind = DIRTY_KINDS[kind_idx]
        if kind == "dti_letters":
            cols["dti"][row] = ("12.5a", "N/A", "abc", "1O.5", "high")[c % 5]
        elif kind == "annual_inc_letters":
            cols["annual_inc"][row] = ("65k", "sixty thousand", "USD 50000", "50,000 yearly")[c % 4]
        elif kind == "empty_required":
            cols[_EMPTY_REQUIRED[c % len(_EMPTY_REQUIRED)]][row] = ""
        elif kind == "unknown_grade":
            cols["grade"][row] = ("H", "Z", "AA", "1", "?")[c % 5]
        elif kind == "negative_amount":
            name = ("loan_amnt", "funded_amnt")[c % 2]
            cols[name][row] = "-" + cols[name][row]
        elif kind == "missing_id":
            cols["id"][row] = ""
        else:
            name, text = _WRONG_TYPES[c % len(_WRONG_TYPES)]
            cols[name][row] = text
        counts[kind] = counts.get(kind, 0) + 1
    return int(picked.size)


def _row_template() -> tuple[str, list[str]]:
    """A %-template for one line (every field quoted; unused columns empty) and the filled column names."""
    filled = []
    parts = []
    for name in COLUMNS:
        if name in _FILLED:
            parts.append('"%s"')
            filled.append(name)
        else:
            parts.append('""')
    return ",".join(parts), filled


_FILLED = frozenset((
    "id", "member_id", "loan_amnt", "funded_amnt", "funded_amnt_inv", "term", "int_rate", "installment", "grade",
    "sub_grade", "emp_title", "emp_length", "home_ownership", "annual_inc", "verification_status", "issue_d",
    "loan_status", "pymnt_plan", "url", "purpose", "title", "zip_code", "addr_state", "dti", "delinq_2yrs",
    "earliest_cr_line", "inq_last_6mths", "open_acc", "pub_rec", "revol_bal", "revol_util", "total_acc",
    "initial_list_status", "policy_code", "application_type", "tot_cur_bal", "total_rev_hi_lim",
    "bc_open_to_buy", "bc_util", "mort_acc", "num_sats", "pub_rec_bankruptcies", "tax_liens",
    "total_il_high_credit_limit", TRUE_PD_COLUMN,
))


def _open_out(path: Path, gzip_level: int) -> io.TextIOBase:
    raw = open(path, "wb")
    if path.name.lower().endswith(".gz"):
        # filename="" and mtime=0 keep the bytes identical for a seed.
        binary: Any = gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=gzip_level, mtime=0)
        text = io.TextIOWrapper(binary, encoding="utf-8", newline="")
        text._raw_file = raw  # closed after the gzip stream
        return text
    return io.TextIOWrapper(raw, encoding="utf-8", newline="")


# The application-time fields of credit_core.fields (no outcome: loan_status is what the loan came to).
APPLICANT_COLUMNS: tuple[str, ...] = tuple(name for name in FIELD_NAMES if name != "loan_status")


def applicants(count: int, *, seed: int, first_id: int = 1) -> Iterator[dict[str, str]]:
    """``count`` synthetic applicants as LoanStats strings (``" 12.39%"``, ``" 36 months"``, ``"10+ years"``,
    ``"Dec-2014"``, ``""`` for a blank), keyed by APPLICANT_COLUMNS; deterministic for ``seed``.

    The values come from the chunk generator of :func:`generate` (same marginals, same ground truth), but the
    ids are ``first_id``, ``first_id + 1``, ... (member id = id + MEMBER_ID_OFFSET) so a caller knows them;
    no row is dirty. fields.clean_record of each gives the cleaned record.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"count must be an int >= 0, got {count!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    if isinstance(first_id, bool) or not isinstance(first_id, int) or first_id < 1:
        raise ValueError(f"first_id must be an int >= 1, got {first_id!r}")
    if first_id + count + MEMBER_ID_OFFSET > MAX_INT:
        raise ValueError(f"first_id + count + {MEMBER_ID_OFFSET} must be <= {MAX_INT}, got first_id={first_id}")
    for index, start in enumerate(range(0, count, CHUNK_ROWS)):
        n = min(CHUNK_ROWS, count - start)
        cols, _ = _chunk(np.random.default_rng([seed, index]), start, n, count, first_id)
        columns = [cols[name] for name in APPLICANT_COLUMNS]
        for offset, values in enumerate(zip(*columns)):
            row = dict(zip(APPLICANT_COLUMNS, values))
            app_id = first_id + start + offset
            row["id"], row["member_id"] = str(app_id), str(app_id + MEMBER_ID_OFFSET)
            yield row


def generate(path: str | os.PathLike, rows: int, seed: int, dirty: float = 0.0, *,
             id_start: int = DEFAULT_ID_START, gzip_level: int = DEFAULT_GZIP_LEVEL,
             progress=None) -> GenerateReport:
    """Write `rows` synthetic loans to `path` (.csv or .csv.gz) for `seed`; a `dirty` fraction is bad rows.

    ``progress``, if given, is called with the number of rows written after each chunk.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or PathLike, got {type(path).__name__}")
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
        raise ValueError(f"rows must be an int >= 0, got {rows!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    if isinstance(dirty, bool) or not isinstance(dirty, (int, float)) or not 0.0 <= dirty <= 1.0:
        raise ValueError(f"dirty must be a fraction in 0..1, got {dirty!r}")
    if isinstance(id_start, bool) or not isinstance(id_start, int) or id_start < 0:
        raise ValueError(f"id_start must be an int >= 0, got {id_start!r}")
    if id_start + MAX_ID_STEP * rows + MEMBER_ID_OFFSET > MAX_INT:
        # numpy's int64 would wrap around silently: ids must stay exact and within the BIGINT columns
        raise ValueError(f"id_start + {MAX_ID_STEP} x rows + {MEMBER_ID_OFFSET} must be <= {MAX_INT} "
                         f"(the BIGINT column's range), got id_start={id_start} with rows={rows}")
    path = Path(path)
    report = GenerateReport(path=str(path), rows=rows, seed=seed)
    template, filled = _row_template()
    next_id = id_start
    out = _open_out(path, gzip_level)
    try:
        out.write(NOTICE_LINE + "\n")
        out.write(",".join(f'"{c}"' for c in COLUMNS) + "\n")
        for index, start in enumerate(range(0, rows, CHUNK_ROWS)):
            n = min(CHUNK_ROWS, rows - start)
            rng = np.random.default_rng([seed, index])
            cols, facts = _chunk(rng, start, n, rows, next_id)
            if dirty > 0:
                report.dirty_rows += _make_dirty(rng, cols, float(dirty), report.dirty_by_kind)
            next_id = facts["last_id"]
            if index == 0:
                report.first_id = facts["first_id"]
            report.last_id = facts["last_id"]
            report.defaults += facts["defaults"]
            report.running += facts["running"]
            report.funded_total += facts["funded_total"]
            out.write("\n".join([template % vals for vals in zip(*(cols[c] for c in filled))]))
            out.write("\n")
            if progress is not None:
                progress(n)
        out.write("\n\n")
        out.write(f"Total amount funded in policy code 1: {int(report.funded_total)}\n")
        out.write("Total amount funded in policy code 2: 0\n")
    finally:
        out.close()
        raw = getattr(out, "_raw_file", None)
        if raw is not None:
            raw.close()
    logger.info("wrote %d rows (%d dirty) to %s", rows, report.dirty_rows, path)
    return report
