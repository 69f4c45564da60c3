"""`tapsense alerts` killed with -9 at random points while events come, and restarted: every
change of every alert is told exactly once per channel (once per id, and no change under two
ids), nothing is lost, and the history has each transition once."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

from sqlalchemy import select

from alerts import admin
from alerts.admin import PolicyIn
from alerts.service import READY_LINE
from registry.alert_models import Alert, AlertTransition, Notification
from registry.db import engine_for, migrate, transaction
from tests.alerting import alert_venue
from tests.conftest import Broker
from tests.readback import wait_for
from tests.receivers import SmtpSink, WebhookReceiver, webhook_receiver
from tests.test_alerts_service import cooler_failure, publish, recovered

VENUES = 6
KILLS = 5


class Service:
    """`tapsense alerts` as a process of its own, killed and restarted at will."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        before = self.log.read_text().count(READY_LINE) if self.log.exists() else 0
        with self.log.open("ab") as out:
            argv = [sys.executable, "-m", "stack.cli", "alerts"]
            self.proc = subprocess.Popen(argv, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        self.starts += 1
        assert wait_for(lambda: self.log.read_text().count(READY_LINE) > before, 60), (
            self.log.read_text()[-3000:]
        )

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(60)


def test_killed_at_random_points_every_change_is_told_once(tmp_path: Path, broker: Broker) -> None:
    tag = uuid.uuid4().hex[:6]
    url = f"sqlite:///{tmp_path / 'registry.sqlite'}"
    migrate(url)
    engine = engine_for(url)
    rng = random.Random(tag)
    with SmtpSink() as smtp, webhook_receiver(WebhookReceiver()) as receiver:
        # A receiver that fails now and then, so that sends are retried across the kills too.
        receiver.script = [rng.choice((200, 200, 500, "timeout")) for _ in range(30)]
        receiver.hang_s = 1.5
        venues = [f"crash-{tag}-{i}" for i in range(VENUES)]
        secrets = set()
        for venue in venues:
            place = alert_venue(engine, venue, webhook_url=receiver.url, taps=6)
            secrets.add(place.webhook_secret)
            with transaction(engine) as db:
                admin.set_policy(db, venue, PolicyIn(group_wait_s=0.2))
        env = {
            **os.environ, "TAPSENSE_HOME": str(tmp_path), "TAPSENSE_REGISTRY__URL": url,
            "TAPSENSE_MQTT__PORT": str(broker.port), "TAPSENSE_ALERTS__CLIENT_ID": f"a-{tag}",
            "TAPSENSE_ALERTS__SHARE_GROUP": f"g-{tag}", "TAPSENSE_ALERTS__TICK_S": "0.05",
            "TAPSENSE_ALERTS__RESOLVE_HOLD_S": "1", "TAPSENSE_ALERTS__LEASE_S": "2",
            "TAPSENSE_ALERTS__WEBHOOK_TIMEOUT_S": "1", "TAPSENSE_ALERTS__RETRY_INITIAL_S": "0.2",
            "TAPSENSE_ALERTS__RETRY_MAX_S": "1", "TAPSENSE_SMTP__HOST": "127.0.0.1",
            "TAPSENSE_SMTP__PORT": str(smtp.port), "TAPSENSE_SMTP__STARTTLS": "false",
        }  # fmt: skip
        service = Service(env, tmp_path / "alerts.log")
        service.start()

        def send() -> None:
            for venue in venues:
                publish(broker.port, cooler_failure(venue))
                time.sleep(rng.uniform(0.1, 0.6))
            for venue in venues:
                publish(broker.port, recovered(venue))
                time.sleep(rng.uniform(0.1, 0.6))

        sender = threading.Thread(target=send)
        sender.start()
        try:
            for _ in range(KILLS):
                time.sleep(rng.uniform(0.3, 2.0))
                service.kill()
                service.start()
            sender.join(120)

            def settled() -> bool:
                with transaction(engine) as db:
                    unresolved = db.scalar(select(Alert.id).where(Alert.state != "resolved"))
                    unsent = db.scalar(select(Notification.id).where(Notification.state != "sent"))
                    alerts = len(db.scalars(select(Alert.id)).all())
                return alerts == VENUES * 7 and unresolved is None and unsent is None

            assert wait_for(settled, 120), (tmp_path / "alerts.log").read_text()[-3000:]
        finally:
            service.stop()
    assert service.starts == KILLS + 1
    # The history: each alert opened, recovered and resolved once.
    with transaction(engine) as db:
        changes = Counter(db.scalars(select(AlertTransition.change)).all())
        ids = {n.id for n in db.scalars(select(Notification))}
    engine.dispose()
    assert changes == {"opened": VENUES * 7, "recovering": VENUES * 7, "resolved": VENUES * 7}
    # Webhooks: every message the outbox holds arrived (perhaps more than once, always under its
    # id), and no change of an alert arrived under two ids.
    unique = receiver.unique()
    assert receiver.bad_signatures == 0
    told = Counter(
        (a["id"], a["change"]) for d in unique.values() for a in d.body["alerts"]
    )  # fmt: skip
    assert set(told.values()) == {1}, [k for k, n in told.items() if n > 1]
    assert len(told) == VENUES * 7 * 2  # opened and resolved, per alert
    mails = smtp.unique()
    assert set(unique) | {m.strip("<>").split("@")[0] for m in mails} == ids
    assert len(mails) == len(unique)  # one e-mail beside each webhook message
