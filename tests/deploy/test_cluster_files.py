"""The cluster deployment files: units parse and run real entry points; env examples match the code's settings."""

from __future__ import annotations

import ast
import configparser
import importlib
import inspect
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLUSTER = ROOT / "deploy" / "cluster"
PACKAGES = ("applicant_api", "risk_api", "producer", "topology", "hbase_helper", "credit_core")
INSTALLED_VENV = "/opt/credit-pipeline/venv"
WORKER_INSTANCE = "6066"
ENV_NAME = re.compile(r"[A-Z][A-Z0-9_]{2,}")
SECRET_NAME = re.compile(r"TOKEN|PASSWORD|SECRET|MYSQL_URL")  # MYSQL_URL carries the password
HARDENING = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes", "ProtectHome": "yes",
             "KillSignal": "SIGTERM", "Restart": "on-failure", "CapabilityBoundingSet": ""}
# Placeholder values for the lines the secrets manager fills, so the examples can be loaded by the code.
DUMMY_SECRETS = {"APPLICANT_API_TOKEN": "dummy-token-0123456789", "RISK_API_TOKEN": "dummy-token-9876543210",
                 "MYSQL_URL": "mysql://credit_api:dummy@mysql-1.example.internal:3306/credit"}


@dataclass(frozen=True)
class Component:
    name: str
    unit: str
    settings_modules: tuple[str, ...]  # the modules whose environment variables this component reads
    settings_classes: tuple[str, ...] = ()  # "module:Class" settings classes (credit_core.config) it builds

    @property
    def example(self) -> Path:
        return CLUSTER / "env" / f"{self.name}.env.example"


COMPONENTS = {c.name: c for c in (
    Component("applicant-api", "credit-applicant-api.service",
              ("applicant_api.settings", "applicant_api.db", "applicant_api.serve"), ("applicant_api.settings:Settings",)),
    Component("risk-api", "credit-risk-api.service", ("risk_api.settings", "risk_api.__main__"),
              ("risk_api.settings:RiskSettings",)),
    Component("producer", "credit-producer.service", ("producer.settings", "credit_core.broker"),
              ("producer.settings:ProducerSettings",)),
    Component("worker", "credit-worker@.service",
              ("topology.settings", "topology.policy", "hbase_helper.settings", "credit_core.broker"),
              ("topology.settings:Settings", "topology.policy:PolicySettings")),
)}


# -- env examples ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Entry:
    value: str
    commented: bool     # "#VAR=": set per instance by the unit, not in the file
    doc_default: str | None
    comment: str
    line: int


def parse_example(path: Path) -> dict[str, Entry]:
    """VAR -> Entry; each VAR's comment block ends with '# default: <value>'."""
    entries: dict[str, Entry] = {}
    block: list[str] = []
    for no, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.rstrip()
        m = re.fullmatch(r"(#?)([A-Z][A-Z0-9_]*)=(.*)", line)
        if m:
            assert m.group(2) not in entries, f"{path.name}:{no}: {m.group(2)} twice"
            assert not m.group(3).startswith(("'", '"')), f"{path.name}:{no}: systemd keeps quotes literally here"
            defaults = [c.split(":", 1)[1].strip() for c in block if c.lower().startswith("default:")]
            entries[m.group(2)] = Entry(m.group(3), bool(m.group(1)), defaults[-1] if defaults else None,
                                        " ".join(block), no)
            block = []
        elif line.startswith("#"):
            block.append(line.lstrip("#").strip())
        elif not line:
            if block and any(c.lower().startswith("default:") for c in block):
                raise AssertionError(f"{path.name}:{no}: a 'default:' comment not followed by its variable")
            block = []
        else:
            raise AssertionError(f"{path.name}:{no}: not VAR=value nor a comment: {line!r}")
    return entries


def example_env(component: Component) -> dict[str, str]:
    """The environment a unit's process gets from the example: its lines, the secrets, the unit's own values."""
    env = {k: e.value for k, e in parse_example(component.example).items() if not e.commented}
    env.update({k: v for k, v in DUMMY_SECRETS.items() if k in env})
    env.update(unit_env_prefix(component))
    return env


# -- code ------------------------------------------------------------------------------------------------

def _is_environ(node: ast.AST) -> bool:
    return (isinstance(node, ast.Name) and node.id in ("environ", "env", "os")) or \
           (isinstance(node, ast.Attribute) and node.attr == "environ")


def env_reads(paths) -> set[str]:
    """Names the code reads from the environment: environ/env .get/[...], getenv, the settings helpers'
    ``_env/_get/_choice/get("NAME", ...)``, click ``envvar=``, and ``*ENV*`` name maps (field -> variable)."""
    names: set[str] = set()
    for path in paths:
        for node in ast.walk(ast.parse(Path(path).read_text(), str(path))):
            if isinstance(node, ast.Call):
                strings = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
                func = node.func
                if isinstance(func, ast.Attribute) and func.attr in ("get", "getenv") and _is_environ(func.value):
                    names.update(strings[:1])
                elif isinstance(func, ast.Name) and func.id in ("_env", "_get", "_choice", "get", "getenv", "setting",
                                                                "Spec"):
                    names.update(strings)
                names.update(k.value.value for k in node.keywords
                             if k.arg == "envvar" and isinstance(k.value, ast.Constant))
            elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load) and _is_environ(node.value) \
                    and isinstance(node.slice, ast.Constant):
                names.add(node.slice.value)
            elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Dict) and any(
                    isinstance(t, ast.Name) and "ENV" in t.id for t in node.targets):
                names.update(v.value for v in node.value.values if isinstance(v, ast.Constant))
    return {n for n in names if isinstance(n, str) and ENV_NAME.fullmatch(n)}


def class_reads(component: Component) -> set[str]:
    """The variables of the component's settings classes, nested and shared ones included."""
    from credit_core.config import describe

    names = set()
    for ref in component.settings_classes:
        module, _, name = ref.partition(":")
        names.update(d.env for d in describe(getattr(importlib.import_module(module), name)))
    return names


def module_path(name: str) -> Path:
    return Path(importlib.util.find_spec(name).origin)


def project_env_reads() -> set[str]:
    return env_reads(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def faust_env_defaults() -> dict[str, object]:
    """Faust's own settings read from the environment (env_name -> default); faust reads os.environ itself."""
    from faust.types.settings.settings import Settings as FaustSettings

    return {p.env_name: p.default for p in FaustSettings.SETTINGS.values() if p.env_name}


def documented_defaults(module_name: str) -> dict[str, object]:
    """VAR -> default value, from the project's convention ``DEFAULT_X = ...  # VAR ...``."""
    module = importlib.import_module(module_name)
    out = {}
    for line in module_path(module_name).read_text().splitlines():
        m = re.match(r"(DEFAULT_[A-Z0-9_]+)\s*(?::[^=]+)?=.*#\s*([A-Z][A-Z0-9_]{2,})\b", line)
        if m:
            out[m.group(2)] = getattr(module, m.group(1))
    return out


def doc_form(value: object) -> str:
    """How an example file writes a code default after 'default:'."""
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (tuple, list, frozenset)):
        return ",".join(value)
    if isinstance(value, Path):
        return value.relative_to(ROOT).as_posix()
    if isinstance(value, str):
        tmp = tempfile.gettempdir()
        if value.startswith(tmp + os.sep):
            return "/tmp" + value[len(tmp):]
        return value or "(empty)"
    return str(value)


# -- units -----------------------------------------------------------------------------------------------

def read_unit(name: str) -> dict[str, dict[str, list[str]]]:
    """section -> key -> every value (systemd allows repeated keys), after configparser accepted the file."""
    path = CLUSTER / "systemd" / name
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",),
                                       comment_prefixes=("#", ";"), empty_lines_in_values=False)
    parser.optionxform = str
    parser.read_string(path.read_text(), source=str(path))
    assert set(parser.sections()) == {"Unit", "Service", "Install"}, parser.sections()
    out: dict[str, dict[str, list[str]]] = {}
    section = None
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = out.setdefault(line.strip("[]"), {})
            continue
        assert not line.endswith("\\"), f"{name}: keep each setting on one line"
        key, _, value = line.partition("=")
        section.setdefault(key.strip(), []).append(value.strip())
    return out


def one(unit: dict, section: str, key: str) -> str:
    values = unit[section].get(key)
    assert values and len(values) == 1, f"[{section}] {key}: {values}"
    return values[0]


def specifiers(text: str) -> str:
    return text.replace("%i", WORKER_INSTANCE)


def exec_start(component: Component) -> list[str]:
    return shlex.split(specifiers(one(read_unit(component.unit), "Service", "ExecStart")))


def unit_env_prefix(component: Component) -> dict[str, str]:
    """VAR=value pairs an ``/usr/bin/env`` ExecStart prefix sets (they win over the EnvironmentFile)."""
    argv = exec_start(component)
    env = {}
    if argv[0] == "/usr/bin/env":
        for arg in argv[1:]:
            if "=" not in arg:
                break
            key, _, value = arg.partition("=")
            env[key] = value
    return env


def command(component: Component) -> list[str]:
    """ExecStart without the env prefix, ${VAR} replaced from the example env."""
    argv = exec_start(component)
    if argv[0] == "/usr/bin/env":
        argv = argv[1 + len(unit_env_prefix(component)):]
    env = {k: e.value for k, e in parse_example(component.example).items() if not e.commented}

    def expand(arg: str) -> str:
        def sub(m):
            name = m.group(1)
            assert env.get(name), f"{component.unit} uses ${{{name}}}, which {component.example.name} does not set"
            return env[name]
        return re.sub(r"\$\{([A-Za-z0-9_]+)\}", sub, arg)

    assert all("$" not in a or "${" in a for a in argv), f"use ${{VAR}} (one word) in ExecStart: {argv}"
    return [expand(a) for a in argv]


def local_executable(argv0: str) -> Path:
    """The venv's copy of the installed venv's executable (the same package installs both)."""
    assert argv0.startswith(INSTALLED_VENV + "/bin/"), f"ExecStart must run from {INSTALLED_VENV}: {argv0}"
    local = Path(sys.executable).parent / Path(argv0).name
    assert local.exists(), f"{Path(argv0).name} is not installed by the project's dependencies"
    return local


# -- tests: units ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(COMPONENTS))
def test_unit_parses_runs_unprivileged_and_is_hardened(name):
    comp = COMPONENTS[name]
    unit = read_unit(comp.unit)
    service = unit["Service"]
    users = set(re.findall(r"^u\s+(\S+)\s", (CLUSTER / "sysusers.d" / "credit-pipeline.conf").read_text(), re.M))
    user = one(unit, "Service", "User")
    assert user in users and user != "root" and one(unit, "Service", "Group") == user
    assert service["EnvironmentFile"] == [f"/etc/credit-pipeline/{name}.env",
                                          f"/etc/credit-pipeline/secrets/{name}.env"]
    for key, value in HARDENING.items():
        assert one(unit, "Service", key) == value, key
    restart_sec = float(one(unit, "Service", "RestartSec").rstrip("s"))
    assert 1 <= restart_sec <= 60
    stop = float(one(unit, "Service", "TimeoutStopSec").rstrip("s"))
    assert stop >= (60 if name == "worker" else 30)
    assert one(unit, "Install", "WantedBy") == "multi-user.target"
    assert not any(SECRET_NAME.search(v) for v in service.get("Environment", [])), "secrets only in files"


def test_state_directories_are_the_writable_paths_the_settings_name():
    producer = read_unit(COMPONENTS["producer"].unit)["Service"]
    checkpoint = Path(example_env(COMPONENTS["producer"])["PRODUCER_CHECKPOINT"])
    assert checkpoint.is_absolute()
    assert str(checkpoint.parent) in producer["ReadWritePaths"]
    assert f"/var/lib/{producer['StateDirectory'][0]}" == str(checkpoint.parent)

    worker = read_unit(COMPONENTS["worker"].unit)["Service"]
    datadir = example_env(COMPONENTS["worker"])["FAUST_DATADIR"]
    assert datadir.endswith(WORKER_INSTANCE), "one data directory per worker instance"
    assert datadir in [specifiers(p) for p in worker["ReadWritePaths"]]
    assert f"/var/lib/{specifiers(worker['StateDirectory'][0])}" == datadir
    for name in ("applicant-api", "risk-api"):
        assert "ReadWritePaths" not in read_unit(COMPONENTS[name].unit)["Service"], "the APIs write nothing"


def test_units_pass_systemd_analyze_verify(tmp_path):
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze (Debian package systemd) is needed to check the unit files"
    for comp in COMPONENTS.values():
        text = (CLUSTER / "systemd" / comp.unit).read_text()
        text = text.replace(INSTALLED_VENV, str(Path(sys.executable).parent.parent))
        name = comp.unit.replace("@.", f"@{WORKER_INSTANCE}.")
        (tmp_path / name).write_text(text)
        result = subprocess.run([analyze, "verify", "--man=no", f"./{name}"], cwd=tmp_path, capture_output=True,
                                text=True, timeout=30)
        assert result.returncode == 0 and not (result.stdout + result.stderr).strip(), \
            f"{comp.unit}: {result.stdout}{result.stderr}"


@pytest.mark.parametrize("name, factory", [("applicant-api", "applicant_api.app:create_app()"),
                                           ("risk-api", "risk_api.app:create_app()")])
def test_api_units_run_gunicorn_on_the_real_app_factory(name, factory):
    from gunicorn.config import Config

    argv = command(COMPONENTS[name])
    assert local_executable(argv[0]).name == "gunicorn"
    args = Config().parser().parse_args(argv[1:])  # exits (SystemExit) on an unknown option or bad value
    assert args.args == [factory]
    module_name, _, call = factory.partition(":")
    factory_fn = getattr(importlib.import_module(module_name), call.removesuffix("()"))
    assert callable(factory_fn)
    inspect.signature(factory_fn).bind()  # gunicorn calls it with no arguments
    assert args.worker_class == "gthread" and args.workers >= 1 and args.threads >= 1
    env = example_env(COMPONENTS[name])
    bind = env["APPLICANT_API_BIND"] if name == "applicant-api" else f"{env['RISK_API_HOST']}:{env['RISK_API_PORT']}"
    assert args.bind == [bind]


def test_producer_unit_runs_the_producer_module():
    argv = command(COMPONENTS["producer"])
    assert argv[1:] == ["-m", "producer"]
    assert local_executable(argv[0]).name.startswith("python")
    result = subprocess.run([sys.executable, *argv[1:], "--help"], capture_output=True, text=True, timeout=30,
                            cwd=ROOT)
    assert result.returncode == 0 and "applicant API" in result.stdout, result.stderr


WORKER_PROBE = r"""
import json, sys, warnings
from faust.cli.faust import cli
args = sys.argv[1:]
ctx = cli.make_context("faust", list(args))
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    rest = list(getattr(ctx, "protected_args", [])) + list(ctx.args)
name, cmd, rest = cli.resolve_command(ctx, rest)
params = cmd.make_context(name, rest, parent=ctx).params
import importlib
module = importlib.import_module(ctx.params["app"])
app, c = module.app, module.app.conf
t = app.pipeline_topics
topics = [t.raw, t.clean, t.eligible, t.scored, t.decisions, t.dlq]
print(json.dumps({"command": name, "params": params, "id": c.id, "broker": [str(u) for u in c.broker],
                  "partitions": c.topic_partitions, "replication": c.topic_replication_factor,
                  "session_timeout": c.broker_session_timeout, "web_enabled": c.web_enabled,
                  "web_port": c.web_port, "datadir": str(c.datadir),
                  "topics": [[t.get_topic_name(), t.partitions] for t in topics]}))
"""


def test_worker_unit_runs_faust_on_the_topology_app_with_the_example_settings(tmp_path):
    comp = COMPONENTS["worker"]
    argv = command(comp)
    assert local_executable(argv[0]).name == "faust"
    assert argv[1:4] == ["-A", "topology.worker.app", "worker"]
    env = example_env(comp)
    env["FAUST_DATADIR"] = str(tmp_path / "worker")  # the unit's /var/lib/... is not writable here
    child = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "PYTHONPATH")}
    result = subprocess.run([sys.executable, "-c", WORKER_PROBE, *argv[1:]], env={**child, **env}, cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-3000:]
    conf = json.loads(result.stdout.strip().splitlines()[-1])
    assert conf["command"] == "worker" and conf["params"]["web_port"] == int(WORKER_INSTANCE)
    assert conf["id"] == env["TOPOLOGY_APP_ID"]
    hosts = [urlsplit(u).netloc for u in conf["broker"]]
    assert hosts == env["KAFKA_BROKER"].removeprefix("kafka://").split(",")
    assert conf["partitions"] == int(env["TOPIC_PARTITIONS"])
    assert conf["replication"] == int(env["TOPIC_REPLICATION_FACTOR"])
    assert conf["session_timeout"] == float(env["BROKER_SESSION_TIMEOUT"])
    assert conf["web_enabled"] and conf["web_port"] == int(WORKER_INSTANCE)
    assert conf["datadir"].startswith(env["FAUST_DATADIR"])
    topic_vars = ("TOPIC_RAW", "TOPIC_CLEAN", "TOPIC_ELIGIBLE", "TOPIC_SCORED", "TOPIC_DECISIONS", "TOPIC_DLQ")
    assert conf["topics"] == [[env[v], int(env["TOPIC_PARTITIONS"])] for v in topic_vars]


# -- tests: env examples ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(COMPONENTS))
def test_example_names_only_variables_the_code_reads(name):
    comp = COMPONENTS[name]
    known = project_env_reads() | (set(faust_env_defaults()) if name == "worker" else set())
    unknown = sorted(set(parse_example(comp.example)) - known)
    assert not unknown, f"{comp.example.name} sets variables no code reads: {unknown}"


SHARED_PREFIX = "credit_core."


@pytest.mark.parametrize("name", sorted(COMPONENTS))
def test_example_lists_every_setting_with_its_documented_default(name):
    comp = COMPONENTS[name]
    entries = parse_example(comp.example)
    # A shared module (credit_core.*) declares variables for every component: a component reads those of
    # them its settings classes use, and only their defaults are checked here.
    own = [m for m in comp.settings_modules if not m.startswith(SHARED_PREFIX)]
    reads = env_reads(module_path(m) for m in own) | class_reads(comp)
    missing = sorted(reads - set(entries))
    assert not missing, f"{comp.example.name} lacks {missing}"
    defaults: dict[str, set[str]] = {}
    for module in comp.settings_modules:
        for var, value in documented_defaults(module).items():
            if module in own or var in reads:
                defaults.setdefault(var, set()).add(doc_form(value))
    assert set(defaults) <= reads, f"DEFAULT_* comments name variables the code does not read: {set(defaults) - reads}"
    faust = faust_env_defaults()
    for var, entry in entries.items():
        if var in defaults:
            expected = defaults[var]
        elif var in faust and var not in reads:
            expected = {doc_form(faust[var])}
        else:
            expected = {"(none)"}
        assert len(expected) == 1, f"{var}: the code's modules disagree on its default: {expected}"
        assert entry.doc_default in expected, \
            f"{comp.example.name}:{entry.line}: {var} documents default {entry.doc_default!r}, code has {expected}"


def test_examples_load_through_the_real_settings():
    from applicant_api.settings import load_settings as applicant_settings
    from hbase_helper.settings import HBaseSettings
    from producer.settings import load_settings as producer_settings
    from risk_api.settings import from_env as risk_settings
    from topology.policy import Policy
    from topology.settings import Settings as TopologySettings

    env = example_env(COMPONENTS["applicant-api"])
    assert applicant_settings(environ=env).pool_size == int(env["APPLICANT_API_POOL_SIZE"])
    env = example_env(COMPONENTS["risk-api"])
    assert risk_settings(env)["MODEL_PATH"] == env["RISK_MODEL_PATH"]
    env = example_env(COMPONENTS["producer"])
    assert producer_settings(environ=env).bootstrap == env["KAFKA_BROKER"].removeprefix("kafka://")
    env = example_env(COMPONENTS["worker"])
    topo = TopologySettings.from_env(env)
    assert topo.partitions == int(env["TOPIC_PARTITIONS"]) and topo.web_port == int(WORKER_INSTANCE)
    assert Policy.from_env(env).decline_grades == frozenset(env["POLICY_DECLINE_GRADES"].split(","))
    assert HBaseSettings.from_env(env).address == f"{env['HBASE_HOST']}:{env['HBASE_PORT']}"


def test_per_instance_variables_are_set_by_the_worker_unit():
    comp = COMPONENTS["worker"]
    commented = {k for k, e in parse_example(comp.example).items() if e.commented}
    assert commented == set(unit_env_prefix(comp)), "a '#VAR=' line must be one the unit sets per instance"
    for name in sorted(set(COMPONENTS) - {"worker"}):
        assert not any(e.commented for e in parse_example(COMPONENTS[name].example).values())


def test_no_secret_values_in_the_cluster_files():
    for comp in COMPONENTS.values():
        for var, entry in parse_example(comp.example).items():
            if SECRET_NAME.search(var):
                assert entry.value == "", f"{comp.example.name}:{entry.line}: {var} must stay empty"
                assert "secrets" in entry.comment.lower(), f"{var}: say where the value comes from"
    for path in CLUSTER.rglob("*"):
        if path.is_file():
            for no, line in enumerate(path.read_text().splitlines(), 1):
                for password in re.findall(r"://[^\s:/@'\"]+:([^\s@'\"]+)@", line):
                    assert password.startswith("<"), f"{path.relative_to(ROOT)}:{no}: a password in a URL"
                assert not re.search(r"IDENTIFIED BY '(?!<)", line), f"{path.relative_to(ROOT)}:{no}: a password"


def test_examples_agree_with_each_other():
    applicant, risk, producer, worker = (example_env(COMPONENTS[n])
                                         for n in ("applicant-api", "risk-api", "producer", "worker"))
    assert producer["TOPIC_RAW"] == worker["TOPIC_RAW"]
    assert producer["KAFKA_BROKER"] == worker["KAFKA_BROKER"]
    assert urlsplit(producer["APPLICANT_API_URL"]).port == int(applicant["APPLICANT_API_BIND"].rsplit(":", 1)[1])
    assert urlsplit(worker["RISK_API_URL"]).port == int(risk["RISK_API_PORT"])
    assert int(worker["TOPIC_PARTITIONS"]) >= 2, "room for more than one worker"


# -- tests: README -----------------------------------------------------------------------------------------

def test_readme_creates_the_topics_and_tables_the_code_uses():
    from hbase_helper.layout import FAMILIES

    readme = (CLUSTER / "README.md").read_text()
    worker = example_env(COMPONENTS["worker"])
    loop = re.search(r"for t in ([^;]+); do\n(.*?)\ndone", readme, re.S)
    assert loop and "kafka-topics.sh" in loop.group(2)
    wanted = {worker[v] for v in ("TOPIC_RAW", "TOPIC_CLEAN", "TOPIC_ELIGIBLE", "TOPIC_SCORED", "TOPIC_DECISIONS",
                                  "TOPIC_DLQ")}
    topics = loop.group(1).split()
    assert len(topics) == len(set(topics)) and set(topics) == wanted
    assert int(re.search(r"--partitions (\d+)", loop.group(2)).group(1)) == int(worker["TOPIC_PARTITIONS"])
    rf = int(re.search(r"--replication-factor (\d+)", loop.group(2)).group(1))
    assert rf == int(worker["TOPIC_REPLICATION_FACTOR"])
    max_bytes = int(re.search(r"max\.message\.bytes=(\d+)", loop.group(2)).group(1))
    assert max_bytes >= int(worker["PRODUCER_BATCH_BYTES"]) + 65536

    creates = re.findall(r"^create '(\w+)', (.*)$", readme, re.M)
    assert {t for t, _ in creates} == set(FAMILIES)
    for table, rest in creates:
        families = dict(re.findall(r"NAME => '(\w+)', VERSIONS => (\d+)", rest))
        assert {f: int(v) for f, v in families.items()} == {f: o["max_versions"] for f, o in FAMILIES[table].items()}
