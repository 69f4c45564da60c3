"""Keeps the children of `tapsense up` running: one that dies is restarted, the others go on.

A child that exits is restarted after a backoff that doubles with each failure in a row, up to
`MAX_BACKOFF_S`. A failure "in a row" is an exit (or a restart that never got ready) within
`FAST_FAILURE_S` of its start; a child that ran longer than that starts the count afresh.
Only after `GIVE_UP_AFTER` failures in a row does the supervisor give up, and then it says
which child and where its log is, and `tapsense up` stops everything: a child that cannot
start (a port taken by someone else, a broken config) must not be restarted forever.
Nothing is lost meanwhile: the broker keeps ingest's session, the agents keep their spools.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from stack.services import ManagedProcess, ServiceError

_LOGGER = logging.getLogger(__name__)

FAST_FAILURE_S = 30.0
GIVE_UP_AFTER = 5
FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0


@dataclass
class Child:
    """A managed process and how to tell it is ready after a (re)start."""

    process: ManagedProcess
    # Called before each start: a fresh check (a log-watching one must skip older lines).
    readiness: Callable[[], Callable[[], bool]]
    timeout_s: float = 30.0
    restarts: int = 0
    failures_in_a_row: int = 0
    started_at: float = 0.0
    restart_at: float | None = None

    @property
    def name(self) -> str:
        return self.process.name

    def start(self) -> None:
        self.process.start(self.readiness(), self.timeout_s)
        self.started_at = time.monotonic()

    def exited(self) -> int | None:
        p = self.process.process
        return None if p is None else p.poll()


class GaveUp(RuntimeError):
    """A child failed too often in a row to be worth restarting."""


class Supervisor:
    def __init__(self) -> None:
        self.children: list[Child] = []

    def start(self, child: Child) -> None:
        """The first start: a child that does not come up stops `tapsense up` at once."""
        child.start()
        self.children.append(child)

    def tend(self) -> None:
        """Notice exits and restart what is due; raises `GaveUp` when a child keeps failing."""
        now = time.monotonic()
        for child in self.children:
            if child.restart_at is None:
                code = child.exited()
                if code is not None:
                    fast = now - child.started_at < FAST_FAILURE_S
                    self._failed(child, f"exited with {code}", fast=fast)
            elif now >= child.restart_at:
                self._restart(child)

    def _failed(self, child: Child, what: str, *, fast: bool) -> None:
        child.process.stop()  # reaps it, closes its log, forgets its pid file
        child.failures_in_a_row = child.failures_in_a_row + 1 if fast else 1
        if child.failures_in_a_row >= GIVE_UP_AFTER:
            raise GaveUp(
                f"{child.name} {what}, its {child.failures_in_a_row}th failure in a row within "
                f"{FAST_FAILURE_S:.0f} s of starting; giving up. See {child.process.log_path}"
            )
        delay = min(FIRST_BACKOFF_S * 2 ** (child.failures_in_a_row - 1), MAX_BACKOFF_S)
        child.restart_at = time.monotonic() + delay
        _LOGGER.error(
            "%s %s; restarting it in %.0f s (see %s)", child.name, what, delay,
            child.process.log_path,
        )  # fmt: skip

    def _restart(self, child: Child) -> None:
        child.restart_at = None
        child.restarts += 1
        try:
            child.start()
        except ServiceError as exc:
            self._failed(child, f"did not come back ({exc})", fast=True)
            return
        _LOGGER.warning("%s restarted (restart %d)", child.name, child.restarts)

    def stop(self) -> None:
        for child in reversed(self.children):
            child.process.stop()
