"""`tapsense up`: the whole local stack as child processes, stopped together.

Mosquitto and InfluxDB run with generated configs and data under `home`; the ingest worker,
the alerts service, the API and an optional simulated fleet run as `tapsense` subcommands,
each logging to a file under `home/logs`. A child that exits on its own is restarted and the
others keep running (`stack.supervise`); Ctrl-C stops them all.

The broker is not anonymous: its users and ACL come from the registry (migrated first), the
ingest worker and the alerts service log in with the service logins the registry keeps for
them (so each can be restarted alone), and the simulated fleet registers its venues and gets
one device login per venue.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy import select

from alerts.service import READY_LINE as ALERTS_READY
from ingest.worker import READY_LINE
from registry import changes
from registry.broker import write_auth_files
from registry.db import RegistryError, engine_for, migrate, transaction
from registry.inputs import UserIn
from registry.models import Organisation, User
from reports.service import READY_LINE as REPORTS_READY
from simulators.provision import ORGANISATION as FLEET_ORGANISATION
from stack.services import (
    ManagedProcess,
    ServiceError,
    influx_pings,
    influxdb_process,
    log_says,
    mosquitto_process,
    require_free,
    tcp_accepts,
)
from stack.settings import DEFAULT_AUTH_DIR, Settings
from stack.supervise import Child, GaveUp, Supervisor
from timeseries import lineproto
from timeseries.influx import InfluxError, InfluxQL

_LOGGER = logging.getLogger(__name__)

INFLUX_RPC_PORT_OFFSET = 2  # influxd also needs a port for backup/restore: the HTTP port + 2
PROGRESS_EVERY_S = 10.0
TEND_EVERY_S = 0.5


def tapsense_process(
    logs: Path, name: str, *args: str, env: dict[str, str] | None = None
) -> ManagedProcess:
    """A `tapsense` subcommand as a child process, logging to `logs/<name>.log`."""
    logs.mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-m", "stack.cli", name, *args]
    return ManagedProcess(name, argv, logs / f"{name}.log", env=env)


FLEET_OPERATOR = "operator@simulated-fleet.invalid"


def prepare_registry(settings: Settings, auth_dir: Path) -> str:
    """Migrate the registry, make sure ingest has a broker login (it reads it from the
    registry at each start, so it can be restarted alone), write the broker's files, and make
    an API key for an operator of the simulated fleet's organisation: returned (new at every
    start, so it can be printed)."""
    migrate(settings.registry_url)
    engine = engine_for(settings.registry_url)
    try:
        with transaction(engine) as db:
            changes.service_login(db, "ingest")
            changes.service_login(db, "alerts")
            org = db.scalar(select(Organisation).where(Organisation.name == FLEET_ORGANISATION))
            org = org or changes.create_organisation(db, FLEET_ORGANISATION)
            operator = db.scalar(select(User).where(User.email == FLEET_OPERATOR))
            operator = operator or changes.create_user(
                db, org.id, UserIn(email=FLEET_OPERATOR, name="Simulated fleet operator",
                                   role="operator"),
            )  # fmt: skip
            key = changes.create_key(db, "tapsense up", user_id=operator.id)[1]
        write_auth_files(engine, auth_dir)
    finally:
        engine.dispose()
    return key


def start_ingest(logs: Path, env: dict[str, str] | None = None) -> ManagedProcess:
    """Started and subscribed: from then on the broker keeps every message for it."""
    proc = tapsense_process(logs, "ingest", env=env)
    proc.start(log_says(proc.log_path, READY_LINE), timeout_s=120)
    return proc


def _stored_last_minute(influx: InfluxQL) -> str:
    try:
        series = influx.query(
            f'SELECT count("c") FROM "{lineproto.TEMPERATURE}" WHERE time > now() - 1m'
        )
    except InfluxError as exc:
        return f"InfluxDB not answering ({exc})"
    count = series[0]["values"][0][1] if series else 0
    return f"{count} temperature readings stored in the last minute"


def run_stack(settings: Settings, *, fleet_venues: int, taps: int, stop: threading.Event) -> int:
    home = settings.home.resolve()
    # Children read the same settings, with `home` pinned so they agree whatever their cwd.
    os.environ["TAPSENSE_HOME"] = str(home)
    auth_dir = settings.registry.broker_auth_dir or home / DEFAULT_AUTH_DIR
    os.environ["TAPSENSE_REGISTRY__BROKER_AUTH_DIR"] = str(auth_dir)
    influx_url = urlsplit(settings.influx.url)
    logs = home / "logs"
    supervisor = Supervisor()
    try:
        require_free("api", settings.api.host, settings.api.port)
        api_key = prepare_registry(settings, auth_dir)
        m = settings.mqtt
        supervisor.start(
            Child(
                mosquitto_process(home / "mosquitto", m.host, m.port, auth_dir),
                lambda: tcp_accepts(m.host, m.port),
            )
        )
        host, port = influx_url.hostname or "127.0.0.1", influx_url.port or 8086
        influxd = influxdb_process(home / "influxdb", host, port, port + INFLUX_RPC_PORT_OFFSET)
        supervisor.start(Child(influxd, lambda: influx_pings(f"http://{host}:{port}"), 60.0))
        ingest = tapsense_process(logs, "ingest")
        supervisor.start(Child(ingest, lambda: log_says(ingest.log_path, READY_LINE), 120.0))
        alerts = tapsense_process(logs, "alerts")
        supervisor.start(Child(alerts, lambda: log_says(alerts.log_path, ALERTS_READY), 60.0))
        reports = tapsense_process(logs, "reports")
        supervisor.start(Child(reports, lambda: log_says(reports.log_path, REPORTS_READY), 60.0))
        api = tapsense_process(logs, "api")
        supervisor.start(Child(api, lambda: tcp_accepts(settings.api.host, settings.api.port)))
        if fleet_venues:
            fleet = tapsense_process(
                logs, "simulate", "--venues", str(fleet_venues), "--taps", str(taps)
            )
            supervisor.start(Child(fleet, lambda: lambda: True))
    except (ServiceError, RegistryError) as exc:
        _LOGGER.error("%s", exc)
        supervisor.stop()
        return 1
    except BaseException:
        supervisor.stop()
        raise

    url = f"http://{settings.api.host}:{settings.api.port}"
    print(
        f"\nTapsense is up (data and logs under {home}):\n"
        f"  API             {url}/docs   health: {url}/health\n"
        f"  API key         {api_key}  (an operator of the simulated fleet; new each start)\n"
        f"  live taps       curl -H 'Authorization: Bearer <API key>' {url}/venues/venue-001/live\n"
        f"  MQTT broker     {settings.mqtt.host}:{settings.mqtt.port}\n"
        f"  InfluxDB        {settings.influx.url}  database {settings.influx.database!r}\n"
        f"  simulated fleet {fleet_venues} venues x {taps} taps"
        f"{'' if fleet_venues else ' (none: add --fleet N)'}\n"
        f"  logs            {logs}\n"
        "A child that dies is restarted; Ctrl-C stops everything.\n",
        flush=True,
    )
    influx = InfluxQL(settings.influx)
    code = 0
    last_progress = time.monotonic()
    try:
        while not stop.wait(TEND_EVERY_S):
            supervisor.tend()
            if time.monotonic() - last_progress >= PROGRESS_EVERY_S:
                _LOGGER.info("%s", _stored_last_minute(influx))
                last_progress = time.monotonic()
    except GaveUp as exc:
        _LOGGER.error("%s", exc)
        code = 1
    finally:
        influx.close()
        supervisor.stop()
    return code
