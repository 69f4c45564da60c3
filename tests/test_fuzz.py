"""Fuzzing at every input boundary: MQTT telemetry and status (through the worker's own path, to
the real InfluxDB), scenario files, settings (TOML file and environment), and the HTTP API's
bodies and query strings beyond what schemathesis generates.

The only outcomes allowed: accepted, or refused with a reason; never an unforeseen exception,
never a 500. The default run is short and repeatable (derandomised); the slow run
(`scripts/test.sh -m slow -s`) takes 100,000 random inputs per boundary and prints its figures
(the README has them).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote, quote_from_bytes, urlencode

import httpx
import hypothesis
import msgspec
import pytest
from hypothesis import strategies as st

from simulators import scenario as sc
from stack.settings import Settings, SettingsError, load_settings
from tests.apiserver import ENDLESS, Tenant, bearer, make_tenant, serving
from tests.conftest import make_settings
from tests.fuzzing import (
    STATUS,
    TELEMETRY,
    IngestJudge,
    any_payload,
    hostile_readings,
    hostile_values,
    mutated,
    valid_status,
    valid_telemetry,
)
from timeseries.influx import ensure_database

DEFAULT_EXAMPLES = 200
SLOW_EXAMPLES = 100_000
REPO = Path(__file__).resolve().parent.parent


def run_property(examples: int, strategy: st.SearchStrategy, check: Callable) -> None:  # type: ignore[type-arg]
    """`check` over `examples` inputs: derandomised in the default run, random in the slow."""
    slow = examples > DEFAULT_EXAMPLES

    @hypothesis.settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(hypothesis.HealthCheck),
        derandomize=not slow,
        # The slow run keeps what it finds (`.hypothesis/`), so a failure can be replayed.
        database=hypothesis.database.DirectoryBasedExampleDatabase(REPO / ".hypothesis")
        if slow
        else None,
        phases=[hypothesis.Phase.generate, hypothesis.Phase.shrink],
    )
    @hypothesis.given(strategy)
    def run(value: object) -> None:
        check(value)

    run()


def sizes(slow: bool) -> int:
    return SLOW_EXAMPLES if slow else DEFAULT_EXAMPLES


BOTH = [pytest.param(False, id="default"), pytest.param(True, id="100k", marks=pytest.mark.slow)]


@pytest.fixture
def judge(settings: Settings) -> Iterator[IngestJudge]:
    judge = IngestJudge(settings)
    yield judge
    judge.close()


@pytest.mark.parametrize("slow", BOTH)
def test_any_telemetry_payload_is_stored_or_refused_with_a_reason(
    judge: IngestJudge, slow: bool
) -> None:
    run_property(sizes(slow), any_payload(valid_telemetry()),
                 lambda payload: judge.judge(TELEMETRY, payload))  # fmt: skip
    judge.flush()
    print(f"\ntelemetry: {judge.figures()}")
    assert judge.tally["stored"] and judge.tally["refused"], "the inputs reached both outcomes"


@pytest.mark.parametrize("slow", BOTH)
def test_any_status_payload_is_stored_or_refused_with_a_reason(
    judge: IngestJudge, slow: bool
) -> None:
    def check(payload: bytes) -> None:
        outcome = judge.judge(STATUS, payload)
        assert (outcome.stored, outcome.refused) in {(1, 0), (0, 1)}

    run_property(sizes(slow), any_payload(valid_status()), check)
    judge.flush()
    print(f"\nstatus: {judge.figures()}")


@pytest.mark.parametrize("slow", BOTH)
def test_every_reading_of_a_valid_envelope_is_stored_or_refused_alone(
    judge: IngestJudge, slow: bool
) -> None:
    """Readings holding anything JSON can: each one is a point or a dead letter of its own."""

    def check(payload_and_count: tuple[bytes, int]) -> None:
        payload, count = payload_and_count
        outcome = judge.judge(TELEMETRY, payload)
        if not outcome.whole:
            assert outcome.stored + outcome.refused == count

    run_property(sizes(slow), hostile_readings(), check)
    judge.flush()
    print(f"\nreadings: {judge.figures()}")


def scenario_texts() -> st.SearchStrategy[bytes]:
    ready = [p.read_bytes() for p in sorted((REPO / "scenarios").glob("*.yaml"))]
    return st.one_of(st.binary(max_size=2048), mutated(st.sampled_from(ready)))


@pytest.mark.parametrize("slow", BOTH)
def test_any_scenario_file_loads_or_is_refused_with_its_file_and_line(
    tmp_path: Path, slow: bool
) -> None:
    for base in (REPO / "scenarios").glob("*.yaml"):  # mutated files may `extends` their base
        (tmp_path / base.name).write_bytes(base.read_bytes())
    path = tmp_path / "fuzzed.yaml"
    outcomes = {"valid": 0, "refused": 0}

    def check(text: bytes) -> None:
        path.write_bytes(text)
        try:
            sc.load(path)
            outcomes["valid"] += 1
        except sc.ScenarioError as exc:
            assert str(exc).startswith(str(path))
            outcomes["refused"] += 1

    started = time.monotonic()
    run_property(sizes(slow), scenario_texts(), check)
    print(f"\nscenario files: {sum(outcomes.values()):,} inputs in "
          f"{time.monotonic() - started:.0f} s: {outcomes}, 0 crashes")  # fmt: skip
    assert outcomes["refused"]


def settings_texts() -> st.SearchStrategy[bytes]:
    doc = (REPO / "docs" / "settings.md").read_text()
    toml = doc.split("```toml\n", 1)[1].split("```", 1)[0].encode()
    return st.one_of(st.binary(max_size=1024), mutated(st.just(toml)), st.just(toml))


ENV_NAMES = [
    "TAPSENSE_HOME", "TAPSENSE_MQTT__PORT", "TAPSENSE_MQTT__HOST", "TAPSENSE_MQTT",
    "TAPSENSE_INFLUX__URL", "TAPSENSE_INFLUX__TIMEOUT_S", "TAPSENSE_INGEST__RECEIVE_MAXIMUM",
    "TAPSENSE_INGEST__BATCH_MAX_MESSAGES", "TAPSENSE_QUALITY__WARM_MAX_C", "TAPSENSE_QUALITY",
    "TAPSENSE_REGISTRY__URL", "TAPSENSE_API__PORT", "TAPSENSE_INGEST__VENUE_FILTER",
]  # fmt: skip


@pytest.mark.parametrize("slow", BOTH)
def test_any_settings_load_or_are_refused_with_every_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slow: bool
) -> None:
    for name in list(os.environ):
        if name.startswith("TAPSENSE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "fuzzed.toml"
    outcomes = {"valid": 0, "refused": 0}
    # What an environment can hold: no NUL, no lone surrogates.
    env_text = st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]),
                       max_size=40)  # fmt: skip
    env_values = st.one_of(env_text, hostile_values.map(str).filter(
        lambda v: "\x00" not in v and v.isprintable()))  # fmt: skip
    inputs = st.tuples(settings_texts(), st.dictionaries(st.sampled_from(ENV_NAMES), env_values,
                                                         max_size=3))  # fmt: skip
    before = dict(os.environ)

    def check(given: tuple[bytes, dict[str, str]]) -> None:
        text, env = given
        config.write_bytes(text)
        try:
            os.environ.update(env, TAPSENSE_CONFIG=str(config))
            load_settings()
            outcomes["valid"] += 1
        except SettingsError as exc:
            assert str(exc).strip()
            outcomes["refused"] += 1
        finally:  # nothing of this input may reach the next one, or another test
            os.environ.clear()
            os.environ.update(before)

    started = time.monotonic()
    run_property(sizes(slow), inputs, check)
    print(f"\nsettings: {sum(outcomes.values()):,} inputs in "
          f"{time.monotonic() - started:.0f} s: {outcomes}, 0 crashes")  # fmt: skip
    assert outcomes["valid"] and outcomes["refused"]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, broker: object,
        influx: object) -> Iterator[tuple[Tenant, httpx.Client]]:  # fmt: skip
    settings = make_settings(tmp_path_factory.mktemp("api-fuzz"), broker, influx)  # type: ignore[arg-type]
    ensure_database(settings.influx)
    tenant = make_tenant(settings, "Fuzz brewery", "venue-fz")
    with serving(settings) as client:
        yield tenant, client


def operations(client: httpx.Client, tenant: Tenant) -> list[tuple[str, str, list[str]]]:
    """(method, path with the tenant's ids, body property names) of every API operation."""
    document = client.get("/openapi.json").json()
    found = []
    for template, methods in document["paths"].items():
        path = template
        for name, value in tenant.ids.items():
            path = path.replace("{" + name + "}", value)
        for method, operation in methods.items():
            ref = (operation.get("requestBody", {}).get("content", {})
                   .get("application/json", {}).get("schema", {}).get("$ref"))  # fmt: skip
            props = list(document["components"]["schemas"][ref.rsplit("/", 1)[1]]
                         .get("properties", {})) if ref else []  # fmt: skip
            found.append((method.upper(), path, props))
    return found


HOSTILE_QUERIES = [
    "?limit=-1", "?limit=1e309", "?offset=99999999999999999999", "?limit=%00", "?region=%ff%fe",
    "?limit=1&limit=2", "?" + "a=1&" * 2000, "?style=" + "x" * 10_000,
]  # fmt: skip


@st.composite
def requests(draw: st.DrawFn, ops: list[tuple[str, str, list[str]]]) -> tuple[str, str, bytes]:
    method, path, props = draw(st.sampled_from(ops))
    printable = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=60)
    any_bytes = st.binary(max_size=60).map(quote_from_bytes)
    known = st.tuples(st.sampled_from(["limit", "offset", "region", "owner", "style"]),
                      st.one_of(any_bytes, hostile_values.map(str).map(quote)))  # fmt: skip
    query = draw(st.one_of(st.just(""), printable.map(lambda q: "?" + q),
                           any_bytes.map(lambda q: "?" + q),
                           st.lists(known, max_size=3).map(lambda kv: "?" + urlencode(kv)),
                           st.sampled_from(HOSTILE_QUERIES)))  # fmt: skip
    if method == "GET":
        return method, path + query, b""
    objects = st.fixed_dictionaries({}, optional={p: hostile_values for p in props}).map(
        msgspec.json.encode
    )
    body = draw(st.one_of(st.binary(max_size=512), objects, mutated(objects)))
    return method, path + query, body


@pytest.mark.parametrize("slow", BOTH)
def test_any_request_body_or_query_gets_a_problem_not_a_500(
    api: tuple[Tenant, httpx.Client], slow: bool
) -> None:
    tenant, client = api
    # DELETE takes no body and would empty the tenant that the other requests need.
    ops = [op for op in operations(client, tenant)
           if op[0] != "DELETE" and (op[0], op[1]) not in ENDLESS]  # fmt: skip
    answered: dict[int, int] = {}

    def check(request: tuple[str, str, bytes]) -> None:
        method, path, body = request
        response = client.request(method, path, content=body, headers={
            **bearer(tenant.operator_key), "content-type": "application/json"})  # fmt: skip
        answered[response.status_code] = answered.get(response.status_code, 0) + 1
        assert response.status_code < 500, (method, path, body[:200], response.text[:300])
        if response.status_code >= 400:
            assert response.headers["content-type"] == "application/problem+json"

    started = time.monotonic()
    run_property(sizes(slow), requests(ops), check)
    print(f"\nAPI: {sum(answered.values()):,} requests in {time.monotonic() - started:.0f} s, "
          f"by status {dict(sorted(answered.items()))}, 0 answered 5xx")  # fmt: skip
    assert any(code < 300 for code in answered) and any(code >= 400 for code in answered)
