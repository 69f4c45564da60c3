"""What a process loads and what an install brings: the API answers without the quality
kernels, the agent runs without any server library (import-linter checks the arrows
statically in scripts/check.sh; this checks what really gets imported)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib import metadata


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


def test_the_base_install_is_the_edge_agents() -> None:
    """`pip install tapsense` on a venue's small computer brings MQTT and JSON, nothing more."""
    base = {
        re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].lower()
        for requirement in metadata.requires("tapsense") or []
        if "extra ==" not in requirement
    }
    assert base == {"paho-mqtt", "msgspec"}


def test_the_agent_loads_no_server_library() -> None:
    server = ("numba", "numpy", "fastapi", "sqlalchemy", "pydantic", "httpx", "ingest", "stack")
    assert loaded_by("edge.cli", *server) == []  # the agent program, and all it imports
