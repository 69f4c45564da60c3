"""The alerts service on a real broker, a real webhook receiver and a real SMTP server: events
in, one grouped notification per recipient out, exactly once per channel and change, through
redeliveries, a failing receiver and two services at once."""

from __future__ import annotations

import queue
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import msgspec
import pytest
from sqlalchemy import select

from alerts import admin
from alerts.admin import PolicyIn
from alerts.service import AlertsService
from alerts.settings import AlertsSettings, AlertsSetup, SmtpSettings
from coupons import codes as coupon_codes
from coupons import store as coupon_store
from coupons.store import CampaignIn, FestivalIn
from edge import mqtt
from edge.settings import MqttSettings
from edge.wire import (
    QualityMessage,
    VenueAlerts,
    VenueCoupons,
    alerts_topic,
    coupons_topic,
    encode,
    quality_topic,
)
from registry.access import now_ms
from registry.alert_models import Alert, Notification
from registry.db import engine_for, migrate, transaction
from registry.models import Beer, Venue
from tests.alerting import T0, AlertVenue, alert_venue, count
from tests.conftest import Broker
from tests.readback import wait_for
from tests.receivers import SmtpSink, WebhookReceiver, webhook_receiver
from timeseries.events import Check, Level
from timeseries.settings import InfluxSettings

WEBHOOK_TIMEOUT_S = 1.0


class AlertsThread:
    """`tapsense alerts` in a thread of the test process."""

    def __init__(self, setup: AlertsSetup) -> None:
        self.stop = threading.Event()
        self.engine = engine_for(setup.registry_url, serialised=True)
        self.service = AlertsService(setup, self.engine)
        self.thread = threading.Thread(target=self.service.run, args=(self.stop,), daemon=True)

    def __enter__(self) -> AlertsThread:
        self.thread.start()
        assert self.service.subscribed.wait(30), "the alerts service did not subscribe"
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join(30)
        self.engine.dispose()
        assert not self.thread.is_alive()


def make_setup(tmp_path: Path, broker: Broker, smtp_port: int, client_id: str,
               group: str, url: str | None = None) -> AlertsSetup:  # fmt: skip
    """The service's settings for a test: a SQLite registry under `tmp_path` unless `url`."""
    url = url or f"sqlite:///{tmp_path / 'registry.sqlite'}"
    return AlertsSetup(
        alerts=AlertsSettings(client_id=client_id, share_group=group, resolve_hold_s=1.0,
                              tick_s=0.05, webhook_timeout_s=WEBHOOK_TIMEOUT_S,
                              retry_initial_s=0.2, retry_max_s=1.0, lease_s=5.0,
                              silent_after_s=0),
        smtp=SmtpSettings(host="127.0.0.1", port=smtp_port, starttls=False),
        mqtt=MqttSettings(port=broker.port),
        influx=InfluxSettings(url="http://127.0.0.1:9"),  # silence is tested on its own
        registry_url=url,
    )  # fmt: skip


def event(venue: str, tap: str | None, check: Check, level: Level, ts: int,
          value: float = 9.5, detail: float = 0.0) -> QualityMessage:  # fmt: skip
    return QualityMessage(v=1, venue=venue, tap=tap, check=check, level=level, ts=ts,
                          value=value, detail=detail or ts - 120_000)  # fmt: skip


def cooler_failure(venue: str) -> list[QualityMessage]:
    raised = [event(venue, f"tap-{i}", Check.WARM_BEER, Level.WARNING, T0 + i) for i in range(1, 7)]
    raised.append(event(venue, None, Check.COOLER_FAILURE, Level.CRITICAL, T0 + 10, 1.0, 6))
    return raised


def recovered(venue: str) -> list[QualityMessage]:
    ok = [event(venue, f"tap-{i}", Check.WARM_BEER, Level.OK, T0 + 3_600_000 + i)
          for i in range(1, 7)]  # fmt: skip
    ok.append(event(venue, None, Check.COOLER_FAILURE, Level.OK, T0 + 3_600_010, 0.0, 1))
    return ok


def publish(port: int, events: list[QualityMessage]) -> None:
    """As ingest publishes them: QoS 1, in order."""
    client = mqtt.new_client(f"test-quality-{uuid.uuid4().hex[:8]}", MqttSettings(port=port))
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        for e in events:
            client.publish(quality_topic(e.venue), encode(e), qos=1).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


@pytest.fixture
def smtp() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


def prepared(setup: AlertsSetup, receiver_url: str, venue: str) -> AlertVenue:
    migrate(setup.registry_url)
    engine = engine_for(setup.registry_url)
    try:
        place = alert_venue(engine, venue, webhook_url=receiver_url, language="nl")
        with transaction(engine) as db:
            # Long enough that a loaded machine records all of a burst before it is told.
            admin.set_policy(db, venue, PolicyIn(group_wait_s=2.0))
        return place
    finally:
        engine.dispose()


Prepared = tuple[str, AlertsSetup, WebhookReceiver]


@contextmanager
def prepared_venue(tmp_path: Path, broker: Broker, smtp: SmtpSink) -> Iterator[Prepared]:
    """A venue of its own with its Dutch owner, the service's setup and a webhook receiver."""
    venue = f"cafe-{uuid.uuid4().hex[:6]}"
    with webhook_receiver(WebhookReceiver()) as receiver:
        setup = make_setup(tmp_path, broker, smtp.port, f"alerts-{venue}", f"g-{venue}")
        prepared(setup, receiver.url, venue)
        yield venue, setup, receiver


def notifications(setup: AlertsSetup) -> list[Notification]:
    engine = engine_for(setup.registry_url)
    try:
        with transaction(engine) as db:
            return list(db.scalars(select(Notification).order_by(Notification.created_ms)))
    finally:
        engine.dispose()


def alerts_resolved(setup: AlertsSetup, venue: str) -> int:
    engine = engine_for(setup.registry_url)
    try:
        with transaction(engine) as db:
            return count(db, Alert, Alert.venue_id == venue, Alert.state == "resolved")
    finally:
        engine.dispose()


def test_a_cooler_failure_reaches_webhook_and_email_once_through_a_failing_receiver(
    tmp_path: Path, broker: Broker, smtp: SmtpSink
) -> None:
    venue = f"cafe-{uuid.uuid4().hex[:6]}"
    receiver = WebhookReceiver(script=[500, "timeout"], hang_s=WEBHOOK_TIMEOUT_S * 2)
    with webhook_receiver(receiver):
        setup = make_setup(tmp_path, broker, smtp.port, f"alerts-{venue}", f"g-{venue}")
        place = prepared(setup, receiver.url, venue)
        receiver.secret = place.webhook_secret
        with AlertsThread(setup):
            events = cooler_failure(venue)
            publish(broker.port, events + events)  # and every event again: a redelivery
            assert wait_for(lambda: len(receiver.unique()) == 1 and len(smtp.unique()) == 1, 60)
            publish(broker.port, recovered(venue))
            assert wait_for(lambda: len(receiver.unique()) == 2 and len(smtp.unique()) == 2, 60)
            assert alerts_resolved(setup, venue) == 7
        assert receiver.bad_signatures == 0
        # The failing receiver saw the first message three times (500, timeout, 200), under
        # one id; the sender recorded the attempts.
        first, second = receiver.unique().values()
        assert receiver.attempts.count(first.id) >= 3
        opened = sorted((a["subject"], a["change"]) for a in first.body["alerts"])
        assert opened == [("", "opened")] + [(f"tap-{i}", "opened") for i in range(1, 7)]
        assert {a["change"] for a in second.body["alerts"]} == {"resolved"}
        assert len(second.body["alerts"]) == 7
        assert first.body["language"] == "nl"
        # E-mail: one when it happened, one when it was over, in Dutch, to the owner.
        mails = list(smtp.unique().values())
        assert [m["To"] for m in mails] == [place.owner_email] * 2
        assert mails[0]["Subject"] == f"Café {venue}: 7 meldingen"
        assert mails[1]["Subject"] == f"Café {venue}: 7 meldingen opgelost"
        body = mails[0].get_body(("plain",))
        assert body is not None and "de koeling lijkt te falen" in body.get_content()
        html = mails[0].get_body(("html",))
        assert html is not None and "Wat te doen:" in html.get_content()
        notes = notifications(setup)
        assert [n.state for n in notes] == ["sent"] * 4
        assert max(n.attempts for n in notes if n.channel == "webhook") >= 3


def test_two_services_at_once_tell_each_change_once(
    tmp_path: Path, broker: Broker, smtp: SmtpSink, registry_url: str
) -> None:
    """On SQLite and on PostgreSQL (row locks there, the write lock here)."""
    venue = f"cafe-{uuid.uuid4().hex[:6]}"
    receiver = WebhookReceiver()
    with webhook_receiver(receiver):
        a = make_setup(tmp_path, broker, smtp.port, f"alerts-a-{venue}", f"g-{venue}", registry_url)
        b = make_setup(tmp_path, broker, smtp.port, f"alerts-b-{venue}", f"g-{venue}", registry_url)
        place = prepared(a, receiver.url, venue)
        receiver.secret = place.webhook_secret
        # How the changes are grouped depends on how fast two loaded services record them;
        # what must hold whatever the grouping: each change told once, each message sent once.
        with AlertsThread(a), AlertsThread(b):
            events = cooler_failure(venue)
            publish(broker.port, events + events + events)
            assert wait_for(lambda: sum(told(receiver).values()) >= 7, 60)
            publish(broker.port, recovered(venue) + recovered(venue))
            assert wait_for(lambda: alerts_resolved(a, venue) == 7, 60)
            assert wait_for(lambda: sum(told(receiver).values()) >= 14, 60)
            assert wait_for(lambda: {n.state for n in notifications(a)} == {"sent"}, 60)
        counts = told(receiver)
        assert len(counts) == 14 and set(counts.values()) == {1}  # 7 opened, 7 resolved, once
        assert {change for _, change in counts} == {"opened", "resolved"}
        assert len(receiver.accepted) == len(receiver.unique())  # no message sent twice
        assert len(smtp.messages) == len(smtp.unique()) == len(receiver.unique())
        assert len(notifications(a)) == 2 * len(receiver.unique())  # an e-mail beside each
        assert receiver.bad_signatures == 0


def told(receiver: WebhookReceiver) -> Counter[tuple[int, str]]:
    """(alert, change) over the messages a receiver that keeps ids acted on."""
    return Counter((a["id"], a["change"]) for d in receiver.unique().values()
                   for a in d.body["alerts"])  # fmt: skip


def retained(port: int, topic: str, shape: type[Any] = VenueAlerts) -> Any:
    """What a display that connects now is shown: the retained state on its topic."""
    got: queue.Queue[bytes] = queue.Queue()
    client = mqtt.new_client(f"test-display-{uuid.uuid4().hex[:8]}", MqttSettings(port=port))
    client.on_message = lambda _c, _u, m: got.put(bytes(m.payload))
    client.connect("127.0.0.1", port)
    client.subscribe(topic, qos=1)
    client.loop_start()
    try:
        return msgspec.json.decode(got.get(timeout=2), type=shape)
    except queue.Empty:
        return None
    finally:
        client.disconnect()
        client.loop_stop()


def test_a_display_that_connects_is_shown_the_venues_alerts_now(
    tmp_path: Path, broker: Broker, smtp: SmtpSink
) -> None:
    with prepared_venue(tmp_path, broker, smtp) as (venue, setup, _), AlertsThread(setup):
        publish(broker.port, cooler_failure(venue))

        def shown(n: int) -> bool:
            state = retained(broker.port, alerts_topic(venue))
            return state is not None and len(state.alerts) == n

        assert wait_for(lambda: shown(7), 30)
        state = retained(broker.port, alerts_topic(venue))
        assert state is not None and state.language == "nl"
        assert state.alerts[0].check == "cooler_failure"  # critical first
        assert "de koeling lijkt te falen" in state.alerts[0].text
        publish(broker.port, recovered(venue))
        assert wait_for(lambda: shown(0), 30)  # resolved: the display clears


def test_bad_messages_are_refused_and_the_good_ones_beside_them_kept(
    tmp_path: Path, broker: Broker, smtp: SmtpSink
) -> None:
    with prepared_venue(tmp_path, broker, smtp) as (venue, setup, receiver):
        good = event(venue, "tap-1", Check.WARM_BEER, Level.WARNING, T0)
        other = msgspec.structs.replace(good, venue="someone-else")
        hostile = [
            b"", b"{not json", b"[" * 100_000, b"\xff\xfe", b'{"v":1}', b"x" * 1_000_000,
            encode(msgspec.structs.replace(good, check="made_up")),
            encode(msgspec.structs.replace(good, level="panic")),
            encode(other),  # another venue's event on this venue's topic
            encode(msgspec.structs.replace(good, tap="tap-2", venue="not-registered")),
        ]  # fmt: skip
        client = mqtt.new_client(f"test-bad-{venue}", MqttSettings(port=broker.port))
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        with AlertsThread(setup):
            for payload in hostile:
                client.publish(quality_topic(venue), payload, qos=1).wait_for_publish(10)
            client.publish(quality_topic("not-registered"), hostile[-1], qos=1).wait_for_publish(10)
            client.publish(quality_topic(venue), encode(good), qos=1).wait_for_publish(10)
            assert wait_for(lambda: len(receiver.unique()) == 1, 30)
        client.disconnect()
        client.loop_stop()
    [told] = receiver.unique().values()
    assert [(a["subject"], a["check"]) for a in told.body["alerts"]] == [("tap-1", "warm_beer")]


def test_a_display_is_shown_the_coupons_it_may_hand_out_and_loses_each_one_redeemed(
    tmp_path: Path, broker: Broker, smtp: SmtpSink
) -> None:
    with prepared_venue(tmp_path, broker, smtp) as (venue, setup, _):  # a Dutch owner
        engine = engine_for(setup.registry_url)
        now = now_ms()
        with transaction(engine) as db:
            place = db.get_one(Venue, venue)
            beer = db.scalars(
                select(Beer).where(Beer.organisation_id == place.organisation_id)
            ).one()
            festival = coupon_store.create_festival(db, place.organisation_id, FestivalIn(
                name="Bokbierfestival", latitude=place.latitude, longitude=place.longitude,
                starts_ms=now, ends_ms=now + 86_400_000, beer_ids=[beer.id]), now)  # fmt: skip
            campaign = coupon_store.create_campaign(db, place.organisation_id, CampaignIn(
                festival_id=festival.id, beer_id=beer.id, radius_km=1, codes_per_venue=4,
                valid_from_ms=now - 1000, valid_until_ms=now + 86_400_000,
                message={"en": "Taste it", "nl": "Proef het"}), now)  # type: ignore[arg-type]  # fmt: skip
            coupon_store.launch(db, campaign, now)
        with AlertsThread(setup):

            def shown() -> list[str]:
                state = retained(broker.port, coupons_topic(venue), VenueCoupons)
                return [c for campaign in state.campaigns for c in campaign.codes] if state else []

            assert wait_for(lambda: len(shown()) == 4, 30)
            state = retained(broker.port, coupons_topic(venue), VenueCoupons)
            assert state.language == "nl" and state.campaigns[0].message == "Proef het"
            [first, *rest] = shown()
            with transaction(engine) as db:
                coupon_store.redeem(db, first, venue, "bar", now_ms())
            assert wait_for(lambda: shown() == rest, 30)  # redeemed: off the display
            assert all(len(coupon_codes.normalise(c)) == coupon_codes.LENGTH for c in rest)
        engine.dispose()
