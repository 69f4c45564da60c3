"""The dead-letter store: every refused message or reading, with its reason, in SQLite.

Nothing refused is thrown away: a field tester or operator can read what a device sent and why
it was refused (`tapsense deadletters`), export them, and replay them after a fix
(`ingest.replay`). A write here is committed before the message is acknowledged, like a write
to InfluxDB.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Iterator
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
    payload BLOB NOT NULL,
    replayed_ms INTEGER
);
CREATE INDEX IF NOT EXISTS deadletter_received ON deadletter (received_ms);
"""
# Stores made before replay existed lack the column; SQLite adds it in place.
_ADD_REPLAYED = "ALTER TABLE deadletter ADD COLUMN replayed_ms INTEGER"
_COLUMNS = "id, received_ms, topic, seq, reason, payload, replayed_ms"


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    received_ms: int
    topic: str
    seq: int | None
    reason: str
    payload: bytes
    replayed_ms: int | None = None


@dataclass(frozen=True, slots=True)
class Selection:
    """Which dead letters: all by default; each field given narrows it."""

    ids: tuple[int, ...] = ()
    reason: str | None = None  # the reason contains this
    topic: str | None = None  # the topic contains this
    since_ms: int | None = None
    replayed: bool | None = None  # None: either

    def where(self) -> tuple[str, list[object]]:
        clauses: list[str] = ["1"]
        params: list[object] = []
        if self.ids:
            clauses.append(f"id IN ({','.join('?' * len(self.ids))})")
            params += self.ids
        for column, text in (("reason", self.reason), ("topic", self.topic)):
            if text is not None:
                clauses.append(f"instr({column}, ?) > 0")
                params.append(text)
        if self.since_ms is not None:
            clauses.append("received_ms >= ?")
            params.append(self.since_ms)
        if self.replayed is not None:
            clauses.append(f"replayed_ms IS {'NOT ' if self.replayed else ''}NULL")
        return " AND ".join(clauses), params


class DeadLetterStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(deadletter)")}
        if "replayed_ms" not in columns:
            self._db.execute(_ADD_REPLAYED)

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

    def latest(self, limit: int = 100, selection: Selection = Selection()) -> list[DeadLetter]:
        where, params = selection.where()
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM deadletter WHERE {where} ORDER BY id DESC LIMIT ?",
            (*params, limit),
        )
        return [DeadLetter(*row) for row in rows]

    def select(self, selection: Selection) -> Iterator[DeadLetter]:
        """Oldest first, streamed: an export of millions does not sit in memory."""
        where, params = selection.where()
        rows = self._db.execute(
            f"SELECT {_COLUMNS} FROM deadletter WHERE {where} ORDER BY id", params
        )
        for row in rows:
            yield DeadLetter(*row)

    def mark_replayed(self, ids: Iterable[int]) -> None:
        now = int(time.time() * 1000)
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "UPDATE deadletter SET replayed_ms = ? WHERE id = ?", [(now, i) for i in ids]
            )

    def count(self, selection: Selection = Selection()) -> int:
        where, params = selection.where()
        query = f"SELECT count(*) FROM deadletter WHERE {where}"
        return int(self._db.execute(query, params).fetchone()[0])

    def close(self) -> None:
        self._db.close()
