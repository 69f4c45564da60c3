"""What a process loads: the API answers without the quality kernels (import-linter checks the
arrows statically in scripts/check.sh; this checks what really gets imported)."""

from __future__ import annotations

import json
import subprocess
import sys


def loaded_by(module: str, *prefixes: str) -> list[str]:
    code = (
        f"import json, sys, {module}; "
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {prefixes!r})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return list(json.loads(out.stdout))


def test_the_api_loads_neither_numba_nor_ingest() -> None:
    assert loaded_by("api.app", "numba", "llvmlite", "ingest") == []


def test_the_time_series_package_loads_neither_numba_nor_ingest() -> None:
    assert loaded_by("timeseries.influx", "numba", "llvmlite", "ingest", "numpy") == []
