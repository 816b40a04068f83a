"""Command line: python -m applicant_api init-db | import FILE | generate (more commands register on `cli`)."""

from __future__ import annotations

import logging
import sys

import click
import orjson

from applicant_api import db, schema

logger = logging.getLogger(__name__)

DEFAULT_SHOW_REJECTS = 20


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG level.")
def cli(verbose: bool) -> None:
    """Applicant data: schema, LendingClub import, synthetic data."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


_mysql_url_option = click.option(
    "--mysql-url", envvar="MYSQL_URL", default=None, show_envvar=True,
    help=f"mysql://user:password@host:port/database (default {db.DEFAULT_MYSQL_URL}).")


@cli.command("init-db")
@_mysql_url_option
def init_db_cmd(mysql_url: str | None) -> None:
    """Create the applications table if it is missing (idempotent)."""
    url = mysql_url or db.mysql_url()
    try:
        conn = db.connect(url)
    except Exception as exc:
        raise click.ClickException(f"cannot connect to MySQL at {_safe_url(url)}: {exc}") from None
    try:
        schema.init_db(conn)
    finally:
        conn.close()
    click.echo(f"schema ready: table {schema.TABLE} in {_safe_url(url)}", err=True)


@cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--batch-size", type=click.IntRange(1, 50_000), default=None,
              help="Rows per INSERT transaction (default IMPORT_BATCH_SIZE or 2000).")
@click.option("--source", default=None, help="Source tag stored with each row (default IMPORT_SOURCE or 'lendingclub').")
@click.option("--rejects", "rejects_file", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write every rejected row (line, id, reason) to this file as JSON lines.")
@click.option("--show-rejects", type=click.IntRange(0), default=DEFAULT_SHOW_REJECTS, show_default=True,
              help="How many rejected rows to print.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@_mysql_url_option
def import_cmd(file: str, batch_size: int | None, source: str | None, rejects_file: str | None,
               show_rejects: int, quiet: bool, mysql_url: str | None) -> None:
    """Import a LendingClub LoanStats FILE (.csv, .csv.gz or .zip) into the applications table.

    Prints a report on stderr and a one-line JSON summary as the last line on stdout.
    """
    from applicant_api import importer
    from credit_core.lendingclub import LoanStatsError

    url = mysql_url or db.mysql_url()
    kwargs = {}
    if batch_size is not None:
        kwargs["batch_size"] = batch_size
    if source is not None:
        kwargs["source"] = source
    try:
        report = importer.import_file(file, url, rejects_file=rejects_file, max_rejects_kept=show_rejects,
                                      progress=not quiet and sys.stderr.isatty(), **kwargs)
    except (LoanStatsError, ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    except Exception as exc:
        import pymysql

        if isinstance(exc, pymysql.err.MySQLError):
            raise click.ClickException(f"MySQL error at {_safe_url(url)}: {exc}") from None
        raise
    for rej in report.rejects[:show_rejects]:
        click.echo(f"line {rej.line_no}: skipped (id {rej.id or '-'}): {rej.reason}", err=True)
    if report.rejected > show_rejects:
        more = f"; all in {rejects_file}" if rejects_file else "; use --rejects FILE to keep them all"
        click.echo(f"... {report.rejected - show_rejects} more rejected rows{more}", err=True)
    ignored = ", ".join(f"{n} {k}" for k, n in report.ignored_lines.items() if n)
    click.echo(
        f"{report.path}: {report.rows} rows: {report.imported} imported, {report.duplicates} already present,"
        f" {report.rejected} rejected; ignored lines: {ignored or 'none'};"
        f" {report.seconds:.2f} s ({report.rows_per_s:,.0f} rows/s)", err=True)
    click.echo(orjson.dumps(report.summary()).decode())


@cli.command("generate")
@click.option("--rows", type=click.IntRange(0), required=True, help="Number of data rows.")
@click.option("--seed", type=click.IntRange(0), required=True, help="Random seed (same seed, same bytes).")
@click.option("--out", "out", type=click.Path(dir_okay=False, writable=True), required=True,
              help="Output FILE.csv or FILE.csv.gz.")
@click.option("--dirty", type=click.FloatRange(0.0, 1.0), default=0.0, show_default=True,
              help="Fraction of rows given one defect each (they fail validation).")
@click.option("--id-start", type=click.IntRange(0), default=None, help="Ids start above this number.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
def generate_cmd(rows: int, seed: int, out: str, dirty: float, id_start: int | None, quiet: bool) -> None:
    """Write a synthetic LendingClub LoanStats file with a known ground-truth default model."""
    from credit_core import synthetic

    kwargs = {} if id_start is None else {"id_start": id_start}
    bar = None
    if not quiet and sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=rows, unit="rows", unit_scale=True, desc=f"generate {out}")
    try:
        report = synthetic.generate(out, rows, seed, dirty, progress=bar.update if bar else None, **kwargs)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        if bar is not None:
            bar.close()
    click.echo(f"{out}: {report.rows} rows ({report.dirty_rows} dirty), ids {report.first_id}..{report.last_id}",
               err=True)
    click.echo(orjson.dumps(report.as_dict()).decode())


def _safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        parts = db.parse_mysql_url(url)
    except (TypeError, ValueError):
        return "<bad MYSQL_URL>"
    return f"mysql://{parts['user']}@{parts['host']}:{parts['port']}/{parts['database']}"


from applicant_api.serve import serve_cmd  # noqa: E402  (runs the applicant API under gunicorn)

cli.add_command(serve_cmd)


def main() -> None:
    cli(prog_name="python -m applicant_api")


if __name__ == "__main__":
    main()
