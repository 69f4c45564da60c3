"""What it costs the agent's spool to keep every sealed message across a power cut.

    .venv/bin/python -m bench.spool [--messages 2000]

Seals messages of 50 readings into a spool on this machine's disk with `synchronous=FULL` (each
message fsynced before `add` returns: what the agent uses) and, as the baseline measured in the
same run, `synchronous=NORMAL` (survives a process crash only), and prints both rates and their
ratio. An agent seals one message every few seconds, so the figure to read is how far above
that even the durable rate stays.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from edge.spool import Spool
from edge.wire import Pour, Temperature

T0 = 1_750_000_000_000


def rate(folder: Path, durable: bool, messages: int) -> float:
    spool = Spool(folder / f"spool-{durable}.sqlite", durable=durable)
    temps = [Temperature(tap=f"tap-{k % 8:02d}", ts=T0 + k, c=4.25) for k in range(48)]
    pours = [Pour(tap="tap-01", ts=T0, ml=480.0, dur_ms=4000)] * 2
    started = time.perf_counter()
    for _ in range(messages):
        spool.add(temps, pours)
    took = time.perf_counter() - started
    spool.close()
    return messages / took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=Path.home()) as folder:  # a real disk, not tmpfs
        durable = rate(Path(folder), True, args.messages)
        normal = rate(Path(folder), False, args.messages)
    print(f"spool, {args.messages:,} messages of 50 readings, on {Path.home()}'s disk:")
    print(f"  synchronous=FULL   (power-cut safe; the agent's) {durable:10,.0f} messages/s")
    print(f"  synchronous=NORMAL (process-crash safe)          {normal:10,.0f} messages/s")
    print(f"ratio FULL / NORMAL = {durable / normal:.2f}; an agent seals about 0.2 messages/s")


if __name__ == "__main__":
    main()
