"""End-to-end acknowledgement: a reading leaves the agent's spool only once ingest stored it.

The broker's PUBACK means "in memory" (Mosquitto writes its queue to disk every
`autosave_interval`). With ingest behind, a broker killed with -9 loses what it had queued for
it; the agent, which hears from ingest which messages it stored, sends the rest again."""

from __future__ import annotations

import threading
from pathlib import Path

from edge.agent import AgentConfig, EdgeAgent
from tests.conftest import Broker, IngestThread, end_session, make_settings, new_broker
from tests.factories import register_venue
from tests.readback import stored_of, wait_for

T0 = 1_750_000_000_000
VENUE = "venue-e2e-ack"
READINGS = 2000  # 40 messages of 50


class Pumping:
    """The agent's loop, as the program runs it: pump every 50 ms."""

    def __init__(self, agent: EdgeAgent) -> None:
        self.agent = agent
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.wait(0.05):
            self.agent.pump()

    def __enter__(self) -> Pumping:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


def test_the_broker_killed_while_ingest_is_behind_loses_no_reading(
    tmp_path: Path, influx: object
) -> None:
    broker: Broker = new_broker(tmp_path / "mosquitto")
    settings = make_settings(tmp_path, broker, influx)  # type: ignore[arg-type]
    register_venue(settings, VENUE, devices=["edge-1"])
    config = AgentConfig(venue=VENUE, device="edge-1", spool_path=tmp_path / "spool.sqlite",
                         confirm_stored=True, confirm_timeout_s=5)  # fmt: skip
    agent = EdgeAgent(config, settings.mqtt)
    try:
        with IngestThread(settings):
            pass  # its persistent session now exists: the broker queues for it while it is away
        agent.connect()
        assert agent.connected.wait(10)
        for k in range(READINGS):
            agent.record_temperature("tap-01", T0 + k * 1000, 4.0 + (k % 7) / 10)
        agent.seal()
        with Pumping(agent):
            # The broker took every message (PUBACK); ingest has stored none of them yet.
            assert wait_for(lambda: agent.unconfirmed == 40)
            assert agent.spool.depth() == 40
            for _ in range(3):
                broker.process.kill()
                broker.restart()
                assert wait_for(agent.connected.is_set, timeout_s=30)
            with IngestThread(settings):
                assert wait_for(lambda: agent.spool.depth() == 0, timeout_s=120), (
                    f"{agent.spool.depth()} messages never confirmed"
                )
                assert wait_for(lambda: stored_of(settings, VENUE) == READINGS, timeout_s=30)
        end_session(settings)
        assert agent.counters.confirmed >= 40
        assert (
            stored_of(settings, VENUE) == READINGS
        )  # every reading once (a resent one overwrites)
    finally:
        agent.close()
        broker.process.stop()
