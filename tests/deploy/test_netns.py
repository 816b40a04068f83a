"""deploy.netns: the address plan, and real namespaces talking, cut, killed and torn down."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from deploy import netns
from deploy.netns import Network, plan, sweep_stale, unavailable_reason

PY = sys.executable
FETCH = "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2])).status)"
# argv: address, port, timeout (1 s where a timeout is the expected answer: "cut within ~1 s")
CONNECT = ("import socket, sys\n"
           "try:\n"
           "    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])).close()\n"
           "    print('open')\n"
           "except OSError as e:\n    print(type(e).__name__)")

live = pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))


# ---- pure ------------------------------------------------------------------------------------------------

def test_plan_addresses_names_and_lengths():
    gateway, hosts = plan(["data", "worker-1", "worker-2"], prefix="cr1a2b", third_octet=7)
    assert gateway == "10.231.7.1"
    assert [h.address for h in hosts.values()] == ["10.231.7.2", "10.231.7.3", "10.231.7.4"]
    assert hosts["worker-1"] == netns.Host(name="worker-1", netns="cr1a2b-worker-1", address="10.231.7.3",
                                           link="cr1a2b-worker-1")
    assert netns.bridge_name("cr1a2b") == "cr1a2bbr"


def test_plan_long_names_fit_ifnamsiz_and_stay_unique():
    names = ["applicant-api", "applicant-ap", "applicant-a", "abcdefghijkl", "abcdefghijkm"][1:]
    _, hosts = plan(names, prefix="cr1a2bc8", third_octet=200, base="10.9")
    links = [h.link for h in hosts.values()]
    assert all(len(link) <= 15 and link.startswith("cr1a2bc8-") for link in links)
    assert len(set(links)) == len(links)
    assert hosts["abcdefghijkl"].address == "10.9.200.4"


@pytest.mark.parametrize("names", [["Data"], ["a_b"], ["-a"], ["abcdefghijklm"], [""], ["a", "a"], []])
def test_plan_rejects_bad_names(names):
    with pytest.raises(ValueError):
        plan(names, prefix="cr0000", third_octet=1)


@pytest.mark.parametrize("kwargs", [{"prefix": "cr-1"}, {"prefix": "Cr00"}, {"prefix": "cr123456789"},
                                    {"third_octet": 256}, {"third_octet": -1}, {"base": "10.300"},
                                    {"base": "10.0.0"}])
def test_plan_rejects_bad_prefix_octet_and_base(kwargs):
    with pytest.raises(ValueError):
        plan(["a"], **{"prefix": "cr0000", "third_octet": 1, **kwargs})


def test_plan_rejects_wrong_types():
    with pytest.raises(TypeError):
        plan("data", prefix="cr0000", third_octet=1)
    with pytest.raises(TypeError):
        plan(["data"], prefix="cr0000", third_octet=True)
    with pytest.raises(TypeError):
        plan([1], prefix="cr0000", third_octet=1)


def test_network_rejects_bad_names_before_making_anything():
    with pytest.raises(ValueError):
        Network(["ok", "Not-OK"])


def test_free_third_octet_skips_used_subnets_and_reserved():
    used = ["127.0.0.1/8", "10.231.1.1/24", "10.231.2.9/24", "10.232.3.1/24"]
    assert netns._free_third_octet(used, {3}, "10.231") == 4


def test_random_prefix_fits():
    net = Network(["worker-1"])
    assert net.prefix.startswith("cr") and len(net.prefix) == 6 and net.bridge == net.prefix + "br"
    assert net.hosts["worker-1"].link == f"{net.prefix}-worker-1" and len(net.hosts["worker-1"].link) <= 15


# ---- live ------------------------------------------------------------------------------------------------

def _in(net, name, code, *args, timeout=20):
    out = net.run(name, [PY, "-c", code, *map(str, args)], capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def _root(code, *args):
    out = subprocess.run([PY, "-c", code, *map(str, args)], capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def _wait_listening(net, name, port):
    deadline = time.monotonic() + 15
    while f":{port} " not in net.run(name, ["ss", "-Hltn"], capture_output=True, text=True).stdout:
        assert time.monotonic() < deadline, f"nothing listens on {name}:{port}"
        time.sleep(0.05)


def _serve(net, name, port=8000):
    server = subprocess.Popen([*net.exec_prefix(name), PY, "-m", "http.server", "--bind", net.hosts[name].address,
                               str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _wait_listening(net, name, port)
    return server


def _nothing_of(net):
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    return (net.leftovers() == [] and f"{net.prefix}-" not in names and net.prefix not in links
            and not os.path.exists(netns._state_path(net.prefix)))


@live
def test_hosts_talk_over_tcp_and_loopback_is_private():
    with Network(["a", "b"]) as net:
        server = _serve(net, "a")
        url = f"http://{net.hosts['a'].address}:8000/"
        assert _in(net, "b", FETCH, url, 5) == "200"
        assert _root(FETCH, url, 5) == "200"                            # from the gateway
        assert _in(net, "b", CONNECT, "127.0.0.1", 8000, 5) == "ConnectionRefusedError"
        assert _in(net, "b", CONNECT, net.hosts["b"].address, 8000, 5) == "ConnectionRefusedError"
        assert server.pid in net.pids("a") and net.pids("b") == []
        # names: hosts resolve each other without a nameserver
        assert _in(net, "b", "import socket; print(socket.gethostbyname('a'))") == net.hosts["a"].address
    assert server.wait(5) == -9


@live
def test_cut_blocks_both_ways_and_restore_brings_it_back():
    with Network(["a", "b"]) as net:
        _serve(net, "a")
        _serve(net, "b")
        a, b = net.hosts["a"].address, net.hosts["b"].address
        assert _in(net, "b", CONNECT, a, 8000, 5) == "open"
        net.cut("a")
        assert _in(net, "b", CONNECT, a, 8000, 1) == "TimeoutError"
        assert _in(net, "a", CONNECT, b, 8000, 1) == "TimeoutError"
        assert _root(CONNECT, a, 8000, 1) == "TimeoutError"
        net.restore("a")
        assert _in(net, "b", CONNECT, a, 8000, 5) == "open"
        assert _in(net, "a", CONNECT, b, 8000, 5) == "open"
        assert _in(net, "a", "import socket; print(socket.gethostbyname('a'))") == a   # kept its address


@live
def test_kill_all_kills_everything_inside():
    with Network(["a"]) as net:
        sleeper = subprocess.Popen([*net.exec_prefix("a"), "sh", "-c", "sleep 300 & sleep 300"])
        deadline = time.monotonic() + 10
        while len(net.pids("a")) < 3:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        pids = net.pids("a")
        assert sleeper.pid in pids
        assert net.kill_all("a") == pids
        assert net.pids("a") == []
        assert sleeper.wait(5) == -9
        assert net.kill_all("a") == []


@live
def test_exception_inside_with_leaves_nothing():
    with pytest.raises(RuntimeError, match="boom"):
        with Network(["a", "b"]) as net:
            server = _serve(net, "a")
            raise RuntimeError("boom")
    assert server.wait(5) == -9
    assert _nothing_of(net)
    net.teardown()                                                     # idempotent
    assert _nothing_of(net)


@live
def test_failure_during_create_leaves_nothing(monkeypatch):
    real = Network._add_host
    made = []

    def second_fails(self, host):
        if made:
            raise OSError("injected failure")
        made.append(host.name)
        real(self, host)

    monkeypatch.setattr(Network, "_add_host", second_fails)
    net = Network(["a", "b", "c"])
    with pytest.raises(OSError, match="injected"):
        net.create()
    assert made == ["a"]
    assert _nothing_of(net)


@live
def test_sweep_stale_removes_a_network_whose_owner_died():
    finished = subprocess.Popen(["true"])
    finished.wait()
    net = Network(["a", "b"])
    try:
        net.create()
        alive = net.hosts["a"]
        assert sweep_stale(net.prefix) == []                            # the owner (us) is alive
        assert net.leftovers() != []
        path = netns._state_path(net.prefix)
        with open(path) as f:
            state = json.load(f)
        state["owner_pid"] = finished.pid
        with open(path, "w") as f:
            json.dump(state, f)
        sleeper = subprocess.Popen([*net.exec_prefix("a"), "sleep", "300"])
        deadline = time.monotonic() + 5        # `ip netns exec` joins the namespace a moment after it starts
        while sleeper.pid not in net.pids("a") and time.monotonic() < deadline:
            time.sleep(0.01)
        assert sleeper.pid in net.pids("a")
        assert sweep_stale(net.prefix) == [net.prefix]
        assert sleeper.wait(5) == -9
        assert _nothing_of(net) and not os.path.exists(f"/run/netns/{alive.netns}")
    finally:
        net.teardown()


@live
def test_two_networks_at_once_get_different_subnets():
    with Network(["a"]) as one, Network(["a"]) as two:
        assert one.prefix != two.prefix and one.third_octet != two.third_octet
        assert one.hosts["a"].netns != two.hosts["a"].netns and one.hosts["a"].link != two.hosts["a"].link


@live
def test_network_of_a_killed_owner_is_swept_by_the_next_create():
    prefix = "cr" + os.urandom(3).hex()
    owner = subprocess.Popen([PY, "-c", "import sys, time; from deploy.netns import Network\n"
                              f"net = Network(['a', 'b'], prefix='{prefix}'); net.create()\n"
                              "print('up', flush=True); time.sleep(300)"],
                             cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                             stdout=subprocess.PIPE, text=True)
    stale = Network(["a", "b"], prefix=prefix)
    try:
        assert owner.stdout.readline() == "up\n"
        assert os.path.exists(netns._state_path(prefix)) and stale.leftovers() != []
        owner.kill()
        owner.wait(5)
        with Network(["c"]):
            assert stale.leftovers() == [] and not os.path.exists(netns._state_path(prefix))
    finally:
        owner.kill()
        owner.wait(5)
        owner.stdout.close()
        sweep_stale(prefix)


@live
def test_a_process_in_a_namespace_that_lost_its_name_is_still_found_and_killed():
    net = Network(["a"])
    try:
        net.create()
        sleeper = subprocess.Popen([*net.exec_prefix("a"), "sleep", "300"])
        deadline = time.monotonic() + 5
        while sleeper.pid not in net.pids("a") and time.monotonic() < deadline:
            time.sleep(0.01)
        subprocess.run(["ip", "netns", "del", net.hosts["a"].netns], check=True)   # the name goes, not the process
        assert net.pids("a") == [sleeper.pid]
        assert f"pid {sleeper.pid} in {net.hosts['a'].netns}" in net.leftovers()
        net.teardown()
        assert sleeper.wait(5) == -9
        assert _nothing_of(net)
    finally:
        net.teardown()
