"""A process that seals messages into a spool as fast as it can and says each sequence number
once `add` has returned (committed); tests kill it with SIGKILL at random moments."""

from __future__ import annotations

import sys
from pathlib import Path

from edge.spool import Spool
from edge.wire import Temperature

if __name__ == "__main__":
    spool = Spool(Path(sys.argv[1]))
    readings = [Temperature(tap="tap-01", ts=1_750_000_000_000 + k, c=4.0) for k in range(50)]
    while True:
        print(spool.add(readings, []), flush=True)
