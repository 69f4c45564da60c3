"""Numba quality kernels. Pure: arrays and scalars in, arrays out; no I/O, no Python objects.

`check_readings` updates per-tap state (structure of arrays, indexed by tap) in place from one
batch of temperatures, pours and keg changes in time order (the caller sorts them), and writes
the level changes it saw into preallocated event arrays, returning how many. Time order is what
makes every judgement batch-invariant: a pour is judged against the temperature at its own
time, a temperature knows the pours before it. `ingest.reference` holds an obvious
plain-Python twin, and the tests hold the kernel to it.

Rules for awkward input, the same in kernel and reference:
- A reading not newer than its tap's last one (a duplicate, late or reordered) is stored by
  ingest but moves no state. So any split of a stream into batches gives the same events.
- An implausible temperature (outside the plausible range, NaN or infinite, or a jump faster
  than the tap's `max_rate`) is flagged and feeds no other check; the flag clears after three
  plausible ones. (The wire contract already refuses NaN; the kernels do not rely on it.)
- A device clock that jumps back makes its readings "not newer" until it catches up: they are
  stored, and move no state. A jump forward is a gap.
- Gaps need no rule: windows hold the last `WINDOW` plausible readings whatever their spacing,
  and the dead-sensor check measures silence against the newest reading of the same venue.
- A fast drop toward the cold beer (down, but not below the tap's `P_COLD_C`) is what a pour
  does to a warm line: plausible. A fast rise, or a fall below the cold beer, is not.
- A raised check clears only after its condition has stayed clear for `P_CLEAR_HOLD_MS`, so
  a condition hovering at its threshold raises one alarm, not a flapping series.
"""

from __future__ import annotations

from typing import Any

import numba as nb
import numpy as np

# Compilation flags live here, once (practice from STUMPY's config.py). The per-row helpers are
# inlined into `check_readings`: called, each would pass its three dozen arrays on every row.
JIT: dict[str, Any] = {"cache": True, "nogil": True}

NO_TIME = -1  # no reading yet; every real timestamp is after 2020
OK, WARNING, CRITICAL = 0, 1, 2
WINDOW = 32  # readings per tap the trend looks back over: 16 minutes at one per 30 s
PLAUSIBLE_TO_CLEAR = 3
# A probe that glitched is trusted again only after this many holds (two hours by default) of
# plausible readings:
# glitches come in bursts, and each burst is one alarm.
IMPLAUSIBLE_HOLD_FACTOR = 12
STUCK_MIN_SAMPLES = 10  # and a stuck probe repeats one value at least this many times
FOAMY_OF_LAST = 5  # the foam check looks at a tap's last five pours
# Warm beer this far above its limit is critical: no guest should be served it.
WARM_CRITICAL_C = 3.0
# A warming forecast that moves later than its first by more than this is a line settling.
TREND_RECEDE_MS = 90_000

# Checks, one column each in the per-tap `level` state.
WARM_BEER, WARMING_TREND, COOLER_FAILURE, STUCK_SENSOR, DEAD_SENSOR = 0, 1, 2, 3, 4
IMPLAUSIBLE, KEG_LOW, LEAK, FOAMY, AFTER_HOURS, LINE_CLEANING = 5, 6, 7, 8, 9, 10
N_CHECKS = 11

# Per-tap thresholds: one column each in `params` (float64), filled from the registry/settings.
P_MAX_C = 0  # warm above this ...
P_CLEAR_C = 1  # ... ok again at or below this
P_GRACE_MS = 2  # ... after this long above
P_HORIZON_MS = 3  # warn when the trend crosses P_MAX_C within this
P_MIN_SLOPE = 4  # °C per hour below which a trend is no trend
P_STUCK_MS = 5  # the very same value for this long is a stuck probe
P_DEAD_MS = 6  # silent this long while the venue reports: a dead probe
P_PLAUS_MIN = 7
P_PLAUS_MAX = 8
P_MAX_RATE = 9  # °C per second a beer line cannot change faster than
P_KEG_ML = 10
P_KEG_LOW_SHARE = 11  # keg low below this share ...
P_KEG_HORIZON_MS = 12  # ... or forecast empty within this
P_LEAK_ML_PER_S = 13  # a flow slower than this ...
P_LEAK_MIN_MS = 14  # ... lasting this long is a leak
P_FOAM_C = 15  # beer above this at pour time foams
P_FOAM_ML_PER_S = 16  # a flow faster than this foams
P_CLEAN_MS = 17  # a line is cleaned at least this often
P_TREND_STEP_MS = 18  # the trend window takes a reading at most this often
P_LEAK_CLEAR_MS = 19  # no flow reported for this long while the probe reports: leak over
P_CLEAR_HOLD_MS = 20  # a raised check clears once its condition stayed clear this long
P_COLD_C = 21  # a fast drop that ends at or above this is a pour flushing the line
P_KEG_INFER_SHARE = 22  # poured past empty this share of a keg: a new keg went on unrecorded
P_TREND_CONFIRM_MS = 23  # a warming forecast must hold this long before it is announced
N_PARAMS = 24

# What a row of a batch is: sorted by time, and at the same time in this order.
KEG, TEMPERATURE, POUR = 0, 1, 2

# Per-venue thresholds for the cooler check (columns of `venue_params`).
V_SHARE_ON = 0  # this share of a venue's taps warming together: the cooler
V_SHARE_OFF = 1
V_MIN_TAPS = 2
N_VENUE_PARAMS = 3


KEG_RATE_TAU_H = 1.0  # the pour rate forecasting a keg's end looks back about an hour
FOAM_WASTE_SHARE = 0.25  # of a foamy pour, this much goes down the drain
# A forecast of the keg's end warns only once less than this share is left: a busy hour on a
# full keg is no news.
KEG_FORECAST_SHARE = 0.3
# Each tap's latest pours, so that a keg change recorded after them counts them to the new keg.
POURS_KEPT = 32


@nb.njit(**JIT)
def _emit(ev, n, tap, ts, check, level, value, value2):  # type: ignore[no-untyped-def]
    """Write event `n` into the event arrays `ev` (tap, ts, check, level, value, value2)."""
    ev[0][n] = tap
    ev[1][n] = ts
    ev[2][n] = check
    ev[3][n] = level
    ev[4][n] = value
    ev[5][n] = value2
    return n + 1


@nb.njit(**JIT)
def _clear_held_tap(clear_since, i, check, t, hold):  # type: ignore[no-untyped-def]
    """Tap i's `check` condition is clear at `t`: whether it has been long enough (`hold`)."""
    if clear_since[i, check] == NO_TIME:
        clear_since[i, check] = t
    return t - clear_since[i, check] >= hold


@nb.njit(**JIT)
def _clear_held_venue(clear_since, v, t, hold):  # type: ignore[no-untyped-def]
    """Venue v's cooler condition is clear at `t`: whether it has been long enough."""
    if clear_since[v] == NO_TIME:
        clear_since[v] = t
    return t - clear_since[v] >= hold


@nb.njit(**JIT)
def check_readings(  # type: ignore[no-untyped-def]
    kind, tap, ts, value, dur_ms, closed,
    tap_venue, params, venue_params, tap_next, venue_head,
    last_ts, last_c, above_since, level, clear_since, ring_t, ring_c, ring_len, ring_head,
    plausible_run, same_since, same_count, cleaned_at, good_ts, warming, trend_since, trend_cross,
    last_pour_ts, keg_used_ml, keg_over_at, keg_over_ml, keg_inferred_at, rate_ml_h,
    pour_t, pour_ml, pour_head, foam_hist, foam_head, waste_ml,
    venue_taps, venue_warming, venue_level, venue_clear_since, venue_newest,
    ev,
):  # fmt: skip
    """Every check over a batch in time order. Row k is a `kind[k]`: a temperature
    (`value` °C), a pour (`value` mL over `dur_ms`, `closed`: the venue was closed) or a keg
    change (`value` mL: a full keg of this size went on at `ts`). One loop, no calls per row:
    a call would pass its three dozen arrays (and their reference counts) on every row."""
    n_ev = 0
    for k in range(tap.shape[0]):
        i = tap[k]
        t = ts[k]
        if kind[k] == TEMPERATURE:
            c = value[k]
            # --- warm beer, warming trend, cooler failure, stuck, dead and implausible
            # probes, an overdue cleaning, and the end of a leak
            if t <= last_ts[i]:
                continue
            p = params[i]
            v = tap_venue[i]
            hold = p[P_CLEAR_HOLD_MS]
            if level[i, DEAD_SENSOR] != OK:
                level[i, DEAD_SENSOR] = OK
                n_ev = _emit(ev, n_ev, i, t, DEAD_SENSOR, OK, c, float(last_ts[i]))
            last_ts[i] = t

            # 9. line cleaning overdue (a tap first seen counts as cleaned then)
            if cleaned_at[i] == NO_TIME:
                cleaned_at[i] = t
            if level[i, LINE_CLEANING] == OK and t - cleaned_at[i] >= p[P_CLEAN_MS]:
                level[i, LINE_CLEANING] = WARNING
                days = (t - cleaned_at[i]) / 86_400_000.0
                n_ev = _emit(ev, n_ev, i, t, LINE_CLEANING, WARNING, days, float(cleaned_at[i]))

            # 7b. a leak is over when its flow stopped being reported while the probe reports
            if (level[i, LEAK] != OK and last_pour_ts[i] != NO_TIME
                    and t - last_pour_ts[i] >= p[P_LEAK_CLEAR_MS]):  # fmt: skip
                level[i, LEAK] = OK
                n_ev = _emit(ev, n_ev, i, t, LEAK, OK, 0.0, float(t - last_pour_ts[i]))

            if t > venue_newest[v]:
                venue_newest[v] = t
                j = venue_head[v]
                while j >= 0:
                    if (j != i and level[j, DEAD_SENSOR] == OK and last_ts[j] != NO_TIME
                            and t - last_ts[j] >= params[j, P_DEAD_MS]):  # fmt: skip
                        level[j, DEAD_SENSOR] = WARNING
                        n_ev = _emit(ev, n_ev,
                                     j, t, DEAD_SENSOR, WARNING, float(t - last_ts[j]),
                                     float(last_ts[j]))  # fmt: skip
                    j = tap_next[j]

            # 5. implausible: out of range, or faster than a line can change since the last
            # good one, unless it is a drop toward the cold beer (a pour flushing a warm line)
            jump = False
            if good_ts[i] != NO_TIME:
                too_fast = abs(c - last_c[i]) > p[P_MAX_RATE] * (t - good_ts[i]) / 1000.0
                flushed = last_c[i] > c >= p[P_COLD_C]
                jump = too_fast and not flushed
            if not (p[P_PLAUS_MIN] <= c <= p[P_PLAUS_MAX]) or jump:  # NaN fails this too
                plausible_run[i] = 0
                clear_since[i, IMPLAUSIBLE] = NO_TIME
                if level[i, IMPLAUSIBLE] == OK:
                    level[i, IMPLAUSIBLE] = WARNING
                    n_ev = _emit(ev, n_ev, i, t, IMPLAUSIBLE, WARNING, c, last_c[i])
                continue
            plausible_run[i] += 1
            clearing = level[i, IMPLAUSIBLE] != OK and plausible_run[i] >= PLAUSIBLE_TO_CLEAR
            if clearing and _clear_held_tap(
                clear_since, i, IMPLAUSIBLE, t, hold * IMPLAUSIBLE_HOLD_FACTOR
            ):
                level[i, IMPLAUSIBLE] = OK
                clear_since[i, IMPLAUSIBLE] = NO_TIME
                n_ev = _emit(ev, n_ev, i, t, IMPLAUSIBLE, OK, c, 0.0)
            if good_ts[i] != NO_TIME and c == last_c[i]:
                same_count[i] += 1
            else:
                same_since[i] = t
                same_count[i] = 1
            last_c[i] = c
            good_ts[i] = t

            # 1. warm beer, with a grace period, hysteresis and a hold before it clears
            if level[i, WARM_BEER] == OK:
                if c > p[P_MAX_C]:
                    if above_since[i] == NO_TIME:
                        above_since[i] = t
                    if t - above_since[i] >= p[P_GRACE_MS]:
                        level[i, WARM_BEER] = WARNING
                        n_ev = _emit(ev, n_ev, i, t, WARM_BEER, WARNING, c, float(above_since[i]))
                else:
                    above_since[i] = NO_TIME
            elif c <= p[P_CLEAR_C]:
                if _clear_held_tap(clear_since, i, WARM_BEER, t, hold):
                    level[i, WARM_BEER] = OK
                    above_since[i] = NO_TIME
                    clear_since[i, WARM_BEER] = NO_TIME
                    n_ev = _emit(ev, n_ev, i, t, WARM_BEER, OK, c, 0.0)
            else:
                clear_since[i, WARM_BEER] = NO_TIME
                if level[i, WARM_BEER] == WARNING and c > p[P_MAX_C] + WARM_CRITICAL_C:
                    level[i, WARM_BEER] = CRITICAL
                    n_ev = _emit(ev, n_ev, i, t, WARM_BEER, CRITICAL, c, float(above_since[i]))

            # 4. stuck probe: the very same value, reading after reading, for long
            stuck = same_count[i] >= STUCK_MIN_SAMPLES and t - same_since[i] >= p[P_STUCK_MS]
            if level[i, STUCK_SENSOR] == OK:
                if stuck:
                    level[i, STUCK_SENSOR] = WARNING
                    n_ev = _emit(ev, n_ev, i, t, STUCK_SENSOR, WARNING, c, float(same_since[i]))
            elif same_count[i] < STUCK_MIN_SAMPLES:
                if _clear_held_tap(clear_since, i, STUCK_SENSOR, t, hold):
                    level[i, STUCK_SENSOR] = OK
                    clear_since[i, STUCK_SENSOR] = NO_TIME
                    n_ev = _emit(ev, n_ev, i, t, STUCK_SENSOR, OK, c, 0.0)
            else:
                clear_since[i, STUCK_SENSOR] = NO_TIME

            # The trend window keeps one reading per `P_TREND_STEP_MS`, so that it spans the same
            # stretch of time however often a probe is read; the window checks run when it moves.
            if ring_len[i] > 0 and t - ring_t[i, (ring_head[i] - 1) % WINDOW] < p[P_TREND_STEP_MS]:
                continue
            h = ring_head[i]
            ring_t[i, h] = t
            ring_c[i, h] = c
            ring_head[i] = (h + 1) % WINDOW
            if ring_len[i] < WINDOW:
                ring_len[i] += 1

            # Window statistics, oldest first, x in seconds before the newest reading.
            n = ring_len[i]
            start = (ring_head[i] - n) % WINDOW
            sx = 0.0
            sy = 0.0
            for m in range(n):
                q = (start + m) % WINDOW
                sx += (ring_t[i, q] - t) / 1000.0
                sy += ring_c[i, q]
            mx = sx / n
            my = sy / n
            sxx = 0.0
            sxy = 0.0
            for m in range(n):
                q = (start + m) % WINDOW
                dx = (ring_t[i, q] - t) / 1000.0 - mx
                sxx += dx * dx
                sxy += dx * (ring_c[i, q] - my)
            slope_h = 0.0
            if n >= WINDOW // 2 and sxx > 0.0:
                slope_h = sxy / sxx * 3600.0
            fitted = my - (sxy / sxx if sxx > 0.0 else 0.0) * mx

            # 2. warming trend: say when the fitted line will cross the warm limit, once the
            # forecast has held for `P_TREND_CONFIRM_MS` without receding. A line settling
            # towards where it idles (after a pour it refills with cold beer and warms back up)
            # slows down, so its forecast keeps moving later: no trend. Nor while the window
            # holds a pour.
            poured = last_pour_ts[i] != NO_TIME and last_pour_ts[i] >= ring_t[i, start]
            if level[i, WARMING_TREND] == OK:
                to_cross_ms = np.inf
                if slope_h >= p[P_MIN_SLOPE] and fitted < p[P_MAX_C] and not poured:
                    to_cross_ms = (p[P_MAX_C] - fitted) / slope_h * 3_600_000.0
                if to_cross_ms > p[P_HORIZON_MS]:
                    trend_since[i] = NO_TIME
                elif (
                    trend_since[i] == NO_TIME or t + to_cross_ms > trend_cross[i] + TREND_RECEDE_MS
                ):
                    trend_since[i] = t  # a first forecast, or one that moved later: start again
                    trend_cross[i] = t + to_cross_ms
                elif t - trend_since[i] >= p[P_TREND_CONFIRM_MS]:
                    level[i, WARMING_TREND] = WARNING
                    trend_since[i] = NO_TIME
                    n_ev = _emit(ev, n_ev, i, t, WARMING_TREND, WARNING, t + to_cross_ms, slope_h)
            elif slope_h < p[P_MIN_SLOPE] / 2.0:
                if _clear_held_tap(clear_since, i, WARMING_TREND, t, hold):
                    level[i, WARMING_TREND] = OK
                    clear_since[i, WARMING_TREND] = NO_TIME
                    n_ev = _emit(ev, n_ev, i, t, WARMING_TREND, OK, c, slope_h)
            else:
                clear_since[i, WARMING_TREND] = NO_TIME

            # 3. cooler failure: most of a venue's taps warm, or warming towards their
            # limit, together
            now_warming = level[i, WARM_BEER] != OK or level[i, WARMING_TREND] != OK
            if now_warming != warming[i]:
                warming[i] = now_warming
                venue_warming[v] += 1 if now_warming else -1
            vp = venue_params[v]
            share = venue_warming[v] / venue_taps[v]
            if venue_level[v] == OK:
                if venue_warming[v] >= vp[V_MIN_TAPS] and share >= vp[V_SHARE_ON]:
                    venue_level[v] = WARNING
                    n_ev = _emit(
                        ev, n_ev, i, t, COOLER_FAILURE, WARNING, share, float(venue_warming[v])
                    )
            elif share < vp[V_SHARE_OFF]:
                if _clear_held_venue(venue_clear_since, v, t, hold):
                    venue_level[v] = OK
                    venue_clear_since[v] = NO_TIME
                    n_ev = _emit(ev, n_ev, i, t, COOLER_FAILURE, OK, share, float(venue_warming[v]))
            else:
                venue_clear_since[v] = NO_TIME
        elif kind[k] == POUR:
            volume = value[k]
            dur = dur_ms[k]
            closed_k = closed[k]
            # --- keg running low (and a keg change nobody recorded), flow after hours, leak
            # (a slow endless flow), foamy pours judged at the temperature of their time
            if t <= last_pour_ts[i]:
                continue
            p = params[i]
            flow = volume / max(dur, 1) * 1000.0

            # 7. flow while the venue is closed, and a slow flow that goes on and on (a leak)
            if closed_k and level[i, AFTER_HOURS] == OK:
                level[i, AFTER_HOURS] = WARNING
                n_ev = _emit(ev, n_ev, i, t, AFTER_HOURS, WARNING, volume, float(dur))
            elif not closed_k and level[i, AFTER_HOURS] != OK:
                level[i, AFTER_HOURS] = OK
                n_ev = _emit(ev, n_ev, i, t, AFTER_HOURS, OK, volume, float(dur))
            slow = flow < p[P_LEAK_ML_PER_S] and dur >= p[P_LEAK_MIN_MS]
            if slow and level[i, LEAK] == OK:
                level[i, LEAK] = WARNING
                n_ev = _emit(ev, n_ev, i, t, LEAK, WARNING, flow, float(dur))
            elif not slow and level[i, LEAK] != OK and flow >= p[P_LEAK_ML_PER_S]:
                level[i, LEAK] = OK
                n_ev = _emit(ev, n_ev, i, t, LEAK, OK, flow, float(dur))

            # 8. foamy pours: too warm or too fast; most of the last five foamy is a problem
            foamy = last_c[i] > p[P_FOAM_C] or flow > p[P_FOAM_ML_PER_S]
            if foamy:
                waste_ml[i] += volume * FOAM_WASTE_SHARE
            foam_hist[i, foam_head[i]] = 1 if foamy else 0
            foam_head[i] = (foam_head[i] + 1) % FOAMY_OF_LAST
            count = 0
            for m in range(FOAMY_OF_LAST):
                count += foam_hist[i, m]
            if count >= 3 and level[i, FOAMY] == OK:
                level[i, FOAMY] = WARNING
                n_ev = _emit(ev, n_ev, i, t, FOAMY, WARNING, float(count), waste_ml[i])
            elif count == 0 and level[i, FOAMY] != OK:
                level[i, FOAMY] = OK
                n_ev = _emit(ev, n_ev, i, t, FOAMY, OK, 0.0, waste_ml[i])

            # 6. keg running low: what is left, and when the recent pour rate empties it.
            # Pours past an empty keg adding up to a share of a keg mean a new one went on
            # that nobody recorded: it counts from the first of them.
            if last_pour_ts[i] != NO_TIME:
                rate_ml_h[i] *= np.exp(-(t - last_pour_ts[i]) / 3_600_000.0 / KEG_RATE_TAU_H)
            rate_ml_h[i] += volume / KEG_RATE_TAU_H
            last_pour_ts[i] = t
            h = pour_head[i]
            pour_t[i, h] = t
            pour_ml[i, h] = volume
            pour_head[i] = (h + 1) % POURS_KEPT
            inferred = False
            if keg_used_ml[i] >= p[P_KEG_ML]:
                if keg_over_at[i] == NO_TIME:
                    keg_over_at[i] = t - dur
                keg_over_ml[i] += volume
                if keg_over_ml[i] >= p[P_KEG_INFER_SHARE] * p[P_KEG_ML]:
                    keg_inferred_at[i] = keg_over_at[i]
                    inferred = True
                    keg_used_ml[i] = keg_over_ml[i]
                    keg_over_at[i] = NO_TIME
                    keg_over_ml[i] = 0.0
                else:
                    keg_used_ml[i] += volume
            else:
                keg_used_ml[i] += volume
            left = p[P_KEG_ML] - keg_used_ml[i]
            empty_at = t + left / rate_ml_h[i] * 3_600_000.0 if rate_ml_h[i] > 0 else -1.0
            # A keg only empties: once low it stays low until the next keg (recorded or inferred).
            new = OK
            if left <= 0.0:
                new = CRITICAL
            elif left < p[P_KEG_LOW_SHARE] * p[P_KEG_ML] or (
                left < KEG_FORECAST_SHARE * p[P_KEG_ML]
                and empty_at >= 0
                and empty_at - t <= p[P_KEG_HORIZON_MS]
            ):
                new = WARNING
            if new > level[i, KEG_LOW] or (inferred and new != level[i, KEG_LOW]):
                level[i, KEG_LOW] = new
                n_ev = _emit(ev, n_ev, i, t, KEG_LOW, new, empty_at, left)
        else:
            keg_ml = value[k]
            # --- a full keg of `keg_ml` went on at `t`: the keg check counts from there (a
            # change recorded late counts the pours since, as far as the tap's recent pours
            # reach), and clears, unless those pours already emptied the new keg low: at `t`,
            # or for a change recorded late at the tap's newest reading, so that a tap's events
            # never go back in time
            params[i, P_KEG_ML] = keg_ml
            used = 0.0
            for m in range(POURS_KEPT):
                if pour_t[i, m] >= t:
                    used += pour_ml[i, m]
            keg_used_ml[i] = used
            keg_over_at[i] = NO_TIME
            keg_over_ml[i] = 0.0
            left = keg_ml - used
            new = OK
            if left <= 0.0:
                new = CRITICAL
            elif left < params[i, P_KEG_LOW_SHARE] * keg_ml:
                new = WARNING
            if new != level[i, KEG_LOW]:
                level[i, KEG_LOW] = new
                at = max(t, last_ts[i], last_pour_ts[i])
                n_ev = _emit(ev, n_ev, i, at, KEG_LOW, new, -1.0, left)
    return n_ev
