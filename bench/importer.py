"""LendingClub importer: rows/s from a LoanStats file into MariaDB, next to the database-only cost of the same rows.

`python -m bench.importer [--quick]` starts its own MariaDB (free port, temporary folder), writes a
synthetic LoanStats file (credit_core.synthetic, 1% dirty rows) and measures, as medians over repeats,
each next to its reference measured in the same run:

- the importer (read, clean, bind, batched INSERT) on the plain .csv, with its writer process (the
  default for large files) and with its in-process writer thread, each against plain pymysql
  ``executemany`` of the same rows already parsed and cleaned (the database-only cost);
- the importer on the same file gzipped, against ``LOAD DATA LOCAL INFILE`` of the cleaned rows as TSV
  (MariaDB's bulk-load ceiling, no per-row client work);
- reading and cleaning alone (lendingclub.iter_records, no database), against csv.reader on the same file.

Every repeat starts from an empty table and checks the row counts, so a figure is never for lost rows.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import logging
import shutil
import tempfile
import time
from pathlib import Path

from applicant_api import db, importer, schema
from credit_core import synthetic
from credit_core.fields import FIELD_NAMES
from credit_core.lendingclub import TRUE_PD_COLUMN, iter_records
from bench.common import figure, write_result
from deploy.services import MariaDB, free_port

logger = logging.getLogger(__name__)

TARGET = 20_000              # rows/s end to end into the local MariaDB
FULL_ROWS, QUICK_ROWS = 200_000, 40_000
FULL_REPEATS, QUICK_REPEATS = 3, 3
SEED = 1
DIRTY = 0.01
BATCH = importer.DEFAULT_BATCH_SIZE


def count_rows(url: str) -> int:
    conn = db.connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT COUNT(*) FROM `{schema.TABLE}`")
            return cur.fetchone()[0]
    finally:
        conn.close()


def run_import(url: str, path: Path, expected: int, writer_process: bool) -> float:
    schema.reset_db(url)
    report = importer.import_file(path, url, batch_size=BATCH, source="bench", writer_process=writer_process)
    if report.imported != expected or count_rows(url) != expected:
        raise RuntimeError(f"import wrote {report.imported} rows, expected {expected}")
    return report.rows / report.seconds


def cleaned_params(path: Path) -> tuple[list[tuple], int]:
    params, rows = [], 0
    for _line, rec, _err in iter_records(path):
        rows += 1
        if rec is not None:
            params.append(tuple(rec[n] for n in FIELD_NAMES) + (rec[TRUE_PD_COLUMN], "bench"))
    return params, rows


def run_executemany(url: str, params: list[tuple], rows: int) -> float:
    schema.reset_db(url)
    conn = db.connect(url)
    try:
        start = time.perf_counter()
        with conn.cursor() as cur:
            for i in range(0, len(params), BATCH):
                cur.executemany(importer.INSERT_SQL, params[i:i + BATCH])
                conn.commit()
        seconds = time.perf_counter() - start
    finally:
        conn.close()
    if count_rows(url) != len(params):
        raise RuntimeError("executemany reference lost rows")
    return rows / seconds


def _tsv_value(value) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, str):
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
    return repr(value) if isinstance(value, float) else str(value)


def write_tsv(params: list[tuple], path: Path) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for row in params:
            fh.write("\t".join(map(_tsv_value, row)) + "\n")


def run_load_data(url: str, tsv: Path, expected: int, rows: int) -> float:
    schema.reset_db(url)
    conn = db.connect(url, local_infile=True)
    columns = ", ".join(f"`{c}`" for c in importer.COLUMNS)
    try:
        start = time.perf_counter()
        with conn.cursor() as cur:
            # The file name is ours (a temporary path); LOAD DATA cannot take it as a parameter.
            cur.execute(f"LOAD DATA LOCAL INFILE %s IGNORE INTO TABLE `{schema.TABLE}` ({columns})", (str(tsv),))
        conn.commit()
        seconds = time.perf_counter() - start
    finally:
        conn.close()
    if count_rows(url) != expected:
        raise RuntimeError("LOAD DATA reference lost rows")
    return rows / seconds


def run_read_clean(path: Path, rows: int) -> float:
    start = time.perf_counter()
    n = sum(1 for _ in iter_records(path))
    seconds = time.perf_counter() - start
    if n != rows:
        raise RuntimeError(f"read {n} rows, expected {rows}")
    return rows / seconds


def run_csv_only(path: Path, rows: int) -> float:
    start = time.perf_counter()
    with open(path, newline="", encoding="utf-8") as fh:
        n = sum(1 for row in csv.reader(fh) if len(row) > 100) - 1   # minus the header
    seconds = time.perf_counter() - start
    if n != rows:
        raise RuntimeError(f"csv.reader saw {n} rows, expected {rows}")
    return rows / seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.importer", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_ROWS:,} rows instead of {FULL_ROWS:,}")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    rows = QUICK_ROWS if args.quick else FULL_ROWS
    repeats = QUICK_REPEATS if args.quick else FULL_REPEATS

    folder = Path(tempfile.mkdtemp(prefix="bench-importer-"))
    server = MariaDB(run_dir=folder / "run", port=free_port())
    try:
        server.start()
        url = server.url
        csv_path = folder / "LoanStats_bench.csv"
        gen = synthetic.generate(csv_path, rows, SEED, DIRTY)
        gz_path = folder / "LoanStats_bench.csv.gz"
        with open(csv_path, "rb") as src, gzip.open(gz_path, "wb", compresslevel=6) as dst:
            shutil.copyfileobj(src, dst)
        expected = rows - gen.dirty_rows
        params, seen = cleaned_params(csv_path)
        assert seen == rows and len(params) == expected
        tsv = folder / "cleaned.tsv"
        write_tsv(params, tsv)
        print(f"{rows:,} rows ({gen.dirty_rows:,} dirty), {repeats} repeats, batch {BATCH}", flush=True)

        # Interleave the measured case and its reference so drift on a shared machine hits both alike.
        imp, imp_thread, many, imp_gz, load, clean, raw = [], [], [], [], [], [], []
        for i in range(repeats):
            imp.append(run_import(url, csv_path, expected, True))
            many.append(run_executemany(url, params, rows))
            imp_thread.append(run_import(url, csv_path, expected, False))
            imp_gz.append(run_import(url, gz_path, expected, True))
            load.append(run_load_data(url, tsv, expected, rows))
            clean.append(run_read_clean(csv_path, rows))
            raw.append(run_csv_only(csv_path, rows))
            print(f"  repeat {i + 1}: import {imp[-1]:,.0f}  executemany {many[-1]:,.0f}"
                  f"  import/thread {imp_thread[-1]:,.0f}  import.gz {imp_gz[-1]:,.0f}  load-data {load[-1]:,.0f}"
                  f"  read+clean {clean[-1]:,.0f}  csv {raw[-1]:,.0f} rows/s", flush=True)
        figures = [
            figure("import .csv (writer process)", imp, "rows/s", reference="executemany of cleaned tuples",
                   reference_values=many, target=TARGET),
            figure("import .csv (writer thread)", imp_thread, "rows/s", reference="executemany of cleaned tuples",
                   reference_values=many, target=TARGET),
            figure("import .csv.gz (writer process)", imp_gz, "rows/s", reference="LOAD DATA LOCAL INFILE",
                   reference_values=load, target=TARGET),
            figure("read+clean only (no database)", clean, "rows/s", reference="csv.reader only",
                   reference_values=raw),
        ]
        write_result("importer", figures, quick=args.quick,
                     extra={"rows": rows, "dirty_rows": gen.dirty_rows, "batch_size": BATCH, "repeats": repeats})
    finally:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
