"""The registry's settings reach the quality checks of the running stack, end to end: `tapsense
up` runs; each test registers a venue through the API as an operator would, and its device
sends readings at once (no pause for ingest to notice the new venue: that is the case that
failed); the quality events are read back from InfluxDB."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from edge import mqtt
from edge.settings import MqttSettings
from edge.wire import DeviceTopic, Pour, Telemetry, Temperature, TopicKind, encode
from tests.readback import wait_for
from tests.test_stack_up import start_up, up_env
from timeseries.influx import InfluxQL
from timeseries.settings import InfluxSettings

HOUR_MS = 3_600_000


@dataclass
class Stack:
    api: str
    headers: dict[str, str]
    mqtt_port: int
    influx: InfluxQL
    env: dict[str, str]
    cwd: Path

    def post(self, path: str, body: dict) -> dict:
        response = httpx.post(f"{self.api}{path}", json=body, headers=self.headers, timeout=30)
        assert response.status_code in (200, 201), response.text
        return response.json()  # type: ignore[no-any-return]

    def events(self, venue: str) -> list[tuple[str | None, str, str, int, float, float]]:
        """(tap, check, level, ts, value, detail) of the venue's quality events, in time order."""
        series = self.influx.query(
            f'SELECT "level", "value", "detail" FROM "quality" WHERE "venue" = \'{venue}\' '
            'GROUP BY "tap", "check"'
        )
        rows = [
            (s["tags"].get("tap") or None, s["tags"]["check"], level, int(ts), value, detail)
            for s in series
            for ts, level, value, detail in s["values"]
        ]
        return sorted(rows, key=lambda r: r[3])

    def stored(self, venue: str, measurement: str, field: str) -> int:
        series = self.influx.query(
            f'SELECT count("{field}") FROM "{measurement}" WHERE "venue" = \'{venue}\''
        )
        return int(series[0]["values"][0][1]) if series else 0


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp_path = tmp_path_factory.mktemp("stack")
    env = up_env(tmp_path)
    up, out = start_up(tmp_path, env)
    [key] = re.findall(r"API key +(tsk_[\w-]+)", out.read_text())
    influx = InfluxQL(InfluxSettings(url=env["TAPSENSE_INFLUX__URL"]))
    try:
        yield Stack(f"http://127.0.0.1:{env['TAPSENSE_API__PORT']}",
                    {"Authorization": f"Bearer {key}"}, int(env["TAPSENSE_MQTT__PORT"]),
                    influx, env, tmp_path)  # fmt: skip
    finally:
        influx.close()
        up.send_signal(signal.SIGINT)
        up.wait(120)


def register(stack: Stack, taps: dict[str, dict], **venue: object) -> tuple[str, MqttSettings]:
    """A venue of its own with these taps (id -> tap fields, `beer` as beer fields), and its
    device's broker login from the provisioning answer."""
    venue_id = f"e2e-{uuid.uuid4().hex[:8]}"
    stack.post("/venues", {"id": venue_id, "name": venue_id, "latitude": 52.09,
                           "longitude": 5.12, "region": "Utrecht", **venue})  # fmt: skip
    for tap_id, fields in taps.items():
        beer = fields.pop("beer", None)
        if beer is not None:
            made = stack.post("/beers", {**beer, "name": f"{venue_id} {beer['name']}"})
            fields["beer_id"] = made["id"]
        stack.post(f"/venues/{venue_id}/taps", {"id": tap_id, **fields})
    login = stack.post(f"/venues/{venue_id}/devices", {"id": "edge-1"})["mqtt"]
    broker = MqttSettings(port=stack.mqtt_port, username=login["username"],
                          password=login["password"])  # fmt: skip
    return venue_id, broker


def send(broker: MqttSettings, venue: str, messages: list[Telemetry]) -> None:
    client = mqtt.new_client(f"e2e-{uuid.uuid4().hex[:8]}", broker)
    client.connect(broker.host, broker.port)
    client.loop_start()
    topic = str(DeviceTopic(venue, "edge-1", TopicKind.TELEMETRY))
    try:
        for message in messages:
            info = client.publish(topic, encode(message), qos=1)
            info.wait_for_publish(10)
            assert info.rc == 0
    finally:
        client.disconnect()
        client.loop_stop()


def test_each_beers_serving_range_sets_its_taps_warm_limit(stack: Stack) -> None:
    venue, broker = register(stack, {
        "dubbel": {"beer": {"name": "dubbel", "style": "dubbel", "serving_min_c": 6,
                            "serving_max_c": 10}},
        "lager": {"beer": {"name": "lager", "serving_min_c": 2, "serving_max_c": 6}},
    })  # fmt: skip
    t0 = int(time.time() * 1000) - HOUR_MS
    temps = [Temperature(tap=tap, ts=t0 + s * 10_000, c=c)
             for s in range(30) for tap, c in (("dubbel", 8.5), ("lager", 6.5))]  # fmt: skip
    send(broker, venue, [Telemetry(v=1, seq=1, temps=temps)])
    assert wait_for(lambda: stack.stored(venue, "temperature", "c") == 60)
    assert wait_for(lambda: any(e[1] == "warm_beer" for e in stack.events(venue)))
    warm = [e[:4] for e in stack.events(venue) if e[1] == "warm_beer"]
    # The lager's limit is 6 °C, after the two-minute grace; 8.5 °C is in the dubbel's range.
    assert warm == [("lager", "warm_beer", "warning", t0 + 120_000)]


def pours(tap: str, start: int, count: int, every_ms: int = HOUR_MS) -> list[Pour]:
    """`count` pours of a litre, one every hour (slow enough that no forecast runs ahead)."""
    return [Pour(tap=tap, ts=start + k * every_ms, ml=1000.0, dur_ms=8000) for k in range(count)]


def test_a_30_litre_keg_warns_at_its_15_percent_and_a_recorded_change_clears_it(
    stack: Stack,
) -> None:
    venue, broker = register(stack, {"tap-30": {"keg_l": 30}})
    t0 = int(time.time() * 1000) - 40 * HOUR_MS
    send(broker, venue, [Telemetry(v=1, seq=1, pours=pours("tap-30", t0, 26))])
    assert wait_for(lambda: any(e[1] == "keg_low" for e in stack.events(venue)))
    [(tap, _, level, ts, _, left)] = [e for e in stack.events(venue) if e[1] == "keg_low"]
    # 4 L of 30 L left after 26 pours: under 15 % (4.5 L). A 50 L keg would be 48 % full.
    assert (tap, level, ts, left) == ("tap-30", "warning", t0 + 25 * HOUR_MS, 4000.0)

    # A new keg at 26 h, recorded; the probe reports a minute later: the alarm clears.
    at = t0 + 26 * HOUR_MS
    stack.post(f"/venues/{venue}/taps/tap-30/kegs", {"keg_l": 30, "at_ms": at})
    probe = Telemetry(v=1, seq=2, temps=[Temperature(tap="tap-30", ts=at + 60_000, c=4.0)])
    send(broker, venue, [probe])
    assert wait_for(lambda: len([e for e in stack.events(venue) if e[1] == "keg_low"]) == 2)
    cleared = [e for e in stack.events(venue) if e[1] == "keg_low"][-1]
    # As of the change, or of that reading if ingest had it before it saw the change.
    assert cleared[2] == "ok" and cleared[3] in (at, at + 60_000)
    # The new keg counts from the change: the same pours warn at the same point again.
    send(broker, venue, [Telemetry(v=1, seq=3, pours=pours("tap-30", at + HOUR_MS, 26))])
    assert wait_for(lambda: len([e for e in stack.events(venue) if e[1] == "keg_low"]) == 3)
    again = [e for e in stack.events(venue) if e[1] == "keg_low"][-1]
    assert (again[2], again[3], again[5]) == ("warning", at + 26 * HOUR_MS, 4000.0)


def test_a_keg_change_nobody_recorded_is_inferred_and_correctable(stack: Stack) -> None:
    venue, broker = register(stack, {"tap-30": {"keg_l": 30}})
    t0 = int(time.time() * 1000) - 48 * HOUR_MS
    # 36 litres from a 30 L keg: the 31st litre came from a new keg nobody recorded.
    send(broker, venue, [Telemetry(v=1, seq=1, pours=pours("tap-30", t0, 36))])
    kegs = f"{stack.api}/venues/{venue}/taps/tap-30/kegs"

    def inferred() -> list[dict]:
        return httpx.get(kegs, headers=stack.headers).json()["items"]  # type: ignore[no-any-return]

    assert wait_for(lambda: len(inferred()) == 1)
    [change] = inferred()
    assert (change["inferred"], change["keg_l"]) == (True, 30.0)
    assert change["at_ms"] == t0 + 30 * HOUR_MS - 8000  # the start of the first pour past empty
    levels = [(e[2], e[3]) for e in stack.events(venue) if e[1] == "keg_low"]
    assert levels[-2:] == [("critical", t0 + 29 * HOUR_MS), ("ok", t0 + 35 * HOUR_MS)]
    # Staff say it was a 20 L keg: confirmed, no longer inferred.
    response = httpx.patch(f"{kegs}/{change['id']}", json={"keg_l": 20},
                           headers=stack.headers)  # fmt: skip
    assert response.status_code == 200, response.text
    assert (response.json()["inferred"], response.json()["keg_l"]) == (False, 20.0)
    tap = httpx.get(f"{stack.api}/venues/{venue}/taps/tap-30", headers=stack.headers).json()
    assert tap["keg_l"] == 20.0


def test_opening_hours_and_the_cleaning_policy_come_from_the_registry(stack: Stack) -> None:
    closed = {day: "closed" for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    venue, broker = register(stack, {"tap-01": {}}, hours=closed, line_cleaning_days=0.01)
    t0 = int(time.time() * 1000) - HOUR_MS
    # 20 minutes of readings (the policy: clean every 14.4 minutes), and a pour: it is closed.
    temps = [Temperature(tap="tap-01", ts=t0 + s * 30_000, c=4.0 + (s % 3) / 10)
             for s in range(40)]  # fmt: skip
    pour = Pour(tap="tap-01", ts=t0 + 60_000, ml=300.0, dur_ms=3000)
    send(broker, venue, [Telemetry(v=1, seq=1, temps=temps, pours=[pour])])
    assert wait_for(lambda: {"after_hours_flow", "line_cleaning_overdue"}
                    <= {e[1] for e in stack.events(venue)})  # fmt: skip
    events = {e[1]: e for e in stack.events(venue)}
    assert events["after_hours_flow"][2:4] == ("warning", t0 + 60_000)
    overdue = events["line_cleaning_overdue"]
    assert (overdue[2], overdue[3]) == ("warning", t0 + 29 * 30_000)  # first past 14.4 min
    stack.post(f"/venues/{venue}/taps/tap-01/cleanings", {"at_ms": t0 + 40 * 30_000})
    assert wait_for(lambda: stack.events(venue)[-1][1:3] == ("line_cleaning_overdue", "ok"))


def test_a_field_tester_scores_a_scenario_played_on_the_stack(stack: Stack, tmp_path: Path) -> None:
    """`tapsense simulate --score`: the night of the leak, played through broker, ingest,
    registry and InfluxDB, held against what happened."""
    night = tmp_path / "night.yaml"
    base = Path(__file__).parent.parent / "scenarios" / "normal-week.yaml"
    night.write_text(
        f"extends: {base}\nname: leak-night\nstart: 2026-03-05T00:00:00+01:00\nduration: 8h\n"
        "events:\n  - {kind: leak, venue: cafe-dom, tap: tap-01, ml_per_min: 15,\n"
        "     at: 2026-03-05T02:00:00+01:00, duration: 4h}\n"
    )
    played = subprocess.run(
        [sys.executable, "-m", "stack.cli", "simulate", str(night), "--score"],
        env=stack.env, cwd=stack.cwd, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert played.returncode == 0, played.stderr[-3000:]
    card = played.stdout
    assert re.search(r"^leak +1 +1 +0 +5\.0 min", card, re.MULTILINE), card
    assert "false alarms: 0.00 per venue-week" in card and "flaps: 0" in card, card
