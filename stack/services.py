"""Mosquitto and InfluxDB as child processes with generated configs and data in one folder.

Used by `tapsense up` and by the test suite alike, so that the tests run the same broker and
database set-up that users run. This module starts and stops processes by their pid; it never
touches system services.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from registry.broker import ACL_FILE, PASSWD_FILE, PID_FILE

_LOGGER = logging.getLogger(__name__)

# A broker must never drop a message it has accepted for a persistent session: the default
# 1,000-message queue silently discards the rest while ingest is down. One million messages of
# 50 readings each is hours of a large fleet; memory is the price, bounded by max_queued_bytes.
MOSQUITTO_MAX_QUEUED_MESSAGES = 1_000_000
MOSQUITTO_MAX_QUEUED_BYTES = 4 * 1024**3
# In-flight window towards MQTT 3 clients; MQTT 5 clients (ours) announce Receive Maximum.
MOSQUITTO_MAX_INFLIGHT = 1000
# Larger than ingest's payload limit on purpose: an oversized message must reach ingest to be
# dead-lettered with its reason rather than vanish at the broker.
MOSQUITTO_MAX_PACKET_BYTES = 4 * 1024 * 1024


class ServiceError(RuntimeError):
    """A managed service could not be started or found."""


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS calls free right now (tests start several services on loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def require_free(name: str, host: str, port: int) -> None:
    if not port_is_free(host, port):
        raise ServiceError(
            f"{name}: {host}:{port} is already in use; stop what listens there or choose "
            f"another port (see docs/settings.md)"
        )


def find_binary(name: str) -> str:
    found = shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if p.exists()), None
    )
    if found is None:
        raise ServiceError(f"{name} not found: install it with `apt-get install {name}`")
    return found


@dataclass
class ManagedProcess:
    """One child process, its log file, and a clean stop by pid."""

    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] | None = None
    # Written once started, removed at stop: how other processes find it to signal it.
    pid_file: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _log: IO[bytes] | None = field(default=None, init=False)

    @property
    def pid(self) -> int:
        if self.process is None:
            raise ServiceError(f"{self.name} is not running")
        return self.process.pid

    def start(self, ready: Callable[[], bool], timeout_s: float = 30.0) -> None:
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.argv,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=self.env,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServiceError(
                    f"{self.name} exited with {self.process.returncode} while starting; "
                    f"see {self.log_path}"
                )
            if ready():
                _LOGGER.info("%s running, pid %d", self.name, self.process.pid)
                if self.pid_file is not None:
                    self.pid_file.write_text(f"{self.process.pid}\n")
                return
            time.sleep(0.05)
        self.stop()
        raise ServiceError(f"{self.name} not ready after {timeout_s:.0f} s; see {self.log_path}")

    def stop(self, timeout_s: float = 15.0) -> None:
        self._forget_pid()
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                _LOGGER.warning("%s ignored SIGTERM for %.0f s; killing it", self.name, timeout_s)
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait()
            _LOGGER.info("%s stopped", self.name)
        if self._log is not None:
            self._log.close()
            self._log = None

    def _forget_pid(self) -> None:
        if self.pid_file is not None:
            self.pid_file.unlink(missing_ok=True)

    def kill(self) -> None:
        """SIGKILL, for failure tests: no chance to flush or say goodbye."""
        self._forget_pid()
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()


def log_says(path: Path, text: str) -> Callable[[], bool]:
    """Ready check for a process that announces readiness in its log (only new lines count)."""
    start = path.stat().st_size if path.exists() else 0

    def check() -> bool:
        if not path.exists():
            return False
        with path.open("rb") as log:
            log.seek(start)
            return text.encode() in log.read()

    return check


def tcp_accepts(host: str, port: int) -> Callable[[], bool]:
    def check() -> bool:
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
            return True
        return False

    return check


def mosquitto_config(data_dir: Path, host: str, port: int, auth_dir: Path | None = None) -> str:
    if auth_dir is None:
        auth = "allow_anonymous true"
    else:
        auth = (
            f"allow_anonymous false\npassword_file {auth_dir / PASSWD_FILE}\n"
            f"acl_file {auth_dir / ACL_FILE}"
        )
    return f"""\
# Generated by Tapsense; edit stack/services.py instead.
listener {port} {host}
{auth}
persistence true
persistence_location {data_dir}/
autosave_interval 5
max_queued_messages {MOSQUITTO_MAX_QUEUED_MESSAGES}
max_queued_bytes {MOSQUITTO_MAX_QUEUED_BYTES}
max_inflight_messages {MOSQUITTO_MAX_INFLIGHT}
max_packet_size {MOSQUITTO_MAX_PACKET_BYTES}
persistent_client_expiration 14d
log_dest stdout
log_type error
log_type warning
log_type notice
connection_messages true
# Started as root, mosquitto would switch to the `mosquitto` user and lose access to our folder.
user {os.getenv("USER") or "root"}
"""


def start_mosquitto(
    data_dir: Path, host: str, port: int, auth_dir: Path | None = None
) -> ManagedProcess:
    """Anonymous without `auth_dir`; with it, logins and ACL from the files the registry
    writes there (`registry.broker`), and a pid file there for it to signal reloads."""
    proc = mosquitto_process(data_dir, host, port, auth_dir)
    proc.start(tcp_accepts(host, port))
    return proc


def mosquitto_process(
    data_dir: Path, host: str, port: int, auth_dir: Path | None = None
) -> ManagedProcess:
    """Mosquitto with its config written, not started yet."""
    require_free("mosquitto", host, port)
    data_dir.mkdir(parents=True, exist_ok=True)
    if auth_dir is not None:
        auth_dir.mkdir(parents=True, exist_ok=True)
        for name in (PASSWD_FILE, ACL_FILE):
            (auth_dir / name).touch(0o600)
    conf = data_dir / "mosquitto.conf"
    conf.write_text(mosquitto_config(data_dir, host, port, auth_dir))
    return ManagedProcess(
        "mosquitto",
        [find_binary("mosquitto"), "-c", str(conf)],
        data_dir / "mosquitto.log",
        pid_file=auth_dir / PID_FILE if auth_dir is not None else None,
    )


def influxdb_config(data_dir: Path, host: str, port: int, rpc_port: int) -> str:
    return f"""\
# Generated by Tapsense; edit stack/services.py instead.
reporting-disabled = true
bind-address = "{host}:{rpc_port}"

[meta]
  dir = "{data_dir}/meta"

[data]
  dir = "{data_dir}/data"
  wal-dir = "{data_dir}/wal"
  query-log-enabled = false
  # Readings are written before the HTTP 204; fsync per write keeps that promise after a crash.
  wal-fsync-delay = "0s"

[monitor]
  store-enabled = false

[http]
  enabled = true
  bind-address = "{host}:{port}"
  log-enabled = false
  max-body-size = 67108864

[continuous_queries]
  enabled = false
"""


def influx_pings(url: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return httpx.get(f"{url}/ping", timeout=0.5).status_code == 204
        except httpx.HTTPError:
            return False

    return check


def start_influxdb(data_dir: Path, host: str, port: int, rpc_port: int) -> ManagedProcess:
    proc = influxdb_process(data_dir, host, port, rpc_port)
    proc.start(influx_pings(f"http://{host}:{port}"), timeout_s=60.0)
    return proc


def influxdb_process(data_dir: Path, host: str, port: int, rpc_port: int) -> ManagedProcess:
    """InfluxDB with its config written, not started yet."""
    require_free("influxd", host, port)
    require_free("influxd (rpc)", host, rpc_port)
    data_dir.mkdir(parents=True, exist_ok=True)
    conf = data_dir / "influxdb.conf"
    conf.write_text(influxdb_config(data_dir, host, port, rpc_port))
    return ManagedProcess(
        "influxd", [find_binary("influxd"), "run", "-config", str(conf)], data_dir / "influxd.log"
    )
