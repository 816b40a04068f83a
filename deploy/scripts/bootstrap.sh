#!/usr/bin/env bash
# Makes a fresh Debian/Ubuntu clone ready: the virtualenv with the package and its
# test extras, and Debian's mariadb-server when mariadbd is missing. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

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
