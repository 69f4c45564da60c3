"""Property-based fuzzing of the whole API from its OpenAPI document (schemathesis): whatever a
client sends, no 500, and every answer matches the status codes and schemas documented.

It calls a real uvicorn as an operator whose organisation has a venue, tap, beer and device,
so that generated requests reach the handlers, not only the authentication.
"""

from __future__ import annotations

from collections.abc import Iterator

import hypothesis
import pytest
import schemathesis

from tests.apiserver import ENDLESS, Tenant, bearer, make_tenant, serving

# Examples per operation: enough to hit every documented status on ~30 operations in about a
# minute on two cores; raise it locally with SCHEMATHESIS_EXAMPLES for a deeper run.
EXAMPLES = 25


@pytest.fixture(scope="module")
def tenant_and_url(tmp_path_factory: pytest.TempPathFactory, broker: object,
                   influx: object) -> Iterator[tuple[Tenant, str]]:  # fmt: skip
    from tests.conftest import make_settings
    from timeseries.influx import ensure_database

    settings = make_settings(tmp_path_factory.mktemp("fuzz"), broker, influx)  # type: ignore[arg-type]
    ensure_database(settings.influx)
    tenant = make_tenant(settings, "Fuzz brewery", "venue-f")
    with serving(settings) as client:
        yield tenant, str(client.base_url)


def test_no_request_makes_the_api_fail_or_break_its_contract(
    tenant_and_url: tuple[Tenant, str],
) -> None:
    """One hypothesis run per operation. (Schemathesis's own pytest integration,
    `from_fixture`, fails on pytest 9, so the operations are walked here.)"""
    tenant, url = tenant_and_url
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    failures: dict[str, str] = {}
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]
        if (operation.method.upper(), operation.path) in ENDLESS:
            continue
        operations += 1

        @hypothesis.settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(hypothesis.HealthCheck),
            derandomize=True,
            database=None,
        )
        @hypothesis.given(case=operation.as_strategy())
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(base_url=url, headers=bearer(tenant.operator_key))

        try:
            run()
        except (AssertionError, BaseExceptionGroup) as exc:  # schemathesis's FailureGroup
            failures[operation.label] = str(exc)[:3000]
    assert operations > 20
    assert failures == {}
