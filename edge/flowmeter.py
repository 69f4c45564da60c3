"""Pulse flow meters: edge events in, pulses per line out.

A hall-effect flow meter pulls its GPIO line low once per pulse (about 5,600 per litre). The
kernel timestamps each edge (libgpiod v2 edge events); `PulseCounter` is pure: it drops an edge
that follows the line's previous one sooner than the debounce period (contact bounce and
electrical noise are far faster than any real flow) and counts the rest per line.

Where the edges come from is a thin, named adapter: `GpiodEdges` (the `gpiod` package, on a
Raspberry Pi) or `RecordedEdges` (a recorded stream, for tests and for replaying a field
recording), both yielding `(line, timestamp_ns)`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Protocol

DEBOUNCE_NS = 200_000  # 0.2 ms: 5,000 pulses/s, over ten times the fastest pour


class PulseCounter:
    def __init__(self, lines: Iterable[int], debounce_ns: int = DEBOUNCE_NS) -> None:
        self._debounce_ns = debounce_ns
        self._last: dict[int, int] = {}
        self._counts = dict.fromkeys(lines, 0)
        self._lock = threading.Lock()
        self.bounces = 0

    def feed(self, line: int, ts_ns: int) -> None:
        with self._lock:
            if line not in self._counts:
                return
            last = self._last.get(line)
            if last is not None and ts_ns - last < self._debounce_ns:
                self.bounces += 1
                return
            self._last[line] = ts_ns
            self._counts[line] += 1

    def take(self, line: int) -> int:
        """Pulses counted on `line` since the previous call."""
        with self._lock:
            count = self._counts.get(line, 0)
            self._counts[line] = 0
            return count


class EdgeSource(Protocol):
    def edges(self, stop: threading.Event) -> Iterator[tuple[int, int]]:
        """`(line, timestamp_ns)` of each falling edge, until `stop` is set."""
        ...


class GpiodEdges:
    """Falling edges from a GPIO chip through libgpiod v2 (`pip install gpiod`), with the
    lines' pull-ups on. Runs only on hardware; nothing here is exercised off a Pi."""

    def __init__(self, chip: Path, lines: list[int]) -> None:
        self._chip = chip
        self._lines = lines

    def edges(self, stop: threading.Event) -> Iterator[tuple[int, int]]:
        from datetime import timedelta

        import gpiod  # type: ignore[import-not-found]
        from gpiod.line import Bias, Edge  # type: ignore[import-not-found]

        settings = gpiod.LineSettings(
            edge_detection=Edge.FALLING, bias=Bias.PULL_UP,
            debounce_period=timedelta(microseconds=DEBOUNCE_NS // 1000),
        )  # fmt: skip
        with gpiod.request_lines(str(self._chip), consumer="tapsense-agent",
                                 config={tuple(self._lines): settings}) as request:  # fmt: skip
            while not stop.is_set():
                if request.wait_edge_events(timedelta(milliseconds=200)):
                    for event in request.read_edge_events():
                        yield event.line_offset, event.timestamp_ns


class RecordedEdges:
    """A recorded edge stream, one `line timestamp_ns` per line of text, replayed at the pace
    it was recorded from the moment `edges` is first called."""

    def __init__(self, path: Path) -> None:
        self._events: list[tuple[int, int]] = []
        for number, text in enumerate(path.read_text().splitlines(), 1):
            if not text.strip() or text.startswith("#"):
                continue
            try:
                line, ts = (int(part) for part in text.split())
            except ValueError:
                raise ValueError(f"{path} line {number}: want `line timestamp_ns`") from None
            self._events.append((line, ts))

    def edges(self, stop: threading.Event) -> Iterator[tuple[int, int]]:
        if not self._events:
            return
        first = self._events[0][1]
        started = time.monotonic_ns()
        for line, ts in self._events:
            wait_s = (ts - first - (time.monotonic_ns() - started)) / 1e9
            if wait_s > 0 and stop.wait(wait_s):
                return
            yield line, ts


def count_edges(source: EdgeSource, counter: PulseCounter, stop: threading.Event) -> None:
    """Feed the counter from the source until `stop` (a thread's target)."""
    for line, ts in source.edges(stop):
        counter.feed(line, ts)
