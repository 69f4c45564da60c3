"""The plain-Python twin of the quality kernel: slow, obvious, trusted.

Same rules and the same arithmetic in the same order as `ingest.kernels`, written for reading
rather than speed: dictionaries and deques instead of arrays. Tests compare the kernel with its
twin; benchmarks use it as the baseline.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence

from ingest import kernels as K

Event = tuple[int, int, int, int, float, float]  # tap, ts, check, level, value, value2


class ReferenceQuality:
    """Quality state of taps 0..n-1; `tap_venue[i]` is tap i's venue."""

    def __init__(
        self,
        params: Sequence[Sequence[float]],
        tap_venue: Sequence[int],
        venue_params: Sequence[Sequence[float]],
    ) -> None:
        self.params = params
        self.tap_venue = tap_venue
        self.venue_params = venue_params
        n = len(params)
        self.last_ts: dict[int, int] = {}
        self.window: dict[int, deque[tuple[int, float]]] = {
            i: deque(maxlen=K.WINDOW) for i in range(n)
        }
        self.level = {(i, c): K.OK for i in range(n) for c in range(K.N_CHECKS)}
        self.above_since: dict[int, int] = {}
        self.plausible_run = dict.fromkeys(range(n), 0)
        self.same: dict[int, tuple[int, int]] = {}  # tap -> (since, count)
        self.warming = dict.fromkeys(range(n), False)
        self.venue_level = dict.fromkeys(range(len(venue_params)), K.OK)
        self.venue_newest: dict[int, int] = {}
        self.last_pour_ts: dict[int, int] = {}
        self.rate_ml_h = dict.fromkeys(range(n), 0.0)
        self.keg_used = dict.fromkeys(range(n), 0.0)
        self.foamy: dict[int, deque[bool]] = {
            i: deque([False] * K.FOAMY_OF_LAST, maxlen=K.FOAMY_OF_LAST) for i in range(n)
        }
        self.waste = dict.fromkeys(range(n), 0.0)
        self.cleaned_at: dict[int, int] = {}
        self.good: dict[int, tuple[int, float]] = {}
        # When a raised check's condition became clear (it clears after the hold).
        self.clear_since: dict[tuple[int, int], int] = {}
        self.venue_clear_since: dict[int, int] = {}
        self.trend: dict[int, tuple[int, float]] = {}
        self.recent_pours: dict[int, deque[tuple[int, float]]] = {
            i: deque(maxlen=K.POURS_KEPT) for i in range(n)
        }
        self.keg_ml = {i: float(params[i][K.P_KEG_ML]) for i in range(n)}
        self.keg_over: dict[int, tuple[int, float]] = {}  # tap -> (first pour past empty, mL)
        self.inferred: list[tuple[int, int]] = []  # (tap, at ms) of inferred keg changes

        # Each venue's taps, newest first, as the kernel keeps them.
        self.venue_taps: dict[int, list[int]] = {}
        for i, v in enumerate(tap_venue):
            self.venue_taps.setdefault(v, []).insert(0, i)

    def readings(self, rows: Iterable[tuple[int, int, int, float, int, bool]]) -> list[Event]:
        """Rows (kind, tap, ts, value, duration ms, closed) in time order, as the kernel takes
        them: temperatures (value °C), pours (value mL) and keg changes (value mL)."""
        events: list[Event] = []
        for kind, i, t, value, dur_ms, closed in rows:
            if kind == K.TEMPERATURE:
                self._temperature(i, t, value, events)
            elif kind == K.POUR:
                self._pour(i, t, value, dur_ms, closed, events)
            else:
                self._keg(i, t, value, events)
        return events

    def temperatures(self, readings: Iterable[tuple[int, int, float]]) -> list[Event]:
        return self.readings((K.TEMPERATURE, i, t, c, 0, False) for i, t, c in readings)

    def pours(self, pours: Iterable[tuple[int, int, float, int, bool]]) -> list[Event]:
        """Pours (tap, ts, ml, duration ms, whether the venue was closed)."""
        return self.readings((K.POUR, i, t, ml, d, a) for i, t, ml, d, a in pours)

    def _held(self, key: tuple[int, int], t: int, hold: float) -> bool:
        since = self.clear_since.setdefault(key, t)
        return t - since >= hold

    def _temperature(self, i: int, t: int, c: float, events: list[Event]) -> None:
        if i in self.last_ts and t <= self.last_ts[i]:
            return  # duplicate or late: stored, but moves no state
        p, v = self.params[i], self.tap_venue[i]
        hold = p[K.P_CLEAR_HOLD_MS]
        if self.level[i, K.DEAD_SENSOR]:
            self.level[i, K.DEAD_SENSOR] = K.OK
            events.append((i, t, K.DEAD_SENSOR, K.OK, c, float(self.last_ts[i])))
        self.last_ts[i] = t
        cleaned = self.cleaned_at.setdefault(i, t)
        if not self.level[i, K.LINE_CLEANING] and t - cleaned >= p[K.P_CLEAN_MS]:
            self.level[i, K.LINE_CLEANING] = K.WARNING
            events.append(
                (i, t, K.LINE_CLEANING, K.WARNING, (t - cleaned) / 86_400_000.0, float(cleaned))
            )
        last_pour = self.last_pour_ts.get(i)
        if (self.level[i, K.LEAK] and last_pour is not None
                and t - last_pour >= p[K.P_LEAK_CLEAR_MS]):  # fmt: skip
            self.level[i, K.LEAK] = K.OK
            events.append((i, t, K.LEAK, K.OK, 0.0, float(t - last_pour)))
        if t > self.venue_newest.get(v, -1):
            self.venue_newest[v] = t
            for j in self.venue_taps[v]:
                silent_ms = t - self.last_ts.get(j, t)
                if (j != i and not self.level[j, K.DEAD_SENSOR] and j in self.last_ts
                        and silent_ms >= self.params[j][K.P_DEAD_MS]):  # fmt: skip
                    self.level[j, K.DEAD_SENSOR] = K.WARNING
                    events.append(
                        (
                            j,
                            t,
                            K.DEAD_SENSOR,
                            K.WARNING,
                            float(silent_ms),
                            float(self.last_ts[j]),
                        )
                    )
        window = self.window[i]
        good = self.good.get(i)  # the last plausible reading: (t, °C)
        jump = False
        if good is not None:
            too_fast = abs(c - good[1]) > p[K.P_MAX_RATE] * (t - good[0]) / 1000.0
            flushed = good[1] > c >= p[K.P_COLD_C]  # a pour brought cold beer
            jump = too_fast and not flushed
        if math.isnan(c) or c < p[K.P_PLAUS_MIN] or c > p[K.P_PLAUS_MAX] or jump:
            self.plausible_run[i] = 0
            self.clear_since.pop((i, K.IMPLAUSIBLE), None)
            if not self.level[i, K.IMPLAUSIBLE]:
                self.level[i, K.IMPLAUSIBLE] = K.WARNING
                events.append((i, t, K.IMPLAUSIBLE, K.WARNING, c, good[1] if good else 0.0))
            return
        self.plausible_run[i] += 1
        clearing = self.level[i, K.IMPLAUSIBLE] and self.plausible_run[i] >= K.PLAUSIBLE_TO_CLEAR
        if clearing and self._held((i, K.IMPLAUSIBLE), t, hold * K.IMPLAUSIBLE_HOLD_FACTOR):
            self.level[i, K.IMPLAUSIBLE] = K.OK
            self.clear_since.pop((i, K.IMPLAUSIBLE))
            events.append((i, t, K.IMPLAUSIBLE, K.OK, c, 0.0))
        since, count = self.same.get(i, (t, 0))
        self.same[i] = (since, count + 1) if good and c == good[1] else (t, 1)
        self.good[i] = (t, c)

        if not self.level[i, K.WARM_BEER]:
            if c > p[K.P_MAX_C]:
                since_warm = self.above_since.setdefault(i, t)
                if t - since_warm >= p[K.P_GRACE_MS]:
                    self.level[i, K.WARM_BEER] = K.WARNING
                    events.append((i, t, K.WARM_BEER, K.WARNING, c, float(since_warm)))
            else:
                self.above_since.pop(i, None)
        elif c <= p[K.P_CLEAR_C]:
            if self._held((i, K.WARM_BEER), t, hold):
                self.level[i, K.WARM_BEER] = K.OK
                self.above_since.pop(i, None)
                self.clear_since.pop((i, K.WARM_BEER))
                events.append((i, t, K.WARM_BEER, K.OK, c, 0.0))
        else:
            self.clear_since.pop((i, K.WARM_BEER), None)
            if self.level[i, K.WARM_BEER] == K.WARNING and c > p[K.P_MAX_C] + K.WARM_CRITICAL_C:
                self.level[i, K.WARM_BEER] = K.CRITICAL
                events.append((i, t, K.WARM_BEER, K.CRITICAL, c, float(self.above_since[i])))

        since, count = self.same[i]
        stuck = count >= K.STUCK_MIN_SAMPLES and t - since >= p[K.P_STUCK_MS]
        if not self.level[i, K.STUCK_SENSOR]:
            if stuck:
                self.level[i, K.STUCK_SENSOR] = K.WARNING
                events.append((i, t, K.STUCK_SENSOR, K.WARNING, c, float(since)))
        elif count < K.STUCK_MIN_SAMPLES:
            if self._held((i, K.STUCK_SENSOR), t, hold):
                self.level[i, K.STUCK_SENSOR] = K.OK
                self.clear_since.pop((i, K.STUCK_SENSOR))
                events.append((i, t, K.STUCK_SENSOR, K.OK, c, 0.0))
        else:
            self.clear_since.pop((i, K.STUCK_SENSOR), None)

        # The trend window takes one reading per trend step (see the kernel).
        if window and t - window[-1][0] < p[K.P_TREND_STEP_MS]:
            return
        window.append((t, c))

        n = len(window)
        xs = [(wt - t) / 1000.0 for wt, _ in window]
        ys = [wc for _, wc in window]
        sx = sy = 0.0
        for x, y in zip(xs, ys, strict=True):
            sx += x
            sy += y
        mx, my = sx / n, sy / n
        sxx = sxy = 0.0
        for x, y in zip(xs, ys, strict=True):
            dx = x - mx
            sxx += dx * dx
            sxy += dx * (y - my)
        slope_h = sxy / sxx * 3600.0 if n >= K.WINDOW // 2 and sxx > 0.0 else 0.0
        fitted = my - (sxy / sxx if sxx > 0.0 else 0.0) * mx

        # A forecast must hold without moving later (a settling line's keeps receding), and
        # none is made while the window holds a pour.
        poured = i in self.last_pour_ts and self.last_pour_ts[i] >= window[0][0]
        if not self.level[i, K.WARMING_TREND]:
            to_cross_ms = math.inf
            if slope_h >= p[K.P_MIN_SLOPE] and fitted < p[K.P_MAX_C] and not poured:
                to_cross_ms = (p[K.P_MAX_C] - fitted) / slope_h * 3_600_000.0
            first = self.trend.get(i)  # (since, first forecast crossing)
            if to_cross_ms > p[K.P_HORIZON_MS]:
                self.trend.pop(i, None)
            elif first is None or t + to_cross_ms > first[1] + K.TREND_RECEDE_MS:
                self.trend[i] = (t, t + to_cross_ms)
            elif t - first[0] >= p[K.P_TREND_CONFIRM_MS]:
                self.level[i, K.WARMING_TREND] = K.WARNING
                del self.trend[i]
                events.append((i, t, K.WARMING_TREND, K.WARNING, t + to_cross_ms, slope_h))
        elif slope_h < p[K.P_MIN_SLOPE] / 2.0:
            if self._held((i, K.WARMING_TREND), t, hold):
                self.level[i, K.WARMING_TREND] = K.OK
                self.clear_since.pop((i, K.WARMING_TREND))
                events.append((i, t, K.WARMING_TREND, K.OK, c, slope_h))
        else:
            self.clear_since.pop((i, K.WARMING_TREND), None)

        self.warming[i] = bool(self.level[i, K.WARM_BEER] or self.level[i, K.WARMING_TREND])
        taps = self.venue_taps[v]
        warming = sum(self.warming[j] for j in taps)
        share = warming / len(taps)
        vp = self.venue_params[v]
        if not self.venue_level[v]:
            if warming >= vp[K.V_MIN_TAPS] and share >= vp[K.V_SHARE_ON]:
                self.venue_level[v] = K.WARNING
                events.append((i, t, K.COOLER_FAILURE, K.WARNING, share, float(warming)))
        elif share < vp[K.V_SHARE_OFF]:
            since = self.venue_clear_since.setdefault(v, t)
            if t - since >= hold:
                self.venue_level[v] = K.OK
                del self.venue_clear_since[v]
                events.append((i, t, K.COOLER_FAILURE, K.OK, share, float(warming)))
        else:
            self.venue_clear_since.pop(v, None)

    def _keg(self, i: int, t: int, keg_ml: float, events: list[Event]) -> None:
        self.keg_ml[i] = keg_ml
        # Recorded late: the pours since count to the new keg (as far as the latest reach).
        self.keg_used[i] = sum(ml for at, ml in self.recent_pours[i] if at >= t)
        self.keg_over.pop(i, None)
        left = keg_ml - self.keg_used[i]
        if left <= 0.0:
            new = K.CRITICAL
        elif left < self.params[i][K.P_KEG_LOW_SHARE] * keg_ml:
            new = K.WARNING
        else:
            new = K.OK
        if new != self.level[i, K.KEG_LOW]:
            self.level[i, K.KEG_LOW] = new
            at = max(t, self.last_ts.get(i, K.NO_TIME), self.last_pour_ts.get(i, K.NO_TIME))
            events.append((i, at, K.KEG_LOW, new, -1.0, left))

    def _pour(
        self, i: int, t: int, ml: float, dur_ms: int, after_hours: bool, events: list[Event]
    ) -> None:
        if i in self.last_pour_ts and t <= self.last_pour_ts[i]:
            return
        p = self.params[i]
        flow = ml / max(dur_ms, 1) * 1000.0
        if after_hours and not self.level[i, K.AFTER_HOURS]:
            self.level[i, K.AFTER_HOURS] = K.WARNING
            events.append((i, t, K.AFTER_HOURS, K.WARNING, ml, float(dur_ms)))
        elif not after_hours and self.level[i, K.AFTER_HOURS]:
            self.level[i, K.AFTER_HOURS] = K.OK
            events.append((i, t, K.AFTER_HOURS, K.OK, ml, float(dur_ms)))
        slow = flow < p[K.P_LEAK_ML_PER_S] and dur_ms >= p[K.P_LEAK_MIN_MS]
        if slow and not self.level[i, K.LEAK]:
            self.level[i, K.LEAK] = K.WARNING
            events.append((i, t, K.LEAK, K.WARNING, flow, float(dur_ms)))
        elif not slow and self.level[i, K.LEAK] and flow >= p[K.P_LEAK_ML_PER_S]:
            self.level[i, K.LEAK] = K.OK
            events.append((i, t, K.LEAK, K.OK, flow, float(dur_ms)))

        last_c = self.good[i][1] if i in self.good else 0.0
        foamy = last_c > p[K.P_FOAM_C] or flow > p[K.P_FOAM_ML_PER_S]
        if foamy:
            self.waste[i] += ml * K.FOAM_WASTE_SHARE
        self.foamy[i].append(foamy)
        count = sum(self.foamy[i])
        if count >= 3 and not self.level[i, K.FOAMY]:
            self.level[i, K.FOAMY] = K.WARNING
            events.append((i, t, K.FOAMY, K.WARNING, float(count), self.waste[i]))
        elif count == 0 and self.level[i, K.FOAMY]:
            self.level[i, K.FOAMY] = K.OK
            events.append((i, t, K.FOAMY, K.OK, 0.0, self.waste[i]))

        if i in self.last_pour_ts:
            self.rate_ml_h[i] *= math.exp(
                -(t - self.last_pour_ts[i]) / 3_600_000.0 / K.KEG_RATE_TAU_H
            )
        self.rate_ml_h[i] += ml / K.KEG_RATE_TAU_H
        self.last_pour_ts[i] = t
        self.recent_pours[i].append((t, ml))
        keg = self.keg_ml[i]
        inferred = False
        if self.keg_used[i] >= keg:  # past an empty keg
            since, over = self.keg_over.get(i, (t - dur_ms, 0.0))
            over += ml
            if over >= p[K.P_KEG_INFER_SHARE] * keg:  # a new keg nobody recorded
                self.inferred.append((i, since))
                inferred = True
                self.keg_used[i] = over
                self.keg_over.pop(i, None)
            else:
                self.keg_over[i] = (since, over)
                self.keg_used[i] += ml
        else:
            self.keg_used[i] += ml
        left = keg - self.keg_used[i]
        rate = self.rate_ml_h[i]
        empty_at = t + left / rate * 3_600_000.0 if rate > 0 else -1.0
        if left <= 0.0:
            new = K.CRITICAL
        elif left < p[K.P_KEG_LOW_SHARE] * keg or (
            left < K.KEG_FORECAST_SHARE * keg
            and empty_at >= 0
            and empty_at - t <= p[K.P_KEG_HORIZON_MS]
        ):
            new = K.WARNING
        else:
            new = K.OK
        # A keg only empties: its alarm clears with the next keg, recorded or inferred.
        if new > self.level[i, K.KEG_LOW] or (inferred and new != self.level[i, K.KEG_LOW]):
            self.level[i, K.KEG_LOW] = new
            events.append((i, t, K.KEG_LOW, new, empty_at, left))
