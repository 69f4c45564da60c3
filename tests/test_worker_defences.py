"""No message can stop the worker: whatever handling one does, it is dead-lettered with the
reason and acknowledged, and the messages around it are stored.

Three layers, each tested on the real broker and InfluxDB: the decoder's own errors (invalid
UTF-8 in a string), an unforeseen exception while one message is handled or while a batch is
checked as a whole (injected), and a message that kills the worker process outright.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from edge.wire import DeviceTopic, Telemetry, Temperature, TopicKind, encode
from ingest import batch as batch_module
from ingest.batch import BatchBuilder
from ingest.deadletter import DeadLetter, DeadLetterStore, Selection
from ingest.worker import CULPRIT_REASON, READY_LINE
from stack.services import ManagedProcess, log_says
from stack.settings import Settings, environment
from tests.conftest import IngestThread, end_session, publisher
from tests.crashing_ingest import KILL_MARKER
from tests.factories import register_venue
from tests.readback import stored_temperatures, wait_for

T0 = 1_750_000_000_000
VENUE = "venue-defences"
TELEMETRY = str(DeviceTopic(VENUE, "edge-1", TopicKind.TELEMETRY))
STATUS = str(DeviceTopic(VENUE, "edge-1", TopicKind.STATUS))


@pytest.fixture(autouse=True)
def _registered(settings: Settings) -> None:
    register_venue(settings, VENUE)


def good(seq: int, c: float = 4.0) -> bytes:
    return encode(Telemetry(v=1, seq=seq, temps=[Temperature(tap="tap-01", ts=T0 + seq, c=c)]))


def letters(store: DeadLetterStore) -> list[DeadLetter]:
    """This test's dead letters: the shared broker also holds other tests' retained statuses."""
    return store.latest(100, Selection(topic=f"/{VENUE}/"))


def stored_seqs(settings: Settings) -> set[int]:
    return {ts - T0 for venue, _, ts, _ in stored_temperatures(settings) if venue == VENUE}


def publish_all(settings: Settings, messages: list[tuple[str, bytes]]) -> None:
    client = publisher(settings)
    for topic, payload in messages:
        client.publish(topic, payload, qos=1).wait_for_publish(10)
    client.disconnect()


def test_invalid_utf8_in_a_string_is_dead_lettered_and_the_worker_goes_on(
    settings: Settings, ingest: IngestThread
) -> None:
    """The two payloads that used to kill the worker (issue 9), then a valid message."""
    bad_reading = b'{"v":1,"seq":2,"temps":[{"tap":"tap-\xff\xfe","ts":%d,"c":4.0}]}' % (T0 + 2)
    bad_status = b'{"v":1,"state":"on\xfflin"}'
    publish_all(
        settings, [(TELEMETRY, good(1)), (TELEMETRY, bad_reading), (STATUS, bad_status),
                   (TELEMETRY, good(3))],
    )  # fmt: skip
    assert wait_for(lambda: stored_seqs(settings) == {1, 3})
    assert wait_for(lambda: len(letters(ingest.deadletters())) == 2)
    refused = {bytes(letter.payload): letter for letter in letters(ingest.deadletters())}
    reading = refused[b'{"tap":"tap-\xff\xfe","ts":%d,"c":4.0}' % (T0 + 2)]
    assert reading.seq == 2
    assert "invalid UTF-8" in reading.reason and "$.temps[0]" in reading.reason
    assert "invalid UTF-8" in refused[bad_status].reason
    assert ingest.thread.is_alive()


def test_an_unforeseen_error_handling_one_message_refuses_that_message_alone(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = batch_module.decode_telemetry

    def failing(topic: str, payload: bytes, *args: int) -> object:
        if b'"seq":2,' in payload:
            raise KeyError("injected")
        return real(topic, payload, *args)

    monkeypatch.setattr(batch_module, "decode_telemetry", failing)
    with IngestThread(settings) as ingest:
        publish_all(settings, [(TELEMETRY, good(seq)) for seq in (1, 2, 3)])
        assert wait_for(lambda: stored_seqs(settings) == {1, 3})
        assert wait_for(lambda: len(letters(ingest.deadletters())) == 1)
        [letter] = letters(ingest.deadletters())
        assert letter.reason == "internal error while handling it: KeyError: 'injected'"
        assert bytes(letter.payload) == good(2)
    end_session(settings)


def test_a_batch_that_fails_as_a_whole_is_split_until_the_culprit_is_found(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The quality check runs over the whole batch; an error there is nobody's in particular."""
    real = BatchBuilder.check_quality

    def failing(self: BatchBuilder, batch: batch_module.Batch) -> list[object]:
        if 66.6 in batch.temps:
            raise FloatingPointError("injected")
        return real(self, batch)  # type: ignore[return-value]

    monkeypatch.setattr(BatchBuilder, "check_quality", failing)
    settings = settings.model_copy(
        update={"ingest": settings.ingest.model_copy(update={"batch_linger_ms": 2000})}
    )
    with IngestThread(settings) as ingest:
        messages = [(TELEMETRY, good(seq, 66.6 if seq == 7 else 4.0)) for seq in range(1, 13)]
        publish_all(settings, messages)
        assert wait_for(lambda: stored_seqs(settings) == set(range(1, 13)) - {7})
        assert wait_for(lambda: len(letters(ingest.deadletters())) == 1)
        [letter] = letters(ingest.deadletters())
        assert letter.reason == "internal error while handling it: FloatingPointError: injected"
        assert bytes(letter.payload) == good(7, 66.6)
    assert "failed; splitting it to find why" in caplog.text


def test_a_message_that_kills_the_worker_is_set_aside_on_redelivery(
    settings: Settings, tmp_path: Path
) -> None:
    """Killed once in a batch, once alone: the third worker dead-letters it and goes on."""
    env = {**os.environ, **environment(settings)}
    worker = ManagedProcess(
        "crashing-ingest", [sys.executable, "-m", "tests.crashing_ingest"],
        tmp_path / "ingest.log", env=env,
    )  # fmt: skip
    killer = b'{"v":1,"seq":5,"temps":[],"note":"' + KILL_MARKER + b'"}'
    try:
        worker.start(log_says(worker.log_path, READY_LINE), timeout_s=120)
        publish_all(settings, [(TELEMETRY, good(1)), (TELEMETRY, killer), (TELEMETRY, good(2))])
        for _ in range(2):
            assert worker.process is not None
            assert worker.process.wait(60) == -9, "the worker should have died on the message"
            worker.stop()
            worker.start(log_says(worker.log_path, READY_LINE), timeout_s=120)
        assert wait_for(lambda: stored_seqs(settings) == {1, 2})
        store = IngestThread(settings).deadletters()
        assert wait_for(lambda: len(letters(store)) == 1)
        [letter] = letters(store)
        assert (letter.reason, bytes(letter.payload)) == (CULPRIT_REASON, killer)
        assert worker.process is not None and worker.process.poll() is None
        assert "handled one at a time" in worker.log_path.read_text()
    finally:
        worker.stop()
        end_session(settings)
