#!/bin/sh
# Entry point of the credit-risk pipeline image: the first argument names the role, the rest go to its command.
# Each role runs the same command as its systemd unit in deploy/cluster/systemd/ (and deploy/services.py), except
# that inside a container every server binds 0.0.0.0 unless its variable says otherwise: peers address it by
# service name. Settings and secrets come from the environment only (deploy/cluster/env/*.env.example).
#
#   worker          faust -A topology.worker.app worker        web server (/metrics /health /ready) on FAUST_WEB_PORT
#   risk-api        gunicorn 'risk_api.app:create_app()'       RISK_API_HOST:RISK_API_PORT
#   applicant-api   gunicorn 'applicant_api.app:create_app()'  APPLICANT_API_BIND
#   producer        python -m producer                         /metrics on PRODUCER_METRICS_HOST:PRODUCER_METRICS_PORT
#   dashboard       python -m dashboard                        DASHBOARD_HOST:DASHBOARD_PORT
#   dlq             python -m deploy dlq ARGS...               list|show|stats|replay|export
#   reconcile       python -m deploy reconcile ARGS...
#   init            python -m applicant_api init-db, then the Kafka topics and the HBase tables (idempotent)
#   help            this text
#
# tests/deploy/test_container.py imports every module named here.
set -eu

role="${1:-help}"
[ "$#" -gt 0 ] && shift

# The health check (credit-healthcheck) reads the role from here: it runs outside this process' environment.
if [ -n "${CREDIT_STATE_DIR:-/var/lib/credit}" ] && [ -w "${CREDIT_STATE_DIR:-/var/lib/credit}" ]; then
  printf '%s\n' "$role" > "${CREDIT_STATE_DIR:-/var/lib/credit}/role"
fi

case "$role" in
  worker)
    export FAUST_WEB_ENABLED=true
    export FAUST_WEB_PORT="${FAUST_WEB_PORT:-6066}"
    exec faust -A topology.worker.app worker --web-bind "${FAUST_WEB_BIND:-0.0.0.0}" \
      --web-port "$FAUST_WEB_PORT" --loglevel "${LOGLEVEL:-info}" "$@"
    ;;
  risk-api)
    exec gunicorn --bind "${RISK_API_HOST:-0.0.0.0}:${RISK_API_PORT:-5002}" \
      --workers "${RISK_API_WORKERS:-2}" --worker-class gthread --threads "${RISK_API_THREADS:-2}" \
      --graceful-timeout 30 --error-logfile - --config python:risk_api.gunicorn_conf "$@" \
      'risk_api.app:create_app()'
    ;;
  applicant-api)
    exec gunicorn --bind "${APPLICANT_API_BIND:-0.0.0.0:5001}" \
      --workers "${APPLICANT_API_WORKERS:-2}" --worker-class gthread --threads "${APPLICANT_API_THREADS:-4}" \
      --timeout "${APPLICANT_API_WORKER_TIMEOUT:-60}" --graceful-timeout 30 --access-logfile - --error-logfile - \
      --config python:applicant_api.gunicorn_conf "$@" 'applicant_api.app:create_app()'
    ;;
  producer)
    export PRODUCER_METRICS_HOST="${PRODUCER_METRICS_HOST:-0.0.0.0}"
    exec python -m producer "$@"
    ;;
  dashboard)
    export DASHBOARD_HOST="${DASHBOARD_HOST:-0.0.0.0}"
    exec python -m dashboard "$@"
    ;;
  dlq)
    exec python -m deploy dlq "$@"
    ;;
  reconcile)
    exec python -m deploy reconcile "$@"
    ;;
  init)
    python -m applicant_api init-db
    exec python -c '
import asyncio, os
from topology.settings import Settings
from topology.topics import ensure_topics
from hbase_helper.layout import ensure_tables
from hbase_helper.pool import connect
from hbase_helper.settings import HBaseSettings
print("topics created:", asyncio.run(ensure_topics(Settings.from_env(os.environ))))
with connect(HBaseSettings.from_env(os.environ)) as conn:
    print("tables created:", ensure_tables(conn))
'
    ;;
  help|--help|-h)
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
    ;;
  *)
    echo "credit-entrypoint: unknown role '$role' (worker, risk-api, applicant-api, producer, dashboard, dlq, reconcile, init)" >&2
    exit 64
    ;;
esac
