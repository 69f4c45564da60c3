"""The alerts API on a real uvicorn and registry: an owner lists, acknowledges and resolves,
with every change in the history; the live stream; a webhook's secret shown once; policy and
comments validated with reasons."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import httpx
import pytest

from alerts import store
from alerts.lifecycle import Signal
from registry.db import engine_for, transaction
from stack.settings import Settings
from tests.apiserver import Tenant, bearer, make_tenant, serving
from tests.conftest import Broker, Influx, make_settings
from timeseries.events import Check, Level

T0 = 1_772_812_800_000


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, broker: Broker,
          influx: Influx) -> Iterator[tuple[httpx.Client, Tenant, Settings]]:  # fmt: skip
    settings = make_settings(tmp_path_factory.mktemp("alerts-api"), broker, influx)
    tenant = make_tenant(settings, "Alert brewery", "venue-al")
    with serving(settings) as client:
        yield client, tenant, settings


def raise_warm(settings: Settings, venue: str, tap: str, ts: int) -> int:
    engine = engine_for(settings.registry_url, serialised=True)
    try:
        signal = Signal(venue, tap, Check.WARM_BEER, Level.CRITICAL, ts, 9.0, ts - 60_000)
        store.retrying(engine, lambda db: store.record(db, signal, T0))
        with transaction(engine) as db:
            return db.scalars(store.select(store.Alert.id).order_by(store.Alert.id.desc())).first()  # type: ignore[return-value]
    finally:
        engine.dispose()


def test_an_owner_acknowledges_then_resolves_with_a_comment(world: tuple) -> None:
    client, tenant, settings = world
    alert_id = raise_warm(settings, tenant.venue, "tap-02", T0)
    owner = bearer(tenant.owner_key)
    listed = client.get("/alerts", params={"state": "open", "check": "warm_beer"}, headers=owner)
    assert alert_id in [a["id"] for a in listed.json()["items"]]
    ack = client.post(f"/alerts/{alert_id}/acknowledge", json={"comment": "on it"}, headers=owner)
    assert ack.status_code == 200 and ack.json()["state"] == "acknowledged"
    again = client.post(f"/alerts/{alert_id}/acknowledge", json={}, headers=owner)
    assert again.status_code == 200  # harmless
    no_comment = client.post(f"/alerts/{alert_id}/resolve", json={}, headers=owner)
    assert no_comment.status_code == 422 and "comment" in no_comment.text
    done = client.post(f"/alerts/{alert_id}/resolve", json={"comment": "cooler fixed"},
                       headers=owner)  # fmt: skip
    assert done.status_code == 200 and done.json()["state"] == "resolved"
    history = done.json()["history"]
    assert [h["change"] for h in history] == ["opened", "acknowledged", "resolved"]
    assert history[1]["by_user_id"] == tenant.owner_id and history[1]["comment"] == "on it"
    assert history[2]["comment"] == "cooler fixed"
    twice = client.post(f"/alerts/{alert_id}/resolve", json={"comment": "x"}, headers=owner)
    assert twice.status_code == 409
    resolved = client.get("/alerts", params={"state": "resolved"}, headers=owner).json()
    assert alert_id in [a["id"] for a in resolved["items"]]


def test_bad_input_is_refused_with_its_reason(world: tuple) -> None:
    client, tenant, _ = world
    owner = bearer(tenant.owner_key)
    for params in ({"state": "burning"}, {"check": "'; DROP TABLE alerts"},
                   {"since_ms": "-1"}, {"venue": "x" * 65}):  # fmt: skip
        assert client.get("/alerts", params=params, headers=owner).status_code == 422, params
    policy = f"/venues/{tenant.venue}/alert-policy"
    for body in ({"group_wait_s": -1}, {"min_severity": "ok"}, {"only_when_open": ["nope"]},
                 {"repeat_after_s": 1e12}, {"surprise": 1}, {"also_email": ["not an address"]},
                 {"also_email": [f"a{i}@b.example" for i in range(21)]}):  # fmt: skip
        answer = client.put(policy, json=body, headers=owner)
        assert answer.status_code == 422, body
        assert answer.headers["content-type"].startswith("application/problem+json")
    hooks = f"/venues/{tenant.venue}/webhooks"
    for url in ("ftp://example.com/x", "not a url", "http://" + "a" * 3000 + ".example"):
        assert client.post(hooks, json={"url": url}, headers=owner).status_code == 422, url
    comment = {"comment": "x" * 2001}
    assert client.post("/alerts/1/acknowledge", json=comment, headers=owner).status_code in (
        404, 422)  # fmt: skip


def test_a_policy_is_kept_and_the_defaults_shown_until_then(world: tuple) -> None:
    client, tenant, _ = world
    owner = bearer(tenant.owner_key)
    policy = f"/venues/{tenant.venue}/alert-policy"
    assert client.get(policy, headers=owner).json()["group_wait_s"] == 30.0
    body = {"min_severity": "critical", "group_wait_s": 0, "only_when_open": ["warm_beer"],
            "also_email": ["manager@bar.example"]}  # fmt: skip
    assert client.put(policy, json=body, headers=owner).status_code == 200
    shown = client.get(policy, headers=owner).json()
    assert shown["min_severity"] == "critical" and shown["only_when_open"] == ["warm_beer"]
    assert shown["also_email"] == ["manager@bar.example"]


def test_a_webhook_secret_is_shown_once(world: tuple) -> None:
    client, tenant, _ = world
    owner = bearer(tenant.owner_key)
    hooks = f"/venues/{tenant.venue}/webhooks"
    made = client.post(hooks, json={"url": "https://bar.example/tapsense"}, headers=owner)
    assert made.status_code == 201
    assert made.json()["secret"].startswith("whsec_")
    listed = client.get(hooks, headers=owner).json()
    assert made.json()["id"] in [h["id"] for h in listed]
    assert all("secret" not in h for h in listed)
    test = client.post(f"{hooks}/{made.json()['id']}/test", headers=owner)
    assert test.status_code == 202 and test.json()["state"] == "pending"
    pending = client.get("/notifications", params={"state": "pending"}, headers=owner).json()
    assert test.json()["id"] in [n["id"] for n in pending["items"]]
    assert client.delete(f"{hooks}/{made.json()['id']}", headers=owner).status_code == 204


def test_the_stream_shows_changes_as_they_happen(world: tuple) -> None:
    client, tenant, settings = world
    seen: list[dict] = []
    ready = threading.Event()

    def listen() -> None:
        with client.stream("GET", "/alerts/stream", headers=bearer(tenant.owner_key),
                           timeout=30) as answer:  # fmt: skip
            assert answer.headers["content-type"].startswith("text/event-stream")
            ready.set()
            for line in answer.iter_lines():
                if line.startswith("data:"):
                    seen.append(json.loads(line[5:]))
                    return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert ready.wait(30)
    alert_id = raise_warm(settings, tenant.venue, "tap-03", T0 + 1)
    listener.join(30)
    assert [(a["id"], a["history"][-1]["change"]) for a in seen] == [(alert_id, "opened")]


def test_an_owner_chooses_the_language_they_read(world: tuple) -> None:
    client, tenant, _ = world
    owner = bearer(tenant.owner_key)
    path = f"/users/{tenant.owner_id}"
    assert client.patch(path, json={"language": "fr"}, headers=owner).status_code == 422
    changed = client.patch(path, json={"language": "nl"}, headers=owner)
    assert changed.status_code == 200 and changed.json()["language"] == "nl"
    assert client.get(path, headers=owner).json()["language"] == "nl"
    assert client.patch(path, json={"language": None}, headers=owner).status_code == 422
