"""Hosts made from Linux network namespaces on one bridge: create, cut, restore, kill and tear them down."""

from __future__ import annotations

import fcntl
import glob
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator, Sequence

from deploy.services import boot_id, pid_start_time

logger = logging.getLogger(__name__)

DEFAULT_SUBNET_BASE = "10.231"            # hosts get <base>.<n>.<k>/24
DEFAULT_PREFIX_STEM = "cr"                # random prefixes are this + 4 hex digits
DEFAULT_STATE_DIR = "/run/credit-netns"   # <prefix>.json per live network (owner pid + start time)
DEFAULT_NETNS_DIR = "/run/netns"          # where `ip netns` keeps its named namespaces
DEFAULT_NETNS_ETC = "/etc/netns"          # `ip netns exec NS` bind-mounts /etc/netns/NS/* over /etc/*
DEFAULT_RESTORE_TIMEOUT = 10.0            # seconds restore() waits for the link to forward again
DEFAULT_KILL_TIMEOUT = 10.0               # seconds kill_all() waits for the processes to be gone
DEFAULT_PROBE_TIMEOUT = 0.25             # seconds one reachability probe of restore() waits
DEFAULT_POLL = 0.02

_IFNAMSIZ = 15                            # Linux interface names: at most 15 characters
_HASH_CHARS = 5
_NAME_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,11}")
_PREFIX_RE = re.compile(r"[a-z][a-z0-9]{1,7}")
_BASE_RE = re.compile(r"(\d{1,3})\.(\d{1,3})")
_HOST_ETH = "eth0"
_PROBE_PORT = 9                           # discard: nothing listens there, so the host answers with a reset


class NetnsError(RuntimeError):
    """An `ip` command failed, or a network could not be removed completely."""


@dataclass(frozen=True)
class Host:
    name: str        # role given by the caller, e.g. "data", "worker-1"
    netns: str       # namespace name: <prefix>-<name>
    address: str     # IPv4 address on the bridge
    link: str        # root-namespace end of its veth pair (a bridge port)


def unavailable_reason() -> str | None:
    """Why namespaces cannot be made here, or None when they can."""
    if not sys.platform.startswith("linux"):
        return f"network namespaces need Linux (this is {sys.platform})"
    if os.geteuid() != 0:
        return f"network namespaces need root (euid {os.geteuid()})"
    if shutil.which("ip") is None:
        return "no `ip` command (install iproute2)"
    if not os.path.exists("/proc/self/ns/net"):
        return "this kernel has no network namespaces (/proc/self/ns/net is missing)"
    return None


# ---- pure planning ---------------------------------------------------------------------------------------

def _check_prefix(prefix: object) -> str:
    if not isinstance(prefix, str):
        raise TypeError(f"prefix must be a str, got {type(prefix).__name__}")
    if not _PREFIX_RE.fullmatch(prefix):
        raise ValueError(f"prefix must be a lowercase letter then 1-7 of [a-z0-9], got {prefix!r}")
    return prefix


def _check_names(names: object) -> list[str]:
    if isinstance(names, (str, bytes)) or not isinstance(names, Sequence):
        raise TypeError(f"names must be a sequence of str, got {type(names).__name__}")
    names = list(names)
    if not names:
        raise ValueError("names must name at least one host")
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"host names must be str, got {type(name).__name__}")
        if not _NAME_RE.fullmatch(name):
            raise ValueError(f"host name must be 1-12 of [a-z0-9-] not starting with '-', got {name!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"host names must be unique, got {names!r}")
    if len(names) > 253:                 # .2 .. .254
        raise ValueError(f"a /24 holds at most 253 hosts, got {len(names)}")
    return names


def _base_octets(base: object) -> tuple[int, int]:
    if not isinstance(base, str):
        raise TypeError(f"base must be a str, got {type(base).__name__}")
    match = _BASE_RE.fullmatch(base)
    if not match or not all(0 <= int(g) <= 255 for g in match.groups()):
        raise ValueError(f"base must be two IPv4 octets such as '10.231', got {base!r}")
    return int(match.group(1)), int(match.group(2))


def _link_name(prefix: str, name: str) -> str:
    budget = _IFNAMSIZ - len(prefix) - 1
    if len(name) <= budget:
        return f"{prefix}-{name}"
    digest = hashlib.sha1(name.encode()).hexdigest()[:_HASH_CHARS]
    return f"{prefix}-{name[:budget - _HASH_CHARS]}{digest}"


def _names(names: Sequence[str], prefix: str) -> dict[str, tuple[str, str]]:
    """(netns, link) by host name; rejects bad names and prefixes."""
    prefix = _check_prefix(prefix)
    out = {name: (f"{prefix}-{name}", _link_name(prefix, name)) for name in _check_names(names)}
    links = [link for _, link in out.values()]
    if len(set(links)) != len(links):
        raise ValueError(f"host names {list(out)} give colliding interface names {links}; rename one")
    return out


def bridge_name(prefix: str) -> str:
    return f"{_check_prefix(prefix)}br"


def plan(names: Sequence[str], *, prefix: str, third_octet: int,
         base: str = DEFAULT_SUBNET_BASE) -> tuple[str, dict[str, Host]]:
    """(gateway address, hosts by name): the gateway (the root namespace) is .1, the hosts .2, .3, ..."""
    if isinstance(third_octet, bool) or not isinstance(third_octet, int):
        raise TypeError(f"third_octet must be an int, got {type(third_octet).__name__}")
    if not 0 <= third_octet <= 255:
        raise ValueError(f"third_octet must be 0..255, got {third_octet}")
    a, b = _base_octets(base)
    subnet = f"{a}.{b}.{third_octet}"
    hosts = {name: Host(name=name, netns=netns, address=f"{subnet}.{k}", link=link)
             for k, (name, (netns, link)) in enumerate(_names(names, prefix).items(), start=2)}
    return f"{subnet}.1", hosts


def _free_third_octet(used_addresses: Sequence[str], reserved: set[int], base: str) -> int:
    """The lowest n in 1..254 with no address of <base>.n.0/24 in use and not reserved."""
    a, b = _base_octets(base)
    taken = set(reserved)
    for address in used_addresses:
        parts = address.split("/")[0].split(".")
        if len(parts) == 4 and parts[:2] == [str(a), str(b)]:
            taken.add(int(parts[2]))
    for n in range(1, 255):
        if n not in taken:
            return n
    raise NetnsError(f"every {base}.n.0/24 is in use on this machine")


def _hosts_file(etc_hosts: str, hosts: dict[str, Host]) -> str:
    lines = [etc_hosts.rstrip("\n"), "# credit-netns hosts"]
    lines += [f"{h.address} {h.name}" for h in hosts.values()]
    return "\n".join(lines) + "\n"


# ---- I/O -------------------------------------------------------------------------------------------------

def _ip(*args: str) -> str:
    cmd = ["ip", *args]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise NetnsError(f"`{' '.join(cmd)}` failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout


def _root_links() -> set[str]:
    # sysfs lists the interfaces of the reading process's namespace without ip's "@peer" suffixes.
    return set(os.listdir("/sys/class/net"))


def _netns_exists(netns: str) -> bool:
    return os.path.exists(os.path.join(DEFAULT_NETNS_DIR, netns))


def _netns_inode(netns: str) -> int | None:
    """The namespace's inode (what /proc/<pid>/ns/net links to), None when it has no name any more."""
    try:
        return os.stat(os.path.join(DEFAULT_NETNS_DIR, netns)).st_ino
    except OSError:
        return None


def _pids_in(inode: int) -> list[int]:
    """Every process whose network namespace is ``inode``, whether or not the namespace still has a name."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.readlink(f"/proc/{entry}/ns/net") == f"net:[{inode}]":
                    found.append(int(entry))
            except OSError:
                continue                   # exited meanwhile, or a kernel thread
    return sorted(found)


def _used_addresses() -> list[str]:
    out = _ip("-o", "-4", "addr", "show")
    return [fields[fields.index("inet") + 1] for fields in (line.split() for line in out.splitlines())
            if "inet" in fields]


def _answers(address: str) -> bool:
    """Whether the host's kernel answers a TCP SYN from here (a reset counts: the path works both ways)."""
    try:
        with socket.create_connection((address, _PROBE_PORT), timeout=DEFAULT_PROBE_TIMEOUT):
            return True
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


def _owner_alive(state: dict) -> bool:
    return state.get("boot_id") == boot_id() and pid_start_time(int(state["owner_pid"])) == state["owner_start"]


def _state_path(prefix: str) -> str:
    return os.path.join(DEFAULT_STATE_DIR, f"{prefix}.json")


@contextmanager
def _state_lock() -> Iterator[None]:
    """Serialises subnet choice and sweeping among the processes of this machine."""
    os.makedirs(DEFAULT_STATE_DIR, exist_ok=True)
    with open(os.path.join(DEFAULT_STATE_DIR, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _read_states(prefix_glob: str) -> list[tuple[str, dict]]:
    states = []
    for path in sorted(glob.glob(os.path.join(DEFAULT_STATE_DIR, f"{prefix_glob}*.json"))):
        try:
            with open(path) as f:
                states.append((path, json.load(f)))
        except FileNotFoundError:
            continue                       # torn down meanwhile
        except (OSError, ValueError) as e:
            logger.warning("netns: ignoring unreadable state file %s: %s", path, e)
    return states


def sweep_stale(prefix_glob: str = DEFAULT_PREFIX_STEM) -> list[str]:
    """Tear down the networks whose owner process is gone; returns their prefixes."""
    if not isinstance(prefix_glob, str):
        raise TypeError(f"prefix_glob must be a str, got {type(prefix_glob).__name__}")
    if not os.path.isdir(DEFAULT_STATE_DIR):
        return []
    with _state_lock():
        return _sweep_locked(prefix_glob)


def _sweep_locked(prefix_glob: str) -> list[str]:
    swept = []
    for _, state in _read_states(prefix_glob):
        try:
            if _owner_alive(state):
                continue
            logger.info("netns: sweeping network %s of dead owner pid %s", state["prefix"], state["owner_pid"])
            Network._from_state(state).teardown()
            swept.append(state["prefix"])
        except NetnsError as e:
            logger.warning("netns: could not sweep network %s: %s", state.get("prefix"), e)
        except (KeyError, TypeError, ValueError) as e:
            logger.warning("netns: ignoring malformed state %r: %s", state, e)
    return swept


class Network:
    """Hosts on one bridge; as a context manager __enter__ creates and __exit__ always tears down.

    ``gateway`` and the hosts' addresses are known once ``create`` has picked a free subnet.
    """

    def __init__(self, names: Sequence[str], *, prefix: str | None = None):
        self._random_prefix = prefix is None
        self._names = list(names) if not isinstance(names, (str, bytes)) else names
        self._set_prefix(prefix if prefix is not None else DEFAULT_PREFIX_STEM + secrets.token_hex(2))
        self.gateway = ""
        self.third_octet: int | None = None
        self._created = False
        self._owned = False    # True once this object has reserved its prefix: from then on teardown acts
        # Each host's namespace inode: its processes are found by it, even one that entered the namespace as it
        # was being deleted (`ip netns exec` opens the name, then joins).
        self._inodes: dict[str, int] = {}

    def _set_prefix(self, prefix: str) -> None:
        names = _names(self._names, prefix)      # validates names and prefix before anything is made
        self.prefix = prefix
        self.bridge = bridge_name(prefix)
        self.hosts = {name: Host(name=name, netns=netns, address="", link=link)
                      for name, (netns, link) in names.items()}

    @classmethod
    def _from_state(cls, state: dict) -> Network:
        net = cls(state["names"], prefix=state["prefix"])
        net.gateway, net.hosts = plan(state["names"], prefix=state["prefix"], third_octet=state["third_octet"])
        net.third_octet = state["third_octet"]
        net._inodes = {name: int(inode) for name, inode in state.get("inodes", {}).items()}
        net._created = net._owned = True
        return net

    def __enter__(self) -> Network:
        self.create()
        return self

    def __exit__(self, *exc) -> None:
        self.teardown()

    def __repr__(self) -> str:
        return f"Network(prefix={self.prefix!r}, gateway={self.gateway!r}, hosts={list(self.hosts)!r})"

    # ---- creation ----

    def create(self) -> None:
        """Bridge with the gateway address in the root namespace, then each host; all or nothing."""
        reason = unavailable_reason()
        if reason is not None:
            raise NetnsError(reason)
        if self._created:
            raise NetnsError(f"network {self.prefix} is already created")
        self._created = True
        try:
            with _state_lock():
                _sweep_locked(DEFAULT_PREFIX_STEM)
                self._reserve()
                self._add_bridge()
            for host in self.hosts.values():
                self._add_host(host)
        except BaseException:
            if not self._owned:
                raise
            logger.warning("netns: creating network %s failed; removing what was made", self.prefix)
            try:
                self.teardown()
            except NetnsError as e:
                logger.error("netns: %s", e)
            raise
        logger.info("netns: network %s up on %s/24: %s", self.prefix, self.gateway,
                    ", ".join(f"{h.name}={h.address}" for h in self.hosts.values()))

    def _reserve(self) -> None:
        """Pick a prefix and subnet nobody uses and record them (under the state lock)."""
        states = _read_states("")
        in_use = {s.get("prefix") for _, s in states}
        while self.prefix in in_use or self.bridge in _root_links():
            if not self._random_prefix:
                raise NetnsError(f"network prefix {self.prefix} is in use")
            self._set_prefix(DEFAULT_PREFIX_STEM + secrets.token_hex(2))
        reserved = {s["third_octet"] for _, s in states if isinstance(s.get("third_octet"), int)}
        self.third_octet = _free_third_octet(_used_addresses(), reserved, DEFAULT_SUBNET_BASE)
        self.gateway, self.hosts = plan(self._names, prefix=self.prefix, third_octet=self.third_octet)
        self._write_state()
        self._owned = True

    def _write_state(self) -> None:
        state = {"prefix": self.prefix, "names": list(self.hosts), "third_octet": self.third_octet,
                 "owner_pid": os.getpid(), "owner_start": pid_start_time(os.getpid()), "boot_id": boot_id(),
                 "inodes": self._inodes}
        tmp = _state_path(self.prefix) + ".tmp"
        with open(tmp, "w") as f:
            json.dump(state, f)
        os.replace(tmp, _state_path(self.prefix))

    def _add_bridge(self) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")

    def _add_host(self, host: Host) -> None:
        _ip("netns", "add", host.netns)
        self._inodes[host.name] = _netns_inode(host.netns)
        self._write_state()
        self._write_etc(host)
        # The peer is made directly inside the namespace, so its name never meets the root namespace's eth0.
        _ip("link", "add", host.link, "type", "veth", "peer", "name", _HOST_ETH, "netns", host.netns)
        _ip("link", "set", host.link, "master", self.bridge)
        _ip("link", "set", host.link, "up")
        _ip("-n", host.netns, "addr", "add", f"{host.address}/24", "dev", _HOST_ETH)
        _ip("-n", host.netns, "link", "set", "lo", "up")
        _ip("-n", host.netns, "link", "set", _HOST_ETH, "up")
        _ip("-n", host.netns, "route", "add", "default", "via", self.gateway)

    def _write_etc(self, host: Host) -> None:
        # The machine's nameserver is not reachable from the hosts (no forwarding): without these files every
        # reverse lookup (http.server, JVMs) stalls ~10 s. Hosts resolve each other by name, DNS fails at once.
        etc = os.path.join(DEFAULT_NETNS_ETC, host.netns)
        os.makedirs(etc, exist_ok=True)
        with open("/etc/hosts") as f:
            etc_hosts = f.read()
        with open(os.path.join(etc, "hosts"), "w") as f:
            f.write(_hosts_file(etc_hosts, self.hosts))
        with open(os.path.join(etc, "resolv.conf"), "w") as f:
            f.write("nameserver 127.0.0.1\noptions timeout:1 attempts:1\n")

    # ---- use ----

    def _host(self, name: str) -> Host:
        if not isinstance(name, str):
            raise TypeError(f"host name must be a str, got {type(name).__name__}")
        try:
            return self.hosts[name]
        except KeyError:
            raise ValueError(f"no host {name!r} in network {self.prefix} (hosts: {list(self.hosts)})") from None

    def exec_prefix(self, name: str) -> list[str]:
        return ["ip", "netns", "exec", self._host(name).netns]

    def run(self, name: str, argv: Sequence[str], **kw) -> subprocess.CompletedProcess:
        """subprocess.run(argv, **kw) inside the host."""
        if isinstance(argv, (str, bytes)) or not isinstance(argv, Sequence):
            raise TypeError(f"argv must be a sequence of str, got {type(argv).__name__}")
        return subprocess.run([*self.exec_prefix(name), *argv], **kw)

    def cut(self, name: str) -> None:
        """Pull the host's cable: its bridge port goes down, the host keeps its address."""
        host = self._host(name)
        _ip("link", "set", host.link, "down")
        logger.info("netns: cut %s (%s)", name, host.address)

    def restore(self, name: str, *, timeout: float = DEFAULT_RESTORE_TIMEOUT) -> None:
        """Plug the cable back and wait until the host answers the gateway again."""
        host = self._host(name)
        _ip("link", "set", host.link, "up")
        self._forget_neighbours(host)
        deadline = time.monotonic() + timeout
        while not (self._link_forwarding(host) and _answers(host.address)):
            if time.monotonic() > deadline:
                raise NetnsError(f"host {name} ({host.address}) does not answer {timeout:g} s after restore")
            time.sleep(DEFAULT_POLL)
        logger.info("netns: restored %s (%s)", name, host.address)

    def _forget_neighbours(self, host: Host) -> None:
        # Addresses the host or its peers tried to reach while cut sit in the neighbour tables as INCOMPLETE or
        # FAILED, and the kernel retries those only once a second: forgotten, the next packet asks again at once.
        _ip("-n", host.netns, "neigh", "flush", "dev", _HOST_ETH)
        _ip("neigh", "flush", "to", host.address, "dev", self.bridge)
        for other in self.hosts.values():
            if other is not host and _netns_exists(other.netns):
                _ip("-n", other.netns, "neigh", "flush", "to", host.address, "dev", _HOST_ETH)

    def _link_forwarding(self, host: Host) -> bool:
        port = _ip("-d", "-o", "link", "show", "dev", host.link)
        inside = _ip("-n", host.netns, "-o", "link", "show", "dev", _HOST_ETH)
        return "state UP" in port and "state forwarding" in port and "state UP" in inside

    def pids(self, name: str) -> list[int]:
        """Every process in the host's namespace, even once the namespace has lost its name."""
        host = self._host(name)
        inode = self._inodes.get(name) or _netns_inode(host.netns)
        return [] if inode is None else _pids_in(inode)

    def kill_all(self, name: str, *, timeout: float = DEFAULT_KILL_TIMEOUT) -> list[int]:
        """SIGKILL every process of the host until none is left; the pids killed."""
        killed: set[int] = set()
        deadline = time.monotonic() + timeout
        while pids := self.pids(name):
            if time.monotonic() > deadline:
                raise NetnsError(f"processes {pids} of host {name} survive SIGKILL after {timeout:g} s")
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.add(pid)
                except ProcessLookupError:
                    pass
            time.sleep(DEFAULT_POLL)
        if killed:
            logger.info("netns: killed %s on host %s", sorted(killed), name)
        return sorted(killed)

    # ---- teardown ----

    def leftovers(self) -> list[str]:
        """What of this network still exists: processes, namespaces, links, bridge, /etc/netns files."""
        left = []
        links = _root_links()
        for host in self.hosts.values():
            left += [f"pid {pid} in {host.netns}" for pid in self.pids(host.name)]
            if _netns_exists(host.netns):
                left.append(f"namespace {host.netns}")
            if os.path.exists(os.path.join(DEFAULT_NETNS_ETC, host.netns)):
                left.append(f"directory {os.path.join(DEFAULT_NETNS_ETC, host.netns)}")
        left += [f"link {link}" for link in sorted(links) if link.startswith(f"{self.prefix}-")]
        if self.bridge in links:
            left.append(f"bridge {self.bridge}")
        return left

    def teardown(self) -> None:
        """Kill every process, delete links, namespaces and bridge; raise only if something is left."""
        if not self._owned:
            return
        errors: list[str] = []
        removed: list[str] = []

        def attempt(what: str, action, *args) -> None:
            try:
                action(*args)
                removed.append(what)
            except (NetnsError, OSError) as e:
                errors.append(f"{what}: {e}")

        for host in self.hosts.values():
            try:
                removed += [f"pid {pid}" for pid in self.kill_all(host.name)]
            except (NetnsError, OSError) as e:
                errors.append(f"killing the processes of {host.name}: {e}")
        links = _root_links()
        for host in self.hosts.values():
            if host.link in links:     # deleting one end of a veth pair deletes both
                attempt(f"link {host.link}", _ip, "link", "del", host.link)
            if _netns_exists(host.netns):
                attempt(f"namespace {host.netns}", _ip, "netns", "del", host.netns)
            etc = os.path.join(DEFAULT_NETNS_ETC, host.netns)
            if os.path.exists(etc):
                attempt(f"directory {etc}", shutil.rmtree, etc)
        for link in sorted(_root_links()):
            if link.startswith(f"{self.prefix}-") or link == self.bridge:
                attempt(f"link {link}", _ip, "link", "del", link)
        for host in self.hosts.values():   # a process that joined a namespace while it was being deleted
            try:
                removed += [f"pid {pid}" for pid in self.kill_all(host.name)]
            except (NetnsError, OSError) as e:
                errors.append(f"killing the processes of {host.name}: {e}")
        try:
            os.rmdir(DEFAULT_NETNS_ETC)    # only when no other network uses it
        except OSError:
            pass
        left = self.leftovers()
        if left:
            raise NetnsError(f"network {self.prefix} not fully removed; left: {', '.join(left)}"
                             + (f"; errors: {'; '.join(errors)}" if errors else ""))
        for error in errors:
            logger.warning("netns: %s (nothing left over)", error)
        try:
            os.remove(_state_path(self.prefix))
        except FileNotFoundError:
            pass
        self._owned = False
        if removed:
            logger.info("netns: network %s removed: %s", self.prefix, ", ".join(removed))
