"""Tenant isolation, generated from the app's route table so that no route can skip it.

Three venues: A and B belong to two owners of one organisation, C to another organisation.
For every route with a path parameter and every method it has, owner A asking about B's
objects, owner A asking about C's, and A's operator asking about C's all get 404 (or 403),
whatever they send; the rightful caller gets past the check on the same request. Beers are an
organisation's catalogue: its owners may read them, so owners of one organisation share them.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from api.app import create_app, route_table
from stack.settings import Settings
from tests.apiserver import Tenant, bearer, make_tenant, serving
from tests.conftest import Broker, Influx, make_settings

# Routes anyone may call, and routes with a path parameter that is not a tenant's object.
PUBLIC = {"/health", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
PARAMETER = re.compile(r"{(\w+)}")
SHARED_IN_ORGANISATION = {"beer_id", "campaign_id"}  # an organisation's, seen by its owners


def routes(settings: Settings) -> list[tuple[str, str]]:
    app = create_app(settings.for_api())
    found = [
        (m, route.path) for route in route_table(app.routes) for m in sorted(route.methods or ())
    ]
    # The walk must see what the OpenAPI document lists, or it misses routes.
    documented = {(m.upper(), path) for path, ops in app.openapi()["paths"].items() for m in ops}
    assert documented <= set(found)
    assert len(found) > 20
    return found


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def tenancy_settings(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    broker: Broker,
    influx: Influx,
) -> Settings:
    """The tenancy checks on both registry engines, SQLite and PostgreSQL."""
    home = tmp_path_factory.mktemp("tenancy")
    url = None if request.param == "sqlite" else request.getfixturevalue("postgres").new_database()
    return make_settings(home, broker, influx, url)


@pytest.fixture(scope="module")
def world(tenancy_settings: Settings) -> Iterator[
        tuple[httpx.Client, dict[str, Tenant], list[tuple[str, str]]]]:  # fmt: skip
    settings = tenancy_settings
    a = make_tenant(settings, "Brewery One", "venue-a")
    b = make_tenant(settings, "", "venue-b", a.operator_key, a.organisation_id)
    c = make_tenant(settings, "Brewery Two", "venue-c")
    with serving(settings) as client:
        yield client, {"a": a, "b": b, "c": c}, routes(settings)


def url(path: str, target: Tenant) -> str:
    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        assert name in target.ids, f"{path}: no test value for {{{name}}}: add it to Tenant.ids"
        return target.ids[name]

    return PARAMETER.sub(fill, path)


# A body the route would accept if the caller could see the object: the check must come first.
NEARLY_VALID = {"name": "x", "id": "new-thing", "keg_l": 30.0, "email": "x@y.test",
                "role": "owner"}  # fmt: skip


def test_every_route_but_the_public_ones_needs_a_key(world: tuple) -> None:
    client, tenants, table = world
    for method, path in table:
        if path in PUBLIC:
            continue
        response = client.request(method, url(path, tenants["a"]), json=NEARLY_VALID)
        assert response.status_code == 401, (method, path, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        forged = bearer("tsk_000000000000_" + "A" * 43)
        response = client.request(method, url(path, tenants["a"]), json={}, headers=forged)
        assert response.status_code == 401, (method, path)


@pytest.mark.parametrize(
    ("caller", "target"),
    [("owner a", "b"), ("owner a", "c"), ("operator a", "c"), ("owner b", "a")],
)
def test_no_route_shows_or_changes_another_tenants_objects(
    world: tuple, caller: str, target: str
) -> None:
    client, tenants, table = world
    role, whose = caller.split()
    token = getattr(tenants[whose], f"{'owner' if role == 'owner' else 'operator'}_key")
    same_organisation = tenants[whose].organisation_id == tenants[target].organisation_id
    checked = 0
    for method, path in table:
        parameters = set(PARAMETER.findall(path))
        if path in PUBLIC or not parameters:
            continue
        if same_organisation and parameters <= SHARED_IN_ORGANISATION and method == "GET":
            continue
        response = client.request(
            method, url(path, tenants[target]), json=NEARLY_VALID, headers=bearer(token)
        )
        assert response.status_code in (403, 404), (caller, method, path, response.text)
        checked += 1
    assert checked >= 20


def test_lists_show_only_the_callers_venues(world: tuple) -> None:
    client, tenants, _ = world
    a, b = tenants["a"], tenants["b"]

    def venues(token: str) -> set[str]:
        response = client.get("/venues", headers=bearer(token))
        assert response.status_code == 200
        return {v["id"] for v in response.json()["items"]}

    assert venues(a.owner_key) == {"venue-a"}
    assert venues(b.owner_key) == {"venue-b"}
    assert venues(a.operator_key) == {"venue-a", "venue-b"}
    users = client.get("/users", headers=bearer(a.owner_key)).json()["items"]
    assert [u["id"] for u in users] == [a.owner_id]
    beers = client.get("/beers", headers=bearer(tenants["c"].operator_key)).json()["items"]
    assert [beer["name"] for beer in beers] == ["venue-c pils"]


def test_a_device_key_reads_only_its_own_configuration(world: tuple) -> None:
    client, tenants, _ = world
    a = tenants["a"]
    made = client.post(
        "/venues/venue-a/devices", json={"id": "edge-7"}, headers=bearer(a.owner_key)
    )
    assert made.status_code == 201, made.text
    device_key = made.json()["api_key"]
    me = client.get("/device", headers=bearer(device_key))
    assert me.status_code == 200
    assert me.json()["device"]["id"] == "edge-7" and me.json()["mqtt"]["password"] is None
    assert client.get("/venues/venue-a", headers=bearer(device_key)).status_code == 403
    assert client.get("/venues", headers=bearer(device_key)).status_code == 403
    assert client.get("/device", headers=bearer(a.owner_key)).status_code == 403


def test_the_rightful_caller_gets_past_the_check_on_every_route(
    world: tuple, tenancy_settings: Settings
) -> None:
    """The control: the same requests by a tenant's own operator are not refused (so the 404s
    above were the tenant check, not a wrong URL). Deletions go last, deepest first, on a
    tenant of this test's own, so the other tests' world is left as it was."""
    client, _, table = world
    c = make_tenant(tenancy_settings, "Brewery Three", "venue-d")
    ordered = sorted(table, key=lambda mp: (mp[0] == "DELETE", -mp[1].count("/")))
    for method, path in ordered:
        if path in PUBLIC or not PARAMETER.search(path):
            continue
        response = client.request(method, url(path, c), json={}, headers=bearer(c.operator_key))
        assert response.status_code not in (401, 403, 404), (method, path, response.text)
