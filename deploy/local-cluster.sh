#!/usr/bin/env bash
# Run the multi-replica topology from real local processes (no container engine):
# 3 x digits-serve on loopback ports, nginx (gRPC proxy) in front, Prometheus scraping each.
#
#   deploy/local-cluster.sh                 start and keep running; Ctrl-C stops everything
#   deploy/local-cluster.sh demo            load through nginx, SIGKILL one replica, print a report
#   deploy/local-cluster.sh up --replicas 5 --model-repository tiny --keep
#
# Needs .venv (scripts/setup.sh; --dev for the `tiny` repository) and Debian's nginx and
# prometheus (scripts/setup.sh --system). All options: deploy/local-cluster.sh --help
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
if [[ ! -x $PY ]]; then
  echo "local-cluster: no .venv; run scripts/setup.sh first" >&2
  exit 2
fi
# exec: the Python process receives Ctrl-C/SIGTERM itself and stops its children by PID.
exec "$PY" -m deploy.local_cluster "$@"
