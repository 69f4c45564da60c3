"""`tapsense deadletters ...`: what ingest refused and why; export it; replay it after a fix."""

from __future__ import annotations

import argparse
import base64
import json
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from ingest.deadletter import DeadLetter, DeadLetterStore, Selection
from stack.settings import Settings

DESCRIPTION = """\
Every message or reading ingest refused is kept in the dead-letter store (home/deadletter.sqlite)
with the reason. List them (the default), export them as JSON lines, or replay them after a fix:
replayed messages go through the same decoding and registry checks as live ones, are written to
InfluxDB, and are marked replayed; nothing is stored twice (a point is keyed by its series and
the device's timestamp). Those refused again keep their row, and the new reason is printed.
"""

EPILOG = """\
examples:
  tapsense deadletters                                  the latest 20, newest first
  tapsense deadletters --reason "not registered"        refused for an unknown venue or device
  tapsense deadletters export --since 2026-11-01 > refused.jsonl
  tapsense deadletters replay --topic /cafe-dom/        once cafe-dom is registered: the
                                                        readings it sent before are stored
"""


def _since(text: str) -> int:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a date or time (2026-11-01, 2026-11-01T18:00, ...+01:00)"
        ) from None
    return int(when.timestamp() * 1000)  # naive: this machine's local time


def _selection(args: argparse.Namespace, *, replayed: bool | None) -> Selection:
    return Selection(tuple(args.id or ()), args.reason, args.topic, args.since, replayed)


def _when(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000))


def cmd_list(store: DeadLetterStore, settings: Settings, args: argparse.Namespace) -> int:
    selection = _selection(args, replayed=None)
    rows = store.latest(args.limit, selection)
    where = settings.for_ingest().deadletter_path
    print(f"{store.count(selection)} refused in {where}; latest {len(rows)}:")
    for row in rows:
        replayed = f"  (replayed {_when(row.replayed_ms)})" if row.replayed_ms else ""
        print(f"#{row.id} {_when(row.received_ms)}  {row.topic}  seq={row.seq}  {row.reason}"
              f"{replayed}")  # fmt: skip
        print(f"    {bytes(row.payload)[:160]!r}")
    return 0


def export_line(row: DeadLetter) -> str:
    payload = bytes(row.payload)
    try:
        text: str | None = payload.decode()
    except UnicodeDecodeError:
        text = None  # the base64 form is always there and exact
    return json.dumps({
        "id": row.id,
        "received": datetime.fromtimestamp(row.received_ms / 1000, UTC).isoformat(),
        "topic": row.topic,
        "seq": row.seq,
        "reason": row.reason,
        "payload": text,
        "payload_base64": base64.b64encode(payload).decode(),
        "replayed": None if row.replayed_ms is None
        else datetime.fromtimestamp(row.replayed_ms / 1000, UTC).isoformat(),
    }, ensure_ascii=False)  # fmt: skip


def cmd_export(store: DeadLetterStore, _settings: Settings, args: argparse.Namespace) -> int:
    out = args.out.open("w") if args.out else sys.stdout
    try:
        count = 0
        for row in store.select(_selection(args, replayed=None)):
            out.write(export_line(row) + "\n")
            count += 1
    finally:
        if args.out:
            out.close()
    print(f"exported {count} dead letters", file=sys.stderr)
    return 0


def cmd_replay(store: DeadLetterStore, settings: Settings, args: argparse.Namespace) -> int:
    from ingest.quality import QualityCore
    from ingest.registry_view import RegistryView
    from ingest.replay import replay
    from registry.db import open_registry
    from timeseries.influx import InfluxError, open_writer

    letters = list(store.select(_selection(args, replayed=False)))
    if not letters:
        print("nothing to replay: no dead letter not yet replayed matches")
        return 0
    engine = open_registry(settings.registry_url)
    try:
        registry = RegistryView(engine, settings.registry.refresh_s)
        quality = QualityCore(settings.quality)
        registry.follow(quality.reconfigure)
        writer = open_writer(settings.influx)
        try:
            done = replay(letters, registry, quality, writer, settings.ingest.max_payload_bytes)
        finally:
            writer.close()
    except InfluxError as exc:
        print(f"tapsense deadletters: InfluxDB: {exc}; nothing marked, run again", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    store.mark_replayed(done.stored)
    print(f"replayed {len(letters)}: {len(done.stored)} stored and marked replayed, "
          f"{len(done.refused)} refused again")  # fmt: skip
    for letter_id, reason in done.refused.items():
        print(f"  #{letter_id}: {reason}")
    return 0


COMMANDS: dict[str, Callable[[DeadLetterStore, Settings, argparse.Namespace], int]] = {
    "list": cmd_list,
    "export": cmd_export,
    "replay": cmd_replay,
}


def run(settings: Settings, args: argparse.Namespace) -> int:
    if not settings.for_ingest().deadletter_path.exists():
        print(
            f"nothing refused yet: no dead-letter store at {settings.for_ingest().deadletter_path}"
        )
        return 0
    store = DeadLetterStore(settings.for_ingest().deadletter_path)
    try:
        return COMMANDS[args.action](store, settings, args)
    finally:
        store.close()


def add_parser(sub: argparse._SubParsersAction, positive_int: Callable[[str], int]) -> None:  # type: ignore[type-arg]
    dead = sub.add_parser(
        "deadletters",
        help="refused messages and readings with reasons; export; replay after a fix",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    dead.add_argument("action", nargs="?", choices=list(COMMANDS), default="list",
                      help="list (default), export as JSON lines, or replay")  # fmt: skip
    dead.add_argument("--id", type=int, action="append", metavar="N", help="this one (repeat)")
    dead.add_argument("--reason", metavar="TEXT", help="whose reason contains TEXT")
    dead.add_argument("--topic", metavar="TEXT", help="whose topic contains TEXT")
    dead.add_argument("--since", type=_since, metavar="WHEN", help="refused at or after WHEN")
    dead.add_argument("--limit", type=positive_int, default=20, help="list: how many")
    dead.add_argument("--out", type=Path, metavar="FILE", help="export: to FILE, not stdout")
    dead.set_defaults(run=run)
