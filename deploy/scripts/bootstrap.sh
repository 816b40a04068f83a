#!/usr/bin/env bash
# Makes a fresh Debian/Ubuntu clone ready: the virtualenv with the package and its
# test extras, Debian's mariadb-server when mariadbd is missing; with --apache also a
# JRE 17+ and Maven when missing and the Apache Kafka / HBase jars through Maven
# (cached). `make test`, `make bench` and `make run STACK=apache` pass --apache;
# the embedded stack needs no Java. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
APACHE=0
[ "${1:-}" = "--apache" ] && APACHE=1

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v mariadbd >/dev/null 2>&1 && [ ! -x /usr/sbin/mariadbd ]; then
  echo "bootstrap: installing mariadb-server (the project starts its own private server; no system service is used)" >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  # policy-rc.d keeps the package from starting the system service.
  as_root env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -qq mariadb-server >/dev/null
fi

# systemd-analyze checks the cluster unit files offline (tests/deploy/test_cluster_files.py).
if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "bootstrap: installing systemd (for systemd-analyze; no service is started)" >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null
fi

# Operations: Prometheus (promtool checks the alert rules; the local stack runs its own server), Debian's
# Chromium (the dashboard's browser tests drive it through Playwright; no browser download) and Chart.js
# (the dashboard serves it itself: nothing comes from a CDN). Deployment: docker-compose, whose `config` checks
# deploy/container/compose.yaml offline (tests/deploy/test_compose.py; no Docker engine is installed or needed).
# iproute2 (`ip`, `ss`): the multi-host run makes its hosts from network namespaces (deploy/netns.py).
missing=()
command -v ip >/dev/null 2>&1 && command -v ss >/dev/null 2>&1 || missing+=(iproute2)
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
[ -f /usr/share/javascript/chart.js/chart.min.js ] || missing+=(libjs-chart.js)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]} (no system service is started)" >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# kubectl renders the Kubernetes manifests offline (`kubectl kustomize`, kustomize v5: kubectl >= 1.27) in
# tests/deploy/test_k8s.py; no cluster is contacted. The Debian package `kubectl` where an apt source has it
# (Debian 12's own kubernetes-client is 1.20, whose kustomize v2 cannot render deploy/k8s); else the same
# kustomize engine kubectl 1.32 embeds (v5.5.0), built from its Go module into the git-ignored .cache/bin.
if ! command -v kubectl >/dev/null 2>&1 && [ ! -x .cache/bin/kustomize ]; then
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  if apt-cache policy kubectl 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    echo "bootstrap: installing kubectl (only its offline kustomize is used)" >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends kubectl >/dev/null
  elif command -v go >/dev/null 2>&1; then
    echo "bootstrap: no kubectl package; building kustomize v5.5.0 into .cache/bin" >&2
    GOBIN="$PWD/.cache/bin" go install sigs.k8s.io/kustomize/kustomize/v5@v5.5.0
  else
    echo "bootstrap: neither a kubectl package nor Go: tests/deploy/test_k8s.py cannot render deploy/k8s" >&2
  fi
fi

# Strimzi's custom-resource schemas as the npm registry publishes them (validators generated from Strimzi's CRDs):
# tests/deploy/test_k8s.py checks deploy/k8s's Kafka, KafkaNodePool and KafkaTopic with them, offline, under node.
STRIMZI_MODELS=@kubernetes-models/strimzi-kafka-operator@1.0.1
if [ ! -d .cache/strimzi-models/node_modules/@kubernetes-models/strimzi-kafka-operator ]; then
  if ! command -v npm >/dev/null 2>&1; then
    echo "bootstrap: installing nodejs and npm (for Strimzi's published schemas)" >&2
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  fi
  echo "bootstrap: installing $STRIMZI_MODELS into .cache/strimzi-models" >&2
  mkdir -p .cache/strimzi-models
  npm install --prefix .cache/strimzi-models --silent --no-audit --no-fund "$STRIMZI_MODELS" >/dev/null
fi

# The apache stack (Apache Kafka, Apache HBase from Maven Central jars) needs Java 17+ and Maven.
java_major() { java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1; }
if [ "$APACHE" = 1 ] && { ! command -v java >/dev/null 2>&1 || [ "$(java_major)" -lt 17 ] 2>/dev/null || ! command -v mvn >/dev/null 2>&1; }; then
  echo "bootstrap: installing a JRE 17+ and Maven (for the apache stack's Kafka and HBase)" >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq default-jre-headless maven >/dev/null
fi

if ! "$PYTHON" -c 'import venv, ensurepip' >/dev/null 2>&1; then
  echo "bootstrap: installing python3-venv" >&2
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv python3-pip >/dev/null
fi

stamp="$VENV/.installed"
if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
if [ ! -f "$stamp" ] || [ setup.cfg -nt "$stamp" ]; then
  "$VENV/bin/pip" install -q --upgrade pip setuptools wheel
  "$VENV/bin/pip" install -q -e '.[test]'
  touch "$stamp"
fi

# Kafka's and HBase's runtime jars into .cache/apache (Maven's ~/.m2 keeps them: a second run downloads
# nothing, and an unchanged pom costs nothing at all).
if [ "$APACHE" = 1 ]; then
  "$VENV/bin/python" -m deploy.apache_servers resolve
fi
