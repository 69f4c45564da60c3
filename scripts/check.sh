#!/usr/bin/env bash
# Lint and types: ruff, then mypy over the packages. Needs `scripts/setup.sh` first.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy edge ingest api stack simulators bench registry tests
