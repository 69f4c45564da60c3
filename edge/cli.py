"""`tapsense-agent`: the edge agent on a venue's small computer (a Raspberry Pi with DS18B20
probes on 1-Wire and pulse flow meters on GPIO).

It takes the config file provisioning hands out (`POST /venues/{venue}/devices` or
`tapsense registry device`) as is; which probe and flow meter belong to which tap is added to
it under `[taps.<id>]` (see `tapsense-agent probes`). Readings are spooled on disk and leave
the spool only when the broker has acknowledged them.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import time
from pathlib import Path

from edge import onewire
from edge.program import (
    AgentFile,
    ConfigError,
    Program,
    calibrate,
    calibration_line,
    load,
    with_k_factor,
)

EPILOG = """\
examples:
  tapsense-agent run --config /etc/tapsense-agent/agent.toml
  tapsense-agent status --config /etc/tapsense-agent/agent.toml
  tapsense-agent probes
  tapsense-agent calibrate tap-01 --poured-ml 500 --config /etc/tapsense-agent/agent.toml
                              pour 500 mL into a measuring jug: sets the meter's pulses/L
  tapsense-agent run --config agent.toml --state-dir ./state
                              the spool and status file in ./state instead of the config's
"""


def _config(args: argparse.Namespace) -> AgentFile:
    return load(args.config, state_dir=args.state_dir)


def cmd_run(args: argparse.Namespace) -> int:
    config = _config(args)
    config.state_dir.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    logging.getLogger(__name__).info(
        "%s/%s: %d taps, spool %s, broker %s:%d", config.agent.venue, config.agent.device,
        len(config.taps), config.agent.spool_path, config.mqtt.host, config.mqtt.port,
    )  # fmt: skip
    Program(config).run(stop)
    return 0


def _age(ms: int | None) -> str:
    if ms is None:
        return "never"
    seconds = time.time() - ms / 1000
    return f"{seconds:.0f} s ago" if seconds < 120 else f"{seconds / 60:.0f} min ago"


def cmd_status(args: argparse.Namespace) -> int:
    config = _config(args)
    if not config.status_path.exists():
        print(f"no status at {config.status_path}: the agent has not run with this config")
        return 1
    status = json.loads(config.status_path.read_text())
    stale = time.time() - status["written_ms"] / 1000 > 30
    state = "connected" if status["connected"] else f"not connected ({status['refused'] or '-'})"
    print(f"{config.agent.venue}/{config.agent.device}: {state}"
          + (f"; status written {_age(status['written_ms'])}: is the agent running?"
             if stale else ""))  # fmt: skip
    print(f"spool: {status['spool_depth']} messages not yet confirmed stored "
          f"({status['unconfirmed']} of them taken by the broker), oldest reading "
          f"{_age(status['oldest_unsent_ms'])}; last broker acknowledgement "
          f"{_age(status['last_puback_ms'])}")  # fmt: skip
    if status["lost_readings"]:
        print(f"LOST: {status['lost_readings']} readings dropped for lack of room (disk or "
              "spool full): see the log")  # fmt: skip
    for tap, info in status["taps"].items():
        last = info["last_temperature"]
        reading = f"{last['c']:.2f} °C {_age(last['ts'])}" if last else "no reading yet"
        problem = f"  ({info['problem']})" if info["problem"] else ""
        print(f"  {tap}: probe {info['probe'] or '-'}, flow line {info['flow_line']}, "
              f"{reading}{problem}")  # fmt: skip
    return 0 if status["connected"] and not stale else 1


def cmd_calibrate(args: argparse.Namespace) -> int:
    config = _config(args)
    calibration_line(config, args.tap, args.poured_ml)  # a clear refusal before the instruction
    print(f"pour exactly {args.poured_ml:g} mL from {args.tap} into a measuring jug now "
          f"(waiting up to {args.timeout:.0f} s)")  # fmt: skip
    try:
        pulses, k_factor = calibrate(config, args.tap, args.poured_ml, args.timeout)
    except OSError as exc:  # the GPIO line is someone else's: the agent service holds it
        raise ConfigError(f"cannot read the flow meter ({exc}): stop the agent first "
                          "(systemctl stop tapsense-agent)") from exc  # fmt: skip
    before = config.taps[args.tap].k_factor
    args.config.write_text(with_k_factor(args.config.read_text(), args.tap, k_factor))
    print(f"{args.tap}: {pulses:,} pulses for {args.poured_ml:g} mL: k_factor = "
          f"{k_factor:.1f} pulses/L (was {before:g}), written to {args.config}")  # fmt: skip
    return 0


def cmd_probes(args: argparse.Namespace) -> int:
    serials = onewire.probes(args.w1_root)
    if not serials:
        print(
            f"no DS18B20 probes under {args.w1_root}: is the 1-Wire overlay on "
            "(dtoverlay=w1-gpio in /boot/firmware/config.txt) and are the probes wired?"
        )
        return 1  # fmt: skip
    for serial in serials:
        reading = onewire.read(serial, args.w1_root)
        text = f"{reading.c:.3f} °C" if reading.c is not None else f"no reading: {reading.problem}"
        print(f"{serial}  {text}")
    print("warm one probe in your hand and run this again to see which is which")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tapsense-agent", description=__doc__, epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, handler, text in (
        ("run", cmd_run, "read the taps and publish, until stopped (SIGTERM, Ctrl-C)"),
        ("status", cmd_status, "connected or not, spool depth, last acknowledgement, each tap"),
    ):
        command = sub.add_parser(name, help=text, description=text)
        command.add_argument("--config", type=Path, required=True, help="the agent's TOML file")
        command.add_argument("--state-dir", type=Path,
                             help="where the spool and status live (default: the config's "
                                  "spool_path folder)")  # fmt: skip
        command.set_defaults(run=handler)
    cal = sub.add_parser(
        "calibrate",
        help="pour a measured volume: sets the tap's flow meter pulses per litre in the config",
        description="Counts the pulses of one measured pour (stop the agent first: it holds "
        "the GPIO lines) and writes the tap's k_factor into the config file.",
    )
    cal.add_argument("tap", help="the tap's id, as under [taps.<id>]")
    cal.add_argument("--poured-ml", type=float, required=True, help="the volume poured, in mL")
    cal.add_argument("--config", type=Path, required=True, help="the agent's TOML file")
    cal.add_argument("--state-dir", type=Path, help=argparse.SUPPRESS)
    cal.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for it")
    cal.set_defaults(run=cmd_calibrate)
    probes = sub.add_parser("probes", help="the 1-Wire probes this computer sees, and their "
                            "readings (to map serials to taps)")  # fmt: skip
    probes.add_argument("--w1-root", type=Path, default=onewire.W1_ROOT)
    probes.set_defaults(run=cmd_probes)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)-7s %(message)s")
    try:
        code: int = args.run(args)
        return code
    except ConfigError as exc:
        print(f"tapsense-agent: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
