"""InfluxDB transports: line-protocol writes and InfluxQL reads, with errors translated here.

Exceptions:
    InfluxError            root
    ├── InfluxUnavailable  the server did not take the write (down, timeout, 5xx): retry later
    └── InfluxRejected     the server refused the data itself (4xx): retrying cannot help

Two write transports, chosen from the server's version (`X-Influxdb-Version` of /ping):
InfluxDB 1.x gets the v1 `/write` endpoint it serves natively; 2.x, 3.x and Cloud get the v2
write API through `influxdb-client`, in synchronous mode so that a return means "stored" and
the worker can acknowledge. Batching and retries are the worker's: it already holds a batch.
"""

from __future__ import annotations

import logging
from typing import Any, Literal, Protocol

import httpx

from timeseries import lineproto
from timeseries.settings import InfluxSettings

_LOGGER = logging.getLogger(__name__)

Transport = Literal["v1", "v2"]


class InfluxError(Exception):
    """Any failure talking to InfluxDB."""


class InfluxUnavailable(InfluxError):
    """The write or query did not happen; the same request may succeed later."""


class InfluxRejected(InfluxError):
    """The server refused the request's content; sending it again gives the same answer."""


class Writer(Protocol):
    def write(self, body: bytes) -> None: ...

    def close(self) -> None: ...


def _raise_for(response: httpx.Response, what: str) -> None:
    if response.status_code < 300:
        return
    detail = response.text[:300]
    if 400 <= response.status_code < 500 and response.status_code not in (408, 429):
        raise InfluxRejected(f"{what}: HTTP {response.status_code}: {detail}")
    raise InfluxUnavailable(f"{what}: HTTP {response.status_code}: {detail}")


class V1Writer:
    """`POST /write` with line protocol, millisecond precision."""

    def __init__(self, settings: InfluxSettings) -> None:
        self._client = httpx.Client(base_url=settings.url, timeout=settings.timeout_s)
        self._params = {"db": settings.database, "precision": lineproto.PRECISION}

    def write(self, body: bytes) -> None:
        try:
            response = self._client.post("/write", params=self._params, content=body)
        except httpx.HTTPError as exc:
            raise InfluxUnavailable(f"write: {type(exc).__name__}: {exc}") from exc
        _raise_for(response, "write")

    def close(self) -> None:
        self._client.close()


class V2Writer:
    """The v2 write API through `influxdb-client`, synchronous."""

    def __init__(self, settings: InfluxSettings) -> None:
        from influxdb_client import InfluxDBClient, WritePrecision
        from influxdb_client.client.write_api import SYNCHRONOUS

        if not (settings.token and settings.org and settings.bucket):
            raise InfluxError("the v2 transport needs influx.token, influx.org and influx.bucket")
        self._client = InfluxDBClient(
            url=settings.url,
            token=settings.token,
            org=settings.org,
            timeout=int(settings.timeout_s * 1000),
        )
        self._api = self._client.write_api(write_options=SYNCHRONOUS)
        self._bucket = settings.bucket
        self._precision: Any = WritePrecision.MS  # a str constant; the stubs want the enum

    def write(self, body: bytes) -> None:
        from influxdb_client.rest import ApiException

        try:
            self._api.write(bucket=self._bucket, record=body, write_precision=self._precision)
        except ApiException as exc:
            status = exc.status or 0
            message = f"write: HTTP {status}: {str(exc.body)[:300]}"
            if 400 <= status < 500 and status not in (408, 429):
                raise InfluxRejected(message) from exc
            raise InfluxUnavailable(message) from exc
        except Exception as exc:  # urllib3 raises many unrelated types for a dead server
            raise InfluxUnavailable(f"write: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        self._client.close()


def server_version(settings: InfluxSettings) -> str:
    try:
        response = httpx.get(f"{settings.url}/ping", timeout=settings.timeout_s)
    except httpx.HTTPError as exc:
        raise InfluxUnavailable(f"ping {settings.url}: {exc}") from exc
    _raise_for(response, "ping")
    return response.headers.get("X-Influxdb-Version", "unknown")


def choose_transport(version: str, configured: str) -> Transport:
    """v1 for InfluxDB 1.x (native there); v2 for everything newer (2.x, 3.x, Cloud)."""
    if configured in ("v1", "v2"):
        return configured  # type: ignore[return-value]
    return "v1" if version.lstrip("v").startswith("1.") else "v2"


def open_writer(settings: InfluxSettings) -> Writer:
    version = server_version(settings)
    transport = choose_transport(version, settings.transport)
    _LOGGER.info("InfluxDB %s at %s: %s write transport", version, settings.url, transport)
    if transport == "v1":
        ensure_database(settings)
        return V1Writer(settings)
    return V2Writer(settings)


class InfluxQL:
    """InfluxQL reads over the v1 `/query` endpoint (served by 1.x, and by 2.x/3.x as compat)."""

    def __init__(self, settings: InfluxSettings) -> None:
        headers = {"Authorization": f"Token {settings.token}"} if settings.token else {}
        self._client = httpx.Client(
            base_url=settings.url, timeout=settings.timeout_s, headers=headers
        )
        self._database = settings.bucket or settings.database

    def query(self, q: str, *, method: Literal["GET", "POST"] = "GET") -> list[dict[str, Any]]:
        """Series of the first statement: [{"name", "tags", "columns", "values"}]; times in ms."""
        params = {"db": self._database, "q": q, "epoch": lineproto.PRECISION}
        try:
            response = self._client.request(method, "/query", params=params)
        except httpx.HTTPError as exc:
            raise InfluxUnavailable(f"query: {type(exc).__name__}: {exc}") from exc
        _raise_for(response, "query")
        result = response.json()["results"][0]
        if "error" in result:
            raise InfluxRejected(f"query {q!r}: {result['error']}")
        return list(result.get("series", []))

    def close(self) -> None:
        self._client.close()


def ensure_database(settings: InfluxSettings) -> None:
    client = InfluxQL(settings)
    try:
        client.query(f'CREATE DATABASE "{settings.database}"', method="POST")
    finally:
        client.close()
