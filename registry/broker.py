"""Mosquitto's password file and ACL, made from the registry, and the broker told to reload.

`render_passwd` and `render_acl` are pure. A device may publish only its own telemetry and
status and subscribe only to its venue's downlink; ingest reads every device topic and
publishes quality events; alerts reads quality events and publishes downlink messages.
Mosquitto re-reads both files on SIGHUP and keeps every session; clients whose login is gone
are disconnected (see tests/test_broker_auth.py).
"""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, select

from edge.wire import DOWNLINK_ROOT, QUALITY_TOPIC_ROOT, TOPIC_ROOT, TopicKind
from registry.models import MqttCredential

_LOGGER = logging.getLogger(__name__)

PASSWD_FILE = "passwd"
ACL_FILE = "acl"
PID_FILE = "mosquitto.pid"


@dataclass(frozen=True, slots=True)
class Login:
    username: str
    password_hash: str
    venue_id: str | None
    device_id: str | None
    service: str | None


# What each service may do, beyond logging in.
SERVICE_ACL = {
    "ingest": [
        f"topic read {TOPIC_ROOT}/+/+/{TopicKind.TELEMETRY}",
        f"topic read {TOPIC_ROOT}/+/+/{TopicKind.STATUS}",
        f"topic write {QUALITY_TOPIC_ROOT}/#",
        f"topic write {DOWNLINK_ROOT}/+/+/stored",  # which messages each device may forget
    ],
    "alerts": [
        f"topic read {QUALITY_TOPIC_ROOT}/#",
        f"topic read {TOPIC_ROOT}/+/+/{TopicKind.STATUS}",  # a device offline is an alert
        f"topic write {DOWNLINK_ROOT}/#",
    ],
}


def render_passwd(logins: Iterable[Login]) -> str:
    return "".join(f"{login.username}:{login.password_hash}\n" for login in logins)


def render_acl(logins: Iterable[Login]) -> str:
    lines = ["# Generated from the Tapsense registry; changes here are overwritten.\n"]
    for login in logins:
        lines.append(f"\nuser {login.username}\n")
        if login.service is not None:
            lines.extend(f"{rule}\n" for rule in SERVICE_ACL.get(login.service, []))
        elif login.venue_id is not None and login.device_id is not None:
            own = f"{TOPIC_ROOT}/{login.venue_id}/{login.device_id}"
            lines.append(f"topic write {own}/{TopicKind.TELEMETRY}\n")
            lines.append(f"topic write {own}/{TopicKind.STATUS}\n")
            lines.append(f"topic read {DOWNLINK_ROOT}/{login.venue_id}/#\n")
    return "".join(lines)


def active_logins(engine: Engine) -> list[Login]:
    with engine.connect() as db:
        rows = db.execute(
            select(MqttCredential.username, MqttCredential.password_hash,
                   MqttCredential.venue_id, MqttCredential.device_id, MqttCredential.service)
            .where(MqttCredential.revoked_ms.is_(None))
            .order_by(MqttCredential.username)
        )  # fmt: skip
        return [Login(*row) for row in rows]


def write_auth_files(engine: Engine, auth_dir: Path) -> None:
    """Both files, each replaced atomically (the broker never reads half a file)."""
    auth_dir.mkdir(parents=True, exist_ok=True)
    logins = active_logins(engine)
    for name, text in ((PASSWD_FILE, render_passwd(logins)), (ACL_FILE, render_acl(logins))):
        partial = auth_dir / f".{name}.partial"
        partial.write_text(text)
        partial.chmod(0o600)
        os.replace(partial, auth_dir / name)


def sync_broker(engine: Engine, auth_dir: Path | None) -> bool:
    """Rewrite the files and make a running broker reload them; False if none is running.

    With no `auth_dir` the broker is not Tapsense's to manage: nothing is written."""
    if auth_dir is None:
        return False
    write_auth_files(engine, auth_dir)
    pid_path = auth_dir / PID_FILE
    try:
        pid = int(pid_path.read_text().strip())
        os.kill(pid, signal.SIGHUP)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        _LOGGER.info("broker auth files written to %s; no broker running to reload", auth_dir)
        return False
    _LOGGER.info("broker (pid %d) reloading its users and ACL from %s", pid, auth_dir)
    return True
