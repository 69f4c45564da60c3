"""The registry on ingest's path: registering a fleet, and noticing a change.

    .venv/bin/python -m bench.registry [--venues 1000] [--taps 8]

Registers N venues x M taps with a device each (as `tapsense load` does), then times what
ingest does to stay current: the one-row generation check it makes every second and for
every unknown sender, against the baseline of re-reading the whole directory, measured in
the same run, as a ratio; and the per-message sender check on a loaded directory.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from registry.db import engine_for, generation, migrate
from registry.directory import load_directory, refusal
from simulators.fleet import simple_scenario
from simulators.provision import provision


def per_second(count: int, seconds: float) -> str:
    return f"{count / seconds:,.0f}/s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venues", type=int, default=1000)
    parser.add_argument("--taps", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'registry.sqlite'}"
        migrate(url)
        engine = engine_for(url)
        started = time.perf_counter()
        provision(engine, simple_scenario(args.venues, args.taps))
        took = time.perf_counter() - started
        print(f"register {args.venues} venues x {args.taps} taps + a device each: {took:.1f} s "
              f"({per_second(args.venues, took)} venues)")  # fmt: skip

        rounds = 2000
        started = time.perf_counter()
        for _ in range(rounds):
            generation(engine)
        check_s = (time.perf_counter() - started) / rounds
        reloads = 20
        started = time.perf_counter()
        for _ in range(reloads):
            directory = load_directory(engine)
        load_s = (time.perf_counter() - started) / reloads
        print(f"generation check: {check_s * 1e6:,.0f} us; full directory read: "
              f"{load_s * 1e3:,.1f} ms; ratio {load_s / check_s:,.0f}x")  # fmt: skip

        senders = [(f"venue-{i % args.venues + 1:03d}", "edge-1") for i in range(1_000_000)]
        started = time.perf_counter()
        refused = sum(refusal(directory, venue, device) is not None for venue, device in senders)
        took = time.perf_counter() - started
        print(f"sender check on the loaded directory: {per_second(len(senders), took)} "
              f"messages ({refused} refused)")  # fmt: skip
        engine.dispose()


if __name__ == "__main__":
    main()
