"""The FastAPI application. The lifespan owns the long-lived clients; routes stay thin.

Every route but `/health`, `/metrics` and the documents needs an API key; what a key may see
is decided in `registry.access` and enforced by the dependencies in `api.deps`.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import asynccontextmanager
from typing import Literal

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel
from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from starlette.routing import BaseRoute

from api import metrics, problems
from api.deps import InfluxDep, SetupDep
from api.routes import alerts, beers, coupons, devices, people, reports, taps, venues
from api.settings import ApiSetup
from registry.access import AccessError
from registry.db import engine_for, open_registry, session_factory
from timeseries.influx import InfluxError, InfluxQL


class ServiceCheck(BaseModel):
    ok: bool
    detail: str


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    checks: dict[str, ServiceCheck]


def _broker_check(setup: ApiSetup) -> ServiceCheck:
    m = setup.mqtt
    try:
        with socket.create_connection((m.host, m.port), timeout=1):
            return ServiceCheck(ok=True, detail=f"{m.host}:{m.port} accepts connections")
    except OSError as exc:
        return ServiceCheck(ok=False, detail=f"{m.host}:{m.port}: {exc}")


def _influx_check(influx: InfluxQL) -> ServiceCheck:
    try:
        influx.query("SHOW MEASUREMENTS LIMIT 1")
        return ServiceCheck(ok=True, detail="answers queries")
    except InfluxError as exc:
        return ServiceCheck(ok=False, detail=str(exc))


def _registry_check(engine: Engine) -> ServiceCheck:
    try:
        with engine.connect() as db:
            db.execute(text("SELECT 1"))
        return ServiceCheck(ok=True, detail="answers queries")
    except SQLAlchemyError as exc:
        return ServiceCheck(ok=False, detail=str(exc).splitlines()[0])


def create_app(setup: ApiSetup) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = open_registry(setup.registry_url)
        serial = engine_for(setup.registry_url, serialised=True)
        app.state.setup = setup
        app.state.engine = engine
        app.state.sessions = session_factory(engine)
        app.state.serial_sessions = session_factory(serial)
        app.state.influx = InfluxQL(setup.influx)
        yield
        app.state.influx.close()
        serial.dispose()
        engine.dispose()

    app = FastAPI(
        title="Tapsense",
        version="0.1.0",
        summary="Beer-tap quality for venue owners and brewers.",
        lifespan=lifespan,
    )
    problems.install(app)

    @app.exception_handler(AccessError)
    async def access_problem(_request: Request, exc: AccessError) -> JSONResponse:
        return problems.problem(exc.status, type(exc).__name__, str(exc))

    @app.exception_handler(IntegrityError)
    async def integrity_problem(_request: Request, exc: IntegrityError) -> JSONResponse:
        # Two requests raced for the same id, or a row is still referenced.
        return problems.problem(409, "Conflict", str(exc.orig).splitlines()[0])

    metrics.install(app)

    @app.get("/health", response_model=Health, responses={503: {"model": Health}},
             tags=["service"])  # fmt: skip
    async def health(request: Request, setup: SetupDep, influx: InfluxDep) -> JSONResponse:
        """Whether the broker, InfluxDB and the registry are reachable."""
        checks = {
            "broker": await run_in_threadpool(_broker_check, setup),
            "influxdb": await run_in_threadpool(_influx_check, influx),
            "registry": await run_in_threadpool(_registry_check, request.app.state.engine),
        }
        ok = all(c.ok for c in checks.values())
        body = Health(status="ok" if ok else "degraded", checks=checks)
        return JSONResponse(body.model_dump(), status_code=200 if ok else 503)

    for module in (people, beers, venues, taps, devices, alerts, reports, coupons):
        app.include_router(module.router)
    return app


def route_table(routes: Sequence[BaseRoute]) -> Iterator[APIRoute]:
    """Every API route, those of included routers too (FastAPI 0.12x+ keeps included routers
    as one entry each instead of copying their routes into the app's list)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from route_table(included.routes)
