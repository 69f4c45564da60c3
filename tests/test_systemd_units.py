"""The systemd units shipped for a real deployment: systemd itself finds nothing to complain
about in them, and each runs a `tapsense` (or, on a venue's computer, `tapsense-agent`)
command that exists."""

from __future__ import annotations

import configparser
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from edge.cli import build_parser as agent_parser
from stack.cli import build_parser

REPO = Path(__file__).resolve().parent.parent
UNITS = sorted([*(REPO / "stack" / "systemd").glob("*.service"),
                *(REPO / "edge" / "systemd").glob("*.service")])  # fmt: skip
INSTALLED = {
    "/opt/tapsense/venv/bin/tapsense": build_parser,
    "/opt/tapsense-agent/venv/bin/tapsense-agent": agent_parser,
}


def test_units_ship_for_every_component() -> None:
    assert {unit.name for unit in UNITS} == {
        "tapsense-ingest.service", "tapsense-alerts.service", "tapsense-api.service",
        "tapsense-reports.service",
        "tapsense-agent.service",
    }  # fmt: skip


@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.name)
def test_systemd_verifies_the_unit_and_its_command_exists(unit: Path, tmp_path: Path) -> None:
    text = unit.read_text()
    for installed in INSTALLED:  # the same command, where it is installed here
        text = text.replace(installed, str(Path(sys.executable).parent / Path(installed).name))
    copy = tmp_path / unit.name
    copy.write_text(text)
    verified = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True,
                              text=True)  # fmt: skip
    assert verified.returncode == 0 and str(copy) not in verified.stderr, verified.stderr

    parsed = configparser.ConfigParser(strict=False, interpolation=None)
    parsed.read_string(unit.read_text())
    argv = shlex.split(parsed["Service"]["ExecStart"])
    assert argv[0] in INSTALLED
    INSTALLED[argv[0]]().parse_args(argv[1:])
    assert parsed["Service"]["Restart"] == "always"
