"""The agent installs alone: the base distribution into a clean virtual environment (what a
venue's Raspberry Pi gets) brings `tapsense-agent` and none of the server's libraries."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SERVER_ONLY = {"numba", "numpy", "fastapi", "sqlalchemy", "pydantic", "alembic", "uvicorn"}


def test_the_base_distribution_installs_the_agent_without_the_server(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(venv / "bin" / "python"), "-m", "pip"]
    installed = subprocess.run([*pip, "install", "--quiet", str(REPO)], capture_output=True,
                               text=True)  # fmt: skip
    assert installed.returncode == 0, installed.stderr[-3000:]
    listed = subprocess.run([*pip, "list", "--format=freeze"], capture_output=True, text=True)
    packages = {line.split("==")[0].lower() for line in listed.stdout.splitlines()}
    assert "paho-mqtt" in packages and "msgspec" in packages
    assert not packages & SERVER_ONLY, packages & SERVER_ONLY
    helped = subprocess.run([str(venv / "bin" / "tapsense-agent"), "--help"],
                            capture_output=True, text=True, cwd=tmp_path)  # fmt: skip
    assert helped.returncode == 0 and "tapsense-agent run" in helped.stdout, helped.stderr
