"""Per-tap quality state and the Python side of the kernels: validate, convert, call, build events.

The worker owns one `QualityCore`. Taps and venues get dense indexes on first sight; their
state lives in growable NumPy arrays (structure of arrays) that the kernels update in place,
and their thresholds in a `params` matrix filled from the settings and the registry's
directory (`registry.directory`).
`snapshot` and `restore` keep all of it across a restart, so windows continue instead of
starting blind.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ingest import kernels as K
from ingest.settings import QualitySettings
from registry.directory import Directory, TapConfig, TapEvent, VenueConfig
from timeseries.events import CHECKS, LEVELS, Check, Level, QualityEvent

_LOGGER = logging.getLogger(__name__)

_INITIAL_TAPS = 1024
_INITIAL_VENUES = 256
SNAPSHOT_VERSION = 3
# A fast drop to no lower than this below the beer's serving minimum is a pour flushing a line.
COLD_MARGIN_C = 2.0


def tap_params(
    settings: QualitySettings, venue: VenueConfig | None = None, tap: TapConfig | None = None
) -> np.ndarray:
    """One tap's thresholds as a `params` row: the defaults, then what the registry says of its
    venue, tap and beer."""
    s = settings
    warm_max_c = s.warm_max_c
    foam_c = s.foam_c
    if tap is not None and tap.warm_max_c is not None:
        warm_max_c = tap.warm_max_c
        foam_c = tap.foam_c if tap.foam_c is not None else warm_max_c + 3
    row = np.zeros(K.N_PARAMS)
    row[K.P_MAX_C] = warm_max_c
    row[K.P_CLEAR_C] = warm_max_c - s.warm_hysteresis_c
    row[K.P_GRACE_MS] = s.warm_grace_s * 1000
    row[K.P_HORIZON_MS] = s.trend_horizon_min * 60_000
    row[K.P_MIN_SLOPE] = s.trend_min_slope_c_per_h
    row[K.P_STUCK_MS] = s.stuck_after_min * 60_000
    row[K.P_DEAD_MS] = s.dead_after_min * 60_000
    row[K.P_PLAUS_MIN] = s.plausible_min_c
    row[K.P_PLAUS_MAX] = s.plausible_max_c
    row[K.P_MAX_RATE] = s.max_rate_c_per_s
    row[K.P_KEG_ML] = (tap.keg_l if tap is not None and tap.keg_l is not None else s.keg_l) * 1000
    row[K.P_KEG_LOW_SHARE] = s.keg_low_share
    row[K.P_KEG_HORIZON_MS] = s.keg_horizon_min * 60_000
    row[K.P_LEAK_ML_PER_S] = s.leak_ml_per_s
    row[K.P_LEAK_MIN_MS] = s.leak_min_s * 1000
    row[K.P_FOAM_C] = foam_c
    row[K.P_FOAM_ML_PER_S] = s.foam_ml_per_s
    cleaning_days = s.line_cleaning_days
    if venue is not None and venue.line_cleaning_days is not None:
        cleaning_days = venue.line_cleaning_days
    row[K.P_CLEAN_MS] = cleaning_days * 86_400_000
    row[K.P_TREND_STEP_MS] = s.trend_step_s * 1000
    row[K.P_LEAK_CLEAR_MS] = s.leak_clear_min * 60_000
    row[K.P_CLEAR_HOLD_MS] = s.clear_hold_min * 60_000
    serving_min_c = s.serving_min_c
    if tap is not None and tap.serving_min_c is not None:
        serving_min_c = tap.serving_min_c
    row[K.P_COLD_C] = serving_min_c - COLD_MARGIN_C
    row[K.P_KEG_INFER_SHARE] = s.keg_infer_share
    row[K.P_TREND_CONFIRM_MS] = s.trend_confirm_min * 60_000
    return row


def venue_params(settings: QualitySettings) -> np.ndarray:
    row = np.zeros(K.N_VENUE_PARAMS)
    row[K.V_SHARE_ON] = settings.cooler_share_on
    row[K.V_SHARE_OFF] = settings.cooler_share_off
    row[K.V_MIN_TAPS] = settings.cooler_min_taps
    return row


# name: (dtype, per-row shape, fill); every per-tap array grows together.
_TAP_STATE: dict[str, tuple[type, tuple[int, ...], float | int]] = {
    "tap_venue": (np.int32, (), -1),
    "tap_next": (np.int32, (), -1),
    "params": (np.float64, (K.N_PARAMS,), 0.0),
    "last_ts": (np.int64, (), K.NO_TIME),
    "last_c": (np.float64, (), 0.0),
    "above_since": (np.int64, (), K.NO_TIME),
    "level": (np.int8, (K.N_CHECKS,), K.OK),
    "clear_since": (np.int64, (K.N_CHECKS,), K.NO_TIME),
    "ring_t": (np.int64, (K.WINDOW,), 0),
    "ring_c": (np.float64, (K.WINDOW,), 0.0),
    "ring_len": (np.int32, (), 0),
    "ring_head": (np.int32, (), 0),
    "plausible_run": (np.int32, (), 0),
    "same_since": (np.int64, (), K.NO_TIME),
    "same_count": (np.int32, (), 0),
    "cleaned_at": (np.int64, (), K.NO_TIME),
    "good_ts": (np.int64, (), K.NO_TIME),
    "warming": (np.bool_, (), False),
    "trend_since": (np.int64, (), K.NO_TIME),
    "trend_cross": (np.float64, (), 0.0),
    "last_pour_ts": (np.int64, (), K.NO_TIME),
    "keg_used_ml": (np.float64, (), 0.0),
    "keg_over_at": (np.int64, (), K.NO_TIME),
    "keg_over_ml": (np.float64, (), 0.0),
    "keg_inferred_at": (np.int64, (), K.NO_TIME),
    "rate_ml_h": (np.float64, (), 0.0),
    "pour_t": (np.int64, (K.POURS_KEPT,), K.NO_TIME),
    "pour_ml": (np.float64, (K.POURS_KEPT,), 0.0),
    "pour_head": (np.int32, (), 0),
    "foam_hist": (np.int8, (K.FOAMY_OF_LAST,), 0),
    "foam_head": (np.int32, (), 0),
    "waste_ml": (np.float64, (), 0.0),
}
_VENUE_STATE: dict[str, tuple[type, tuple[int, ...], float | int]] = {
    "venue_params": (np.float64, (K.N_VENUE_PARAMS,), 0.0),
    "venue_head": (np.int32, (), -1),
    "venue_taps": (np.int32, (), 0),
    "venue_warming": (np.int32, (), 0),
    "venue_level": (np.int8, (), K.OK),
    "venue_clear_since": (np.int64, (), K.NO_TIME),
    "venue_newest": (np.int64, (), K.NO_TIME),
}


def _grown(
    old: np.ndarray | None, rows: int, spec: tuple[type, tuple[int, ...], float]
) -> np.ndarray:
    dtype, shape, fill = spec
    new: np.ndarray = np.full((rows, *shape), fill, dtype=dtype)
    if old is not None:
        new[: old.shape[0]] = old
    return new


class QualityCore:
    """The quality state of every tap and venue this worker has seen, and the checks over it."""

    def __init__(self, settings: QualitySettings, directory: Directory | None = None) -> None:
        """`directory`: the registry's venues and taps with their thresholds (default: none)."""
        self._settings = settings
        self._directory: Directory = directory or {}
        # The last keg change and line cleaning applied (registry ids), kept in the snapshot.
        self.applied_keg = 0
        self.applied_cleaning = 0
        # Keg changes recorded ahead of their tap's readings, per tap index: (at ms, mL).
        self._pending_kegs: dict[int, list[tuple[int, float]]] = {}
        self._inferred: list[InferredKeg] = []
        self._venue_row = venue_params(settings)
        self.taps: list[tuple[str, str]] = []
        self.venues: list[str] = []
        self._tap_index: dict[tuple[str, str], int] = {}
        self._venue_index: dict[str, int] = {}
        self.state: dict[str, np.ndarray] = {}
        self._grow_taps(_INITIAL_TAPS)
        self._grow_venues(_INITIAL_VENUES)

    def _grow_taps(self, rows: int) -> None:
        for name, spec in _TAP_STATE.items():
            self.state[name] = _grown(self.state.get(name), rows, spec)

    def _grow_venues(self, rows: int) -> None:
        for name, spec in _VENUE_STATE.items():
            self.state[name] = _grown(self.state.get(name), rows, spec)

    def venue_index(self, venue: str) -> int:
        index = self._venue_index.get(venue)
        if index is None:
            index = len(self.venues)
            if index == self.state["venue_head"].shape[0]:
                self._grow_venues(2 * index)
            self._venue_index[venue] = index
            self.venues.append(venue)
            self.state["venue_params"][index] = self._venue_row
        return index

    def tap_index(self, venue: str, tap: str) -> int:
        key = (venue, tap)
        index = self._tap_index.get(key)
        if index is None:
            v = self.venue_index(venue)
            index = len(self.taps)
            if index == self.state["last_ts"].shape[0]:
                self._grow_taps(2 * index)
            self._tap_index[key] = index
            self.taps.append(key)
            s = self.state
            s["params"][index] = self._params_for(venue, tap)
            s["tap_venue"][index] = v
            s["tap_next"][index] = s["venue_head"][v]
            s["venue_head"][v] = index
            s["venue_taps"][v] += 1
        return index

    def _params_for(self, venue: str, tap: str) -> np.ndarray:
        venue_config = self._directory.get(venue)
        tap_config = venue_config.taps.get(tap) if venue_config else None
        return tap_params(self._settings, venue_config, tap_config)

    def reconfigure(self, directory: Directory) -> None:
        """New thresholds from the registry for every tap; the state carries on."""
        if directory == self._directory:
            return
        self._directory = directory
        for i, (venue, tap) in enumerate(self.taps):
            self.state["params"][i] = self._params_for(venue, tap)

    def apply(self, events: list[TapEvent]) -> list[QualityEvent]:
        """Keg changes and line cleanings from the registry not applied yet; the ok events of
        cleanings that cleared an overdue check and of keg changes that cleared a low keg.
        Inferred keg changes are this core's own conclusions, already applied."""
        changes = []
        for event in events:
            if event.kind == "keg" and event.id > self.applied_keg and not event.inferred:
                changes += self.keg_changed(event.venue, event.tap, event.keg_l, event.at_ms)
            elif event.kind == "cleaning" and event.id > self.applied_cleaning:
                cleared = self.line_cleaned(event.venue, event.tap, event.at_ms)
                if cleared is not None:
                    changes.append(cleared)
        # Ids, not times, say what was applied: a change may be recorded after a later one.
        for event in events:
            if event.kind == "keg":
                self.applied_keg = max(self.applied_keg, event.id)
            else:
                self.applied_cleaning = max(self.applied_cleaning, event.id)
        return changes

    def line_cleaned(self, venue: str, tap: str, ts: int) -> QualityEvent | None:
        """The tap's line was cleaned at `ts`; the ok event if it was overdue."""
        i = self.tap_index(venue, tap)
        if self.state["cleaned_at"][i] != K.NO_TIME and ts <= self.state["cleaned_at"][i]:
            return None  # an older cleaning recorded late changes nothing
        self.state["cleaned_at"][i] = ts
        if self.state["level"][i, K.LINE_CLEANING] == K.OK:
            return None
        self.state["level"][i, K.LINE_CLEANING] = K.OK
        return QualityEvent(venue, tap, Check.LINE_CLEANING, Level.OK, ts, 0.0, float(ts))

    def keg_changed(
        self, venue: str, tap: str, keg_l: float, at_ms: int | None = None
    ) -> list[QualityEvent]:
        """A full keg of `keg_l` litres went on at `at_ms` (default: now, in the tap's time).

        Pours before `at_ms` belong to the old keg. A change ahead of the tap's readings (the
        bartender records it before ingest has caught up) waits for them; one behind its
        pours (recorded late) applies now, counting the pours since to the new keg (as far
        back as the tap's latest `POURS_KEPT` reach)."""
        i = self.tap_index(venue, tap)
        newest = max(int(self.state["last_ts"][i]), int(self.state["last_pour_ts"][i]))
        at = newest if at_ms is None else at_ms
        if at > newest:
            self._pending_kegs.setdefault(i, []).append((at, keg_l * 1000))
            self._pending_kegs[i].sort()
            return []
        return self._run(
            np.array([K.KEG], np.int8), np.array([i], np.int32),
            np.array([max(at, 0)], np.int64), np.array([keg_l * 1000]),
        )  # fmt: skip

    def take_inferred(self) -> list[InferredKeg]:
        """Keg changes the keg check concluded since the last call (nobody recorded them)."""
        found, self._inferred = self._inferred, []
        return found

    def _check_columns(self, tap: np.ndarray, *columns: np.ndarray) -> None:
        if any(c.shape != tap.shape for c in columns):
            raise ValueError(f"column lengths differ: {[c.shape for c in (tap, *columns)]}")
        if tap.size and (tap.min() < 0 or tap.max() >= len(self.taps)):
            raise ValueError("tap index out of range: get indexes from tap_index()")

    def check(self, temperatures: Temperatures | None = None, pours: Pours | None = None
              ) -> list[QualityEvent]:  # fmt: skip
        """Every check over a batch: `temperatures` (tap, ts, °C) and `pours` (tap, ts, mL,
        duration ms, whether the venue was closed), judged in time order together with the
        keg changes whose time the batch reaches; returns the level changes."""
        empty_i, empty_t = np.empty(0, np.int32), np.empty(0, np.int64)
        tap_t, ts_t, c = temperatures or (empty_i, empty_t, np.empty(0))
        tap_p, ts_p, ml, dur, closed = pours or (
            empty_i,
            empty_t,
            np.empty(0),
            empty_t,
            np.empty(0, np.bool_),
        )
        self._check_columns(tap_t, ts_t, c)
        self._check_columns(tap_p, ts_p, ml, dur, closed)
        kind = np.concatenate([np.full(tap_t.shape, K.TEMPERATURE, np.int8),
                               np.full(tap_p.shape, K.POUR, np.int8)])  # fmt: skip
        tap = np.concatenate([tap_t.astype(np.int32), tap_p.astype(np.int32)])
        ts = np.concatenate([ts_t.astype(np.int64), ts_p.astype(np.int64)])
        value = np.concatenate([c.astype(np.float64), ml.astype(np.float64)])
        dur_all = np.concatenate([np.zeros(tap_t.shape, np.int64), dur.astype(np.int64)])
        closed_all = np.concatenate([np.zeros(tap_t.shape, np.bool_), closed.astype(np.bool_)])
        rows = tap.shape[0]
        if self._pending_kegs:
            kind, tap, ts, value, dur_all, closed_all = self._with_due_kegs(
                kind, tap, ts, value, dur_all, closed_all
            )
        if tap.shape[0] == rows and bool(np.all(ts[:-1] <= ts[1:])):
            # Already in time order, temperatures before pours at the same time: as it comes.
            return self._run(kind, tap, ts, value, dur_all, closed_all)
        order = np.lexsort((kind, ts))
        return self._run(kind[order], tap[order], ts[order], value[order], dur_all[order],
                         closed_all[order])  # fmt: skip

    def temperatures(
        self, tap: np.ndarray, ts: np.ndarray, temp_c: np.ndarray
    ) -> list[QualityEvent]:
        return self.check(temperatures=(tap, ts, temp_c))

    def pours(self, tap: np.ndarray, ts: np.ndarray, ml: np.ndarray, dur_ms: np.ndarray,
              after_hours: np.ndarray | None = None) -> list[QualityEvent]:  # fmt: skip
        closed = np.zeros(tap.shape, np.bool_) if after_hours is None else after_hours
        return self.check(pours=(tap, ts, ml, dur_ms, closed))

    def _with_due_kegs(self, kind: np.ndarray, tap: np.ndarray, ts: np.ndarray,
                       value: np.ndarray, dur: np.ndarray, closed: np.ndarray
                       ) -> tuple[np.ndarray, ...]:  # fmt: skip
        """The batch with the waiting keg changes its readings reach, as rows of their own."""
        rows: list[tuple[int, int, float]] = []
        in_batch = set(tap.tolist())
        for i in [i for i in self._pending_kegs if i in in_batch]:
            newest = int(ts[tap == i].max())
            due = [(at, ml) for at, ml in self._pending_kegs[i] if at <= newest]
            rows += [(i, at, ml) for at, ml in due]
            rest = self._pending_kegs[i][len(due) :]
            if rest:
                self._pending_kegs[i] = rest
            else:
                del self._pending_kegs[i]
        if not rows:
            return kind, tap, ts, value, dur, closed
        n = len(rows)
        return (
            np.concatenate([kind, np.full(n, K.KEG, np.int8)]),
            np.concatenate([tap, np.array([r[0] for r in rows], np.int32)]),
            np.concatenate([ts, np.array([r[1] for r in rows], np.int64)]),
            np.concatenate([value, np.array([r[2] for r in rows])]),
            np.concatenate([dur, np.zeros(n, np.int64)]),
            np.concatenate([closed, np.zeros(n, np.bool_)]),
        )

    def _run(self, kind: np.ndarray, tap: np.ndarray, ts: np.ndarray, value: np.ndarray,
             dur: np.ndarray | None = None, closed: np.ndarray | None = None
             ) -> list[QualityEvent]:  # fmt: skip
        s = self.state
        n = tap.shape[0]
        dur = np.zeros(n, np.int64) if dur is None else dur
        closed = np.zeros(n, np.bool_) if closed is None else closed
        # A reading can change every check of its tap, and make every other tap of its venue
        # dead at most once.
        out = _events(n * K.N_CHECKS + len(self.taps))
        count = K.check_readings(
            np.ascontiguousarray(kind, np.int8), np.ascontiguousarray(tap, np.int32),
            np.ascontiguousarray(ts, np.int64), np.ascontiguousarray(value, np.float64),
            np.ascontiguousarray(dur, np.int64), np.ascontiguousarray(closed, np.bool_),
            s["tap_venue"], s["params"], s["venue_params"], s["tap_next"], s["venue_head"],
            s["last_ts"], s["last_c"], s["above_since"], s["level"], s["clear_since"],
            s["ring_t"], s["ring_c"], s["ring_len"], s["ring_head"],
            s["plausible_run"], s["same_since"], s["same_count"], s["cleaned_at"], s["good_ts"],
            s["warming"], s["trend_since"], s["trend_cross"], s["last_pour_ts"],
            s["keg_used_ml"], s["keg_over_at"], s["keg_over_ml"], s["keg_inferred_at"],
            s["rate_ml_h"], s["pour_t"], s["pour_ml"], s["pour_head"],
            s["foam_hist"], s["foam_head"], s["waste_ml"],
            s["venue_taps"], s["venue_warming"], s["venue_level"], s["venue_clear_since"],
            s["venue_newest"],
            out,
        )  # fmt: skip
        self._collect_inferred()
        return self._build(out, count)

    def _collect_inferred(self) -> None:
        inferred_at = self.state["keg_inferred_at"]
        for i in np.flatnonzero(inferred_at[: len(self.taps)] != K.NO_TIME):
            venue, name = self.taps[i]
            keg_l = float(self.state["params"][i, K.P_KEG_ML]) / 1000
            self._inferred.append(InferredKeg(venue, name, int(inferred_at[i]), keg_l))
            inferred_at[i] = K.NO_TIME

    def _build(self, out: tuple[np.ndarray, ...], count: int) -> list[QualityEvent]:
        ev_tap, ev_ts, ev_check, ev_level, ev_value, ev_value2 = out
        events = []
        for k in range(count):
            venue, tap = self.taps[ev_tap[k]]
            check = CHECKS[ev_check[k]]
            events.append(QualityEvent(
                venue, None if check is Check.COOLER_FAILURE else tap, check,
                LEVELS[ev_level[k]], int(ev_ts[k]), float(ev_value[k]), float(ev_value2[k]),
            ))  # fmt: skip
        return events

    # --- surviving a restart ---------------------------------------------------------------

    def snapshot(self, path: Path) -> None:
        """Write all state atomically (a crash mid-write leaves the previous snapshot)."""
        n_taps, n_venues = len(self.taps), len(self.venues)
        arrays = {name: self.state[name][:n_taps] for name in _TAP_STATE}
        arrays |= {name: self.state[name][:n_venues] for name in _VENUE_STATE}
        partial = path.with_suffix(".partial.npz")
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays["version"] = np.array(SNAPSHOT_VERSION)
        arrays["tap_keys"] = np.array(["\x1f".join(key) for key in self.taps], dtype=str)
        arrays["venue_keys"] = np.array(self.venues, dtype=str)
        arrays["applied"] = np.array([self.applied_keg, self.applied_cleaning], np.int64)
        pending = [(i, at, ml) for i, kegs in self._pending_kegs.items() for at, ml in kegs]
        arrays["pending_kegs"] = np.array(pending, np.float64).reshape(-1, 3)
        np.savez(partial, allow_pickle=False, **arrays)
        os.replace(partial, path)

    @classmethod
    def restore(
        cls, path: Path, settings: QualitySettings, directory: Directory | None = None
    ) -> QualityCore:
        """A core continuing from a snapshot; an empty one when there is none. Thresholds come
        from the settings and directory in force now, not from the snapshot."""
        core = cls(settings, directory)
        if not path.exists():
            return core
        with np.load(path) as data:
            if int(data["version"]) != SNAPSHOT_VERSION:
                _LOGGER.warning("snapshot %s is from another version; starting blind", path)
                return core
            venues = [str(v) for v in data["venue_keys"]]
            taps = [tuple(str(k).split("\x1f", 1)) for k in data["tap_keys"]]
            core._grow_venues(max(_INITIAL_VENUES, 2 * len(venues)))
            core._grow_taps(max(_INITIAL_TAPS, 2 * len(taps)))
            for name in (*_TAP_STATE, *_VENUE_STATE):
                stored = data[name]
                core.state[name][: stored.shape[0]] = stored
            core.applied_keg, core.applied_cleaning = (int(x) for x in data["applied"])
            for i, at, ml in data["pending_kegs"]:
                core._pending_kegs.setdefault(int(i), []).append((int(at), float(ml)))
        core.venues = venues
        core._venue_index = {v: i for i, v in enumerate(venues)}
        core.taps = [(venue, tap) for venue, tap in taps]
        core._tap_index = {key: i for i, key in enumerate(core.taps)}
        for i, (venue, tap) in enumerate(core.taps):
            core.state["params"][i] = core._params_for(venue, tap)
        _LOGGER.info("quality state restored for %d taps in %d venues", len(taps), len(venues))
        return core


@dataclass(frozen=True, slots=True)
class InferredKeg:
    """A keg change the keg check concluded from pours well past an empty keg."""

    venue: str
    tap: str
    at_ms: int  # the first pour past the empty keg
    keg_l: float


Temperatures = tuple[np.ndarray, np.ndarray, np.ndarray]
Pours = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]


def _events(capacity: int) -> tuple[np.ndarray, ...]:
    return (
        np.empty(capacity, np.int32), np.empty(capacity, np.int64), np.empty(capacity, np.int8),
        np.empty(capacity, np.int8), np.empty(capacity, np.float64), np.empty(capacity, np.float64),
    )  # fmt: skip


def warm_up() -> None:
    """Compile (or load from the cache) every kernel now, not on the first message."""
    core = QualityCore(QualitySettings())
    i = core.tap_index("warm-up", "warm-up")
    one = np.array([i], np.int32)
    core.check((one, np.array([1], np.int64), np.array([4.0])),
               (one, np.array([2], np.int64), np.array([300.0]), np.array([3000], np.int64),
                np.array([False])))  # fmt: skip
