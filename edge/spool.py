"""The agent's disk spool: an outbox of encoded telemetry messages, kept until PUBACK.

A message's sequence number is its row id (AUTOINCREMENT: never reused, even after deletes), so
`seq` survives agent restarts and stays increasing. A message leaves the spool only when the
broker acknowledged it; an agent that dies resends whatever is still here, and the contract
makes those duplicates harmless.

Durability: `synchronous=FULL` by default: each sealed message is on the disk (the WAL
fsynced) before `add` returns, so a venue that pulls the power at closing time keeps every
sealed message; NORMAL survives a process crash only. The cost, measured by `bench.spool`, is
stated in the README.

Bounds: the spool holds at most `max_messages`; past that, and when the disk is full, the
oldest messages go, and the readings lost are counted on disk (`lost_readings`), logged and
shown by `tapsense-agent status`: never silent.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import msgspec

from edge.wire import Pour, Telemetry, Temperature, encode

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS losses (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    messages INTEGER NOT NULL,
    readings INTEGER NOT NULL
);
INSERT OR IGNORE INTO losses VALUES (1, 0, 0);
"""
DEFAULT_MAX_MESSAGES = 200_000  # at 50 readings each, over a year of an 8-tap venue
DROP_SHARE = 0.01  # a full spool drops this share of its oldest messages at once
_LOGGER = logging.getLogger(__name__)


class Spool:
    def __init__(self, path: Path, *, durable: bool = True,
                 max_messages: int = DEFAULT_MAX_MESSAGES) -> None:  # fmt: skip
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_messages = max_messages
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
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
        """Seal readings into a new message; returns its sequence number (0 if even a spool
        emptied of its oldest had no room: those readings are counted as lost)."""
        if self.depth() >= self.max_messages:
            self._drop_oldest(max(1, int(self.max_messages * DROP_SHARE)), "the spool is full")
        try:
            return self._insert(temps, pours)
        except sqlite3.OperationalError as exc:
            if "full" not in str(exc):
                raise
            self._drop_oldest(max(1, self.depth() // 10), f"the disk is full ({exc})")
        try:
            return self._insert(temps, pours)
        except sqlite3.OperationalError as exc:
            if "full" not in str(exc):
                raise
            self._count_lost(1, len(temps) + len(pours))
            _LOGGER.error("spool: no room even after dropping old messages (%s); %d readings "
                          "lost", exc, len(temps) + len(pours))  # fmt: skip
            return 0

    def lost(self) -> tuple[int, int]:
        """Messages and readings dropped for lack of room, ever."""
        row = self._db.execute("SELECT messages, readings FROM losses").fetchone()
        return int(row[0]), int(row[1])

    def _drop_oldest(self, count: int, why: str) -> None:
        rows = self._db.execute(
            "SELECT seq, payload FROM outbox ORDER BY seq LIMIT ?", (count,)
        ).fetchall()
        readings = 0
        for _, payload in rows:
            message = msgspec.json.decode(bytes(payload), type=Telemetry)
            readings += len(message.temps) + len(message.pours)
        with self._db:
            self._db.executemany("DELETE FROM outbox WHERE seq = ?", [(r[0],) for r in rows])
        self._count_lost(len(rows), readings)
        _LOGGER.error("spool: %s: dropped the %d oldest messages (%d readings)", why, len(rows),
                      readings)  # fmt: skip

    def _count_lost(self, messages: int, readings: int) -> None:
        with self._db:
            self._db.execute("UPDATE losses SET messages = messages + ?, readings = readings + ?",
                             (messages, readings))  # fmt: skip

    def _insert(self, temps: list[Temperature], pours: list[Pour]) -> int:
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

    def get(self, seqs: list[int]) -> list[tuple[int, bytes]]:
        """These messages, those still here, in order."""
        found = []
        for seq in sorted(seqs):
            row = self._db.execute("SELECT payload FROM outbox WHERE seq = ?", (seq,)).fetchone()
            if row is not None:
                found.append((seq, bytes(row[0])))
        return found

    def remove(self, seqs: list[int]) -> None:
        if seqs:
            with self._db:
                self._db.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])

    def depth(self) -> int:
        return int(self._db.execute("SELECT count(*) FROM outbox").fetchone()[0])

    def close(self) -> None:
        self._db.close()
