"""`tapsense up`: the main job starts everything, serves live data, and Ctrl-C stops it all."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from stack.services import free_port, port_is_free
from stack.settings import ApiSettings, InfluxSettings, MqttSettings, Settings
from tests.readback import assert_stored_once, stored_count, wait_for


def influx_port() -> int:
    """A free port whose +2 (influxd's backup listener under `tapsense up`) is free too."""
    while True:
        port = free_port()
        if port_is_free("127.0.0.1", port + 2):
            return port


def up_env(tmp_path: Path) -> dict[str, str]:
    return {
        **os.environ,
        "TAPSENSE_HOME": str(tmp_path / "home"),
        "TAPSENSE_MQTT__PORT": str(free_port()),
        "TAPSENSE_INFLUX__URL": f"http://127.0.0.1:{influx_port()}",
        "TAPSENSE_API__PORT": str(free_port()),
    }


def start_up(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[subprocess.Popen, Path]:
    """`tapsense up ARGS`, its output in a file; returns once it says it is up."""
    out = tmp_path / "up.log"
    with out.open("wb") as log:
        up = subprocess.Popen(
            [sys.executable, "-m", "stack.cli", "up", *args],
            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path,
        )  # fmt: skip
    if not wait_for(lambda: "Ctrl-C stops everything" in out.read_text(), timeout_s=180):
        up.kill()
        raise AssertionError(out.read_text())
    return up, out


def test_up_runs_the_stack_with_a_fleet_and_ctrl_c_stops_every_process(tmp_path: Path) -> None:
    env = up_env(tmp_path)
    up, out = start_up(tmp_path, env, "--fleet", "2", "--taps", "3")
    api = f"http://127.0.0.1:{env['TAPSENSE_API__PORT']}"
    try:
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
    assert len(pids) == 7, text  # mosquitto, influxd, ingest, alerts, reports, api, simulate
    assert code == 0, text
    assert wait_for(lambda: not [p for p in pids if Path(f"/proc/{p}").exists()], timeout_s=10)
    assert all(
        f"{name} stopped" in text
        for name in ("mosquitto", "influxd", "ingest", "alerts", "reports", "api", "simulate")
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


def pids(out: Path, name: str) -> list[int]:
    return [int(p) for p in re.findall(rf"{name} running, pid (\d+)", out.read_text())]


def test_up_restarts_a_child_killed_with_sigkill_and_loses_nothing(tmp_path: Path) -> None:
    """kill -9 of ingest, the API and InfluxDB in turn, under a stream of readings from agents
    that log in as devices: each comes back by itself, the others stay up, the API says what
    is down meanwhile, and every reading sent is stored once."""
    from tests.test_failures import Stream

    env = up_env(tmp_path)
    up, out = start_up(tmp_path, env)
    settings = Settings(
        home=Path(env["TAPSENSE_HOME"]),
        mqtt=MqttSettings(port=int(env["TAPSENSE_MQTT__PORT"])),
        influx=InfluxSettings(url=env["TAPSENSE_INFLUX__URL"]),
        api=ApiSettings(port=int(env["TAPSENSE_API__PORT"])),
    )
    api = f"http://127.0.0.1:{settings.api.port}"

    def health() -> dict[str, bool]:
        body = httpx.get(f"{api}/health", timeout=5).json()
        return {name: check["ok"] for name, check in body["checks"].items()}

    def kill_and_see_it_back(name: str, while_down: object = None) -> None:
        [pid] = pids(out, name)[-1:]
        others = {
            other: pids(out, other)[-1]
            for other in ("mosquitto", "influxd", "ingest", "alerts", "api")
        }
        os.kill(pid, signal.SIGKILL)
        if callable(while_down):
            while_down()
        assert wait_for(lambda: len(pids(out, name)) == 2, timeout_s=120), out.read_text()
        assert all(pids(out, o)[-1] == p for o, p in others.items() if o != name)
        assert up.poll() is None

    try:
        stream = Stream(settings, duration_s=6 * 3600, logins=True)
        assert wait_for(lambda: stored_count(settings) >= 1000)
        assert stored_count(settings) < stream.fleet.truth.total, "kill inside the stream"

        kill_and_see_it_back("ingest")
        kill_and_see_it_back("alerts")
        kill_and_see_it_back("api")
        assert wait_for(lambda: all(health().values()))

        def api_says_influxdb_is_down() -> None:
            assert wait_for(lambda: health() == {"broker": True, "influxdb": False,
                                                 "registry": True}, every_s=0.05)  # fmt: skip

        kill_and_see_it_back("influxd", api_says_influxdb_is_down)
        assert wait_for(lambda: all(health().values()))
        stream.finish()
        assert_stored_once(settings, stream.fleet.truth)
    finally:
        up.send_signal(signal.SIGINT)
        code = up.wait(120)
    text = out.read_text()
    assert code == 0, text
    for name in ("ingest", "alerts", "api", "influxd"):
        assert f"{name} exited with -9; restarting it" in text
        assert f"{name} restarted (restart 1)" in text
