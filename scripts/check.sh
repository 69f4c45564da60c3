#!/usr/bin/env bash
# Lint, types and architecture: ruff, mypy over the packages, and the import contracts in
# pyproject.toml (import-linter: which package may import which). Needs `scripts/setup.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy edge ingest timeseries api stack simulators bench registry alerts reports coupons texts tests
.venv/bin/lint-imports
