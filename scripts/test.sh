#!/usr/bin/env bash
# Set-up plus the default test suite (soak and load runs are marked slow and left out:
# run them with `scripts/test.sh -m slow`). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
scripts/check.sh
.venv/bin/python -m pytest "$@"
