"""The agent's disk spool: an outbox of encoded telemetry messages, kept until PUBACK.

A message's sequence number is its row id (AUTOINCREMENT: never reused, even after deletes), so
`seq` survives agent restarts and stays increasing. A message leaves the spool only when the
broker acknowledged it; an agent that dies resends whatever is still here, and the contract
makes those duplicates harmless.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgspec

from edge.wire import Pour, Telemetry, Temperature, encode

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    payload BLOB NOT NULL
);
"""


class Spool:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a process crash; a power cut may lose the last commit.
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def oldest_reading_ms(self) -> int | None:
        """The time of the oldest reading not yet acknowledged by the broker."""
        row = self._db.execute("SELECT payload FROM outbox ORDER BY seq LIMIT 1").fetchone()
        if row is None:
            return None
        message = msgspec.json.decode(bytes(row[0]), type=Telemetry)
        times = [r.ts for r in message.temps] + [r.ts for r in message.pours]
        return min(times) if times else None

    def add(self, temps: list[Temperature], pours: list[Pour]) -> int:
        """Seal readings into a new message; returns its sequence number."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            seq = self._db.execute("INSERT INTO outbox (payload) VALUES (x'')").lastrowid
            assert seq is not None
            payload = encode(Telemetry(v=1, seq=seq, temps=temps, pours=pours))
            self._db.execute("UPDATE outbox SET payload = ? WHERE seq = ?", (payload, seq))
        return seq

    def pending(self, after_seq: int, limit: int) -> list[tuple[int, bytes]]:
        rows = self._db.execute(
            "SELECT seq, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)
        )
        return [(int(seq), bytes(payload)) for seq, payload in rows]

    def remove(self, seqs: list[int]) -> None:
        if seqs:
            with self._db:
                self._db.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])

    def depth(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def close(self) -> None:
        self._db.close()
