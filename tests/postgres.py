"""A PostgreSQL cluster of the test suite's own: Debian's `initdb` and `pg_ctl` on a free loopback
port, data in a temporary folder, stopped by its pid. PostgreSQL refuses to run as root, so
under root it runs as the `postgres` user that Debian's package creates.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg

from stack.services import ServiceError, free_port

HOST = "127.0.0.1"


def _binary(name: str) -> str:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if not found:
        raise ServiceError(
            f"{name} not found: install PostgreSQL with `apt-get install postgresql`"
        )
    return str(found[-1])  # the newest version installed


def _as_owner(argv: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


@dataclass
class Postgres:
    folder: Path
    port: int

    @property
    def pid(self) -> int:
        return int((self.folder / "data" / "postmaster.pid").read_text().split()[0])

    def new_database(self) -> str:
        """A database of its own for one test; its SQLAlchemy URL."""
        name = f"test_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(f"postgresql://postgres@{HOST}:{self.port}/postgres",
                             autocommit=True) as db:  # fmt: skip
            db.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@{HOST}:{self.port}/{name}"

    def stop(self) -> None:
        """SIGINT is PostgreSQL's fast shutdown; then the folder goes."""
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            pid = self.pid
            os.kill(pid, signal.SIGINT)
            deadline = time.monotonic() + 30
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
        shutil.rmtree(self.folder, ignore_errors=True)


def start_postgres() -> Postgres:
    # Not under pytest's own temporary folders: those are private to root.
    folder = Path(tempfile.mkdtemp(prefix="tapsense-pg-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
    port = free_port(HOST)
    data = folder / "data"
    subprocess.run(
        _as_owner([_binary("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                   "-E", "UTF8", "--no-sync"]),
        check=True, capture_output=True,
    )  # fmt: skip
    options = f"-h {HOST} -p {port} -k {folder} -c fsync=off"
    subprocess.run(
        _as_owner([_binary("pg_ctl"), "-D", str(data), "-o", options, "-l",
                   str(folder / "postgres.log"), "-w", "start"]),
        check=True, capture_output=True,
    )  # fmt: skip
    return Postgres(folder, port)
