"""The systemd units shipped for a real deployment: systemd itself finds nothing to complain
about in them, and each runs a `tapsense` command that exists."""

from __future__ import annotations

import configparser
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from stack.cli import build_parser

UNITS = sorted((Path(__file__).resolve().parent.parent / "stack" / "systemd").glob("*.service"))
INSTALLED = "/opt/tapsense/venv/bin/tapsense"


def test_units_ship_for_every_server_component() -> None:
    assert {unit.name for unit in UNITS} == {"tapsense-ingest.service", "tapsense-api.service"}


@pytest.mark.parametrize("unit", UNITS, ids=lambda unit: unit.name)
def test_systemd_verifies_the_unit_and_its_command_exists(unit: Path, tmp_path: Path) -> None:
    here = Path(sys.executable).parent / "tapsense"  # the same command, where it is installed here
    copy = tmp_path / unit.name
    copy.write_text(unit.read_text().replace(INSTALLED, str(here)))
    verified = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True,
                              text=True)  # fmt: skip
    assert verified.returncode == 0 and str(copy) not in verified.stderr, verified.stderr

    parsed = configparser.ConfigParser(strict=False, interpolation=None)
    parsed.read_string(unit.read_text())
    argv = shlex.split(parsed["Service"]["ExecStart"])
    assert argv[0] == INSTALLED
    build_parser().parse_args(argv[1:])
    assert parsed["Service"]["Restart"] == "always"
