"""Numba quality kernels. Pure: arrays and scalars in, arrays out; no I/O, no Python objects.

Each kernel updates per-tap state (structure of arrays, indexed by tap) in place from one batch
of readings in arrival order, and writes the state changes it saw into preallocated event
arrays, returning how many. Each has an obvious plain-Python twin in `ingest.reference` that
the tests hold it to.

Stated rule for order: a reading whose timestamp is not newer than the last one seen for its
tap (a duplicate, or late) is stored by ingest but does not move the quality state. Because
the rule only looks at per-tap state, any split of a stream into batches gives the same events.
"""

from __future__ import annotations

from typing import Any

import numba as nb
import numpy as np

# Compilation flags live here, once (practice from STUMPY's config.py).
JIT: dict[str, Any] = {"nopython": True, "cache": True, "nogil": True}

STATE_OK = 0
STATE_WARM = 1
NO_TIME = np.int64(-1)


@nb.jit(
    "int64(int32[:], int64[:], float64[:], int64[:], int64[:], int8[:],"
    " float64[:], float64[:], int64[:], int32[:], int64[:], int8[:], float64[:])",
    **JIT,
)
def warm_beer(
    tap: np.ndarray,
    ts: np.ndarray,
    temp_c: np.ndarray,
    last_ts: np.ndarray,
    above_since: np.ndarray,
    state: np.ndarray,
    max_c: np.ndarray,
    clear_c: np.ndarray,
    grace_ms: np.ndarray,
    ev_tap: np.ndarray,
    ev_ts: np.ndarray,
    ev_state: np.ndarray,
    ev_temp: np.ndarray,
) -> int:
    """Warm beer with hysteresis: warm after `grace_ms` above `max_c`, ok again at `clear_c`."""
    n_events = 0
    for k in range(tap.shape[0]):
        i = tap[k]
        t = ts[k]
        if t <= last_ts[i]:
            continue
        last_ts[i] = t
        c = temp_c[k]
        if state[i] == STATE_OK:
            if c > max_c[i]:
                if above_since[i] == NO_TIME:
                    above_since[i] = t
                if t - above_since[i] >= grace_ms[i]:
                    state[i] = STATE_WARM
                    ev_tap[n_events] = i
                    ev_ts[n_events] = t
                    ev_state[n_events] = STATE_WARM
                    ev_temp[n_events] = c
                    n_events += 1
            else:
                above_since[i] = NO_TIME
        elif c <= clear_c[i]:
            state[i] = STATE_OK
            above_since[i] = NO_TIME
            ev_tap[n_events] = i
            ev_ts[n_events] = t
            ev_state[n_events] = STATE_OK
            ev_temp[n_events] = c
            n_events += 1
    return n_events
