"""End-to-end throughput: simulated agents -> Mosquitto -> ingest -> InfluxDB, with zero loss,
beside the raw limits of the broker and of InfluxDB measured in the same run.

    .venv/bin/python -m bench.e2e [--venues 10] [--taps 8] [--hours 2]

Starts its own Mosquitto and InfluxDB on free loopback ports, data in a temporary folder.
The agents' spools are filled first (a venue that was offline), then the agents connect and
the clock runs until InfluxDB holds every reading: that is the sustained rate, decode, quality
kernel and acknowledgement included. The ingest worker runs in its own process.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from edge import mqtt
from edge.wire import Telemetry, Temperature, encode
from registry.db import engine_for, migrate
from simulators.fleet import Fleet, simple_scenario
from simulators.provision import provision
from simulators.run import stored_readings
from stack.services import free_port, start_influxdb, start_mosquitto
from stack.settings import InfluxSettings, IngestSettings, MqttSettings, Settings, environment
from stack.up import start_ingest
from timeseries import lineproto
from timeseries.influx import InfluxQL, V1Writer, ensure_database

T0 = 1_750_000_000_000
READINGS_PER_MESSAGE = 50


def broker_raw(settings: MqttSettings, messages: int) -> float:
    """QoS 1 publish -> subscribe of 50-reading messages, one client each way: readings/s."""
    payload = encode(
        Telemetry(
            v=1, seq=1, temps=[Temperature(tap="tap-01", ts=T0 + k, c=4.25) for k in range(50)]
        )
    )
    received = threading.Event()
    count = 0

    def on_message(*_: object) -> None:
        nonlocal count
        count += 1
        if count == messages:
            received.set()

    sub = mqtt.new_client("bench-sub", settings)
    sub.on_message = on_message
    sub.connect(settings.host, settings.port)
    sub.subscribe("bench/raw", qos=1)
    sub.loop_start()
    pub = mqtt.new_client("bench-pub", settings)
    pub.max_inflight_messages_set(1000)
    pub.connect(settings.host, settings.port)
    pub.loop_start()
    time.sleep(0.5)
    started = time.perf_counter()
    for _ in range(messages):
        pub.publish("bench/raw", payload, qos=1)
    received.wait(300)
    elapsed = time.perf_counter() - started
    for client in (pub, sub):
        client.disconnect()
        client.loop_stop()
    return count * READINGS_PER_MESSAGE / elapsed


def influx_raw(settings: InfluxSettings, points: int, batch: int = 5000) -> float:
    """Pre-serialised line protocol, batches of 5,000, one connection: points/s."""
    ensure_database(settings)
    temps = [Temperature(tap=f"tap-{k % 100:02d}", ts=T0 + k, c=4.25) for k in range(points)]
    lines = lineproto.temperatures("bench-raw", 1, temps)
    bodies = [lineproto.body(lines[i : i + batch]) for i in range(0, points, batch)]
    writer = V1Writer(settings)
    started = time.perf_counter()
    for body in bodies:
        writer.write(body)
    elapsed = time.perf_counter() - started
    writer.close()
    return points / elapsed


def end_to_end(
    home: Path,
    mqtt_settings: MqttSettings,
    influx_settings: InfluxSettings,
    args: argparse.Namespace,
) -> tuple[float, int, int]:
    settings = Settings(
        home=home,
        mqtt=mqtt_settings,
        influx=influx_settings,
        ingest=IngestSettings(client_id="bench-ingest"),
    )
    env = {**os.environ, **environment(settings)}
    migrate(settings.registry_url)
    ingest = start_ingest(home / "logs", env)
    scenario = simple_scenario(
        args.venues,
        args.taps,
        sample_interval_s=5,
        start=datetime.fromtimestamp(T0 / 1000, UTC),
        duration_s=round(args.hours * 3600),
    )
    engine = engine_for(settings.registry_url)
    fleet = Fleet(scenario, mqtt_settings, home / "spool", credentials=provision(engine, scenario))
    engine.dispose()
    fleet.fast_forward(progress=True)  # not connected yet: fills the spools
    sent = fleet.truth.total
    influx = InfluxQL(influx_settings)
    try:
        started = time.perf_counter()
        fleet.connect()
        if not fleet.drain(timeout_s=1800):
            raise RuntimeError("agents did not drain their spools")
        while (count := stored_readings(influx, "venue-.*")) < sent:
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
    finally:
        fleet.close()
        ingest.stop()
        influx.close()
    return sent / elapsed, sent, count


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--venues", type=int, default=10)
    parser.add_argument("--taps", type=int, default=8)
    parser.add_argument("--hours", type=float, default=2.0, help="simulated hours per venue")
    parser.add_argument("--raw-messages", type=int, default=20_000)
    parser.add_argument("--raw-points", type=int, default=500_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tapsense-bench-") as tmp:
        home = Path(tmp)
        mq_port, ix_port, rpc_port = free_port(), free_port(), free_port()
        broker = start_mosquitto(home / "mosquitto", "127.0.0.1", mq_port)
        influxd = start_influxdb(home / "influxdb", "127.0.0.1", ix_port, rpc_port)
        try:
            mqtt_settings = MqttSettings(port=mq_port)
            influx_settings = InfluxSettings(url=f"http://127.0.0.1:{ix_port}", database="bench")
            e2e, sent, count = end_to_end(home, mqtt_settings, influx_settings, args)
            broker_rate = broker_raw(mqtt_settings, args.raw_messages)
            influx_rate = influx_raw(influx_settings, args.raw_points)
        finally:
            broker.stop()
            influxd.stop()
    print(f"\nend to end ({args.venues} agents x {args.taps} taps, {args.hours:g} h backlog each):")
    print(f"  {sent:,} readings sent, {count:,} stored, {sent - count:,} lost")
    print(f"  {e2e:,.0f} readings/s sustained, agents to InfluxDB, acknowledged after write")
    print(f"broker raw:   {broker_rate:,.0f} readings/s (QoS 1, 50 readings/message, 1 -> 1)")
    print(f"InfluxDB raw: {influx_rate:,.0f} points/s (line protocol, 5,000 points/POST)")
    print(
        f"ratios: end to end / broker raw = {e2e / broker_rate:.2f}, "
        f"end to end / InfluxDB raw = {e2e / influx_rate:.2f}"
    )


if __name__ == "__main__":
    main()
