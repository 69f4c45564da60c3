"""The dead-letter store: every refused message or reading, with its reason, in SQLite.

Nothing refused is thrown away: a field tester or operator can read what a device sent and why
it was refused (`tapsense deadletters`). A write here is committed before the message is
acknowledged, like a write to InfluxDB.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ingest.decode import Rejection

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deadletter (
    id INTEGER PRIMARY KEY,
    received_ms INTEGER NOT NULL,
    topic TEXT NOT NULL,
    seq INTEGER,
    reason TEXT NOT NULL,
    payload BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS deadletter_received ON deadletter (received_ms);
"""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    received_ms: int
    topic: str
    seq: int | None
    reason: str
    payload: bytes


class DeadLetterStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def add(self, rejections: Iterable[Rejection]) -> int:
        now = int(time.time() * 1000)
        rows = [(now, r.topic, r.seq, r.reason, r.payload) for r in rejections]
        if rows:
            with self._db:
                self._db.execute("BEGIN")
                self._db.executemany(
                    "INSERT INTO deadletter (received_ms, topic, seq, reason, payload)"
                    " VALUES (?, ?, ?, ?, ?)",
                    rows,
                )
        return len(rows)

    def latest(self, limit: int = 100) -> list[DeadLetter]:
        rows = self._db.execute(
            "SELECT id, received_ms, topic, seq, reason, payload FROM deadletter"
            " ORDER BY id DESC LIMIT ?",
            (limit,),
        )
        return [DeadLetter(*row) for row in rows]

    def count(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM deadletter").fetchone()[0])

    def close(self) -> None:
        self._db.close()
