"""The Kubernetes manifests (deploy/k8s): each overlay renders with `kubectl kustomize` (or kustomize v5 itself), every object validates
against the Kubernetes API schemas (PyPI kubernetes-validate, strict: no unknown field) and the Strimzi custom
resources against the schemas Strimzi publishes (npm: @kubernetes-models/strimzi-kafka-operator), and the rendered output
keeps the promises deploy/k8s/README.md makes: no secret in it, limits everywhere, the workers' probes, the
producer alone, the HPA capped at the partition count, the network policies' reachability. All offline."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from topology.settings import Settings
from topology.topics import topic_names

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("small", "production")
# The Kubernetes version the manifests are checked against (kubernetes-validate ships its schemas).
KUBERNETES_VERSION = "1.32.0"
STRIMZI_GROUP = "kafka.strimzi.io"
SECRET_NAME = "credit-risk-secrets"
SECRET_LIKE = re.compile(r"TOKEN|PASSWORD|SECRET|MYSQL_URL")
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob")
COMPONENT = "app.kubernetes.io/component"


def _kustomize(path: Path) -> list[str]:
    """`kubectl kustomize DIR`; without kubectl, the standalone kustomize v5 bootstrap.sh builds (same engine)."""
    kubectl = shutil.which("kubectl")
    if kubectl is not None:
        return [kubectl, "kustomize", str(path)]
    standalone = ROOT / ".cache" / "bin" / "kustomize"
    if standalone.is_file():
        return [str(standalone), "build", str(path)]
    pytest.fail("neither kubectl nor .cache/bin/kustomize: run deploy/scripts/bootstrap.sh")


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request) -> tuple[str, list[dict]]:
    out = subprocess.run(_kustomize(K8S / "overlays" / request.param),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"kubectl kustomize overlays/{request.param} failed:\n{out.stderr}"
    objects = [d for d in yaml.safe_load_all(out.stdout) if d]
    assert objects, "the overlay rendered nothing"
    return request.param, objects


def _of_kind(objects, kind):
    return [o for o in objects if o["kind"] == kind]


def _named(objects, kind, name):
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} rendered"
    return found[0]


def _pod_spec(obj):
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return obj["spec"]["template"]["spec"]


def _pod_labels(obj):
    return obj["spec"]["template"]["metadata"]["labels"]


def _containers(obj):
    spec = _pod_spec(obj)
    return spec.get("initContainers", []) + spec["containers"]


def _config(objects, prefix):
    """The data of the (hash-suffixed) ConfigMap generated as ``prefix``."""
    found = [o for o in _of_kind(objects, "ConfigMap") if re.fullmatch(rf"{prefix}-[a-z0-9]{{10}}", o["metadata"]["name"])]
    assert len(found) == 1, f"ConfigMap {prefix}: {len(found)} rendered"
    return found[0]["data"]


# --- schemas --------------------------------------------------------------------------------------------------

def test_every_object_validates_against_the_kubernetes_schemas(rendered):
    overlay, objects = rendered
    errors, checked = [], 0
    for obj in objects:
        if obj["apiVersion"].split("/")[0] == STRIMZI_GROUP:
            continue
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
            checked += 1
        except kubernetes_validate.SchemaNotFoundError as exc:
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: no schema ({exc})")
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{obj['kind']}/{obj['metadata']['name']}: {exc.message} at {list(exc.path)}")
    assert not errors, "\n".join(errors)
    assert checked >= 40


# Strimzi's CRD schemas as the npm registry publishes them (@kubernetes-models/strimzi-kafka-operator: a validator
# per kind and version, generated from Strimzi's CRDs), installed by deploy/scripts/bootstrap.sh.
STRIMZI_MODELS = ROOT / ".cache" / "strimzi-models"
STRIMZI_VALIDATE = """
import { readFileSync } from 'node:fs';
const errors = [];
for (const o of JSON.parse(readFileSync(0, 'utf8'))) {
  const [group, version] = o.apiVersion.split('/');
  let model;
  try {
    model = (await import(`@kubernetes-models/strimzi-kafka-operator/${group}/${version}/${o.kind}`))[o.kind];
  } catch (e) { errors.push(`${o.kind} ${o.apiVersion}: no published schema (${e.code || e.message})`); continue; }
  try { new model(o).validate(); } catch (e) { errors.push(`${o.kind}/${o.metadata.name}: ${e.message}`); }
}
console.log(JSON.stringify(errors));
"""


def strimzi_errors(objects: list[dict]) -> list[str]:
    """What Strimzi's published schemas say against each object (node runs their validators)."""
    import json

    assert (STRIMZI_MODELS / "node_modules" / "@kubernetes-models" / "strimzi-kafka-operator").is_dir(), \
        "Strimzi's schemas are missing: run deploy/scripts/bootstrap.sh"
    out = subprocess.run(["node", "--input-type=module", "-e", STRIMZI_VALIDATE], cwd=STRIMZI_MODELS,
                         input=json.dumps(objects), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_strimzi_resources_validate_against_strimzi_schemas(rendered):
    """Kafka, KafkaNodePool and KafkaTopic against the schemas Strimzi publishes for their API version."""
    overlay, objects = rendered
    strimzi = [o for o in objects if o["apiVersion"].split("/")[0] == STRIMZI_GROUP]
    assert {o["kind"] for o in strimzi} == {"Kafka", "KafkaNodePool", "KafkaTopic"}
    assert strimzi_errors(strimzi) == []
    for obj in strimzi:
        # Custom resources are namespaced and named like any object.
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", obj["metadata"]["name"])


def test_the_strimzi_schema_check_catches_a_mistake():
    topic = {"apiVersion": "kafka.strimzi.io/v1beta2", "kind": "KafkaTopic", "metadata": {"name": "t"},
             "spec": {"partitions": "four", "replicas": 1}}
    unknown = {**copy.deepcopy(topic), "apiVersion": "kafka.strimzi.io/v9", "metadata": {"name": "u"}}
    errors = strimzi_errors([topic, unknown])
    assert len(errors) == 2 and "partitions" in errors[0] and "no published schema" in errors[1], errors


def test_kafka_runs_kraft_with_a_node_pool(rendered):
    overlay, objects = rendered
    kafka = _named(objects, "Kafka", "credit-kafka")
    assert kafka["metadata"]["annotations"] == {"strimzi.io/node-pools": "enabled", "strimzi.io/kraft": "enabled"}
    assert "zookeeper" not in kafka["spec"]
    pools = _of_kind(objects, "KafkaNodePool")
    assert pools and all(p["metadata"]["labels"]["strimzi.io/cluster"] == "credit-kafka" for p in pools)
    roles = {r for p in pools for r in p["spec"]["roles"]}
    assert roles == {"controller", "broker"}
    brokers = sum(p["spec"]["replicas"] for p in pools if "broker" in p["spec"]["roles"])
    for topic in _of_kind(objects, "KafkaTopic"):
        assert topic["spec"]["replicas"] <= brokers
    assert kafka["spec"]["kafka"]["config"]["default.replication.factor"] <= brokers
    bootstrap = _config(objects, "pipeline-common")["KAFKA_BROKER"]
    assert bootstrap == "kafka://credit-kafka-kafka-bootstrap:9092"


# --- topics, partitions, autoscaling ----------------------------------------------------------------------------

def test_a_kafka_topic_per_topology_topic_and_the_hpa_capped_at_the_partitions(rendered):
    overlay, objects = rendered
    common = _config(objects, "pipeline-common")
    worker_cfg = _config(objects, "worker-config")
    env = {**common, **worker_cfg}
    settings = Settings.from_env(env)
    topics = {t["spec"]["topicName"]: t for t in _of_kind(objects, "KafkaTopic")}
    assert set(topics) == set(topic_names(settings))
    partitions = {name: t["spec"]["partitions"] for name, t in topics.items()}
    assert set(partitions.values()) == {settings.partitions}, partitions
    hpa = _named(objects, "HorizontalPodAutoscaler", "worker")
    assert hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": "worker"}
    assert hpa["spec"]["maxReplicas"] == partitions[settings.topic_raw]
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    assert _named(objects, "Deployment", "worker")["spec"]["replicas"] <= hpa["spec"]["maxReplicas"]
    assert int(worker_cfg["TOPIC_REPLICATION_FACTOR"]) == topics[settings.topic_raw]["spec"]["replicas"]


# --- secrets and settings ---------------------------------------------------------------------------------------

def _secret_example_keys() -> set[str]:
    keys = set()
    for line in (K8S / "secrets.env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            assert value == "", f"secrets.env.example must not hold a value for {key}"
            keys.add(key)
    return keys


def test_no_secret_is_rendered_and_every_secret_is_referenced(rendered):
    overlay, objects = rendered
    assert not _of_kind(objects, "Secret"), "the manifests must reference Secrets, never carry one"
    keys = _secret_example_keys()
    used = set()
    for obj in objects:
        if obj["kind"] not in WORKLOADS:
            continue
        for container in _containers(obj):
            for source in container.get("envFrom", []):
                assert "secretRef" not in source or source["secretRef"]["name"] == SECRET_NAME
            for var in container.get("env", []):
                if SECRET_LIKE.search(var["name"]):
                    ref = var.get("valueFrom", {}).get("secretKeyRef")
                    assert ref is not None and "value" not in var, \
                        f"{obj['metadata']['name']}/{container['name']}: {var['name']} must come from a Secret"
                    assert ref["name"] == SECRET_NAME and ref["key"] in keys
                    used.add(ref["key"])
    assert used == keys, f"keys in secrets.env.example nothing uses: {keys - used}"
    for cm in _of_kind(objects, "ConfigMap"):
        for key in cm.get("data", {}):
            assert not SECRET_LIKE.search(key), f"ConfigMap {cm['metadata']['name']} holds {key}"
    text = yaml.safe_dump_all(objects)
    assert not re.search(r"mysql://[^@\s]*:[^@\s]*@", text), "a database password in the rendered output"


def test_the_secrets_file_is_git_ignored():
    ignored = subprocess.run(["git", "check-ignore", "-q", "deploy/k8s/secrets.env"], cwd=ROOT)
    assert ignored.returncode == 0, "deploy/k8s/secrets.env must be git-ignored"
    assert (K8S / "secrets.env.example").is_file()


# --- workloads --------------------------------------------------------------------------------------------------

def test_every_container_has_requests_and_limits(rendered):
    overlay, objects = rendered
    for obj in objects:
        if obj["kind"] not in WORKLOADS:
            continue
        for container in _containers(obj):
            res = container.get("resources", {})
            for part in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(res.get(part, {})), \
                    f"{obj['kind']}/{obj['metadata']['name']}/{container['name']}: no {part}"
    for pool in _of_kind(objects, "KafkaNodePool"):
        assert {"requests", "limits"} <= set(pool["spec"]["resources"])


def test_the_workers_probes_are_on_their_health_endpoints(rendered):
    overlay, objects = rendered
    workers = [o for o in objects if o["kind"] in WORKLOADS and _pod_labels(o).get(COMPONENT) == "worker"]
    assert [w["kind"] for w in workers] == ["Deployment"]
    web_port = int(_config(objects, "worker-config")["FAUST_WEB_PORT"])
    for container in _containers(workers[0]):
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        for probe, path in (("readinessProbe", "/ready"), ("livenessProbe", "/health")):
            get = container[probe]["httpGet"]
            assert get["path"] == path
            assert ports.get(get["port"], get["port"]) == web_port


def test_the_apis_and_dashboard_probe_health(rendered):
    overlay, objects = rendered
    for name in ("risk-api", "applicant-api", "dashboard"):
        container = _named(objects, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == "/health"
        assert container["livenessProbe"]["httpGet"]["path"] == "/health"


def test_one_producer_with_its_checkpoint_on_a_volume(rendered):
    overlay, objects = rendered
    producer = _named(objects, "Deployment", "producer")
    assert producer["spec"]["replicas"] == 1
    assert producer["spec"]["strategy"] == {"type": "Recreate"}
    assert not [h for h in _of_kind(objects, "HorizontalPodAutoscaler")
                if h["spec"]["scaleTargetRef"]["name"] == "producer"]
    checkpoint = Path(_config(objects, "producer-config")["PRODUCER_CHECKPOINT"])
    container = producer["spec"]["template"]["spec"]["containers"][0]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in producer["spec"]["template"]["spec"]["volumes"]}
    (volume,) = [n for n, path in mounts.items() if Path(path) == checkpoint.parent]
    claim = volumes[volume]["persistentVolumeClaim"]["claimName"]
    assert _named(objects, "PersistentVolumeClaim", claim)["spec"]["accessModes"] == ["ReadWriteOnce"]


def test_disruption_budgets_cover_the_replicated_and_stateful_workloads(rendered):
    overlay, objects = rendered
    pdbs = _of_kind(objects, "PodDisruptionBudget")
    for name in ("worker", "risk-api", "applicant-api", "hbase", "mariadb"):
        workload = [o for o in objects if o["kind"] in ("Deployment", "StatefulSet") and o["metadata"]["name"] == name]
        assert len(workload) == 1
        labels = _pod_labels(workload[0])
        covering = [p for p in pdbs if _selects(p["spec"]["selector"], labels)]
        assert len(covering) == 1, f"{name}: {len(covering)} PodDisruptionBudgets"
        spec = covering[0]["spec"]
        replicas = workload[0]["spec"].get("replicas", 1)
        if "minAvailable" in spec:   # a budget a single replica could never meet would block every drain
            assert spec["minAvailable"] < replicas or name in ("hbase", "mariadb")


def test_hbase_and_mariadb_are_stateful_sets_and_the_choice_is_explained(rendered):
    overlay, objects = rendered
    for name in ("hbase", "mariadb"):
        sts = _named(objects, "StatefulSet", name)
        assert sts["spec"]["volumeClaimTemplates"]
    readme = (K8S / "README.md").read_text()
    assert "operator" in readme and "StatefulSet" in readme
    common = _config(objects, "pipeline-common")
    service = _named(objects, "Service", common["HBASE_HOST"])
    assert [p["port"] for p in service["spec"]["ports"]] == [int(common["HBASE_PORT"])]


# --- Prometheus -------------------------------------------------------------------------------------------------

def test_prometheus_scrapes_every_process_and_loads_the_alert_rules(rendered):
    overlay, objects = rendered
    rules = _config(objects, "prometheus-rules")
    assert rules == {"alerts.yml": (ROOT / "deploy" / "prometheus" / "alerts.yml").read_text()}
    config = yaml.safe_load(_config(objects, "prometheus-config")["prometheus.yml"])
    jobs = {j["job_name"]: j for j in config["scrape_configs"]}
    alert_jobs = {"worker", "risk-api", "applicant-api", "producer"}   # the job labels alerts.yml uses
    assert alert_jobs <= set(jobs)
    components = {"worker": "worker", "risk-api": "risk-api", "applicant-api": "applicant-api", "producer": "producer"}
    for job, component in components.items():
        (sd,) = jobs[job]["dns_sd_configs"]
        (name,) = sd["names"]
        service = _named(objects, "Service", name)
        assert service["spec"]["clusterIP"] == "None", f"{name}: a headless Service gives one record per pod"
        assert service["spec"]["selector"][COMPONENT] == component
        assert sd["port"] in [p["port"] for p in service["spec"]["ports"]]
        workload = [o for o in objects if o["kind"] in WORKLOADS and _pod_labels(o).get(COMPONENT) == component][0]
        container_ports = {p["containerPort"] for c in _containers(workload) for p in c.get("ports", [])}
        assert sd["port"] in container_ports
    deployment = _named(objects, "Deployment", "prometheus")
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    mounted = {v["configMap"]["name"] for v in volumes.values() if "configMap" in v}
    assert any(n.startswith("prometheus-rules-") for n in mounted)
    assert any(n.startswith("prometheus-config-") for n in mounted)
    assert "/etc/prometheus/rules/*.yml" in config["rule_files"]


# --- network policies -------------------------------------------------------------------------------------------

def _selects(selector: dict, labels: dict) -> bool:
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _peer_matches(peer: dict, labels: dict) -> bool:
    """A peer in the same namespace: a namespaceSelector names other namespaces (kube-system's DNS here)."""
    if "namespaceSelector" in peer or "ipBlock" in peer:
        return False
    return _selects(peer["podSelector"], labels)


def _port_matches(ports, port: int) -> bool:
    return ports is None or any(p.get("port") == port and p.get("protocol", "TCP") == "TCP" for p in ports)


def _allowed(policies, direction: str, pod: dict, peer: dict, port: int) -> bool:
    """Kubernetes semantics: a pod selected by no policy of that direction is open; otherwise some rule of a
    policy selecting it must allow the peer and the port."""
    rules_key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    selecting = [p for p in policies if direction in p["spec"]["policyTypes"] and _selects(p["spec"]["podSelector"], pod)]
    if not selecting:
        return True
    for policy in selecting:
        for rule in policy["spec"].get(rules_key, []):
            peers = rule.get(peers_key)
            if (peers is None or any(_peer_matches(p, peer) for p in peers)) and _port_matches(rule.get("ports"), port):
                return True
    return False


def _reaches(policies, source: dict, target: dict, port: int) -> bool:
    return _allowed(policies, "Egress", source, target, port) and _allowed(policies, "Ingress", target, source, port)


def _pods(objects) -> dict[str, dict]:
    pods = {o["metadata"]["name"]: _pod_labels(o) for o in objects if o["kind"] in ("Deployment", "StatefulSet")}
    # An operator's one-off pod for reconcile/dlq, and a pod of anything else in the namespace.
    pods["tools"] = {"app.kubernetes.io/name": "credit-risk", COMPONENT: "tools"}
    pods["intruder"] = {"app.kubernetes.io/name": "credit-risk", COMPONENT: "intruder"}
    return pods


def test_network_policies_deny_by_default(rendered):
    overlay, objects = rendered
    policies = _of_kind(objects, "NetworkPolicy")
    deny = [p for p in policies if p["spec"]["podSelector"] == {}
            and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
            and not p["spec"].get("ingress") and not p["spec"].get("egress")]
    assert len(deny) == 1
    pods = _pods(objects)
    assert not _reaches(policies, pods["intruder"], pods["worker"], 6066)
    assert not _reaches(policies, pods["risk-api"], pods["hbase"], 9090)


@pytest.mark.parametrize(("target", "port", "allowed"), [
    ("risk-api", 5002, {"worker", "prometheus", "dashboard"}),        # scoring: the workers; /metrics: monitoring
    ("hbase", 9090, {"worker", "dashboard", "tools"}),                  # writes: the workers; audit look-ups
    ("applicant-api", 5001, {"producer", "prometheus", "dashboard"}),  # pages: the producer; /metrics: monitoring
    ("mariadb", 3306, {"applicant-api", "tools"}),
    ("worker", 6066, {"prometheus", "dashboard"}),
    ("producer", 9464, {"prometheus", "dashboard"}),
])
def test_network_policies_let_only_the_right_pods_in(rendered, target, port, allowed):
    overlay, objects = rendered
    policies = _of_kind(objects, "NetworkPolicy")
    pods = _pods(objects)
    reaching = {name for name, labels in pods.items() if name != target and _reaches(policies, labels, pods[target], port)}
    assert reaching == allowed


def test_prometheus_may_scrape_every_metrics_port(rendered):
    overlay, objects = rendered
    policies = _of_kind(objects, "NetworkPolicy")
    pods = _pods(objects)
    for target, port in (("worker", 6066), ("risk-api", 5002), ("applicant-api", 5001), ("producer", 9464)):
        assert _reaches(policies, pods["prometheus"], pods[target], port), target


def test_kafka_is_reached_by_its_clients_only(rendered):
    overlay, objects = rendered
    kafka = _named(objects, "Kafka", "credit-kafka")
    (listener,) = kafka["spec"]["kafka"]["listeners"]
    pods = _pods(objects)
    reaching = {name for name, labels in pods.items()
                if any(_selects(peer["podSelector"], labels) for peer in listener["networkPolicyPeers"])}
    assert reaching == {"worker", "producer", "dashboard", "tools"}
    policies = _of_kind(objects, "NetworkPolicy")
    broker = {"strimzi.io/cluster": "credit-kafka", "strimzi.io/kind": "Kafka"}
    egress = {name for name, labels in pods.items() if _allowed(policies, "Egress", labels, broker, listener["port"])}
    assert egress == {"worker", "producer", "dashboard", "tools"}


# --- settings ---------------------------------------------------------------------------------------------------

SETTINGS_MAPS = ("pipeline-common", "worker-config", "risk-api-config", "applicant-api-config", "producer-config",
                 "dashboard-config")
DUMMY_SECRETS = {"APPLICANT_API_TOKEN": "dummy-token-0123456789", "RISK_API_TOKEN": "dummy-token-9876543210",
                 "RISK_ADMIN_TOKEN": "dummy-admin-0123456789", "DASHBOARD_TOKEN": "dummy-dash-0123456789",
                 "MYSQL_URL": "mysql://credit_api:dummy@mariadb:3306/credit"}


def test_every_setting_is_a_variable_something_reads(rendered):
    """No ConfigMap key is a typo: each is read by the project's code or the image's entry point."""
    overlay, objects = rendered
    sources = [p.read_text() for pkg in ("credit_core", "topology", "risk_api", "applicant_api", "producer",
                                         "dashboard", "hbase_helper") for p in (ROOT / pkg).rglob("*.py")]
    sources.append((ROOT / "deploy" / "container" / "entrypoint.sh").read_text())
    from faust.types.settings.settings import Settings as FaustSettings
    faust_names = {p.env_name for p in FaustSettings.SETTINGS.values() if p.env_name}
    for prefix in SETTINGS_MAPS:
        for key in _config(objects, prefix):
            assert key in faust_names or key == "FAUST_LOOP" or any(re.search(rf"\b{key}\b", s) for s in sources), \
                f"{prefix}: {key} is read by nothing"


def test_the_settings_load_through_the_real_settings_classes(rendered):
    from applicant_api.settings import load_settings as applicant_settings
    from dashboard.settings import DashboardSettings
    from hbase_helper.settings import HBaseSettings
    from producer.settings import load_settings as producer_settings
    from risk_api.settings import from_env as risk_settings

    overlay, objects = rendered
    common = _config(objects, "pipeline-common")

    def env(prefix):
        return {**common, **_config(objects, prefix), **DUMMY_SECRETS}

    assert Settings.from_env(env("worker-config")).web_port == 6066
    assert HBaseSettings.from_env(env("worker-config")).address == "hbase:9090"
    assert risk_settings(env("risk-api-config"))
    assert applicant_settings(environ=env("applicant-api-config")).pool_size >= 1
    assert producer_settings(environ=env("producer-config")).bootstrap == "credit-kafka-kafka-bootstrap:9092"
    dashboard = DashboardSettings.from_env(env("dashboard-config"))
    assert {t.name for t in dashboard.targets} >= {"applicant-api", "risk-api", "producer"}
