#!/usr/bin/env bash
# Sets up everything the tests need (idempotent) and runs lint + the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --dev --train --system
echo "== ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "== pytest"
.venv/bin/python -m pytest "$@"
