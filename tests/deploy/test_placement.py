"""deploy.placement and build_stack: every process binds to, and is reached at, its own host's address."""

import pytest

from deploy.local import build_stack
from deploy.placement import Placement, Spot

DATA, DB, PROD, W1, W2 = (Spot(f"10.9.9.{i}", f"ns{i}") for i in range(2, 7))


def spread() -> Placement:
    return Placement(data=DATA, db=DB, producer=PROD, workers=(W1, W2), monitoring=Spot("10.9.9.1"),
                     client_hosts=("10.9.9.%",))


@pytest.mark.parametrize("stack", ["embedded", "apache"])
def test_each_process_listens_on_and_is_given_the_address_of_its_own_host(tmp_path, stack):
    st = build_stack(tmp_path, stack=stack, placement=spread())
    where = {svc.name: (svc.host, svc.netns) for svc in st.services if svc.port is not None}
    assert where["mariadb"] == where["applicant-api"] == where["risk-api"] == (DB.address, DB.netns)
    assert (st.hbase.host, st.hbase.netns) == (st.broker.host, st.broker.netns) == (DATA.address, DATA.netns)
    assert where["prometheus"] == where["dashboard"] == ("10.9.9.1", None)
    assert [(w.web_host, w.netns) for w in st.workers] == [(W1.address, W1.netns), (W2.address, W2.netns)]
    assert st.workers[0].command()[-4:] == ["--web-host", W1.address, "--web-bind", W1.address]
    assert st.producer.netns == PROD.netns
    env = st.producer.extra_env
    assert env["KAFKA_BROKER"] == f"kafka://{DATA.address}:{st.broker.port}"
    assert env["HBASE_HOST"] == DATA.address
    assert env["APPLICANT_API_URL"].startswith(f"http://{DB.address}:")
    assert env["RISK_API_URL"].startswith(f"http://{DB.address}:")
    assert env["PRODUCER_METRICS_HOST"] == PROD.address
    assert f"@{DB.address}:" in env["MYSQL_URL"]
    assert st.mariadb.client_hosts == ("10.9.9.%",)
    assert all("127.0.0.1" not in url for url in st.prometheus.targets.values())
    if stack == "apache":
        assert st.hbase_master.netns == DATA.netns
        assert st.hbase_master.site()["hbase.zookeeper.quorum"] == DATA.address
        assert st.hbase_master.site()["hbase.zookeeper.property.clientPortAddress"] == "0.0.0.0"  # see zookeeper_bind
        assert st.broker.properties()["advertised.listeners"] == f"PLAINTEXT://{DATA.address}:{st.broker.port}"


def test_the_local_placement_keeps_everything_on_loopback_in_this_machines_network(tmp_path):
    st = build_stack(tmp_path, workers=3)
    assert {svc.host for svc in st.services} == {"127.0.0.1"}
    assert {svc.netns for svc in st.services} == {None}
    assert Placement.local(3).is_local and not spread().is_local


def test_bad_placements_are_refused():
    with pytest.raises(ValueError):
        Spot("")
    with pytest.raises(ValueError):
        Placement.local(0)
    with pytest.raises(ValueError):
        Placement(data=DATA, db=DB, producer=PROD, workers=(), monitoring=DATA)
    with pytest.raises(ValueError, match="listens on"):
        from deploy.services import GunicornApp
        DATA.place(GunicornApp(name="x", factory="f", run_dir="/tmp", port=5000, host="10.0.0.1"))
