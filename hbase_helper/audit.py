"""Audit reads of the decisions store: one application by id, or decisions in a time range (CLI and functions).

    python -m hbase_helper.audit get ID
    python -m hbase_helper.audit scan --from T --to T [--decision approve|decline] [--limit N]

``get`` prints the application's current decision (the latest raw record by
the producer's sequence, see hbase_helper.layout) with ``history``: every
decision stored for it, oldest first. ``scan`` prints current decisions (no
history), each application once, at the time of its current version.

T is epoch milliseconds or ISO-8601 (``2024-05-01``, ``2024-05-01T12:00:00+02:00``;
no offset means UTC); ``--from`` is inclusive, ``--to`` exclusive. The time
is when the application was stored in the applicant store (``created_at``
from the producer), else when it reached ``applicants.raw``, else when the
pipeline ingested it (see hbase_helper.layout).
Each result is one JSON line on stdout; errors go to stderr (exit code 2 for
bad input, 1 for a missing application or an unreachable HBase).
"""

from __future__ import annotations

import heapq
import logging
import socket
import sys
from datetime import datetime, timezone
from typing import Any, Iterator

import click
import orjson

from hbase_helper import layout
from hbase_helper.settings import PROTOCOLS, TRANSPORTS, HBaseSettings
from hbase_helper.writer import read_decision

logger = logging.getLogger(__name__)

DEFAULT_CHUNK = 500          # main rows fetched per multi-get while scanning
SCAN_BATCH = 1000            # index rows per scannerGetList


def get_decision(connection, app_id: int) -> dict[str, Any] | None:
    """The current decision of one application with its history (exactly one get on the main table), or None."""
    return read_decision(connection, app_id)


def scan_decisions(connection, start_ms: int, stop_ms: int, decision: str | None = None,
                   limit: int | None = None, *, chunk: int = DEFAULT_CHUNK) -> Iterator[dict[str, Any]]:
    """Current decisions whose version's index time is in [start_ms, stop_ms), in time order (ties by id).

    One range scan per index bucket, merged; ``decision`` filters the index
    rows server-side (SingleColumnValueFilter) before any main row is read,
    and is checked again on the current decision; main rows come in
    multi-gets of ``chunk``. Index rows of older versions (the current
    decision has another ``index_key``) are skipped.
    """
    layout.check_time_ms(start_ms, "start")
    layout.check_time_ms(stop_ms, "stop")
    if stop_ms < start_ms:
        raise ValueError(f"stop ({stop_ms}) is before start ({start_ms})")
    if decision is not None and decision not in layout.DECISIONS:
        raise ValueError(f"decision must be one of {', '.join(layout.DECISIONS)}, got {decision!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive int, got {limit!r}")
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk must be a positive int, got {chunk!r}")
    return _scan(connection, start_ms, stop_ms, decision, limit, chunk)


def _scan(connection, start_ms, stop_ms, decision, limit, chunk) -> Iterator[dict[str, Any]]:
    if start_ms == stop_ms:
        return
    index = connection.table(layout.INDEX_TABLE)
    main = connection.table(layout.MAIN_TABLE)
    batch = min(limit or SCAN_BATCH, SCAN_BATCH)
    # Standard HBase filter language: the region server drops non-matching index rows.
    server_filter = (f"SingleColumnValueFilter('i', 'decision', =, 'binary:{decision}', true, true)"
                     if decision is not None else None)
    scans = [index.scan(row_start=lo, row_stop=hi, batch_size=batch, filter=server_filter)
             for lo, hi in layout.index_scan_ranges(start_ms, stop_ms)]
    # Keys are "BB|time|id": ordering by the part after the bucket is (time, id) order.
    merged = heapq.merge(*scans, key=lambda item: item[0][3:])
    if limit is not None:
        chunk = min(chunk, limit)
    returned = 0
    try:
        pending: list[dict[str, Any]] = []
        for key, cells in merged:
            entry = layout.decode_index_row(key, cells)
            if decision is not None and entry["decision"] != decision:
                continue  # the server filtered already; this guards a server that ignores filters
            entry["want"] = decision
            pending.append(entry)
            if len(pending) < chunk:
                continue
            for row in _resolve(main, pending):
                yield row
                returned += 1
                if limit is not None and returned >= limit:
                    return
            pending = []
            if limit is not None:
                chunk = min(chunk, limit - returned)
        for row in _resolve(main, pending):
            yield row
            returned += 1
            if limit is not None and returned >= limit:
                return
    finally:
        for scan in scans:
            scan.close()  # closes the server-side scanner of a scan left part-way


def _resolve(main, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Main rows for index entries (one multi-get), in the entries' order, stale entries dropped."""
    if not entries:
        return []
    found = dict(main.rows([e["row"] for e in entries]))
    out = []
    for entry in entries:
        cells = found.get(entry["row"])
        if not cells:
            logger.warning("index entry %r has no main row", entry["index_key"])
            continue
        row = layout.decode_main_row(entry["row"], cells, history=False)
        current = (row or {}).get("index_key")
        if current is None or current.encode("utf-8", errors="surrogateescape") != entry["index_key"]:
            logger.debug("skipping index entry %r of an older version (current at %r)", entry["index_key"],
                         current)
            continue
        if entry["want"] is not None and row["decision"] != entry["want"]:
            continue
        out.append(row)
    return out


# -- CLI ----------------------------------------------------------------------

def parse_time(text: str) -> int:
    """Epoch milliseconds from digits (epoch ms) or ISO-8601 text (UTC when no offset is given)."""
    value = text.strip()
    if not value:
        raise ValueError("empty time")
    if value.isdigit():
        ms = int(value)
    else:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{text!r} is neither epoch milliseconds nor an ISO-8601 time "
                             f"(e.g. 2024-05-01T12:00:00Z)") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=timezone.utc)
        ms = int(moment.timestamp() * 1000)
    if not 0 <= ms <= layout.MAX_TIME_MS:
        raise ValueError(f"{text!r} is outside 1970..2286")
    return ms


class TimeParam(click.ParamType):
    name = "TIME"

    def convert(self, value, param, ctx):
        if isinstance(value, int):
            return value
        try:
            return parse_time(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class IdParam(click.ParamType):
    name = "ID"

    def convert(self, value, param, ctx):
        text = str(value).strip()
        if not text.isdigit() or int(text) < 1:
            self.fail(f"an application id is a positive integer, got {value!r}", param, ctx)
        try:
            return layout.check_id(int(text))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def _connection_errors() -> tuple[type[BaseException], ...]:
    from hbase_helper.thrift_types import HBaseIOError, IllegalArgument, TException

    return (TException, HBaseIOError, IllegalArgument, OSError, socket.timeout)


def _failure(settings: HBaseSettings, exc: BaseException) -> click.ClickException:
    message = getattr(exc, "message", None) or str(exc)
    if isinstance(message, bytes):
        message = message.decode("utf-8", errors="replace")
    if "TableNotFound" in message or "table not found" in message.lower():
        return click.ClickException(
            f"HBase at {settings.address} has no decisions tables (table prefix {settings.table_prefix!r}): "
            f"nothing was saved there yet, or HBASE_TABLE_PREFIX / --table-prefix is wrong ({message})")
    return click.ClickException(f"HBase at {settings.address} failed: {type(exc).__name__}: {message}")


def _emit(row: dict[str, Any]) -> None:
    sys.stdout.buffer.write(orjson.dumps(row) + b"\n")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--host", default=None, help="HBase Thrift host [env HBASE_HOST, default 127.0.0.1].")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="HBase Thrift port [env HBASE_PORT, default 9090].")
@click.option("--table-prefix", default=None, help="happybase table prefix [env HBASE_TABLE_PREFIX].")
@click.option("--protocol", type=click.Choice(PROTOCOLS), default=None, help="[env HBASE_PROTOCOL, binary]")
@click.option("--transport", type=click.Choice(TRANSPORTS), default=None, help="[env HBASE_TRANSPORT, buffered]")
@click.option("--timeout-ms", type=click.IntRange(min=1), default=None, help="[env HBASE_TIMEOUT_MS]")
@click.pass_context
def cli(ctx, host, port, table_prefix, protocol, transport, timeout_ms):
    """Audit the decisions stored in HBase; prints JSON lines."""
    try:
        ctx.obj = HBaseSettings.from_env(host=host, port=port, table_prefix=table_prefix, protocol=protocol,
                                         transport=transport, timeout_ms=timeout_ms)
    except (TypeError, ValueError) as exc:
        raise click.UsageError(f"bad HBase setting: {exc}") from None


def _open(settings: HBaseSettings):
    from hbase_helper.pool import connect

    return connect(settings)


@cli.command()
@click.argument("app_id", metavar="ID", type=IdParam())
@click.pass_obj
def get(settings: HBaseSettings, app_id: int):
    """Print the current decision of application ID with its history (one get)."""
    try:
        with _open(settings) as conn:
            row = get_decision(conn, app_id)
    except _connection_errors() as exc:
        raise _failure(settings, exc) from None
    if row is None:
        raise click.ClickException(f"no decision stored for application {app_id}")
    _emit(row)


@cli.command()
@click.option("--from", "start", type=TimeParam(), required=True, help="Start time, inclusive (ISO-8601 or epoch ms).")
@click.option("--to", "stop", type=TimeParam(), required=True, help="End time, exclusive (ISO-8601 or epoch ms).")
@click.option("--decision", type=click.Choice(layout.DECISIONS), default=None, help="Only this decision.")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most N decisions.")
@click.pass_obj
def scan(settings: HBaseSettings, start: int, stop: int, decision: str | None, limit: int | None):
    """Print the current decisions in a time range, in time order, one JSON line each."""
    if stop < start:
        raise click.BadParameter(f"--to ({stop} ms) is before --from ({start} ms)", param_hint="'--to'")
    try:
        with _open(settings) as conn:
            for row in scan_decisions(conn, start, stop, decision=decision, limit=limit):
                _emit(row)
    except BrokenPipeError:
        sys.stderr.close()  # the reader (e.g. `head`) left; not an error
        return
    except _connection_errors() as exc:
        raise _failure(settings, exc) from None
    finally:
        try:
            sys.stdout.flush()
        except BrokenPipeError:
            pass


def main() -> None:
    cli(prog_name="python -m hbase_helper.audit")


if __name__ == "__main__":
    main()
