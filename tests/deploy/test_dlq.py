"""`python -m deploy dlq` end to end on real servers: dead letters made by real bad input in a running pipeline
are listed, filtered, shown, counted and exported; after a fix they are replayed, one that succeeds ends in HBase
marked as replayed from its dead letter, one that fails again comes back to the DLQ as attempt 2, and a second
replay replays nothing."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest
from aiokafka import AIOKafkaProducer

from credit_core.dlq.reader import read_topics
from credit_core.dlq.records import from_record
from deploy.dlq import STAGES
from deploy.ids import hbase_ids
from deploy.services import FaustWorker, GunicornApp, free_port, risk_api, wait_for
from hbase_helper.settings import HBaseSettings
from tests.factories import raw_applicant
from topology.settings import Settings
from topology.topics import ensure_topics

ROOT = Path(__file__).resolve().parents[2]
PARTITIONS = 4
BASE = 7_000_000
GOOD = [BASE + n for n in range(1, 7)]
REFUSED, LETTERS, GARBAGE = BASE + 7, BASE + 8, BASE + 9     # submit (HTTP 413), filter (dti), filter (not UTF-8)
GARBAGE_BYTES = b"\xff\xfe\x00 not an applicant"


def envelope(applicant: dict) -> bytes:
    return orjson.dumps({"applicant": applicant, "provenance": {"seq": int(applicant["id"]), "source": "dlq-test",
                                                                "fetched_at": "2024-01-02T00:00:00Z"}})


def long_applicant() -> dict:
    """An eligible applicant whose risk API request alone is over 1,024 bytes (the strict API's limit)."""
    return raw_applicant(REFUSED, grade="B", sub_grade="B2", annual_inc="60000", emp_title="e" * 250,
                         loan_status="s" * 250)


@dataclass
class Pipeline:
    """Raw topic -> one worker -> HBase / DLQ on isolated names, and a risk API on a port of its own."""

    env: dict
    run_dir: Path
    bootstrap: str
    risk_port: int
    token: str
    risk: GunicornApp | None = None
    workers: list = field(default_factory=list)

    def start_risk_api(self, **extra_env) -> None:
        if self.risk is not None:
            self.risk.stop()
        self.risk = risk_api(run_dir=self.run_dir / f"risk-{len(extra_env)}", port=self.risk_port, token=self.token,
                             env=extra_env)
        self.risk.start(timeout=60)

    def start_worker(self) -> None:
        w = FaustWorker(name=f"worker{len(self.workers)}", run_dir=self.run_dir, env=self.env)
        self.workers.append(w)
        w.start()

    def publish(self, messages) -> dict[int, tuple[int, int]]:
        """Send (key, value) to the raw topic; (partition, offset) of each by its key's id."""
        async def run():
            p = AIOKafkaProducer(bootstrap_servers=self.bootstrap, acks="all", enable_idempotence=False)
            await p.start()
            try:
                return {int(k): (m.partition, m.offset) for k, v in messages
                        for m in [await p.send_and_wait(self.env["TOPIC_RAW"], v, key=k)]}
            finally:
                await p.stop()
        return asyncio.run(run())

    def dead_letters(self):
        read = asyncio.run(read_topics(self.bootstrap, [self.env["TOPIC_DLQ"]],
                                       end_offsets_reliable=self.env["KAFKA_END_OFFSETS_RELIABLE"] == "true",
                                       idle_polls=2, poll_ms=200))
        return [from_record(r) for r in read.records[self.env["TOPIC_DLQ"]]]

    def hbase(self) -> set[int]:
        return set(hbase_ids(HBaseSettings.from_env(self.env)))

    def decision(self, app_id: int) -> dict | None:
        from hbase_helper.pool import connect
        from hbase_helper.writer import read_decision

        with connect(HBaseSettings.from_env(self.env)) as conn:
            return read_decision(conn, app_id)

    def wait(self, what: str, done, timeout: float = 120.0) -> None:
        try:
            wait_for(done, timeout, interval=1.0, what=what)
        except TimeoutError:
            logs = "\n".join(f"--- {w.name}\n{w.tail_log(60)}" for w in self.workers)
            raise AssertionError(f"{what}: not within {timeout}s\n{logs}") from None

    def dlq(self, *args: str, stdin: bytes | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "deploy", "dlq", *args], env=env or self.env, cwd=ROOT,
                              capture_output=True, timeout=180, input=stdin)

    def ok(self, *args: str) -> str:
        proc = self.dlq(*args)
        assert proc.returncode == 0, (args, proc.stdout.decode(errors="replace"), proc.stderr.decode(errors="replace"))
        return proc.stdout.decode()

    def replay(self, *args: str) -> dict:
        return json.loads(self.ok("replay", "--json", *args))


@pytest.fixture
def pipeline(broker, hbase_server, stack, tmp_path):
    tag = uuid.uuid4().hex[:8]
    env = dict(os.environ)
    env.update({
        "CREDIT_RUN_DIR": str(tmp_path / "run"),
        "KAFKA_BROKER": broker.url, "KAFKA_END_OFFSETS_RELIABLE": "true" if stack == "apache" else "false",
        "TOPOLOGY_APP_ID": f"dlq-test-{tag}", "TOPIC_PARTITIONS": str(PARTITIONS), "TOPIC_RAW": f"raw-{tag}",
        "TOPIC_CLEAN": f"clean-{tag}", "TOPIC_ELIGIBLE": f"eligible-{tag}", "TOPIC_SCORED": f"scored-{tag}",
        "TOPIC_DECISIONS": f"decisions-{tag}", "TOPIC_DLQ": f"dlq-{tag}", "TOPIC_PASSTHROUGH": f"pass-{tag}",
        "HBASE_HOST": hbase_server.host, "HBASE_PORT": str(hbase_server.port), "HBASE_TABLE_PREFIX": f"q{tag}",
        "FAUST_DATADIR": str(tmp_path / "faust"), "RETRY_CAP": "1", "DLQ_POLL_MS": "200",
    })
    token = secrets.token_urlsafe(16)
    port = free_port()
    env.update({"RISK_API_URL": f"http://127.0.0.1:{port}", "RISK_API_TOKEN": token})
    pipe = Pipeline(env=env, run_dir=tmp_path, bootstrap=broker.bootstrap, risk_port=port, token=token)
    asyncio.run(ensure_topics(Settings.from_env(env)))
    try:
        yield pipe
    finally:
        for w in pipe.workers:
            w.kill()
        if pipe.risk is not None:
            pipe.risk.stop()


def test_dead_letters_are_inspected_then_replayed_after_a_fix(pipeline):
    # 1. A risk API refusing bodies over 1,024 bytes, and input with three kinds of bad record.
    pipeline.start_risk_api(RISK_MAX_BODY_BYTES="1024")
    pipeline.start_worker()
    letters = envelope(raw_applicant(LETTERS, dti="12.x5"))
    raw_at = pipeline.publish([(str(i).encode(), envelope(raw_applicant(i, grade="A", sub_grade="A1")))
                               for i in GOOD]
                              + [(str(REFUSED).encode(), envelope(long_applicant())),
                                 (str(LETTERS).encode(), letters), (str(GARBAGE).encode(), GARBAGE_BYTES)])
    pipeline.wait("the good applicants saved and three dead letters written",
                  lambda: set(GOOD) <= pipeline.hbase() and len(pipeline.dead_letters()) >= 3)
    dls = {d.app_id: d for d in pipeline.dead_letters()}
    assert set(dls) == {REFUSED, LETTERS, GARBAGE} and not pipeline.hbase() & set(dls)
    refused, bad_dti, garbage = dls[REFUSED], dls[LETTERS], dls[GARBAGE]
    assert (refused.stage, refused.reason) == ("submit", "risk API rejected the request")
    assert (bad_dti.stage, garbage.stage, garbage.reason) == ("filter", "filter", "not UTF-8")

    # 2. list, filters, stats, show, export.
    listing = pipeline.ok("list")
    assert "3 of 3 dead letters" in listing and listing.count(" new ") == 3
    for dl in dls.values():
        assert any(line.startswith(dl.position + " ") and str(dl.app_id) in line for line in listing.splitlines())
    assert "2 of 3" in pipeline.ok("list", "--stage", "filter")
    by_reason = pipeline.ok("list", "--reason", "risk api")
    assert "1 of 3" in by_reason and str(REFUSED) in by_reason
    assert "3 of 3" in pipeline.ok("list", "--since", "1h")
    assert "0 of 3" in pipeline.ok("list", "--until", "2000-01-01")
    counts = json.loads(pipeline.ok("stats", "--json"))
    assert counts["total"] == 3 and counts["by_stage"] == {"filter": 2, "submit": 1}
    assert counts["by_status"] == {"new": 3} and counts["by_attempt"] == {"1": 3}
    assert "by stage and reason:" in pipeline.ok("stats")

    shown = pipeline.ok("show", garbage.position)
    assert "reason:      not UTF-8" in shown and "invalid UTF-8 at byte 0" in shown
    assert "binary (not UTF-8)" in shown and "ff fe 00 20 6e 6f 74" in shown and "sha256 matches" in shown
    partition, offset = raw_at[GARBAGE]
    assert f"came from:   {pipeline.env['TOPIC_RAW']} partition {partition} offset {offset}" in shown
    shown = pipeline.ok("show", "--id", str(REFUSED))
    assert "stage:       submit" in shown and "413" in shown and f"application: {REFUSED}" in shown
    assert pipeline.dlq("show", bad_dti.position, "--raw").stdout == letters

    out_file = pipeline.run_dir / "dlq.jsonl"
    pipeline.ok("export", "-o", str(out_file))
    exported = {r["id"]: r for r in map(json.loads, out_file.read_text().splitlines())}
    assert set(exported) == {REFUSED, LETTERS, GARBAGE}
    assert exported[GARBAGE]["original_encoding"] == "base64"
    assert base64.b64decode(exported[GARBAGE]["original"]) == GARBAGE_BYTES
    assert exported[LETTERS]["original_encoding"] == "utf-8" and exported[LETTERS]["original"] == letters.decode()
    assert exported[LETTERS]["errors"][0]["field"] == "dti" and exported[LETTERS]["status"] == "new"
    assert exported[LETTERS]["source"]["offset"] == raw_at[LETTERS][1]

    # 3. The fixes: the risk API takes normal bodies again; the dti is corrected by hand. The garbage is not.
    pipeline.start_risk_api()
    first = pipeline.replay("--stage", "submit")
    assert first["replayed_count"] == 1 and first["replayed"][0]["attempt"] == 2
    fixed = pipeline.run_dir / "fixed.json"
    fixed.write_bytes(letters.replace(b'"12.x5"', b'"12.5"'))
    by_hand = pipeline.replay("--at", bad_dti.position, "--value-file", str(fixed))
    assert by_hand["replayed_count"] == 1 and by_hand["replayed"][0]["fixed"]
    unfixed = pipeline.replay("--reason", "not utf-8")
    assert unfixed["replayed_count"] == 1

    # 4. The fixed ones end in HBase, marked as replayed from their dead letter; the other comes back, attempt 2.
    pipeline.wait("the replayed applicants saved and the unfixed one dead-lettered again",
                  lambda: {REFUSED, LETTERS} <= pipeline.hbase() and len(pipeline.dead_letters()) >= 4)
    for app_id, dl, report in ((REFUSED, refused, first), (LETTERS, bad_dti, by_hand)):
        prov = pipeline.decision(app_id)["provenance"]
        assert (prov["replayed_from"], prov["attempt"], prov["replay_run"]) == (dl.coordinates, 2, report["run"])
        assert prov["topic"] == pipeline.env["TOPIC_RAW"] and prov["offset"] == report["replayed"][0]["raw"][0][
            "offset"]
    assert pipeline.decision(REFUSED)["decided_by"] == "model"
    [again] = [d for d in pipeline.dead_letters() if d.attempt > 1]
    assert (again.app_id, again.stage, again.reason, again.attempt) == (GARBAGE, "filter", "not UTF-8", 2)
    assert again.replayed_from == garbage.coordinates and again.replay_run == unfixed["run"]
    assert again.original == GARBAGE_BYTES

    # 5. Nothing is replayed twice by accident: the same replays, and any filter, replay nothing now.
    for args in (("--stage", "submit"), ("--at", bad_dti.position), ("--reason", "not utf-8"), ("--all",)):
        second = pipeline.replay(*args)
        assert second["replayed_count"] == 0, (args, second)
    everything = pipeline.replay("--all")
    assert everything["skipped_by_kind"] == {"replayed": 3, "attempts": 1}
    assert "already replayed" in pipeline.ok("replay", "--stage", "submit")
    assert "skipped 1" in pipeline.ok("replay", "--stage", "submit")
    dry = pipeline.replay("--at", garbage.position, "--again", "--dry-run")
    assert dry["dry_run"] and dry["replayed_count"] == 1 and dry["replayed"][0]["again"]
    assert len(pipeline.dead_letters()) == 4

    listing = pipeline.ok("list")
    status = {line.split()[0]: line for line in listing.splitlines()[1:-1]}
    assert " replayed " in status[refused.position] and " replayed " in status[bad_dti.position]
    assert " failed again " in status[garbage.position] and " new " in status[again.position]
    assert pipeline.ok("list", "--status", "failed again").count("\n") == 3    # header, one line, footer
    shown = pipeline.ok("show", refused.position, "--hbase")
    assert f"replayed by run {first['run']}" in shown and "replayed from this dead letter (attempt 2)" in shown
    assert f"failed again: dead letter {again.position}" in pipeline.ok("show", garbage.position)
    assert json.loads(pipeline.ok("stats", "--json"))["by_status"] == {"failed again": 1, "new": 1, "replayed": 2}

    # 6. Clear errors.
    missing = pipeline.dlq("show", "3:999999")
    assert missing.returncode == 1 and b"no such dead letter" in missing.stderr
    unchosen = pipeline.dlq("replay")
    assert unchosen.returncode == 2 and b"choose the dead letters to replay" in unchosen.stderr
    bad_time = pipeline.dlq("list", "--since", "yesterday")
    assert bad_time.returncode == 2 and b"not a time" in bad_time.stderr
    two_fixed = pipeline.dlq("replay", "--stage", "filter", "--again", "--value-file", str(fixed))
    assert two_fixed.returncode == 2 and b"one dead letter" in two_fixed.stderr


def test_an_unreachable_broker_is_a_clear_error(tmp_path):
    env = {**os.environ, "CREDIT_RUN_DIR": str(tmp_path / "run"), "KAFKA_BROKER": f"127.0.0.1:{free_port()}",
           "KAFKA_END_OFFSETS_RELIABLE": "true"}
    proc = subprocess.run([sys.executable, "-m", "deploy", "dlq", "list"], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and "cannot read or write the broker at 127.0.0.1:" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_the_stage_choices_are_the_stages_names():
    from topology.stages import cleaning, saving, scoring, screening

    assert STAGES == (cleaning.STAGE, screening.STAGE, scoring.STAGE, saving.STAGE)
