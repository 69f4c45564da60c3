"""The messages the worker is handling right now, marked on disk: the last line of defence.

Every exception a message can raise is caught where it is handled (`ingest.batch`), but a
message can also take the whole process down without raising: a crash in compiled code, memory
exhausted, a watchdog's SIGKILL. The broker then redelivers it after every restart, and one
device would stop ingestion for every venue (telegraf#13476 is that failure's best-known case).

So before handling a batch the worker marks its messages here, and clears the marks once they
are acknowledged (or deliberately left for redelivery at a clean stop). A mark still present
when a message arrives means the worker died while handling it:
- marked in a batch: it is handled again, but alone, so the culprit is told from its
  neighbours (which were only unlucky);
- marked while handled alone: it is the culprit; it is dead-lettered and acknowledged instead
  of being tried forever.

A message is known by a hash of its topic and payload: redelivery keeps both. Marks need to
survive the process, not the machine, so this connection does not wait for fsync.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterable
from enum import Enum
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS inflight (
    fingerprint BLOB PRIMARY KEY,
    alone INTEGER NOT NULL
) WITHOUT ROWID;
"""


class Verdict(Enum):
    FRESH = "fresh"  # never seen by a worker that died
    SUSPECT = "suspect"  # was in a batch when the worker died: handle it alone
    CULPRIT = "culprit"  # the worker died while handling it alone: set it aside


def fingerprint(topic: str, payload: bytes) -> bytes:
    return hashlib.blake2b(topic.encode() + b"\0" + payload, digest_size=16).digest()


class InFlight:
    """The marks, kept in memory and on disk alike (a batch's look-ups never query)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=OFF")
        self._db.executescript(_SCHEMA)
        self._marks: dict[bytes, bool] = {
            bytes(fp): bool(alone)
            for fp, alone in self._db.execute("SELECT fingerprint, alone FROM inflight")
        }

    def __len__(self) -> int:
        return len(self._marks)

    def verdict(self, fp: bytes) -> Verdict:
        alone = self._marks.get(fp)
        if alone is None:
            return Verdict.FRESH
        return Verdict.CULPRIT if alone else Verdict.SUSPECT

    def mark(self, fps: Iterable[bytes], *, alone: bool) -> None:
        rows = [(fp, int(alone)) for fp in set(fps)]
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT INTO inflight (fingerprint, alone) VALUES (?, ?)"
                " ON CONFLICT (fingerprint) DO UPDATE SET alone = max(alone, excluded.alone)",
                rows,
            )
        for fp, flag in rows:
            self._marks[fp] = self._marks.get(fp, False) or bool(flag)

    def clear(self, fps: Iterable[bytes]) -> None:
        rows = [(fp,) for fp in set(fps) if fp in self._marks]
        if not rows:
            return
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany("DELETE FROM inflight WHERE fingerprint = ?", rows)
        for (fp,) in rows:
            del self._marks[fp]

    def close(self) -> None:
        self._db.close()
