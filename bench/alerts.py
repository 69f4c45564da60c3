"""Alert latency: from the reading that completes a warm-beer condition (the first one past
the grace period; the event carries its time) to the signed webhook's arrival, over many
alerts; beside it, measured in the same run, the part ingest takes (the same reading to its
quality event on the broker).

    .venv/bin/python -m bench.alerts [--venues 20] [--taps 5] [--grace 10]

Starts its own Mosquitto and InfluxDB on free loopback ports, a SQLite registry, the ingest
worker and the alerts service (in this process's threads, as `tapsense ingest` and `tapsense
alerts` run them), and a webhook receiver. Each tap sends a reading every 0.5 s in real time
(device time = this machine's clock), cold, then warming by 0.2 °C a second (a fast but
plausible failure) from a moment spread over 10 s; every venue's policy groups nothing
(`group_wait_s` 0: the default's 30 s is added on purpose, to make one message of a failing
cooler).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import msgspec

from alerts import admin
from alerts.admin import PolicyIn, WebhookIn
from alerts.service import AlertsService
from alerts.settings import AlertsSettings, AlertsSetup, SmtpSettings
from edge import mqtt
from edge.wire import (
    QUALITY_TOPIC_ROOT,
    DeviceTopic,
    QualityMessage,
    Telemetry,
    Temperature,
    TopicKind,
    encode,
)
from ingest.service import run_ingest
from registry import changes
from registry.db import engine_for, migrate, transaction
from registry.inputs import BeerIn, TapIn, VenueIn
from stack.services import free_port, start_influxdb, start_mosquitto
from stack.settings import InfluxSettings, IngestSettings, MqttSettings, QualitySettings, Settings

EVERY_S = 0.5
COLD_C, WARM_C, LIMIT_C = 4.0, 9.0, 6.0
WARMING_C_PER_S = 0.2
SPREAD_S = 10.0


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def register(url: str, venues: int, taps: int, hook_url: str) -> list[tuple[str, str]]:
    keys = []
    engine = engine_for(url)
    with transaction(engine) as db:
        org = changes.create_organisation(db, "Bench brewery")
        beer = changes.create_beer(db, org.id, BeerIn(name="lager", serving_max_c=LIMIT_C))
        for v in range(venues):
            venue = changes.create_venue(db, org.id, VenueIn(
                id=f"bench-{v:03d}", name=f"Bench {v}", latitude=52.0, longitude=5.0,
                region="Utrecht"))  # fmt: skip
            changes.provision_device(db, venue, "edge-1")
            for t in range(taps):
                changes.create_tap(db, venue, TapIn(id=f"tap-{t:02d}", beer_id=beer.id, keg_l=50))
                keys.append((venue.id, f"tap-{t:02d}"))
            admin.add_webhook(db, venue.id, WebhookIn(url=hook_url))  # type: ignore[arg-type]
            admin.set_policy(db, venue.id, PolicyIn(group_wait_s=0))
    engine.dispose()
    return keys


Key = tuple[str, str]  # venue, tap


def receiver(arrived: dict[Key, tuple[float, int]]) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = msgspec.json.decode(self.rfile.read(int(self.headers["content-length"])))
            now = time.time()
            for a in body["alerts"]:
                if a["check"] == "warm_beer" and a["change"] == "opened":
                    arrived.setdefault((body["venue"]["id"], a["subject"]), (now, a["ts"]))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{port}/hook"


def run(home: Path, m: MqttSettings, influx: InfluxSettings, args: argparse.Namespace) -> None:
    settings = Settings(home=home, mqtt=m, influx=influx,
                        ingest=IngestSettings(client_id="bench-ingest", batch_linger_ms=20),
                        quality=QualitySettings(warm_grace_s=args.grace))  # fmt: skip
    migrate(settings.registry_url)
    arrived: dict[Key, tuple[float, int]] = {}  # when, and the completing reading's time
    evented: dict[Key, tuple[float, int]] = {}
    server, hook_url = receiver(arrived)
    keys = register(settings.registry_url, args.venues, args.taps, hook_url)
    stop = threading.Event()
    subscribed = threading.Event()
    threading.Thread(target=run_ingest, args=(settings.for_ingest(), stop, subscribed)).start()
    assert subscribed.wait(120), "ingest did not start"
    setup = AlertsSetup(AlertsSettings(client_id="bench-alerts"), SmtpSettings(), m, influx,
                        settings.registry_url)  # fmt: skip
    engine = engine_for(settings.registry_url, serialised=True)
    service = AlertsService(setup, engine)
    threading.Thread(target=service.run, args=(stop,)).start()
    assert service.subscribed.wait(60), "alerts did not start"

    def on_event(_c: object, _u: object, message: object) -> None:
        e = msgspec.json.decode(message.payload, type=QualityMessage)  # type: ignore[attr-defined]
        if e.check == "warm_beer" and e.level != "ok":
            evented.setdefault((e.venue, e.tap or ""), (time.time(), e.ts))

    watcher = mqtt.new_client("bench-watch", m)
    watcher.on_message = on_event
    watcher.connect(m.host, m.port)
    watcher.subscribe(f"{QUALITY_TOPIC_ROOT}/+", qos=1)
    watcher.loop_start()
    sender = mqtt.new_client("bench-sender", m)
    sender.max_inflight_messages_set(1000)
    sender.connect(m.host, m.port)
    sender.loop_start()

    begin = time.time() + 1.0
    warm_at = {k: begin + 3.0 + (i * SPREAD_S / len(keys)) for i, k in enumerate(keys)}
    seq = 0
    to_limit_s = (LIMIT_C - COLD_C) / WARMING_C_PER_S
    deadline = max(warm_at.values()) + to_limit_s + args.grace + 10.0
    tick = begin
    while time.time() < deadline:
        time.sleep(max(0.0, tick - time.time()))
        now = time.time()
        by_venue: dict[str, list[Temperature]] = {}
        for key in keys:
            c = min(WARM_C, COLD_C + max(0.0, now - warm_at[key]) * WARMING_C_PER_S)
            by_venue.setdefault(key[0], []).append(
                Temperature(tap=key[1], ts=int(now * 1000), c=round(c, 2))
            )
        for venue, temps in by_venue.items():
            seq += 1
            topic = str(DeviceTopic(venue, "edge-1", TopicKind.TELEMETRY))
            sender.publish(topic, encode(Telemetry(v=1, seq=seq, temps=temps)), qos=1)
        tick += EVERY_S
    wait_until = time.time() + 30
    while len(arrived) < len(keys) and time.time() < wait_until:
        time.sleep(0.1)
    stop.set()
    for client in (sender, watcher):
        client.disconnect()
        client.loop_stop()
    server.shutdown()
    whole = [when - ts / 1000 for when, ts in arrived.values()]
    ingest_part = [when - ts / 1000 for when, ts in evented.values()]

    def figures(values: list[float]) -> str:
        return f"p50 {percentile(values, 50):.3f} s, p99 {percentile(values, 99):.3f} s"

    print(
        f"\nalert latency, {len(whole)} of {len(keys)} warm-beer alerts ({args.venues} venues "
        f"x {args.taps} taps), grace period {args.grace:g} s, group_wait 0:\n"
        f"  reading past the grace period -> webhook arrived:  {figures(whole)}, "
        f"max {max(whole):.3f} s\n"
        f"  the same reading -> quality event on the broker:   {figures(ingest_part)}\n"
        f"ratio: p50 whole / p50 ingest part = "
        f"{statistics.median(whole) / statistics.median(ingest_part):.2f}"
    )
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--venues", type=int, default=20)
    parser.add_argument("--taps", type=int, default=5)
    parser.add_argument("--grace", type=float, default=10.0, help="warm_grace_s, seconds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tapsense-bench-") as tmp:
        home = Path(tmp)
        mq, ix, rpc = free_port(), free_port(), free_port()
        broker = start_mosquitto(home / "mosquitto", "127.0.0.1", mq)
        influxd = start_influxdb(home / "influxdb", "127.0.0.1", ix, rpc)
        try:
            run(home, MqttSettings(port=mq), InfluxSettings(url=f"http://127.0.0.1:{ix}",
                                                           database="bench"), args)  # fmt: skip
        finally:
            broker.stop()
            influxd.stop()


if __name__ == "__main__":
    main()
