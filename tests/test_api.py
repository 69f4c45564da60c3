"""The HTTP API, served by a real uvicorn on a free port, over a real InfluxDB."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
import uvicorn

from api.app import create_app
from edge.wire import Temperature
from ingest.deadletter import DeadLetterStore
from ingest.influx import V1Writer, ensure_database
from ingest.lineproto import body, device_status, quality_events, temperatures
from ingest.quality import Check, Level, QualityEvent
from stack.services import free_port
from stack.settings import ApiSettings, Settings

T0 = 1_750_000_000_000


@contextmanager
def serving(settings: Settings) -> Iterator[httpx.Client]:
    settings = settings.model_copy(update={"api": ApiSettings(port=free_port())})
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=settings.api.port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    with httpx.Client(base_url=f"http://127.0.0.1:{settings.api.port}", timeout=10) as client:
        yield client
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def api(settings: Settings) -> Iterator[httpx.Client]:
    DeadLetterStore(settings.deadletter_path).close()
    ensure_database(settings.influx)  # as the ingest worker does when it starts
    with serving(settings) as client:
        yield client


def write(settings: Settings, lines: list[str]) -> None:
    writer = V1Writer(settings.influx)
    writer.write(body(lines))
    writer.close()


def test_health_reports_each_backing_service(api: httpx.Client) -> None:
    response = api.get("/health")
    assert response.status_code == 200
    assert {name: check["ok"] for name, check in response.json()["checks"].items()} == {
        "broker": True,
        "influxdb": True,
        "database": True,
    }


def test_live_tap_state_shows_latest_reading_pour_and_quality(
    api: httpx.Client, settings: Settings
) -> None:
    lines = temperatures(
        "bar-1",
        1,
        [
            Temperature(tap="tap-01", ts=T0, c=4.0),
            Temperature(tap="tap-01", ts=T0 + 5000, c=8.5),
            Temperature(tap="tap-02", ts=T0 + 5000, c=3.9),
        ],
    )
    lines += [f"pour,venue=bar-1,tap=tap-02 ml=500.0,dur_ms=4000i,seq=1i {T0 + 2000}"]
    lines += quality_events(
        [QualityEvent("bar-1", "tap-01", Check.WARM_BEER, Level.WARNING, T0 + 5000, 8.5, T0)]
    )
    lines += [device_status("bar-1", "edge-1", "online", T0)]
    lines += temperatures("bar-2", 1, [Temperature(tap="tap-09", ts=T0, c=4.0)])
    write(settings, lines)

    response = api.get("/venues/bar-1/taps")
    assert response.status_code == 200
    taps = {t["tap"]: t for t in response.json()["taps"]}
    assert set(taps) == {"tap-01", "tap-02"}
    assert (taps["tap-01"]["temperature_c"], taps["tap-01"]["temperature_at_ms"]) == (
        8.5,
        T0 + 5000,
    )
    assert (taps["tap-01"]["warm_beer"], taps["tap-01"]["warm_beer_since_ms"]) == (
        "warning",
        T0 + 5000,
    )
    assert taps["tap-02"]["warm_beer"] == "ok"
    assert (taps["tap-02"]["last_pour_ml"], taps["tap-02"]["last_pour_at_ms"]) == (500.0, T0 + 2000)


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/venues/nobody-here/taps", 404),
        ("/venues/bad%20id/taps", 422),
        ("/venues/x'%20OR%20'1'='1/taps", 422),
        (f"/venues/{'a' * 65}/taps", 422),
        ("/no-such-route", 404),
    ],
)
def test_errors_are_problem_json_with_a_reason(api: httpx.Client, path: str, status: int) -> None:
    response = api.get(path)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status and problem["title"]
    assert problem.get("detail") or problem.get("errors")


def test_openapi_document_lists_the_routes(api: httpx.Client) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    assert {"/health", "/venues/{venue}/taps"} <= set(paths)
    assert (
        "application/problem+json"
        in paths["/venues/{venue}/taps"]["get"]["responses"]["404"]["content"]
    )


def test_health_is_503_when_influxdb_is_unreachable(settings: Settings) -> None:
    dead = settings.influx.model_copy(update={"url": f"http://127.0.0.1:{free_port()}"})
    with serving(settings.model_copy(update={"influx": dead})) as client:
        response = client.get("/health")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert not checks["influxdb"]["ok"] and "refused" in checks["influxdb"]["detail"].lower()
    assert checks["broker"]["ok"]
