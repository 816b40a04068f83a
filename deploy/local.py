"""The local stack: `python -m deploy.local up | down | status | env | run | reconcile` on 127.0.0.1."""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import click

from deploy.apache_servers import HBaseMaster, HBaseThrift, KafkaServer
from deploy.dlq import dlq_cmd
from deploy.placement import Placement
from deploy.prometheus import Prometheus
from deploy.reconcile import reconcile_cmd
from deploy.services import (Broker, FaustWorker, GunicornApp, HBaseServer, MariaDB, PythonProcess, Service,
                             ServiceError, StopOutcome, recorded_services, risk_api, run_secret, worker_health)

logger = logging.getLogger(__name__)

# Each default can be changed through the environment variable named beside it.
DEFAULT_RUN_DIR = Path(__file__).resolve().parent.parent / ".run"   # CREDIT_RUN_DIR
DEFAULT_BROKER_PORT = 9092                                          # BROKER_PORT
DEFAULT_MYSQL_PORT = 3307                                           # MYSQL_PORT
DEFAULT_HBASE_PORT = 9090                                           # HBASE_PORT
DEFAULT_APPLICANT_API_PORT = 5001                                   # APPLICANT_API_PORT
DEFAULT_RISK_API_PORT = 5002                                        # RISK_API_PORT
DEFAULT_WORKERS = 2                                                 # WORKERS (Faust worker processes)
DEFAULT_ZOOKEEPER_PORT = 2182                                       # ZOOKEEPER_PORT (apache stack's HBase)
DEFAULT_PRODUCER_METRICS_PORT = 9464                                # PRODUCER_METRICS_PORT (0: no metrics)
DEFAULT_PROMETHEUS_PORT = 9095                                      # PROMETHEUS_PORT (the HBase emulator has 9090)
DEFAULT_DASHBOARD_PORT = 5003                                       # DASHBOARD_PORT
DASHBOARD_THREADS = 8                                               # the dashboard's gunicorn threads (1 worker)
STACKS = ("embedded", "apache")
DEFAULT_STACK = "embedded"                                          # STACK
STACK_FILE = "stack"     # in the run folder: the stack `up` last started there


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise click.UsageError(f"{name} must be a whole number, got {raw!r}") from None


@dataclass
class Stack:
    """Every process of the local stack, in start order, and the environment that points at them."""

    run_dir: Path
    broker: Broker
    mariadb: MariaDB
    hbase: HBaseServer | HBaseThrift
    applicant_api: GunicornApp
    risk_api: GunicornApp
    producer: PythonProcess
    workers: list[PythonProcess]
    prometheus: Prometheus
    dashboard: GunicornApp
    name: str = DEFAULT_STACK
    hbase_master: HBaseMaster | None = None   # the apache stack's HBase JVM behind its Thrift server

    @property
    def infrastructure(self) -> list[Service]:
        return [self.broker, self.mariadb, *([self.hbase_master] if self.hbase_master else []), self.hbase]

    def stored_data(self) -> list[Path]:
        """What a clean slate removes (with the services stopped): the broker's and HBase's data."""
        if self.name == "apache":
            return [self.broker.data_dir / "logs", self.hbase_master.data_dir]
        return [Path(f"{self.hbase.db}{suffix}") for suffix in ("", "-wal", "-shm", "-journal")]

    @property
    def applications(self) -> list[Service]:
        return [self.applicant_api, self.risk_api, *self.workers, self.producer]

    @property
    def monitoring(self) -> list[Service]:
        """What watches the applications (started after them): Prometheus and the dashboard."""
        return [self.prometheus, self.dashboard]

    @property
    def services(self) -> list[Service]:
        return self.infrastructure + self.applications + self.monitoring


def metrics_targets(apis: list[GunicornApp], producer_metrics_port: int, workers: list[FaustWorker],
                    host: str = "127.0.0.1") -> dict[str, str]:
    """Each application process's /metrics URL by its name in the stack (the producer's when it has a metrics
    port, each worker's when it has a web server)."""
    targets = {api.name: f"{api.url}/metrics" for api in apis}
    if producer_metrics_port:
        targets["producer"] = f"http://{host}:{producer_metrics_port}/metrics"
    for worker in workers:
        if worker.web_port is not None:
            targets[worker.name] = f"http://{worker.web_host}:{worker.web_port}/metrics"
    return targets


def dashboard_targets(targets: dict[str, str]) -> str:
    """DASHBOARD_TARGETS: comma-separated name=url pairs."""
    return ",".join(f"{name}={url}" for name, url in targets.items())


def pipeline_env(run_dir: Path, broker: Broker, mariadb: MariaDB, hbase: HBaseServer,
                 applicant_port: int, risk_port: int, stack: str = DEFAULT_STACK,
                 api_host: str = "127.0.0.1") -> dict[str, str]:
    """The environment variables that point every component at this stack (on the embedded stack, that the
    broker's end offsets are not to be trusted: Tansu's are wrong, so no lag figure is computed from them)."""
    return {
        **({"KAFKA_END_OFFSETS_RELIABLE": "false"} if stack == "embedded" else {}),
        "KAFKA_BROKER": broker.url,
        "MYSQL_URL": mariadb.url,
        "HBASE_HOST": hbase.host,
        "HBASE_PORT": str(hbase.port),
        "APPLICANT_API_URL": f"http://{api_host}:{applicant_port}",
        "APPLICANT_API_TOKEN": os.environ.get("APPLICANT_API_TOKEN") or run_secret(run_dir, "applicant-api-token"),
        "RISK_API_URL": f"http://{api_host}:{risk_port}",
        "RISK_API_TOKEN": os.environ.get("RISK_API_TOKEN") or run_secret(run_dir, "risk-api-token"),
        "PRODUCER_CHECKPOINT": str(run_dir / "producer.checkpoint"),
    }


def recorded_stack(run_dir: Path) -> str | None:
    """The stack `up` last started in ``run_dir`` (so status and down need no STACK in their shell)."""
    try:
        name = (run_dir / STACK_FILE).read_text().strip()
    except OSError:
        return None
    return name if name in STACKS else None


def build_stack(run_dir: Path | None = None, *, workers: int | None = None,
                ports: dict[str, int] | None = None, stack: str | None = None,
                placement: Placement | None = None) -> Stack:
    """The stack for a run folder; ports come from ``ports``, else the environment, else the defaults.

    ``stack`` (else STACK, else the stack `up` last started in this run folder, else embedded): 'embedded'
    (Tansu, the HBase emulator) or 'apache' (Apache Kafka, Apache HBase + its Thrift server).
    ``placement`` says on which host each process runs, binds and is reached (deploy.multihost); by default every
    process is on 127.0.0.1 and there are ``workers`` workers (else WORKERS, else 2)."""
    run_dir = Path(run_dir or os.environ.get("CREDIT_RUN_DIR") or DEFAULT_RUN_DIR)
    ports = dict(ports or {})
    stack = stack or os.environ.get("STACK") or recorded_stack(run_dir) or DEFAULT_STACK
    if stack not in STACKS:
        raise click.UsageError(f"STACK must be one of {', '.join(STACKS)}, got {stack!r}")

    def port(name: str, default: int) -> int:
        return ports.get(name) or _env_int(name, default)

    if placement is None:
        n_workers = workers if workers is not None else _env_int("WORKERS", DEFAULT_WORKERS)
        if n_workers < 1:
            raise click.UsageError("WORKERS must be at least 1")
        placement = Placement.local(n_workers)
    data, db, monitoring = placement.data, placement.db, placement.monitoring
    mariadb = db.place(MariaDB(run_dir=run_dir, port=port("MYSQL_PORT", DEFAULT_MYSQL_PORT), host=db.address,
                               client_hosts=placement.client_hosts))
    hbase_master = None
    if stack == "apache":
        broker = KafkaServer(run_dir=run_dir, port=port("BROKER_PORT", DEFAULT_BROKER_PORT), host=data.address)
        hbase_master = data.place(HBaseMaster(run_dir=run_dir, port=port("ZOOKEEPER_PORT", DEFAULT_ZOOKEEPER_PORT),
                                              host=data.address))
        hbase = HBaseThrift(master=hbase_master, port=port("HBASE_PORT", DEFAULT_HBASE_PORT), host=data.address)
    else:
        broker = Broker(run_dir=run_dir, port=port("BROKER_PORT", DEFAULT_BROKER_PORT), host=data.address)
        hbase = HBaseServer(run_dir=run_dir, port=port("HBASE_PORT", DEFAULT_HBASE_PORT), host=data.address)
    data.place(broker)
    data.place(hbase)
    applicant_port = port("APPLICANT_API_PORT", DEFAULT_APPLICANT_API_PORT)
    risk_port = port("RISK_API_PORT", DEFAULT_RISK_API_PORT)
    env = pipeline_env(run_dir, broker, mariadb, hbase, applicant_port, risk_port, stack, api_host=db.address)
    applicant_api = db.place(GunicornApp(name="applicant-api", factory="applicant_api.app:create_app()",
                                         run_dir=run_dir, port=applicant_port, host=db.address, workers=2, env=env,
                                         config="python:applicant_api.gunicorn_conf"))
    risk = db.place(risk_api(run_dir=run_dir, port=risk_port, host=db.address, workers=1, env=env,
                             token=env["RISK_API_TOKEN"], admin_token=os.environ.get("RISK_ADMIN_TOKEN")))
    producer_metrics_port = port("PRODUCER_METRICS_PORT", DEFAULT_PRODUCER_METRICS_PORT)
    workers = [
        spot.place(FaustWorker(name=f"worker-{i}", run_dir=run_dir, env={**env, "FAUST_WORKER_INDEX": str(i)},
                               web_port=port(f"WORKER_{i}_WEB_PORT", 6066 + i), web_host=spot.address))
        for i, spot in enumerate(placement.workers, start=1)
    ]
    producer_host = placement.producer.address
    targets = metrics_targets([applicant_api, risk], producer_metrics_port, workers, host=producer_host)
    dashboard_env = {
        **env,
        "DASHBOARD_TOKEN": os.environ.get("DASHBOARD_TOKEN") or run_secret(run_dir, "dashboard-token"),
        "DASHBOARD_TARGETS": dashboard_targets(targets),
    }
    producer = PythonProcess(name="producer", args=["-m", "producer"], run_dir=run_dir,
                             env={**env, "PRODUCER_METRICS_PORT": str(producer_metrics_port),
                                  "PRODUCER_METRICS_HOST": producer_host})
    producer.netns = placement.producer.netns
    return Stack(
        run_dir=run_dir,
        name=stack,
        hbase_master=hbase_master,
        broker=broker,
        mariadb=mariadb,
        hbase=hbase,
        applicant_api=applicant_api,
        risk_api=risk,
        producer=producer,
        workers=workers,
        prometheus=monitoring.place(Prometheus(run_dir=run_dir, host=monitoring.address, targets=targets,
                                               port=port("PROMETHEUS_PORT", DEFAULT_PROMETHEUS_PORT))),
        dashboard=monitoring.place(GunicornApp(name="dashboard", factory="dashboard.app:create_app()",
                                               run_dir=run_dir, host=monitoring.address,
                                               port=port("DASHBOARD_PORT", DEFAULT_DASHBOARD_PORT), workers=1,
                                               threads=DASHBOARD_THREADS, env=dashboard_env)),
    )


def init_database(stack: Stack) -> None:
    from applicant_api.db import connect
    from applicant_api.schema import init_db

    conn = connect(stack.mariadb.url)
    try:
        init_db(conn)
    finally:
        conn.close()


def create_topics(stack: Stack) -> None:
    """Create every topology topic with the configured partition count before anything publishes."""
    import asyncio

    from topology.settings import Settings
    from topology.topics import ensure_topics

    asyncio.run(ensure_topics(Settings.from_env({**os.environ, **stack.producer.extra_env})))


def create_tables(stack: Stack) -> None:
    """Create the decision tables before any worker writes (on Apache HBase a create takes seconds, and
    workers racing to create them at their first write stretch the first batch across the group's join)."""
    from hbase_helper.layout import ensure_tables
    from hbase_helper.pool import connect
    from hbase_helper.settings import HBaseSettings

    with connect(HBaseSettings.from_env({**os.environ, **stack.producer.extra_env})) as conn:
        ensure_tables(conn)


def up(stack: Stack, services: list[Service] | None = None) -> None:
    """Start each service unless it runs already; wait until each answers a real request."""
    stack.run_dir.mkdir(parents=True, exist_ok=True)
    (stack.run_dir / STACK_FILE).write_text(stack.name + "\n")
    for svc in services if services is not None else stack.services:
        started = svc.start()
        if svc is stack.mariadb:
            init_database(stack)
        elif svc is stack.broker:
            create_topics(stack)
        elif svc is stack.hbase:
            create_tables(stack)
        click.echo(f"{svc.name}: {'started' if started else 'already running'}", err=True)


def unlisted(stack: Stack) -> list[Service]:
    """Processes recorded in the run folder that this environment's stack does not name (more WORKERS...)."""
    names = {svc.name for svc in stack.services}
    return [svc for svc in recorded_services(stack.run_dir) if svc.name not in names]


def down(stack: Stack) -> list[StopOutcome]:
    """Stop the processes `up` started, as recorded in the run folder (whatever ports this environment asks
    for), last started first; say on stderr what came of each. Returns every outcome."""
    outcomes = []
    for svc in [*reversed(unlisted(stack)), *reversed(stack.services)]:
        outcome = svc.shutdown()
        if outcome.state != "not running":
            click.echo(outcome.describe(), err=True)
        outcomes.append(outcome)
    return outcomes


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG level.")
def cli(verbose: bool) -> None:
    """Run the credit-risk pipeline's local stack on 127.0.0.1 (ports and run folder from the environment)."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not verbose:
        logging.getLogger("aiokafka").setLevel(logging.WARNING)


STACK_OPTION = click.option("--stack", type=click.Choice(STACKS), default=None,
                            help="embedded (Tansu + HBase emulator, the default) or apache (Apache Kafka + "
                                 "Apache HBase); else STACK.")


@cli.command("up")
@click.option("--infra-only", is_flag=True, help="Only the broker, MariaDB and the HBase server.")
@STACK_OPTION
def up_cmd(infra_only: bool, stack: str | None) -> None:
    """Start every service (idempotent) and wait until each answers."""
    stack = build_stack(stack=stack)
    try:
        up(stack, stack.infrastructure if infra_only else None)
    except ServiceError as exc:
        raise click.ClickException(str(exc)) from None
    for svc in stack.services:
        click.echo(svc.status())
    if not infra_only:
        for line in monitoring_lines(stack):
            click.echo(line)


@cli.command("down")
def down_cmd() -> None:
    """Stop exactly the processes `up` started, and wait for them; exit 1 naming any still running."""
    failed = [outcome for outcome in down(build_stack()) if outcome.failed]
    if failed:
        raise click.ClickException("could not stop: " + "; ".join(outcome.describe() for outcome in failed))


BROKER_WARNING = ("the broker (Tansu) keeps every message in memory only: a crash or restart loses every "
                  "message not yet in HBase or the DLQ, and the producer will not resend them (its checkpoint "
                  "is past them). After a crash run `python -m deploy.local down`, then `up` (clients that lived "
                  "through the crash would carry their old offsets over and skip what comes next), then find and "
                  "resend them with `python -m deploy reconcile --republish`. "
                  "The Apache Kafka stack keeps messages on disk.")


def health_lines(services: list[Service]) -> list[str]:
    """For each running worker among ``services``, its /health verdict, stage by stage."""
    lines = []
    for svc in services:
        health = worker_health(svc)
        if health is not None:
            lines.append(f"{svc.name} health: {health.describe()}")
    return lines


def monitoring_lines(stack: Stack) -> list[str]:
    """Where Prometheus and the dashboard answer (as started, whatever this environment asks)."""
    prometheus = stack.prometheus.running_as()
    dashboard = stack.dashboard.running_as()
    token = ("DASHBOARD_TOKEN" if os.environ.get("DASHBOARD_TOKEN")
             else stack.run_dir / "dashboard-token.secret")
    return [f"prometheus: {prometheus.url} (alerts: {prometheus.url}/alerts)",
            f"dashboard: {dashboard.url} (token: {token})"]


@cli.command("status")
@STACK_OPTION
def status_cmd(stack: str | None) -> None:
    """The stack's name, one line per service, each worker's health by stage, where Prometheus and the dashboard
    answer, and what a broker crash costs."""
    stack = build_stack(stack=stack)
    click.echo(f"stack: {stack.name}")
    services = stack.services + [svc for svc in unlisted(stack) if svc.is_running()]
    for svc in services:
        click.echo(svc.status())
    for line in health_lines(services) + monitoring_lines(stack):
        click.echo(line)
    if stack.name == "embedded":
        click.echo(f"note: {BROKER_WARNING}")


def stack_env(stack: Stack) -> dict[str, str]:
    """What a shell needs to reach the stack: the components' variables and the risk API's admin token (not the
    producer's metrics address: a second producer would find it taken)."""
    env = {key: value for key, value in stack.producer.extra_env.items()
           if key not in ("PRODUCER_METRICS_PORT", "PRODUCER_METRICS_HOST")}
    return {**env, "RISK_ADMIN_TOKEN": stack.risk_api.extra_env["RISK_ADMIN_TOKEN"]}


@cli.command("env")
def env_cmd() -> None:
    """Print the variables that point components at the stack: eval "$(python -m deploy.local env)"."""
    import shlex

    for key, value in stack_env(build_stack()).items():
        click.echo(f"export {key}={shlex.quote(value)}")


@cli.command("run")
@click.option("--applicants", default=20_000, show_default=True, type=click.IntRange(1),
              help="How many synthetic applicants to generate and push through the pipeline.")
@click.option("--dirty", default=0.02, show_default=True, type=click.FloatRange(0, 1),
              help="Share of dirty records injected into the synthetic file.")
@click.option("--seed", default=42, show_default=True, type=int)
@click.option("--keep-running", is_flag=True, help="Leave the whole stack up afterwards.")
@click.option("--timeout", default=900.0, show_default=True, type=float,
              help="Give up when no applicant was accounted for during this many seconds.")
@STACK_OPTION
def run_cmd(applicants: int, dirty: float, seed: int, keep_running: bool, timeout: float,
            stack: str | None) -> None:
    """The main job: the whole pipeline on the local stack, from a clean slate, ending in a JSON summary."""
    from deploy.job import run_job

    stack = build_stack(stack=stack)
    try:
        summary = run_job(stack, applicants=applicants, dirty=dirty, seed=seed,
                          keep_running=keep_running, stall_timeout=timeout)
    except ServiceError as exc:
        raise click.ClickException(str(exc)) from None
    except KeyboardInterrupt:
        click.echo("interrupted: stopping everything this job started", err=True)
        down(stack)
        sys.exit(130)
    import orjson

    click.echo(orjson.dumps(summary).decode())
    if not summary.get("reconciled"):
        sys.exit(1)


cli.add_command(reconcile_cmd)
cli.add_command(dlq_cmd)

if __name__ == "__main__":
    cli()
