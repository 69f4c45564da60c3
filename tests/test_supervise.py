"""The supervisor of `tapsense up`, on real short-lived processes: what dies is restarted, and
a child that keeps failing at once is given up on with a reason."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from stack import supervise
from stack.services import ManagedProcess
from stack.supervise import Child, GaveUp, Supervisor
from tests.readback import wait_for


def child(tmp_path: Path, name: str, code: str) -> Child:
    process = ManagedProcess(name, [sys.executable, "-c", code], tmp_path / f"{name}.log")
    return Child(process, lambda: lambda: True)


@pytest.fixture(autouse=True)
def _quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(supervise, "FIRST_BACKOFF_S", 0.01)


def test_a_child_that_dies_is_restarted_and_the_others_keep_running(tmp_path: Path) -> None:
    supervisor = Supervisor()
    steady = child(tmp_path, "steady", "import time; time.sleep(60)")
    flaky = child(tmp_path, "flaky", "import time; time.sleep(0.2)")
    supervisor.start(steady)
    supervisor.start(flaky)
    steady_pid = steady.process.pid
    try:

        def restarted_twice() -> bool:
            supervisor.tend()
            return flaky.restarts >= 2

        assert wait_for(restarted_twice, timeout_s=30, every_s=0.02)
        assert steady.process.pid == steady_pid and steady.exited() is None
    finally:
        supervisor.stop()


def test_a_child_failing_again_and_again_at_start_is_given_up_on(tmp_path: Path) -> None:
    supervisor = Supervisor()
    broken = child(tmp_path, "broken", "import time, sys; time.sleep(0.1); sys.exit(3)")
    supervisor.start(broken)
    try:
        with pytest.raises(GaveUp) as raised:
            for _ in range(3000):
                supervisor.tend()
                time.sleep(0.01)
        assert str(raised.value).startswith("broken exited with 3, its 5th failure in a row")
        assert str(broken.process.log_path) in str(raised.value)
        assert broken.restarts == supervise.GIVE_UP_AFTER - 1
    finally:
        supervisor.stop()
