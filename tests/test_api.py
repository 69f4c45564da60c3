"""The HTTP API, served by a real uvicorn on a free port, over a real InfluxDB."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from edge.wire import Temperature
from ingest.quality import Check, Level, QualityEvent
from stack.services import free_port
from stack.settings import Settings
from tests.apiserver import Tenant, bearer, make_tenant, serving
from tests.conftest import Broker, Influx, make_settings
from timeseries.influx import V1Writer, ensure_database
from timeseries.lineproto import body, device_status, quality_events, temperatures

T0 = 1_750_000_000_000


@pytest.fixture
def settings(tmp_path: Path, broker: Broker, influx: Influx, registry_url: str) -> Settings:
    """Every API test runs on both registry engines, SQLite and PostgreSQL."""
    return make_settings(tmp_path, broker, influx, registry_url)


@pytest.fixture
def api(settings: Settings) -> Iterator[httpx.Client]:
    ensure_database(settings.influx)  # as the ingest worker does when it starts
    with serving(settings) as client:
        yield client


@pytest.fixture
def tenant(settings: Settings) -> Tenant:
    return make_tenant(settings, "Brewery", "bar-1")


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
        "registry": True,
    }


def test_live_tap_state_shows_latest_reading_pour_and_quality(
    api: httpx.Client, settings: Settings, tenant: Tenant
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

    response = api.get("/venues/bar-1/live", headers=bearer(tenant.owner_key))
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
        ("/venues/nobody-here/live", 404),
        ("/venues/bad%20id/live", 422),
        ("/venues/x'%20OR%20'1'='1/live", 422),
        (f"/venues/{'a' * 65}/live", 422),
        ("/beers/99999999999999999999999", 422),
        ("/venues?limit=100000", 422),
        ("/no-such-route", 404),
    ],
)
def test_errors_are_problem_json_with_a_reason(
    api: httpx.Client, tenant: Tenant, path: str, status: int
) -> None:
    response = api.get(path, headers=bearer(tenant.owner_key))
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status and problem["title"]
    assert problem.get("detail") or problem.get("errors")


def test_openapi_document_lists_the_routes(api: httpx.Client) -> None:
    paths = api.get("/openapi.json").json()["paths"]
    assert {"/health", "/metrics", "/venues/{venue}/live", "/venues/{venue}/devices"} <= set(paths)
    assert (
        "application/problem+json"
        in paths["/venues/{venue}/live"]["get"]["responses"]["404"]["content"]
    )


def test_health_is_503_when_influxdb_is_unreachable(settings: Settings) -> None:
    dead = settings.influx.model_copy(update={"url": f"http://127.0.0.1:{free_port()}"})
    with serving(settings.model_copy(update={"influx": dead})) as client:
        response = client.get("/health")
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert not checks["influxdb"]["ok"] and "refused" in checks["influxdb"]["detail"].lower()
    assert checks["broker"]["ok"]


def test_an_operator_builds_a_venue_and_its_owner_runs_it(
    api: httpx.Client, tenant: Tenant
) -> None:
    ops = bearer(tenant.operator_key)
    assert api.get("/organisation", headers=ops).json()["name"] == "Brewery"
    owner = api.post("/users", json={"email": "kim@cafe.test", "name": "Kim", "role": "owner"},
                     headers=ops)  # fmt: skip
    assert owner.status_code == 201, owner.text
    key = api.post(f"/users/{owner.json()['id']}/keys", json={"name": "laptop"}, headers=ops)
    assert key.status_code == 201 and key.json()["token"].startswith("tsk_")
    kim = bearer(key.json()["token"])
    beer = api.post("/beers", json={"name": "Dubbel", "style": "dubbel", "serving_min_c": 6,
                                    "serving_max_c": 10}, headers=ops)  # fmt: skip
    assert beer.status_code == 201, beer.text
    venue = {"id": "cafe-kim", "name": "Café Kim", "latitude": 52.37, "longitude": 4.9,
             "region": "Amsterdam", "owner_id": owner.json()["id"],
             "hours": {"fri": "16:00-02:00", "sat": "14:00-02:00"}}  # fmt: skip
    assert api.post("/venues", json=venue, headers=ops).status_code == 201
    assert api.post("/venues", json=venue, headers=ops).status_code == 409
    assert api.post("/venues", json={**venue, "id": "x"}, headers=kim).status_code == 403

    tap = {"id": "tap-01", "beer_id": beer.json()["id"], "keg_l": 30}
    assert api.post("/venues/cafe-kim/taps", json=tap, headers=kim).status_code == 201
    patched = api.patch("/venues/cafe-kim", json={"line_cleaning_days": 7}, headers=kim)
    assert patched.json()["line_cleaning_days"] == 7
    assert api.patch("/venues/cafe-kim", json={"owner_id": 1}, headers=kim).status_code == 403
    keg = api.post("/venues/cafe-kim/taps/tap-01/kegs", json={"keg_l": 20}, headers=kim)
    assert keg.status_code == 201 and keg.json()["beer_id"] == beer.json()["id"]
    assert api.get("/venues/cafe-kim/taps/tap-01", headers=kim).json()["keg_l"] == 20

    page = api.get("/venues?region=Amsterdam&limit=1", headers=ops).json()
    assert (page["total"], [v["id"] for v in page["items"]]) == (1, ["cafe-kim"])
    assert api.get("/venues?region=Nowhere", headers=ops).json()["total"] == 0
    assert api.get("/venues?offset=1", headers=kim).json() == {
        "items": [], "total": 1, "limit": 100, "offset": 1,
    }  # fmt: skip

    assert api.delete(f"/keys/{key.json()['id']}", headers=kim).status_code == 204
    assert api.get("/me", headers=kim).status_code == 401  # revoked at once


@pytest.mark.parametrize(
    "body",
    [
        {"id": "v", "name": "x", "latitude": 91, "longitude": 0, "region": "r"},
        {"id": "v", "name": "x", "latitude": float("nan"), "longitude": 0, "region": "r"},
        {"id": "v w", "name": "x", "latitude": 0, "longitude": 0, "region": "r"},
        {"id": "v", "name": "x\u0000", "latitude": 0, "longitude": 0, "region": "r"},
        {"id": "v", "name": "x" * 201, "latitude": 0, "longitude": 0, "region": "r"},
        {"id": "v", "name": "x", "latitude": 0, "longitude": 0, "region": "r", "timezone": "Mars"},
        {
            "id": "v",
            "name": "x",
            "latitude": 0,
            "longitude": 0,
            "region": "r",
            "hours": {"mon": "25:00-26:00"},
        },
        {"id": "v", "name": "x", "latitude": 0, "longitude": 0, "region": "r", "admin": True},
        {
            "id": "v",
            "name": "x",
            "latitude": 0,
            "longitude": 0,
            "region": "r",
            "owner_id": 2**70,
        },
    ],
)
def test_bad_venues_are_refused_with_the_field_and_reason(
    api: httpx.Client, tenant: Tenant, body: dict
) -> None:
    content = json.dumps(body).encode()  # Python writes NaN, as a hostile client might
    response = api.post("/venues", content=content, headers={
        **bearer(tenant.operator_key), "content-type": "application/json"})  # fmt: skip
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["loc"][0] == "body"


def test_oversized_and_malformed_bodies_are_refused(api: httpx.Client, tenant: Tenant) -> None:
    ops = {**bearer(tenant.operator_key), "content-type": "application/json"}
    assert api.post("/beers", content=b"{not json", headers=ops).status_code == 422
    huge = b'{"name": "' + b"x" * 5_000_000 + b'"}'
    assert api.post("/beers", content=huge, headers=ops).status_code in (413, 422)
    assert api.get("/me", headers=bearer(tenant.operator_key)).status_code == 200


def test_metrics_count_requests_by_route_template(api: httpx.Client, tenant: Tenant) -> None:
    api.get("/venues/bar-1", headers=bearer(tenant.owner_key))
    text = api.get("/metrics").text
    assert 'tapsense_api_requests_total{method="GET",route="/venues/{venue}",status="200"}' in text
    assert "bar-1" not in text
