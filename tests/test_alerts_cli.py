"""`tapsense alerts list|show|ack|resolve|dead`, as an operator runs them on the registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from alerts import store
from alerts.lifecycle import Signal
from registry.alert_models import Notification
from registry.db import engine_for, migrate, transaction
from stack.cli import main
from tests.alerting import T0, alert_venue
from timeseries.events import Check, Level


def test_an_operator_lists_shows_acknowledges_and_resolves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'registry.sqlite'}"
    monkeypatch.setenv("TAPSENSE_REGISTRY__URL", url)
    migrate(url)
    engine = engine_for(url, serialised=True)
    alert_venue(engine, "cli-1")
    signal = Signal("cli-1", "tap-2", Check.LEAK, Level.WARNING, T0, 2.5, T0)
    store.retrying(engine, lambda db: store.record(db, signal, T0))
    dead = Notification(id="msg_dead", venue_id="cli-1", channel="webhook", target="1",
                        payload={}, state="dead", attempts=9, next_attempt_ms=T0,
                        last_error="410 Gone: the receiver asked for no more",
                        created_ms=T0, dead_ms=T0)  # fmt: skip

    assert main(["alerts", "dead"]) == 0
    assert capsys.readouterr().out == "no notification was given up on\n"
    assert main(["alerts", "list", "--state", "unresolved"]) == 0
    listed = capsys.readouterr().out
    assert "open" in listed and "cli-1/tap-2 leak" in listed
    alert_id = int(listed.split()[0].lstrip("#"))
    assert main(["alerts", "ack", str(alert_id), "--comment", "closing the tap"]) == 0
    assert main(["alerts", "resolve", str(alert_id), "--comment", "coupler replaced"]) == 0
    assert main(["alerts", "show", str(alert_id)]) == 0
    shown = capsys.readouterr().out
    assert "acknowledged" in shown and "'coupler replaced'" in shown and "resolved" in shown
    assert main(["alerts", "resolve", str(alert_id), "--comment", "again"]) == 1
    assert "resolved already" in capsys.readouterr().err
    assert main(["alerts", "ack", "999"]) == 1
    assert main(["alerts", "resolve", str(alert_id), "--comment", "\x00"]) == 2
    assert "comment" in capsys.readouterr().err
    with transaction(engine) as db:
        db.add(dead)
    engine.dispose()
    assert main(["alerts", "dead"]) == 0
    assert "msg_dead" in capsys.readouterr().out
