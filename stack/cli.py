"""The `tapsense` command: one entry point for the stack, its services and the simulators."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from stack.settings import Settings

_LOGGER = logging.getLogger("tapsense")

DESCRIPTION = """\
Tapsense: beer-tap temperature and pours over MQTT, quality checks, InfluxDB.

Settings come from TAPSENSE_* environment variables and an optional TOML file (TAPSENSE_CONFIG,
or ./tapsense.toml); see docs/settings.md. `tapsense config` prints what is in force.
"""

EPILOG = """\
examples:
  tapsense up --fleet 5                 broker, InfluxDB, ingest, API and 5 simulated venues
  tapsense simulate --venues 2 --fast-forward 3600 --truth truth.jsonl
                                        backfill an hour of 2 venues into a running stack
  tapsense deadletters --limit 20       what was refused lately, and why
  TAPSENSE_MQTT__PORT=1883 tapsense ingest
                                        run only the ingest worker against another broker
"""


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handler(signum: int, _frame: object) -> None:
        _LOGGER.info("%s received, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    return stop


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    from stack.up import run_stack

    return run_stack(settings, fleet_venues=args.fleet, taps=args.taps, stop=_stop_on_signals())


def cmd_ingest(settings: Settings, _args: argparse.Namespace) -> int:
    from ingest.service import run_ingest

    run_ingest(settings, _stop_on_signals())
    return 0


def cmd_api(settings: Settings, _args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app

    uvicorn.run(
        create_app(settings), host=settings.api.host, port=settings.api.port, log_level="info"
    )
    return 0


def cmd_simulate(settings: Settings, args: argparse.Namespace) -> int:
    from simulators.fleet import Fleet, FleetConfig

    config = FleetConfig(
        venues=args.venues,
        taps_per_venue=args.taps,
        seed=args.seed,
        sample_interval_s=args.interval,
    )
    fleet = Fleet(config, settings.mqtt, settings.home / "spool")
    stop = _stop_on_signals()
    fleet.connect()
    try:
        if args.fast_forward:
            start_ms = int(time.time() * 1000) - int(args.fast_forward * 1000)
            fleet.fast_forward(start_ms, args.fast_forward, progress=True)
            if not fleet.drain():
                _LOGGER.error("the broker did not acknowledge everything in time")
                return 1
        else:
            _LOGGER.info(
                "%d venues x %d taps sampling every %.0f s; Ctrl-C stops",
                args.venues,
                args.taps,
                args.interval,
            )
            fleet.real_time(stop)
            fleet.drain(timeout_s=30)
    finally:
        fleet.close()
        if args.truth:
            fleet.truth.write_jsonl(args.truth)
    _LOGGER.info(
        "sent %d readings (%d temperatures, %d pours)",
        fleet.truth.total,
        len(fleet.truth.temps),
        len(fleet.truth.pours),
    )
    return 0


def cmd_deadletters(settings: Settings, args: argparse.Namespace) -> int:
    from ingest.deadletter import DeadLetterStore

    if not settings.deadletter_path.exists():
        print(f"nothing refused yet: no dead-letter store at {settings.deadletter_path}")
        return 0
    store = DeadLetterStore(settings.deadletter_path)
    rows = store.latest(args.limit)
    print(f"{store.count()} refused in {settings.deadletter_path}; latest {len(rows)}:")
    for row in rows:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row.received_ms / 1000))
        print(f"{when}  {row.topic}  seq={row.seq}  {row.reason}")
        print(f"    {row.payload[:160]!r}")
    return 0


def cmd_config(settings: Settings, _args: argparse.Namespace) -> int:
    print(
        settings.model_dump_json(
            indent=2,
            exclude={"mqtt": {"password"}, "influx": {"token"}},
        )
    )
    return 0


def _at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        return value

    return parse


positive_int = _at_least(1)


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be greater than 0, not {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tapsense",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser(
        "up",
        help="run the whole local stack (Ctrl-C stops all of it)",
        description="Start Mosquitto and InfluxDB with generated configs and data "
        "under `home` (default ./.tapsense), then the ingest worker and the API, "
        "and optionally a simulated fleet sending in real time.",
    )
    up.add_argument(
        "--fleet",
        type=_at_least(0),
        default=0,
        metavar="N",
        help="also run N simulated venues (default: none)",
    )
    up.add_argument(
        "--taps", type=positive_int, default=4, metavar="M", help="taps per simulated venue"
    )
    up.set_defaults(run=cmd_up)

    sub.add_parser("ingest", help="run the ingest worker").set_defaults(run=cmd_ingest)
    sub.add_parser("api", help="run the HTTP API").set_defaults(run=cmd_api)

    sim = sub.add_parser(
        "simulate",
        help="run simulated venues against a running stack",
        description="Each simulated venue is a real edge agent with a disk "
        "spool under `home`/spool, publishing to the configured broker.",
    )
    sim.add_argument("--venues", type=positive_int, default=3, metavar="N")
    sim.add_argument("--taps", type=positive_int, default=4, metavar="M", help="taps per venue")
    sim.add_argument("--seed", type=int, default=1, help="same seed, same readings")
    sim.add_argument(
        "--interval",
        type=positive_float,
        default=5.0,
        metavar="S",
        help="seconds between samples of each tap (simulated time)",
    )
    sim.add_argument(
        "--fast-forward",
        type=positive_float,
        metavar="SECONDS",
        help="backfill this many seconds up to now as fast as possible, then stop",
    )
    sim.add_argument(
        "--truth",
        type=Path,
        metavar="FILE",
        help="write every reading sent as JSON lines (ground truth)",
    )
    sim.set_defaults(run=cmd_simulate)

    dead = sub.add_parser("deadletters", help="show refused messages and readings with reasons")
    dead.add_argument("--limit", type=positive_int, default=20)
    dead.set_defaults(run=cmd_deadletters)

    sub.add_parser("config", help="print the settings in force (secrets left out)").set_defaults(
        run=cmd_config
    )
    return parser


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    try:
        settings = Settings()
    except (ValidationError, FileNotFoundError) as exc:
        print(f"tapsense: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    run: Callable[[Settings, argparse.Namespace], int] = args.run
    return run(settings, args)


if __name__ == "__main__":
    sys.exit(main())
