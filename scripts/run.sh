#!/usr/bin/env bash
# Set-up plus the main job: the local stack with a simulated fleet. Ctrl-C stops all of it.
# Extra arguments go to `tapsense up` (default: --fleet 5).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
if [ $# -eq 0 ]; then set -- --fleet 5; fi
exec .venv/bin/tapsense up "$@"
