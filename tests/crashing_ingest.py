"""`tapsense ingest`, except that it kills itself with SIGKILL while handling any payload that
contains `KILL_MARKER`: a message that takes the whole process down without raising, for the
tests of the worker's last line of defence (`ingest.inflight`).

Run as `python -m tests.crashing_ingest` with the settings in `TAPSENSE_*` variables.
"""

from __future__ import annotations

import os
import signal
import sys

from ingest import batch
from stack.cli import main

KILL_MARKER = b"KILL-THE-WORKER"

_decode = batch.decode_telemetry


def _dying_decode(topic: str, payload: bytes, *args: int) -> object:
    if KILL_MARKER in payload:
        os.kill(os.getpid(), signal.SIGKILL)
    return _decode(topic, payload, *args)


if __name__ == "__main__":
    batch.decode_telemetry = _dying_decode  # type: ignore[assignment]
    sys.exit(main(["ingest"]))
