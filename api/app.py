"""The FastAPI application. The lifespan owns the long-lived clients; routes stay thin."""

from __future__ import annotations

import socket
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, Path, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from api import problems
from edge.wire import ID_PATTERN
from ingest import lineproto
from ingest.influx import InfluxError, InfluxQL
from ingest.quality import Check
from stack.settings import Settings


class ServiceCheck(BaseModel):
    ok: bool
    detail: str


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    checks: dict[str, ServiceCheck]


class TapState(BaseModel):
    tap: str
    temperature_c: float | None = None
    temperature_at_ms: int | None = None
    last_pour_ml: float | None = None
    last_pour_at_ms: int | None = None
    warm_beer: str = "ok"
    warm_beer_since_ms: int | None = None


class VenueState(BaseModel):
    venue: str
    taps: list[TapState]


def _influx(request: Request) -> InfluxQL:
    return request.app.state.influx  # type: ignore[no-any-return]


def _settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


InfluxDep = Annotated[InfluxQL, Depends(_influx)]
SettingsDep = Annotated[Settings, Depends(_settings)]
VenueId = Annotated[str, Path(pattern=ID_PATTERN, description="venue id")]


def _broker_check(settings: Settings) -> ServiceCheck:
    m = settings.mqtt
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


def _database_check(settings: Settings) -> ServiceCheck:
    path = settings.deadletter_path
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            db.execute("SELECT 1")
        return ServiceCheck(ok=True, detail=f"{path} readable")
    except sqlite3.Error as exc:
        return ServiceCheck(ok=False, detail=f"{path}: {exc}")


def _venue_state(influx: InfluxQL, venue: str) -> VenueState | None:
    where = f"WHERE \"venue\" = '{venue}'"  # venue matched ID_PATTERN: nothing to escape
    taps: dict[str, TapState] = {}

    def tap(series: dict) -> TapState:
        name = series["tags"]["tap"]
        return taps.setdefault(name, TapState(tap=name))

    for s in influx.query(
        f'SELECT last("c") FROM "{lineproto.TEMPERATURE}" {where} GROUP BY "tap"'
    ):
        ts, c = s["values"][0]
        state = tap(s)
        state.temperature_c, state.temperature_at_ms = c, ts
    for s in influx.query(f'SELECT last("ml") FROM "{lineproto.POUR}" {where} GROUP BY "tap"'):
        ts, ml = s["values"][0]
        state = tap(s)
        state.last_pour_ml, state.last_pour_at_ms = ml, ts
    q = (
        f'SELECT last("level") FROM "{lineproto.QUALITY}" {where} '
        f'AND "check" = \'{Check.WARM_BEER}\' GROUP BY "tap"'
    )
    for s in influx.query(q):
        ts, level = s["values"][0]
        state = tap(s)
        state.warm_beer, state.warm_beer_since_ms = level, ts
    if not taps:
        return None
    return VenueState(venue=venue, taps=sorted(taps.values(), key=lambda t: t.tap))


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.influx = InfluxQL(settings.influx)
        yield
        app.state.influx.close()

    app = FastAPI(
        title="Tapsense",
        version="0.1.0",
        summary="Beer-tap quality for venue owners and brewers.",
        lifespan=lifespan,
    )
    problems.install(app)

    @app.get("/health", response_model=Health, responses={503: {"model": Health}})
    async def health(settings: SettingsDep, influx: InfluxDep) -> JSONResponse:
        """Whether the broker, InfluxDB and the service database are reachable."""
        checks = {
            "broker": await run_in_threadpool(_broker_check, settings),
            "influxdb": await run_in_threadpool(_influx_check, influx),
            "database": await run_in_threadpool(_database_check, settings),
        }
        ok = all(c.ok for c in checks.values())
        body = Health(status="ok" if ok else "degraded", checks=checks)
        return JSONResponse(body.model_dump(), status_code=200 if ok else 503)

    @app.get(
        "/venues/{venue}/taps",
        response_model=VenueState,
        responses=problems.PROBLEM_RESPONSES,
    )
    async def venue_taps(venue: VenueId, influx: InfluxDep) -> VenueState | JSONResponse:
        """Live state of a venue's taps: latest temperature, latest pour, warm-beer level."""
        try:
            state = await run_in_threadpool(_venue_state, influx, venue)
        except InfluxError as exc:
            return problems.problem(503, "InfluxDB unavailable", str(exc))
        if state is None:
            return problems.problem(404, "Not Found", f"no readings from venue {venue!r}")
        return state

    return app
