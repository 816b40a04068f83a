"""End-to-end reconciliation: every applicant of the store must be in HBase or the DLQ, none in both.

``python -m deploy reconcile [--json] [--republish]`` compares the applicant store
(MariaDB ``applications``) with the HBase ``decisions`` table and the
``applicants.dlq`` topic, names every missing applicant and every id found in
both, and exits 1 when there is any. With ``--republish`` the missing ones are
sent to ``applicants.raw`` again (deploy.republish).

Memory: HBase ids are held as one sorted int64 array (8 bytes an id), the DLQ ids
as a set (dead letters are few), and the store is streamed in id-ordered pages of
ids only, so no applicant row is read. Applicants stored after the reconciliation
started (seq above the bound read first) are left for the next one.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import asdict, dataclass, field
from typing import Iterable, Mapping, Sequence

import click
import numpy as np

logger = logging.getLogger(__name__)

DEFAULT_SAMPLE = 20                          # ids shown per list on the terminal
DEFAULT_DLQ_TOPIC = "applicants.dlq"         # TOPIC_DLQ (the workers' variable)
_INT64_MAX = 2**63 - 1


@dataclass
class Reconciliation:
    """The outcome of a comparison; the lists are sorted application ids."""

    store: int                     # applicants in the store (seq <= store_max_seq)
    store_max_seq: int
    hbase: int                     # rows in the decisions table
    dlq: int                       # dead-letter records
    dlq_without_id: int            # dead letters naming no application
    missing: list[int] = field(default_factory=list)           # in the store, in neither HBase nor the DLQ
    unpublished: list[int] = field(default_factory=list)       # of missing: beyond the producer's checkpoint
    both: list[int] = field(default_factory=list)              # in HBase and the DLQ, never replayed
    replayed: list[int] = field(default_factory=list)          # in HBase and the DLQ: a replay (dlq) saved them
    hbase_not_in_store: list[int] = field(default_factory=list)
    dlq_not_in_store: list[int] = field(default_factory=list)
    producer_checkpoint: int | None = None
    republished: int | None = None

    @property
    def lost(self) -> list[int]:
        """Missing applicants the producer had published (its checkpoint is past them): the broker lost them.

        Without a checkpoint to read, every missing applicant counts as lost."""
        pending = set(self.unpublished)
        return [i for i in self.missing if i not in pending]

    @property
    def reconciled(self) -> bool:
        return not self.missing and not self.both

    def as_json(self) -> dict:
        out = asdict(self)
        out.update(reconciled=self.reconciled, lost=self.lost, missing_count=len(self.missing),
                   lost_count=len(self.lost), unpublished_count=len(self.unpublished), both_count=len(self.both))
        return out

    def to_json(self) -> str:
        """One JSON object; the stdlib encoder, since an HBase key may hold an id beyond 64 bits (orjson's limit)."""
        import json

        return json.dumps(self.as_json(), separators=(",", ":"))


def compare(store_pages: Iterable[Sequence[tuple[int, int]]], hbase_ids: Iterable[int], dlq_ids: Iterable[int], *,
            store_max_seq: int, dlq_records: int | None = None, dlq_without_id: int = 0,
            producer_checkpoint: int | None = None, replayed_ids: Iterable[int] = ()) -> Reconciliation:
    """Compare the store's (id, seq) pages, in id order, with the HBase and DLQ ids (pure: no I/O).

    A missing applicant whose seq is above ``producer_checkpoint`` was not published yet (pending, not lost).
    An id in HBase and the DLQ that the replay ledger names (``replayed_ids``) was dead-lettered, replayed and
    saved: ``replayed``, not ``both``.
    """
    hbase_sorted, hbase_huge = _sorted_ids(hbase_ids)
    dlq = set(dlq_ids)
    dlq_sorted = np.array(sorted(i for i in dlq if i <= _INT64_MAX), dtype=np.int64)
    hbase_seen = np.zeros(len(hbase_sorted), dtype=bool)
    dlq_in_store: set[int] = set()
    missing: list[int] = []
    unpublished: list[int] = []
    store = 0
    for page in store_pages:
        if not page:
            continue
        ids = np.fromiter((i for i, _ in page), dtype=np.int64, count=len(page))
        store += len(page)
        in_hbase, where = _member(hbase_sorted, ids)
        hbase_seen[where[in_hbase]] = True
        in_dlq, _ = _member(dlq_sorted, ids)
        dlq_in_store.update(ids[in_dlq].tolist())
        for k in np.flatnonzero(~in_hbase & ~in_dlq).tolist():
            app_id, seq = page[k]
            missing.append(app_id)
            if producer_checkpoint is not None and seq > producer_checkpoint:
                unpublished.append(app_id)
    in_both = dlq_sorted[_member(hbase_sorted, dlq_sorted)[0]].tolist() + [i for i in hbase_huge if i in dlq]
    replayed_set = set(replayed_ids)
    both = [i for i in in_both if i not in replayed_set]
    replayed = [i for i in in_both if i in replayed_set]
    return Reconciliation(
        store=store, store_max_seq=store_max_seq, hbase=len(hbase_sorted) + len(hbase_huge),
        dlq=dlq_records if dlq_records is not None else len(dlq), dlq_without_id=dlq_without_id,
        missing=sorted(missing), unpublished=sorted(unpublished), both=sorted(both), replayed=sorted(replayed),
        hbase_not_in_store=sorted(hbase_sorted[~hbase_seen].tolist() + hbase_huge),
        dlq_not_in_store=sorted(dlq - dlq_in_store), producer_checkpoint=producer_checkpoint)


def _sorted_ids(ids: Iterable[int]) -> tuple[np.ndarray, list[int]]:
    """(sorted int64 array of the ids that fit, list of the larger ones: those cannot be store ids)."""
    small, huge = [], []
    chunks = []
    for i in ids:
        (small if i <= _INT64_MAX else huge).append(i)
        if len(small) >= 1 << 16:  # keep the Python list short: ints live in the array
            chunks.append(np.array(small, dtype=np.int64))
            small = []
    chunks.append(np.array(small, dtype=np.int64))
    return np.sort(np.concatenate(chunks)), huge


def _member(sorted_ids: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mask of ``ids`` found in ``sorted_ids``, their positions there)."""
    if len(sorted_ids) == 0:
        return np.zeros(len(ids), dtype=bool), np.zeros(len(ids), dtype=np.int64)
    where = np.searchsorted(sorted_ids, ids)
    clipped = np.minimum(where, len(sorted_ids) - 1)
    return sorted_ids[clipped] == ids, clipped


# -- I/O -----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Sources:
    """Where the three sides live."""

    mysql_url: str
    hbase: object               # HBaseSettings
    bootstrap: str              # host:port[,host:port] of the broker
    dlq_topic: str
    checkpoint: str | None      # the producer's checkpoint file, if any
    ledger_topic: str = DEFAULT_DLQ_TOPIC + ".replays"   # the dlq tool's replay ledger (DLQ_LEDGER_TOPIC)
    end_offsets_reliable: bool = True   # KAFKA_END_OFFSETS_RELIABLE: false on Tansu (the ledger's reader)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> "Sources":
        from applicant_api.db import DEFAULT_MYSQL_URL
        from hbase_helper.settings import HBaseSettings
        from credit_core.broker import KafkaSettings
        from credit_core.dlq.settings import DlqSettings

        dlq = DlqSettings.from_env(env)
        return cls(mysql_url=env.get("MYSQL_URL") or DEFAULT_MYSQL_URL,
                   hbase=HBaseSettings.from_env(env),
                   bootstrap=KafkaSettings.from_env(env).bootstrap,
                   dlq_topic=env.get("TOPIC_DLQ") or DEFAULT_DLQ_TOPIC,
                   checkpoint=env.get("PRODUCER_CHECKPOINT") or None,
                   ledger_topic=dlq.ledger, end_offsets_reliable=dlq.end_offsets_reliable)


def producer_checkpoint(path: str | None) -> int | None:
    """The producer's cursor, or None when there is no checkpoint file to read."""
    if not path or not os.path.exists(path):
        return None
    from producer.checkpoint import Checkpoint

    return Checkpoint(path).load()


def reconcile(sources: Sources, *, page_size: int | None = None) -> Reconciliation:
    """Read the three sides and compare them. The store bound is read first, so later arrivals wait."""
    from deploy import ids

    max_seq = ids.store_max_seq(sources.mysql_url)
    checkpoint = producer_checkpoint(sources.checkpoint)
    hbase = ids.hbase_ids(sources.hbase)
    dead = ids.read_dead_letters(sources.bootstrap, sources.dlq_topic)
    if not dead.topic_exists:
        logger.warning("the broker has no topic %s: no dead letters read", sources.dlq_topic)
    replayed = replayed_ids(sources) if dead.topic_exists else set()
    pages = ids.store_pages(sources.mysql_url, max_seq=max_seq, page_size=page_size or ids.DEFAULT_STORE_PAGE)
    return compare(pages, hbase, dead.ids, store_max_seq=max_seq, dlq_records=dead.records,
                   dlq_without_id=dead.without_id, producer_checkpoint=checkpoint, replayed_ids=replayed)


def replayed_ids(sources: Sources) -> set[int]:
    """The application ids the replay ledger (``python -m deploy dlq replay``) names, if it exists."""
    import asyncio

    from credit_core.dlq.ledger import ledger_index
    from credit_core.dlq.reader import read_topics
    topic = sources.ledger_topic
    read = asyncio.run(read_topics(sources.bootstrap, [topic], end_offsets_reliable=sources.end_offsets_reliable))
    entries = ledger_index((r.key, r.value) for r in read.records.get(topic, []))
    return {e.app_id for replays in entries.values() for e in replays if e.app_id is not None}


# -- presentation ------------------------------------------------------------------------------------------------

def _sample(ids: Sequence[int], n: int) -> str:
    shown = ", ".join(str(i) for i in ids[:n])
    return shown + (f", ... ({len(ids) - n:,} more)" if len(ids) > n else "")


def describe(rec: Reconciliation, sample: int = DEFAULT_SAMPLE) -> list[str]:
    """Terminal lines: counts, and a sample of each list of ids."""
    lines = [f"store: {rec.store:,} applicants (seq <= {rec.store_max_seq:,}); HBase: {rec.hbase:,} decisions; "
             f"DLQ: {rec.dlq:,} dead letters ({rec.dlq_without_id:,} naming no application)"]
    if rec.missing:
        lost, pending = rec.lost, rec.unpublished
        detail = ""
        if rec.producer_checkpoint is not None:
            detail = (f": {len(lost):,} published by the producer (checkpoint at seq {rec.producer_checkpoint:,}) "
                      f"and lost, {len(pending):,} not published yet")
        lines.append(f"MISSING: {len(rec.missing):,} applicants in neither HBase nor the DLQ{detail}")
        lines.append(f"  ids: {_sample(rec.missing, sample)}")
    else:
        lines.append("missing: none (every applicant of the store is in HBase or the DLQ)")
    if rec.replayed:
        lines.append(f"replayed from the DLQ (python -m deploy dlq replay) and now in HBase: {len(rec.replayed):,} "
                     f"applicants: {_sample(rec.replayed, sample)}")
    if rec.both:
        lines.append(f"IN BOTH HBase and the DLQ: {len(rec.both):,} applicants")
        lines.append(f"  ids: {_sample(rec.both, sample)}")
    else:
        lines.append("in both HBase and the DLQ: none")
    for name, extra in (("HBase", rec.hbase_not_in_store), ("DLQ", rec.dlq_not_in_store)):
        if extra:
            lines.append(f"not in the store, found in {name}: {len(extra):,} ids: {_sample(extra, sample)}")
    if rec.republished is not None:
        lines.append(f"republished {rec.republished:,} applicants (source 'reconcile'); run reconcile again once "
                     "the pipeline has caught up")
    lines.append(f"reconciled: {'yes' if rec.reconciled else 'no'}")
    return lines


def stall_report(rec: Reconciliation, sample: int = DEFAULT_SAMPLE, *, durable_broker: bool = False) -> str:
    """What the main job says on a stall: the lost ids by count and sample, or why nothing is lost.

    ``durable_broker``: the broker keeps its log (Apache Kafka), so a loss happened downstream of it."""
    if rec.lost:
        how = ("the producer published them (its checkpoint is past them) but" if rec.producer_checkpoint is not None
               else "(no producer checkpoint was found to tell lost from not yet published)")
        lost = (f"{len(rec.lost):,} applicants are lost: {how} they are in neither HBase nor the DLQ, "
                f"e.g. {_sample(rec.lost, sample)}. ")
        if durable_broker:
            return lost + ("The broker keeps its log, so a stage committed past them without delivering them: "
                           "keep the worker logs, and resend them with `python -m deploy reconcile --republish`.")
        return lost + ("The embedded broker keeps messages in memory only: a broker crash or restart loses them. "
                       "The store and HBase keep theirs: resend them with `python -m deploy.local down`, "
                       "`python -m deploy.local up`, then `python -m deploy reconcile --republish` (clients that "
                       "lived through the crash carry their old offsets over and skip what comes next).")
    if rec.missing:
        return (f"{len(rec.missing):,} applicants are not published yet (beyond the producer's checkpoint), "
                f"e.g. {_sample(rec.missing, sample)}: look at the producer and the applicant API.")
    return "nothing is lost: every applicant of the store is in HBase or the DLQ."


# -- command -----------------------------------------------------------------------------------------------------

def _unreachable() -> tuple[type[BaseException], ...]:
    """The errors of a server that is down or refuses: reported in one line, not as a traceback."""
    import pymysql
    from aiokafka.errors import KafkaError
    from thriftpy2.transport import TTransportException

    return pymysql.err.MySQLError, KafkaError, TTransportException, OSError


def _redacted(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return url.replace(parts.password, "***", 1) if parts.password else url


@click.command("reconcile")
@click.option("--json", "as_json", is_flag=True, help="Print the full report (every id) as one JSON object.")
@click.option("--republish", is_flag=True,
              help="Send the missing applicants to the raw topic again (source 'reconcile'; idempotent).")
@click.option("--sample", default=DEFAULT_SAMPLE, show_default=True, type=click.IntRange(0),
              help="Ids shown per list on the terminal.")
@click.option("--page-size", default=None, type=click.IntRange(1), help="Store ids per page (default 10,000).")
def reconcile_cmd(as_json: bool, republish: bool, sample: int, page_size: int | None) -> None:
    """Compare the applicant store with HBase and the DLQ; name every missing applicant and every id in both.

    Exits 1 when an applicant is missing or in both, 2 when a server could not be read. Settings come from the environment (MYSQL_URL,
    HBASE_HOST, HBASE_PORT, HBASE_TABLE_PREFIX, KAFKA_BROKER, TOPIC_DLQ, TOPIC_RAW, PRODUCER_CHECKPOINT),
    else the local stack's. Run it while nothing is in flight: an applicant between the broker and HBase
    counts as missing. The embedded broker loses every message on a crash; this finds them.
    """
    from deploy.local import build_stack, stack_env

    env = {**stack_env(build_stack()), **os.environ}
    try:
        sources = Sources.from_env(env)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        rec = reconcile(sources, page_size=page_size)
        if republish:
            from deploy.republish import republish_ids

            rec.republished = republish_ids(rec.missing, mysql_url=sources.mysql_url, env=env) if rec.missing else 0
    except _unreachable() as exc:
        error = click.ClickException(f"{type(exc).__name__}: {exc} (store {_redacted(sources.mysql_url)}, "
                                     f"HBase {sources.hbase.address}, broker {sources.bootstrap})")
        error.exit_code = 2  # could not check: not the same as "something is missing"
        raise error from None
    if as_json:
        click.echo(rec.to_json())
    else:
        for line in describe(rec, sample):
            click.echo(line)
    if not rec.reconciled:
        sys.exit(1)
