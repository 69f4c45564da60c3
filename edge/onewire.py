"""DS18B20 temperature probes on the Linux 1-Wire bus (the `w1_therm` driver's sysfs files).

Each probe is a folder `28-<serial>` under `/sys/bus/w1/devices/` with a `w1_slave` file:

    72 01 4b 46 7f ff 0e 10 57 : crc=57 YES
    72 01 4b 46 7f ff 0e 10 57 t=23125

The first line says whether the CRC matched; the second holds millidegrees. Two values are no
reading: 85.000 °C is the power-on value of a probe read before its first conversion, and
-127 °C (or a file that cannot be read) a probe that came loose. `root` is a parameter so
that tests and field replays point it at a recorded tree; reading the files is all this module
does with the hardware.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

W1_ROOT = Path("/sys/bus/w1/devices")
FAMILY = "28-"  # DS18B20
POWER_ON_MC = 85_000
DISCONNECTED_MC = -127_000


@dataclass(frozen=True, slots=True)
class ProbeReading:
    serial: str
    c: float | None  # None: no usable reading
    problem: str | None = None  # why there is no reading


def probes(root: Path = W1_ROOT) -> list[str]:
    """The serials of the DS18B20 probes the bus sees now."""
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.name.startswith(FAMILY))


def parse(serial: str, text: str) -> ProbeReading:
    """A `w1_slave` file's text as a reading, or the reason it is none."""
    lines = text.strip().splitlines()
    if len(lines) != 2:
        return ProbeReading(serial, None, "unreadable: not the two lines w1_therm writes")
    if not lines[0].rstrip().endswith("YES"):
        return ProbeReading(serial, None, "CRC mismatch (a noisy bus or a long cable)")
    _, sep, value = lines[1].rpartition("t=")
    try:
        millis = int(value) if sep else None
    except ValueError:
        millis = None
    if millis is None:
        return ProbeReading(serial, None, "unreadable: no t= value")
    if millis == POWER_ON_MC:
        return ProbeReading(serial, None, "85 °C: the probe's power-on value, not a reading")
    if millis == DISCONNECTED_MC:
        return ProbeReading(serial, None, "-127 °C: the probe is disconnected")
    return ProbeReading(serial, millis / 1000)


def read(serial: str, root: Path = W1_ROOT) -> ProbeReading:
    try:
        text = (root / serial / "w1_slave").read_text()
    except OSError as exc:
        return ProbeReading(serial, None, f"missing: {exc.strerror or exc}")
    return parse(serial, text)


class ProbeReader:
    """Reads the mapped probes over and over in a thread of its own (a DS18B20 takes about
    750 ms per conversion, which must not hold up publishing or flow counting), keeping each
    probe's latest reading and when it was taken."""

    def __init__(self, serials: list[str], root: Path = W1_ROOT, every_s: float = 5.0) -> None:
        self._serials = serials
        self._root = root
        self._every_s = every_s
        self._lock = threading.Lock()
        self._latest: dict[str, tuple[int, ProbeReading]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="probe-reader", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def read_all(self) -> None:
        for serial in self._serials:
            reading = read(serial, self._root)
            with self._lock:
                self._latest[serial] = (int(time.time() * 1000), reading)

    def latest(self, serial: str) -> tuple[int, ProbeReading] | None:
        with self._lock:
            return self._latest.get(serial)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.read_all()
            self._stop.wait(self._every_s)
