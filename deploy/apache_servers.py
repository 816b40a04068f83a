"""Apache Kafka 3.9 (KRaft, one combined node) and Apache HBase 2.6 standalone + Thrift v1, from Maven jars."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import logging
import os
import shutil
import subprocess
import uuid
from pathlib import Path

from deploy.services import DEFAULT_HOST, Broker, Service, ServiceError, free_port

logger = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
POM_DIR = Path(__file__).resolve().parent / "apache"
DEFAULT_LIB_CACHE = PROJECT_ROOT / ".cache" / "apache"      # APACHE_LIB_CACHE
DEFAULT_KAFKA_HEAP = "512m"                                  # KAFKA_HEAP
DEFAULT_HBASE_HEAP = "1g"                                    # HBASE_HEAP
DEFAULT_THRIFT_HEAP = "256m"                                 # HBASE_THRIFT_HEAP
HBASE_START_TIMEOUT = 180.0
KAFKA_START_TIMEOUT = 90.0
# A client idle for this long is not dropped (HBase's own default, 60 s, drops happybase pool connections).
THRIFT_READ_TIMEOUT_MS = 24 * 3600 * 1000

# What HBase's bin/hbase passes on JDK 17 (its add_jdk17_jvm_flags).
JDK17_FLAGS = [
    "-Dorg.apache.hbase.thirdparty.io.netty.tryReflectionSetAccessible=true",
    "--add-modules", "jdk.unsupported",
    "--add-opens", "java.base/java.nio=ALL-UNNAMED",
    "--add-opens", "java.base/sun.nio.ch=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang=ALL-UNNAMED",
    "--add-opens", "java.base/jdk.internal.ref=ALL-UNNAMED",
    "--add-opens", "java.base/java.lang.reflect=ALL-UNNAMED",
    "--add-opens", "java.base/java.util=ALL-UNNAMED",
    "--add-opens", "java.base/java.util.concurrent=ALL-UNNAMED",
    "--add-exports", "java.base/jdk.internal.misc=ALL-UNNAMED",
    "--add-exports", "java.security.jgss/sun.security.krb5=ALL-UNNAMED",
    "--add-exports", "java.base/sun.net.dns=ALL-UNNAMED",
    "--add-exports", "java.base/sun.net.util=ALL-UNNAMED",
]


def java() -> str:
    path = shutil.which("java")
    if not path:
        raise ServiceError("java was not found: run `make setup` (it installs a JRE 17 through apt-get)")
    return path


def lib_dir(server: str) -> Path:
    """The cached runtime jars of ``server`` ('kafka' or 'hbase'), resolved by Maven on first use.

    The lib folder carries the hash of the pom it came from, so a changed pom resolves again and an unchanged
    one costs nothing (Maven's own ~/.m2 cache means a second resolution downloads nothing either)."""
    if server not in ("kafka", "hbase"):
        raise ValueError(f"unknown server {server!r}")
    pom = POM_DIR / server / "pom.xml"
    digest = hashlib.sha256(pom.read_bytes()).hexdigest()
    target = Path(os.environ.get("APACHE_LIB_CACHE") or DEFAULT_LIB_CACHE) / f"{server}-lib"
    stamp = target / ".pom-sha256"
    if stamp.is_file() and stamp.read_text().strip() == digest:
        return target
    mvn = shutil.which("mvn")
    if not mvn:
        raise ServiceError("mvn was not found: run `make setup` (it installs Maven through apt-get)")
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    logger.info("resolving %s's runtime jars with Maven into %s", server, target)
    result = subprocess.run([mvn, "-B", "-q", "-f", str(pom), "dependency:copy-dependencies",
                             "-DincludeScope=runtime", f"-DoutputDirectory={tmp}"],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise ServiceError(f"Maven could not resolve {server}'s jars:\n{result.stdout[-3000:]}{result.stderr[-2000:]}")
    (tmp / ".pom-sha256").write_text(digest + "\n")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return target


def _port_file(path: Path) -> int:
    """A port picked once for a data folder and kept across restarts (the KRaft quorum names it)."""
    try:
        return int(path.read_text())
    except (FileNotFoundError, ValueError):
        port = free_port()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"{port}\n")
        return port


class KafkaServer(Broker):
    """Apache Kafka 3.9 as one KRaft node that is both broker and controller; data in the run folder."""

    name = "kafka"
    start_timeout = KAFKA_START_TIMEOUT

    @property
    def data_dir(self) -> Path:
        return self.run_dir / "kafka"

    @property
    def config_file(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def signature(self) -> str:
        return str(self.config_file)

    def properties(self) -> dict[str, str]:
        controller = _port_file(self.data_dir / "controller.port")
        return {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.voters": f"1@{self.host}:{controller}",
            "listeners": f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{controller}",
            "advertised.listeners": f"PLAINTEXT://{self.host}:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str(self.data_dir / "logs"),
            "num.partitions": "4",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "8",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "transaction.state.log.num.partitions": "4",
            "group.initial.rebalance.delay.ms": "0",
            "log.cleaner.dedupe.buffer.size": str(8 << 20),
            "message.max.bytes": str(16 << 20),
            "auto.create.topics.enable": "true",
        }

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.config_file.write_text("".join(f"{k}={v}\n" for k, v in self.properties().items()))
        (self.data_dir / "log4j.properties").write_text(
            "log4j.rootLogger=INFO, stdout\n"
            "log4j.appender.stdout=org.apache.log4j.ConsoleAppender\n"
            "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n"
            "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
            "log4j.logger.kafka=INFO\nlog4j.logger.org.apache.kafka=INFO\n")
        if (self.data_dir / "logs" / "meta.properties").is_file():
            return
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        # --cluster-id=<id>: a base64 id may start with "-", which argparse would read as an option.
        result = subprocess.run([*self._java(), "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}",
                                 "-c", str(self.config_file), "--ignore-formatted"],
                                capture_output=True, text=True)
        if result.returncode != 0:
            raise ServiceError(f"kafka storage format failed:\n{result.stdout}\n{result.stderr}")

    def _java(self) -> list[str]:
        heap = os.environ.get("KAFKA_HEAP") or DEFAULT_KAFKA_HEAP
        return [java(), f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseG1GC", "-Djava.awt.headless=true",
                f"-Dlog4j.configuration=file:{self.data_dir / 'log4j.properties'}",
                "-cp", f"{lib_dir('kafka')}/*"]

    def command(self) -> list[str]:
        return [*self._java(), "kafka.Kafka", str(self.config_file)]

    def env(self) -> dict[str, str]:
        return dict(os.environ)


def _hbase_site(values: dict[str, str]) -> str:
    props = "".join(f"  <property><name>{k}</name><value>{v}</value></property>\n" for k, v in values.items())
    return f'<?xml version="1.0"?>\n<configuration>\n{props}</configuration>\n'


def zookeeper_bind(host: str) -> str:
    """Where standalone HBase's built-in ZooKeeper listens to serve clients at ``host``.

    It listens on loopback unless told, and other hosts must reach it; but HBase's launcher waits for it by
    asking "localhost" (MiniZooKeeperCluster.waitForServerUp, hard-coded), so it cannot listen on another host's
    address alone: there it takes every address of its host (its clients are still given ``host``)."""
    return host if ipaddress.ip_address(host).is_loopback else "0.0.0.0"


class HBaseMaster(Service):
    """Apache HBase 2.6 standalone: ZooKeeper, master and one region server in one JVM; root dir on disk.

    Its port is ZooKeeper's client port; the Thrift server (HBaseThrift) is how clients reach it."""

    name = "hbase-master"
    start_timeout = HBASE_START_TIMEOUT

    @property
    def data_dir(self) -> Path:
        return self.run_dir / "hbase-apache"

    @property
    def conf_dir(self) -> Path:
        return self.data_dir / "conf"

    @property
    def signature(self) -> str:
        return str(self.conf_dir)

    def site(self) -> dict[str, str]:
        return {
            "hbase.cluster.distributed": "false",
            "hbase.rootdir": f"file://{self.data_dir / 'root'}",
            "hbase.tmp.dir": str(self.data_dir / "tmp"),
            "hbase.zookeeper.quorum": self.host,
            "hbase.zookeeper.property.clientPort": str(self.port),
            "hbase.zookeeper.property.clientPortAddress": zookeeper_bind(self.host),
            "hbase.zookeeper.property.dataDir": str(self.data_dir / "zookeeper"),
            "hbase.master.port": str(_port_file(self.data_dir / "master.port")),
            "hbase.regionserver.port": str(_port_file(self.data_dir / "regionserver.port")),
            "hbase.master.info.port": "-1",
            "hbase.regionserver.info.port": "-1",
            "hbase.unsafe.stream.capability.enforce": "false",
            "hbase.master.hostname": self.host,
            "hbase.regionserver.hostname": self.host,
            "hbase.thrift.info.port": "-1",
            "hbase.thrift.server.socket.read.timeout": str(THRIFT_READ_TIMEOUT_MS),
            "hbase.regionserver.thrift.framed": "false",
            "hbase.regionserver.thrift.compact": "false",
        }

    def prepare(self) -> None:
        self.conf_dir.mkdir(parents=True, exist_ok=True)
        (self.conf_dir / "hbase-site.xml").write_text(_hbase_site(self.site()))
        (self.conf_dir / "log4j2.properties").write_text(
            "status = warn\nappender.console.type = Console\nappender.console.name = STDOUT\n"
            "appender.console.layout.type = PatternLayout\n"
            "appender.console.layout.pattern = %d{ISO8601} %-5p [%t] %c{2}: %m%n\n"
            "rootLogger = INFO,STDOUT\nlogger.zk.name = org.apache.zookeeper\nlogger.zk.level = WARN\n"
            "logger.hadoop.name = org.apache.hadoop\nlogger.hadoop.level = WARN\n"
            "logger.hbase.name = org.apache.hadoop.hbase\nlogger.hbase.level = INFO\n")

    def jvm_command(self, heap: str) -> list[str]:
        return [java(), f"-Xms{heap}", f"-Xmx{heap}", "-XX:+UseG1GC", "-Djava.awt.headless=true",
                "-Djava.net.preferIPv4Stack=true", *JDK17_FLAGS,
                f"-Dlog4j2.configurationFile=file:{self.conf_dir / 'log4j2.properties'}",
                f"-Dhbase.log.dir={self.data_dir}",
                "-cp", f"{self.conf_dir}:{lib_dir('hbase')}/*"]

    def command(self) -> list[str]:
        heap = os.environ.get("HBASE_HEAP") or DEFAULT_HBASE_HEAP
        return [*self.jvm_command(heap), "org.apache.hadoop.hbase.master.HMaster", "start"]

    def done_after_sigterm(self, log_mark: int) -> bool:
        """Standalone HBase closes its regions and WALs within a second of SIGTERM, then its region server
        hangs deleting its ZooKeeper node from the ZooKeeper the same JVM already stopped: once every region
        is closed there is nothing left to lose."""
        return "all regions closed" in self.log_since(log_mark)

    def probe(self) -> None:
        """ZooKeeper answers 'ruok' with 'imok' (the Thrift server proves the master itself)."""
        import socket

        with socket.create_connection((self.host, self.port), timeout=2) as sock:
            sock.sendall(b"ruok")
            if sock.recv(8) != b"imok":
                raise ServiceError("ZooKeeper did not answer imok")


class HBaseThrift(Service):
    """HBase's Thrift v1 server (thread pool, binary protocol, buffered transport: happybase's defaults)."""

    name = "hbase-thrift"
    start_timeout = HBASE_START_TIMEOUT
    protocol = "binary"
    transport = "buffered"

    def __init__(self, *, master: HBaseMaster, port: int, host: str = DEFAULT_HOST, name: str | None = None):
        super().__init__(run_dir=master.run_dir, port=port, host=host)
        self.master = master
        if name:
            self.name = name

    @property
    def signature(self) -> str:
        return f"-p {self.port}"

    def command(self) -> list[str]:
        heap = os.environ.get("HBASE_THRIFT_HEAP") or DEFAULT_THRIFT_HEAP
        return [*self.master.jvm_command(heap), "org.apache.hadoop.hbase.thrift.ThriftServer",
                "-threadpool", "-b", self.host, "-p", str(self.port), "start"]

    def prepare(self) -> None:
        self.master.prepare()

    def probe(self) -> None:
        import happybase

        conn = happybase.Connection(self.host, self.port, timeout=5000)
        try:
            conn.tables()   # raises while the master is initializing
        finally:
            conn.close()


def main(argv: list[str] | None = None) -> int:
    """`python -m deploy.apache_servers resolve`: resolve (or find cached) Kafka's and HBase's jars."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if args != ["resolve"]:
        print("usage: python -m deploy.apache_servers resolve", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        for server in ("kafka", "hbase"):
            print(f"{server}: {lib_dir(server)}")
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
