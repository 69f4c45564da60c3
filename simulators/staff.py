"""The bar staff of a simulated fleet: they record keg changes in the registry as they happen
in the simulated world, through the same `registry.changes` the API and the CLI call (and,
as scenarios may say, forget some)."""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import Engine, select

from coupons import store as coupons
from registry import changes
from registry.coupon_models import Campaign, Coupon
from registry.db import transaction
from registry.inputs import KegChangeIn
from registry.models import Tap, Venue
from simulators.world import TruthEvent

_LOGGER = logging.getLogger(__name__)


class Staff:
    """Records each keg change it is told of, and redeems a coupon at each pour a coupon
    brought; callable from the fleet's threads.

    `pause_s`: how long to hold the simulation after recording, so that ingest has read the
    change before the readings that follow it arrive. In fast-forward an hour of bar time
    passes in a second of ours, while ingest looks at the registry every `registry.refresh_s`:
    without the pause a change recorded on time would reach it an hour of readings late."""

    def __init__(self, engine: Engine, pause_s: float = 0.0) -> None:
        self._engine = engine
        self._pause_s = pause_s
        self._lock = threading.Lock()

    def __call__(self, event: TruthEvent) -> None:
        if event.kind == "pour":
            self._redeem(event)
            return
        keg = KegChangeIn(keg_l=float(event.detail["keg_l"]), at_ms=event.ts_ms)
        with self._lock, transaction(self._engine) as db:
            venue = db.get(Venue, event.venue)
            tap = db.get(Tap, (event.venue, event.tap))
            if venue is None or tap is None:
                _LOGGER.warning("keg change on %s/%s: not registered", event.venue, event.tap)
                return
            changes.change_keg(db, venue, tap, keg)
        if self._pause_s:
            time.sleep(self._pause_s)

    def _redeem(self, event: TruthEvent) -> None:
        """A guest handed in a coupon for this pour: redeem the venue's next unused code of the
        campaign running for the tap's beer, as the bar's tablet would."""
        with self._lock, transaction(self._engine) as db:
            tap = db.get(Tap, (event.venue, event.tap))
            code = db.scalar(
                select(Coupon.code).join(Campaign, Campaign.id == Coupon.campaign_id)
                .where(Coupon.venue_id == event.venue, Coupon.redeemed_ms.is_(None),
                       Campaign.beer_id == (tap.beer_id if tap else None),
                       Campaign.valid_from_ms <= event.ts_ms,
                       Campaign.valid_until_ms > event.ts_ms)
                .order_by(Coupon.code).limit(1)
            )  # fmt: skip
            if code is None:
                _LOGGER.warning("coupon pour at %s/%s: no unused code left", event.venue,
                                event.tap)  # fmt: skip
                return
            try:
                coupons.redeem(db, code, event.venue, "simulated staff", event.ts_ms)
            except coupons.Refused as refused:
                _LOGGER.warning("coupon %s at %s refused: %s", code, event.venue, refused)
