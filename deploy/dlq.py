"""`python -m deploy dlq list|show|stats|replay|export`: read, filter, inspect, replay and export the dead letters.

Every command reads the DLQ topic (TOPIC_DLQ) from its beginning to its
current end, and the replay ledger (TOPIC_DLQ + ``.replays``) beside it,
and acts on the dead letters chosen by position (``--at P:O``) or
application id (``--id``) and passing the filters (``--stage``,
``--reason``, ``--since``, ``--until``).  ``replay`` publishes them to
applicants.raw with their replay provenance in record headers (see
``credit_core.dlq.replay``) and records each in the ledger, so that a
second run does not replay them again unless ``--again`` says so.
Settings come from the environment (KAFKA_BROKER, TOPIC_DLQ, TOPIC_RAW,
KAFKA_END_OFFSETS_RELIABLE, DLQ_*), else the local stack's.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import click

from credit_core.clock import now_ms
from credit_core.config import ConfigError
from credit_core.dlq.ledger import NEW, Replayed, failures_of_replays, ledger_index, replay_status
from credit_core.dlq.records import (DeadLetter, Selection, format_time, from_record, parse_coordinates, parse_time,
                                     select, stats)
from credit_core.dlq.settings import DlqSettings

logger = logging.getLogger(__name__)

DEFAULT_LIST_LIMIT = 50          # dead letters `list` prints (the latest); 0 prints all
DEFAULT_SHOW_BYTES = 4096        # bytes of the original `show` prints
DEFAULT_SAMPLE = 50              # replayed / skipped lines `replay` prints before it only counts
EXIT_UNREACHABLE = 2
# The stage names dead letters carry, in pipeline order: each topology.stages module's STAGE (not imported
# here, for the launcher's start-up time; tests/deploy/test_dlq.py holds them equal).
STAGES = ("filter", "decision", "submit", "save")


# -- settings and reading -----------------------------------------------------------------------------------------

def command_env() -> dict[str, str]:
    """The environment the commands read: the local stack's variables under this process's own.

    On the embedded stack (Tansu) end offsets are wrong: unless KAFKA_END_OFFSETS_RELIABLE is set, a broker
    that is the local embedded stack's is read without trusting them."""
    from deploy.local import build_stack, stack_env

    stack = build_stack()
    env = {**stack_env(stack), **os.environ}
    if "KAFKA_END_OFFSETS_RELIABLE" not in env and stack.name == "embedded" and env.get("KAFKA_BROKER") == \
            stack.broker.url:
        env["KAFKA_END_OFFSETS_RELIABLE"] = "false"
    return env


def load_settings(env: Mapping[str, str]) -> DlqSettings:
    try:
        return DlqSettings.from_env(env)
    except (ConfigError, TypeError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None


def _unreachable() -> tuple[type[BaseException], ...]:
    from aiokafka.errors import KafkaError

    from credit_core.dlq.reader import ReadError

    return KafkaError, ReadError, OSError, asyncio.TimeoutError


def _broker_failure(settings: DlqSettings, exc: BaseException) -> click.ClickException:
    error = click.ClickException(f"cannot read or write the broker at {settings.bootstrap}: "
                                 f"{type(exc).__name__}: {exc}")
    error.exit_code = EXIT_UNREACHABLE
    return error


@dataclass
class Loaded:
    """The DLQ's dead letters (oldest first), the replay ledger, and each dead letter's replay status."""

    dead_letters: list[DeadLetter]
    ledger: dict[str, list[Replayed]]
    status: dict[str, str]
    dlq_missing: bool


def load(settings: DlqSettings) -> Loaded:
    """Read the DLQ and the ledger together, each from its beginning to its current end."""
    from credit_core.dlq.reader import read_topics

    read = asyncio.run(read_topics(settings.bootstrap, [settings.topic_dlq, settings.ledger],
                                   end_offsets_reliable=settings.end_offsets_reliable,
                                   idle_polls=settings.idle_polls, poll_ms=settings.poll_ms))
    dls = sorted((from_record(r) for r in read.records[settings.topic_dlq]),
                 key=lambda d: (d.time_ms if d.time_ms is not None else -1, d.partition, d.offset))
    ledger = ledger_index((r.key, r.value) for r in read.records[settings.ledger])
    return Loaded(dls, ledger, replay_status(dls, ledger), settings.topic_dlq in read.missing)


def _load_or_fail(settings: DlqSettings) -> Loaded:
    try:
        loaded = load(settings)
    except _unreachable() as exc:
        raise _broker_failure(settings, exc) from None
    if loaded.dlq_missing:
        click.echo(f"note: the broker at {settings.bootstrap} has no topic {settings.topic_dlq} (nothing was "
                   "dead-lettered yet, or TOPIC_DLQ names another topic)", err=True)
    return loaded


# -- the selection options ----------------------------------------------------------------------------------------

class PositionParam(click.ParamType):
    """``P:O`` (partition:offset in the DLQ topic) or ``topic/P/O`` as replay provenance names it."""

    name = "P:O"

    def convert(self, value: Any, param, ctx) -> tuple[str | None, int, int]:
        if isinstance(value, tuple):
            return value
        text = str(value).strip()
        part, sep, off = text.partition(":")
        if sep and part.isascii() and part.isdigit() and off.isascii() and off.isdigit():
            return None, int(part), int(off)
        full = parse_coordinates(text)
        if full is not None:
            return full
        self.fail(f"{value!r} is not a dead letter's position: use PARTITION:OFFSET (as `dlq list` prints it) "
                  "or TOPIC/PARTITION/OFFSET", param, ctx)


class TimeParam(click.ParamType):
    name = "TIME"

    def convert(self, value: Any, param, ctx) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_time(str(value), now_ms())
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def selection_options(fn: Callable) -> Callable:
    options = [
        click.option("--at", "positions", multiple=True, type=PositionParam(),
                     help="A dead letter by its position PARTITION:OFFSET in the DLQ topic (repeatable)."),
        click.option("--id", "ids", multiple=True, type=click.IntRange(1),
                     help="The dead letters of an application id (repeatable)."),
        click.option("--stage", "stages", multiple=True, type=click.Choice(STAGES, case_sensitive=False),
                     help="Only this stage (repeatable)."),
        click.option("--reason", "reasons", multiple=True,
                     help="Only reasons (or field errors) containing this text, any case (repeatable)."),
        click.option("--since", type=TimeParam(), default=None,
                     help="Failed at or after: 15m / 2h / 7d ago, an ISO-8601 time (UTC unless zoned), epoch ms."),
        click.option("--until", type=TimeParam(), default=None, help="Failed before (same forms as --since)."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def make_selection(settings: DlqSettings, positions, ids, stages, reasons, since, until) -> Selection:
    if since is not None and until is not None and since >= until:
        raise click.UsageError(f"--since ({format_time(since)}) must be before --until ({format_time(until)})")
    pos = set()
    for topic, part, off in positions:
        if topic is not None and topic != settings.topic_dlq:
            raise click.UsageError(f"{topic}/{part}/{off} is not in the DLQ topic {settings.topic_dlq} "
                                   "(TOPIC_DLQ)")
        pos.add((part, off))
    return Selection(stages=frozenset(stages), reasons=tuple(reasons), since_ms=since, until_ms=until,
                     ids=frozenset(ids), positions=frozenset(pos))


def _missing_positions(selection: Selection, chosen: list[DeadLetter]) -> list[str]:
    found = {(d.partition, d.offset) for d in chosen}
    return [f"{p}:{o}" for p, o in sorted(selection.positions - found)]


# -- presentation -------------------------------------------------------------------------------------------------

def _cut(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[:width - 3] + "..."


def _why(dl: DeadLetter) -> str:
    if not dl.readable:
        return f"(unreadable: {dl.problem})"
    first = f" ({dl.errors[0][0]}: {dl.errors[0][1]})" if dl.errors and dl.errors[0] != ("$", dl.reason) else ""
    return dl.reason + first


def list_lines(dls: list[DeadLetter], status: Mapping[str, str]) -> list[str]:
    rows = [("AT", "FAILED (UTC)", "STAGE", "ATT", "ID", "STATUS", "REASON")]
    for dl in dls:
        rows.append((dl.position, format_time(dl.time_ms), dl.stage or "?", str(dl.attempt),
                     str(dl.app_id) if dl.app_id is not None else "-", status.get(dl.coordinates, NEW),
                     _cut(_why(dl), 90)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return ["  ".join(c.ljust(w) for c, w in zip(r[:-1], widths)) + "  " + r[-1] for r in rows]


def _hexdump(data: bytes) -> list[str]:
    lines = []
    for i in range(0, len(data), 16):
        chunk = data[i:i + 16]
        hexes = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"    {i:08x}  {hexes:<47}  {text}")
    return lines


def show_lines(dl: DeadLetter, loaded: Loaded, *, max_bytes: int) -> list[str]:
    """Everything about one dead letter: where, why, where it came from, its replays, its original bytes."""
    lines = [f"dead letter {dl.position} in {dl.topic} (record time {format_time(dl.timestamp_ms)} UTC)"]
    if not dl.readable:
        lines.append(f"  unreadable: {dl.problem}")
        if dl.value:
            lines.append(f"  value: {len(dl.value):,} bytes")
            lines.extend(_hexdump(dl.value[:max_bytes]))
        return lines
    lines += [f"  stage:       {dl.stage}",
              f"  reason:      {dl.reason}",
              f"  application: {dl.app_id if dl.app_id is not None else 'unknown (no exact id in the record)'}",
              f"  failed at:   {format_time(dl.failed_at)} UTC",
              f"  attempt:     {dl.attempt}" + (f" (replayed from {dl.replayed_from}, run {dl.replay_run})"
                                                 if dl.replayed_from else "")]
    lines.append(f"  errors:      {len(dl.errors)}" if dl.errors else "  errors:      none")
    lines += [f"    {f}: {r}" for f, r in dl.errors]
    lines.append(f"  came from:   {dl.came_from()}")
    extra = {k: v for k, v in dl.source.items() if k not in ("topic", "partition", "offset", "timestamp_ms", "seq",
                                                              "source", "fetched_at", "created_at")}
    if extra:
        lines.append(f"  provenance:  {json.dumps(extra, default=str, sort_keys=True)}")
    if dl.minimal:
        lines.append("  note:        a minimal record (the full dead letter could not be written)")
    lines.append(f"  status:      {loaded.status.get(dl.coordinates, NEW)}")
    for entry in loaded.ledger.get(dl.coordinates, []):
        raw = f"{entry.raw[0]} {entry.raw[1]}:{entry.raw[2]}" if entry.raw else "?"
        lines.append(f"    replayed by run {entry.run} at {format_time(entry.at_ms)} UTC as attempt {entry.attempt} "
                     f"-> {raw}" + (" (with fixed bytes)" if entry.fixed_sha256 else "")
                     + (" (--again)" if entry.again else ""))
    for later in failures_of_replays(loaded.dead_letters).get(dl.coordinates, []):
        lines.append(f"    failed again: dead letter {later.position} (attempt {later.attempt}, {later.reason})")
    key = dl.original_key
    lines.append(f"  key:         {_printable(key)}")
    size = f"{dl.original_size:,} bytes" + (f", {len(dl.original):,} kept (cut by DLQ_ORIGINAL_MAX)"
                                            if not dl.original_complete else "")
    check = {True: "sha256 matches", False: "SHA256 DOES NOT MATCH", None: "sha256 not checked"}[dl.sha256_ok]
    text = dl.original_text
    kind = "UTF-8 text" if text is not None else "binary (not UTF-8)"
    lines.append(f"  original:    {size}, {kind}, {check}")
    shown = dl.original[:max_bytes]
    if text is not None and _is_text(shown.decode("utf-8", "ignore")):
        lines.extend("    " + line for line in shown.decode("utf-8", "ignore").splitlines())
    else:
        lines.extend(_hexdump(shown))
    if len(dl.original) > max_bytes:
        lines.append(f"    ... {len(dl.original) - max_bytes:,} more bytes (--max-bytes, or --raw for all)")
    return lines


def _is_text(text: str) -> bool:
    return all(c.isprintable() or c in "\n\t" for c in text)


def _printable(data: bytes | None) -> str:
    if data is None:
        return "none"
    try:
        text = data.decode("utf-8")
        if text.isprintable():
            return repr(text)
    except UnicodeDecodeError:
        pass
    return f"0x{data[:64].hex()}" + ("..." if len(data) > 64 else "")


def stats_lines(counts: Mapping[str, Any]) -> list[str]:
    status = counts.get("by_status", {})
    lines = [f"dead letters: {counts['total']:,}" + (" (" + ", ".join(f"{n:,} {s}" for s, n in status.items()) + ")"
                                                    if status else "")]
    if counts["total"]:
        lines.append(f"failed between {format_time(counts['first_failed_at'])} and "
                     f"{format_time(counts['last_failed_at'])} UTC")
    lines.append("by stage: " + (", ".join(f"{s} {n:,}" for s, n in counts["by_stage"].items()) or "none"))
    lines.append("by attempt: " + (", ".join(f"{a}: {n:,}" for a, n in counts["by_attempt"].items()) or "none"))
    if counts["by_reason"]:
        lines.append("by stage and reason:")
        width = max(len(r["stage"]) for r in counts["by_reason"])
        for r in counts["by_reason"]:
            lines.append(f"  {r['count']:>7,}  {r['stage']:<{width}}  {_cut(r['reason'], 100)}")
    lines.append(f"naming no application: {counts['without_id']:,}; original cut: {counts['original_truncated']:,}; "
                 f"unreadable: {counts['unreadable']:,}")
    return lines


# -- the commands ----------------------------------------------------------------------------------------------------

@click.group("dlq")
def dlq_cmd() -> None:
    """Dead letters: list, show, count, replay to the raw topic after a fix, export as JSON lines.

    Settings come from the environment (KAFKA_BROKER, TOPIC_DLQ, TOPIC_RAW, KAFKA_END_OFFSETS_RELIABLE,
    DLQ_LEDGER_TOPIC, DLQ_MAX_ATTEMPTS...), else the local stack's. A dead letter is named by its position
    PARTITION:OFFSET in the DLQ topic, as `list` prints it. Exit 2 when the broker cannot be read.
    """


@dlq_cmd.command("list")
@selection_options
@click.option("--status", "statuses", multiple=True, type=click.Choice(["new", "replayed", "failed again"]),
              help="Only dead letters with this replay status (repeatable).")
@click.option("--limit", default=DEFAULT_LIST_LIMIT, show_default=True, type=click.IntRange(0),
              help="Print the latest this many (0: all).")
def list_cmd(positions, ids, stages, reasons, since, until, statuses, limit) -> None:
    """One line per dead letter, oldest first: position, time, stage, attempt, application, replay status, reason."""
    settings = load_settings(command_env())
    selection = make_selection(settings, positions, ids, stages, reasons, since, until)
    loaded = _load_or_fail(settings)
    chosen = [d for d in select(loaded.dead_letters, selection)
              if not statuses or loaded.status.get(d.coordinates, NEW) in statuses]
    shown = chosen[-limit:] if limit else chosen
    for line in list_lines(shown, loaded.status):
        click.echo(line)
    more = f" (the latest {len(shown):,} shown: --limit 0 shows all)" if len(shown) < len(chosen) else ""
    click.echo(f"{len(chosen):,} of {len(loaded.dead_letters):,} dead letters in {settings.topic_dlq}{more}")


@dlq_cmd.command("show")
@click.argument("at", nargs=-1, type=PositionParam())
@click.option("--id", "ids", multiple=True, type=click.IntRange(1), help="Every dead letter of this application.")
@click.option("--max-bytes", default=DEFAULT_SHOW_BYTES, show_default=True, type=click.IntRange(0),
              help="Bytes of the original printed.")
@click.option("--raw", is_flag=True, help="Write only the original bytes of the one dead letter to stdout "
                                          "(to fix them and replay with --value-file).")
@click.option("--hbase", "check_hbase", is_flag=True,
              help="Also look up the application's current decision in HBase (HBASE_* settings).")
def show_cmd(at, ids, max_bytes, raw, check_hbase) -> None:
    """Everything about dead letters named by position (P:O) or application: the reason, the errors, where the
    failed message came from, its replays and its original bytes."""
    env = command_env()
    settings = load_settings(env)
    if not at and not ids:
        raise click.UsageError("name a dead letter: its position P:O (as `dlq list` prints it) or --id")
    selection = make_selection(settings, at, ids, (), (), None, None)
    loaded = _load_or_fail(settings)
    chosen = select(loaded.dead_letters, selection)
    missing = _missing_positions(selection, chosen)
    if missing or not chosen:
        raise click.ClickException(f"no such dead letter in {settings.topic_dlq}: "
                                   + ", ".join(missing + [f"application {i}" for i in ids
                                                          if not any(d.app_id == i for d in chosen)]))
    if raw:
        if len(chosen) != 1:
            raise click.UsageError(f"--raw writes one dead letter's original; {len(chosen)} are chosen")
        sys.stdout.buffer.write(chosen[0].original)
        sys.stdout.buffer.flush()
        return
    for n, dl in enumerate(chosen):
        if n:
            click.echo("")
        for line in show_lines(dl, loaded, max_bytes=max_bytes):
            click.echo(line)
        if check_hbase and dl.app_id is not None:
            click.echo(f"  HBase:       {hbase_line(env, dl)}")


def hbase_line(env: Mapping[str, str], dl: DeadLetter) -> str:
    """The application's current decision in HBase, and whether it came from a replay of ``dl``."""
    from hbase_helper.pool import connect
    from hbase_helper.settings import HBaseSettings
    from hbase_helper.writer import read_decision

    try:
        hsettings = HBaseSettings.from_env(env)
        with connect(hsettings) as conn:
            found = read_decision(conn, dl.app_id)
    except Exception as exc:  # HBase down: say so, the rest of `show` stands
        return f"not read ({type(exc).__name__}: {exc})"
    if found is None:
        return f"no row for application {dl.app_id}"
    prov = found.get("provenance") or {}
    line = (f"current decision {found.get('decision')} (by {found.get('decided_by')}) from "
            f"{prov.get('topic')} {prov.get('partition')}:{prov.get('offset')}")
    if prov.get("replayed_from") == dl.coordinates:
        line += f": replayed from this dead letter (attempt {prov.get('attempt')})"
    elif prov.get("replayed_from"):
        line += f": replayed from {prov.get('replayed_from')}"
    return line


@dlq_cmd.command("stats")
@selection_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object.")
def stats_cmd(positions, ids, stages, reasons, since, until, as_json) -> None:
    """Counts of the (chosen) dead letters by stage, reason, attempt and replay status."""
    settings = load_settings(command_env())
    selection = make_selection(settings, positions, ids, stages, reasons, since, until)
    loaded = _load_or_fail(settings)
    chosen = select(loaded.dead_letters, selection)
    counts = stats(chosen, loaded.status)
    if as_json:
        click.echo(json.dumps({"topic": settings.topic_dlq, **counts}, separators=(",", ":")))
        return
    for line in stats_lines(counts):
        click.echo(line)


@dlq_cmd.command("export")
@selection_options
@click.option("-o", "--output", type=click.File("w", encoding="utf-8", lazy=True), default="-",
              help="Write here instead of stdout.")
def export_cmd(positions, ids, stages, reasons, since, until, output) -> None:
    """The (chosen) dead letters as JSON lines: one object each, with its replay status and replays; bytes as
    UTF-8 text when they are, else base64 (``original_encoding`` says which)."""
    settings = load_settings(command_env())
    selection = make_selection(settings, positions, ids, stages, reasons, since, until)
    loaded = _load_or_fail(settings)
    chosen = select(loaded.dead_letters, selection)
    for dl in chosen:
        replays = [{"run": e.run, "at_ms": e.at_ms, "attempt": e.attempt,
                    "raw": {"topic": e.raw[0], "partition": e.raw[1], "offset": e.raw[2]} if e.raw else None,
                    "again": e.again} for e in loaded.ledger.get(dl.coordinates, [])]
        record = dl.to_json(status=loaded.status.get(dl.coordinates, NEW), replays=replays)
        output.write(json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str) + "\n")
    output.flush()
    click.echo(f"exported {len(chosen):,} of {len(loaded.dead_letters):,} dead letters", err=True)


@dlq_cmd.command("replay")
@selection_options
@click.option("--all", "everything", is_flag=True, help="Replay every dead letter (no selection needed).")
@click.option("--again", is_flag=True, help="Replay dead letters the ledger says were replayed already.")
@click.option("--max-attempts", type=click.IntRange(2), default=None,
              help="No replay beyond this attempt (default DLQ_MAX_ATTEMPTS, 2: each failure is replayed once).")
@click.option("--value-file", type=click.File("rb"), default=None,
              help="Publish these bytes instead of the original (one dead letter: after fixing its bytes).")
@click.option("--dry-run", is_flag=True, help="Say what would be replayed; publish nothing.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object with what was replayed and skipped.")
def replay_cmd(positions, ids, stages, reasons, since, until, everything, again, max_attempts, value_file, dry_run,
               as_json) -> None:
    """Replay chosen or filtered dead letters to the raw topic (TOPIC_RAW), after the cause was fixed.

    Each replayed record carries record headers naming the dead letter and its attempt (the dead letter's + 1):
    if it succeeds its HBase row says so; if it fails again it is a new dead letter with that attempt. A dead
    letter replayed once is skipped by later runs unless --again; a replay beyond --max-attempts is refused.
    """
    from credit_core.dlq.replay import plan

    settings = load_settings(command_env())
    selection = make_selection(settings, positions, ids, stages, reasons, since, until)
    if not selection.chooses and not everything:
        raise click.UsageError("choose the dead letters to replay: --at P:O, --id, --stage, --reason, --since, "
                               "--until, or --all for every one")
    fixed = value_file.read() if value_file is not None else None
    if fixed is not None and not fixed:
        raise click.UsageError("--value-file is empty")
    loaded = _load_or_fail(settings)
    chosen = select(loaded.dead_letters, selection)
    missing = _missing_positions(selection, chosen)
    if missing:
        raise click.ClickException(f"no such dead letter in {settings.topic_dlq}: {', '.join(missing)}")
    run = uuid.uuid4().hex[:12]
    try:
        the_plan = plan(chosen, loaded.ledger, run=run, max_attempts=max_attempts or settings.max_attempts,
                        again=again, fixed_value=fixed)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    sent = []
    if the_plan.replay and not dry_run:
        sent = _send(settings, the_plan.replay, run)
    report = replay_report(settings, the_plan, sent, run=run, dry_run=dry_run)
    if as_json:
        click.echo(json.dumps(report, separators=(",", ":")))
    else:
        for line in replay_lines(report):
            click.echo(line)


def _send(settings: DlqSettings, planned, run: str):
    from tqdm import tqdm

    from credit_core.dlq.publisher import send_plan

    with tqdm(total=len(planned), unit="dead letter", desc="replaying", file=sys.stderr, disable=None,
              leave=False) as bar:
        try:
            return asyncio.run(send_plan(settings, planned, run=run, progress=bar.update))
        except _unreachable() as exc:
            raise _broker_failure(settings, exc) from None


def replay_report(settings: DlqSettings, the_plan, sent, *, run: str, dry_run: bool) -> dict[str, Any]:
    where = {id(s.planned): s.raw for s in sent}
    replayed = []
    for p in the_plan.replay:
        dl = p.dead_letter
        replayed.append({"at": dl.position, "dead_letter": dl.coordinates, "id": dl.app_id, "stage": dl.stage,
                         "reason": dl.reason, "attempt": p.attempt, "records": len(p.messages), "again": p.again,
                         "fixed": p.fixed_sha256 is not None,
                         "raw": [{"topic": t, "partition": pa, "offset": o} for t, pa, o in where.get(id(p), [])]})
    skipped = [{"at": s.dead_letter.position, "dead_letter": s.dead_letter.coordinates, "id": s.dead_letter.app_id,
                "kind": s.kind, "why": s.why} for s in the_plan.skipped]
    counts: dict[str, int] = {}
    for s in skipped:
        counts[s["kind"]] = counts.get(s["kind"], 0) + 1
    return {"run": run, "dry_run": dry_run, "raw_topic": settings.topic_raw, "replayed": replayed,
            "skipped": skipped, "replayed_count": len(replayed),
            "records_count": sum(r["records"] for r in replayed), "skipped_count": len(skipped),
            "skipped_by_kind": counts}


SKIP_WORDS = {"replayed": "already replayed (--again)", "attempts": "over the attempt limit (--max-attempts)",
              "unreplayable": "not replayable", "superseded": "superseded by a newer dead letter of the application"}


def _n(count: int, word: str) -> str:
    return f"{count:,} {word}{'' if count == 1 else 's'}"


def replay_lines(report: Mapping[str, Any], sample: int = DEFAULT_SAMPLE) -> list[str]:
    verb = "would replay" if report["dry_run"] else "replayed"
    lines = []
    for r in report["replayed"][:sample]:
        app = f"application {r['id']}, " if r["id"] is not None else ""
        to = ", ".join(f"{w['partition']}:{w['offset']}" for w in r["raw"])
        lines.append(f"{verb} {r['at']} ({app}{r['stage']}: {_cut(r['reason'], 60)}) as attempt {r['attempt']}"
                     + (f" -> {report['raw_topic']} {to}" if to else "") + (" with fixed bytes" if r["fixed"] else ""))
    for s in report["skipped"][:sample]:
        app = f" (application {s['id']})" if s["id"] is not None else ""
        lines.append(f"skipped {s['at']}{app}: {s['why']}")
    hidden = max(0, len(report["replayed"]) - sample) + max(0, len(report["skipped"]) - sample)
    if hidden:
        lines.append(f"... {hidden:,} more lines (--json lists every one)")
    kinds = ", ".join(f"{n:,} {SKIP_WORDS.get(k, k)}" for k, n in sorted(report["skipped_by_kind"].items()))
    lines.append(f"{verb} {_n(report['replayed_count'], 'dead letter')} ({_n(report['records_count'], 'record')}) to "
                 f"{report['raw_topic']}" + (f" in run {report['run']}" if report["replayed_count"] and
                                            not report["dry_run"] else "")
                 + f"; skipped {report['skipped_count']:,}" + (f": {kinds}" if kinds else ""))
    return lines

