#!/usr/bin/env bash
# Installs everything Tapsense needs on Debian 12 (run as root): Mosquitto and InfluxDB from
# Debian's packages, a virtual environment in ./.venv, and the project with its test tools.
# Safe to run again: it installs only what is missing. Starts no system service of its own;
# Tapsense runs the broker and database itself, on its own ports.
# `--test` also installs what only the tests need: systemd's `systemd-analyze`, which checks
# the unit files that ship for a real deployment, and PostgreSQL, which the registry's tests
# run on beside SQLite (in a cluster of their own; the package's own service is not used),
# openssl, which makes the TLS test's certificate authority, Chromium, in which the tests
# look at the alert e-mail as an owner would (Playwright drives it; its own browser download is
# not reachable here), and Poppler's pdftoppm, which turns report PDFs into page images.
# Always: Pango and a font, on which WeasyPrint lays out the monthly reports' PDFs.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
if [ "${1:-}" = "--test" ]; then
    command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
    compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null || missing+=(postgresql)
    command -v openssl >/dev/null 2>&1 || missing+=(openssl)
    [ -x /usr/bin/chromium ] || missing+=(chromium)
    command -v pdftoppm >/dev/null 2>&1 || missing+=(poppler-utils)
fi
for package in libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core; do
    dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
command -v influxd >/dev/null 2>&1 || missing+=(influxdb)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=(python3-venv)
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[server,test]'
# Compile the Numba kernels into their on-disk cache now, so the first start does not wait.
.venv/bin/python -c 'from ingest.quality import warm_up; warm_up()'
echo "setup: ready (.venv/bin/tapsense)"
