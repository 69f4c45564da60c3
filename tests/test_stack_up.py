"""`tapsense up`: the main job starts everything, serves live data, and Ctrl-C stops it all."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from stack.services import free_port, port_is_free
from tests.readback import wait_for


def influx_port() -> int:
    """A free port whose +2 (influxd's backup listener under `tapsense up`) is free too."""
    while True:
        port = free_port()
        if port_is_free("127.0.0.1", port + 2):
            return port


def test_up_runs_the_stack_with_a_fleet_and_ctrl_c_stops_every_process(tmp_path: Path) -> None:
    api_port = free_port()
    env = {
        **os.environ,
        "TAPSENSE_HOME": str(tmp_path / "home"),
        "TAPSENSE_MQTT__PORT": str(free_port()),
        "TAPSENSE_INFLUX__URL": f"http://127.0.0.1:{influx_port()}",
        "TAPSENSE_API__PORT": str(api_port),
    }
    out = tmp_path / "up.log"
    with out.open("wb") as log:
        up = subprocess.Popen(
            [sys.executable, "-m", "stack.cli", "up", "--fleet", "2", "--taps", "3"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    api = f"http://127.0.0.1:{api_port}"
    try:
        assert wait_for(lambda: "Ctrl-C stops everything" in out.read_text(), timeout_s=180)
        assert httpx.get(f"{api}/health").json()["status"] == "ok"
        [printed] = re.findall(r"API key +(tsk_[\w-]+)", out.read_text())
        operator = {"Authorization": f"Bearer {printed}"}

        def three_taps_reporting() -> bool:
            response = httpx.get(f"{api}/venues/venue-002/live", headers=operator)
            return response.status_code == 200 and len(response.json()["taps"]) == 3

        assert wait_for(three_taps_reporting, timeout_s=60)
        # An owner made with the operator CLI, beside the running stack, sees no venue.
        made = subprocess.run(
            [sys.executable, "-m", "stack.cli", "registry", "user", "--org", "Simulated fleet",
             "--email", "owner@sim.test", "--role", "owner", "--key"],
            env=env, cwd=tmp_path, capture_output=True, text=True,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        [owner_key] = re.findall(r"tsk_[\w-]+", made.stdout)
        venues = httpx.get(f"{api}/venues", headers={"Authorization": f"Bearer {owner_key}"})
        assert venues.status_code == 200 and venues.json()["total"] == 0
        assert httpx.get(f"{api}/venues", headers=operator).json()["total"] == 2
    finally:
        up.send_signal(signal.SIGINT)
        code = up.wait(120)
    text = out.read_text()
    pids = [int(p) for p in re.findall(r"running, pid (\d+)", text)]
    assert len(pids) == 5, text  # mosquitto, influxd, ingest, api, simulate
    assert code == 0, text
    time.sleep(0.1)
    assert [p for p in pids if Path(f"/proc/{p}").exists()] == []
    assert all(
        f"{name} stopped" in text for name in ("mosquitto", "influxd", "ingest", "api", "simulate")
    )


def test_up_refuses_clearly_when_a_port_is_taken(tmp_path: Path, broker: object) -> None:
    taken = broker.port  # type: ignore[attr-defined]
    env = {
        **os.environ,
        "TAPSENSE_HOME": str(tmp_path),
        "TAPSENSE_MQTT__PORT": str(taken),
        "TAPSENSE_API__PORT": str(free_port()),
    }
    result = subprocess.run(
        [sys.executable, "-m", "stack.cli", "up"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert f"127.0.0.1:{taken} is already in use" in result.stderr
