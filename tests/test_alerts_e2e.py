"""A cooler failure on the running stack, from the simulator to the owner: `tapsense up` (with
its alerts service) and `tapsense simulate` of a scenario whose cooler fails, a real webhook
receiver that verifies every signature and a real SMTP server. The alerts are those the
simulator's ground truth implies: one per tap of the failing venue, and the cooler's; one
grouped message per channel when it happens and one when it is over."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.readback import wait_for
from tests.receivers import SmtpSink, WebhookReceiver, webhook_receiver
from tests.test_stack_up import start_up, up_env

SCENARIO = """\
name: cooler-e2e
description: one café, a Friday afternoon and evening; the cooler fails at 17:00 for 2 hours
start: 2026-03-06T14:00:00+01:00
duration: 10h
seed: 7
sample_interval: 30s
beers:
  - {name: house lager, style: pilsner, serving_min_c: 2.0, serving_max_c: 6.0}
  - {name: witbier, style: witbier, serving_min_c: 3.0, serving_max_c: 7.0}
venues:
  - id: cafe-koel
    city: Utrecht
    lat: 52.0907
    lon: 5.1214
    taps:
      - {id: tap-01, beer: house lager}
      - {id: tap-02, beer: house lager}
      - {id: tap-03, beer: witbier}
    pours_per_tap_hour: 10
events:
  - {kind: cooler_failure, venue: cafe-koel, at: 2026-03-06T17:00:00+01:00, duration: 2h}
"""
VENUE = "cafe-koel"


def test_a_cooler_failure_reaches_the_owner_once_and_its_end_once(tmp_path: Path) -> None:
    env = up_env(tmp_path)
    with SmtpSink() as smtp, webhook_receiver(WebhookReceiver()) as receiver:
        env |= {
            "TAPSENSE_SMTP__HOST": "127.0.0.1",
            "TAPSENSE_SMTP__PORT": str(smtp.port),
            "TAPSENSE_SMTP__STARTTLS": "false",
            # Long enough that the recoveries, replayed at once, are told after the alerts.
            "TAPSENSE_ALERTS__RESOLVE_HOLD_S": "10",
        }
        up, out = start_up(tmp_path, env)
        try:
            [key] = re.findall(r"API key +(tsk_[\w-]+)", out.read_text())
            api = httpx.Client(base_url=f"http://127.0.0.1:{env['TAPSENSE_API__PORT']}",
                               headers={"Authorization": f"Bearer {key}"}, timeout=30)  # fmt: skip
            scenario = tmp_path / "cooler.yaml"
            scenario.write_text(SCENARIO)
            simulate = [sys.executable, "-m", "stack.cli", "simulate", str(scenario)]
            # Register the fleet first, to give the venue its owner and webhook as an operator
            # would before the evening starts.
            subprocess.run([*simulate, "--register"], env=env, cwd=tmp_path, check=True)
            owner = api.post("/users", json={"email": "eigenaar@koel.example", "name": "Eigenaar",
                                             "role": "owner", "language": "nl"})  # fmt: skip
            assert owner.status_code == 201, owner.text
            assert api.patch(f"/venues/{VENUE}", json={"owner_id": owner.json()["id"]}).is_success
            hook = api.post(f"/venues/{VENUE}/webhooks", json={"url": receiver.url}).json()
            receiver.secret = hook["secret"]
            policy = api.put(f"/venues/{VENUE}/alert-policy", json={"group_wait_s": 1})
            assert policy.status_code == 200, policy.text

            subprocess.run([*simulate, "--truth", str(tmp_path / "truth")], env=env,
                           cwd=tmp_path, check=True, timeout=600)  # fmt: skip
            truth = [
                json.loads(x)
                for x in (tmp_path / "truth/events.jsonl").read_text().split("\n")
                if x
            ]
            failing = {e["venue"] for e in truth if e["kind"] == "cooler_failure"}
            assert failing == {VENUE}
            taps = {"tap-01", "tap-02", "tap-03"}

            def alerts(state: str) -> list[dict]:
                answer = api.get("/alerts", params={"venue": VENUE, "state": state, "limit": 500})
                # The simulated agent stops when the run ends: its sensor box going offline is
                # an alert too, and stays open (checked below).
                return [a for a in answer.json()["items"] if a["check"] != "device_offline"]

            # Everything recovers by 20:00; after the hold-off every alert is resolved.
            assert wait_for(lambda: bool(alerts("resolved")) and not alerts("unresolved"), 180)
            raised = alerts("resolved")
            keys = [(a["subject"], a["check"]) for a in raised]
            assert len(keys) == len(set(keys)), f"an alert twice: {keys}"
            # What a failing cooler implies: every tap too warm, the cooler itself, and warm
            # beer foaming or a line warming on its way there; nothing else.
            assert {s for s, c in keys if c == "warm_beer"} == taps
            assert [s for s, c in keys if c == "cooler_failure"] == [""]
            implied = {"warm_beer", "warming_trend", "foamy_pours", "cooler_failure"}
            assert {c for _, c in keys} <= implied, keys
            offline = api.get("/alerts", params={"venue": VENUE, "check": "device_offline"})
            assert [a["subject"] for a in offline.json()["items"]] == ["edge-1"]

            def told() -> bool:
                return len(receiver.unique()) >= 2 and len(smtp.unique()) >= 2

            assert wait_for(told, 120)
        finally:
            up.send_signal(signal.SIGINT)
            up.wait(120)
    assert receiver.bad_signatures == 0
    first, last = receiver.unique().values()
    assert {a["change"] for a in first.body["alerts"]} == {"opened"}
    assert {(a["subject"], a["check"]) for a in first.body["alerts"]} >= {
        (tap, "warm_beer") for tap in taps} | {("", "cooler_failure")}  # fmt: skip
    assert {a["change"] for a in last.body["alerts"]} == {"resolved"}
    assert sorted((a["subject"], a["check"]) for a in last.body["alerts"]) == sorted(keys)
    mails = list(smtp.unique().values())
    assert len(mails) == 2 and {m["To"] for m in mails} == {"eigenaar@koel.example"}
    assert "koeling" in str(mails[0].get_body(("plain",)).get_content())  # type: ignore[union-attr]
    assert str(mails[1]["Subject"]).endswith("opgelost")


pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")
