"""The `tapsense` command: one entry point for the stack, its services and the simulators."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from stack import alerts_cli, coupons_cli, deadletters_cli, registry_cli, report_cli
from stack.settings import Settings, SettingsError, load_settings

_LOGGER = logging.getLogger("tapsense")

DESCRIPTION = """\
Tapsense: beer-tap temperature and pours over MQTT, quality checks, InfluxDB.

Settings come from TAPSENSE_* environment variables and an optional TOML file (TAPSENSE_CONFIG,
or ./tapsense.toml); see docs/settings.md. `tapsense config` prints what is in force.
"""

EPILOG = """\
examples:
  tapsense up --fleet 5                 broker, InfluxDB, ingest, alerts, API and 5 venues
  tapsense simulate scenarios/normal-week.yaml --truth truth/
                                        a week of 5 venues, fast-forward, into a running stack
  tapsense simulate --venues 2 --taps 3
                                        two venues sending in real time, until Ctrl-C
  tapsense alerts list --state unresolved
                                        what is going on at the venues
  tapsense deadletters --limit 20       what was refused lately, and why
  tapsense deadletters replay --reason "not registered"
                                        store what came before its venue was registered
  tapsense registry --help              organisations, venues, taps, devices and keys
  tapsense registry service-login ingest
                                        the ingest service's broker login, to run it alone
  TAPSENSE_MQTT__PORT=1883 tapsense ingest
                                        run only the ingest worker against another broker
"""


SCENARIO_HELP = """\
a scenario file (YAML); every key is explained in docs/scenarios.md:

  name: cooler-failure
  description: venue-003's cooler fails on Friday evening
  start: 2026-03-02T00:00:00+01:00      # with a time zone
  duration: 7d                          # 90s, 15m, 6h, 7d, 1h30m
  seed: 42                              # same seed, same run
  sample_interval: 30s
  fleet: {venues: 5, taps: 6, city: Utrecht, lat: 52.09, lon: 5.12}
  sensors: {noise_c: 0.05, dropout: 0.001}
  network: {duplicates: 0.01, reorder: 0.01}
  events:
    - {kind: cooler_failure, venue: venue-003, at: 2026-03-06T17:00:00+01:00, duration: 6h}
    - {kind: sensor_fault, venue: venue-001, tap: tap-02, fault: stuck, at: ..., duration: 2h}
    - {kind: festival, name: Bokbierfestival, lat: 52.09, lon: 5.12, at: ..., duration: 3d}

event kinds: cooler_failure, warming_line, sensor_fault (stuck, silent, spikes, drift), leak,
clock_skew, offline, festival. `extends: base.yaml` starts from another file and adds to it.
Ready scenarios are in scenarios/ (tapsense simulate scenarios/normal-week.yaml).
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

    run_ingest(settings.for_ingest(), _stop_on_signals())
    return 0


def cmd_api(settings: Settings, _args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app

    uvicorn.run(
        create_app(settings.for_api()),
        host=settings.api.host,
        port=settings.api.port,
        log_level="info",
    )
    return 0


def cmd_simulate(settings: Settings, args: argparse.Namespace) -> int:
    import msgspec

    from simulators import scenario as sc
    from simulators.fleet import simple_scenario
    from simulators.run import Mode, simulate

    if args.scenario is not None:
        try:
            scenario = sc.load(args.scenario)
        except sc.ScenarioError as exc:
            print(f"tapsense simulate: {exc}", file=sys.stderr)
            return 2
        if args.check:
            print(f"{args.scenario}: valid scenario {scenario.name!r}")
            return 0
        if args.register:
            from simulators.run import register

            register(settings.for_simulators(), scenario)
            print(f"{args.scenario}: venues, taps and devices of {scenario.name!r} registered")
            return 0
    else:
        scenario = simple_scenario(
            args.venues,
            args.taps,
            sample_interval_s=args.interval,
            duration_s=365 * 86400,
            name="fleet",
        )
    if args.seed is not None:
        scenario = msgspec.structs.replace(scenario, seed=args.seed)
    mode: Mode = args.mode or ("fast-forward" if args.scenario else "real-time")
    return simulate(settings.for_simulators(), scenario, mode, args.truth, _stop_on_signals(),
                    score=args.score)  # fmt: skip


def cmd_load(settings: Settings, args: argparse.Namespace) -> int:
    from simulators.run import load

    report = load(settings.for_simulators(), args.venues, args.taps, args.interval, args.seconds)
    print(report)
    return 0 if report.lost == 0 and report.extra == 0 else 1


def hide_password(url: str | None) -> str | None:
    """`scheme://user:***@host/...`: a URL as it may be shown, its password left out."""
    if url is None:
        return None
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def cmd_config(settings: Settings, _args: argparse.Namespace) -> int:
    hidden = {"mqtt": {"password"}, "influx": {"token"}, "smtp": {"password"}}
    shown = settings.model_dump(mode="json", exclude=hidden)
    shown["influx"]["url"] = hide_password(shown["influx"]["url"])
    shown["registry"]["url"] = hide_password(shown["registry"]["url"])
    print(json.dumps(shown, indent=2))
    return 0


def _at_least(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        return value

    return parse


positive_int = _at_least(1)


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
        "under `home` (default ./.tapsense), then the ingest worker, the alerts and reports "
        "services and the API, and optionally a simulated fleet sending in real time.",
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
        help="run a scenario of simulated venues against a running stack",
        description="Each simulated venue is a real edge agent with a disk spool under "
        "`home`/spool, publishing to the configured broker. Without a scenario file: N alike "
        "venues in real time, until Ctrl-C.",
        epilog=SCENARIO_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sim.add_argument("scenario", nargs="?", type=Path, help="a scenario file (YAML)")
    sim.add_argument(
        "--mode",
        choices=["fast-forward", "real-time"],
        default=None,
        help="fast-forward (default with a scenario): as fast as the stack "
        "acknowledges; real-time: the scenario starts now and follows the clock",
    )
    sim.add_argument("--check", action="store_true", help="only validate the scenario file")
    sim.add_argument(
        "--register",
        action="store_true",
        help="only register the scenario's venues, taps and devices (then give a venue its "
        "owner, webhooks and alert policy before the run)",
    )
    sim.add_argument(
        "--truth",
        type=Path,
        metavar="DIR",
        help="write ground truth: readings.jsonl (sent) and events.jsonl (happened)",
    )
    sim.add_argument("--seed", type=int, help="override the scenario's seed")
    sim.add_argument(
        "--score",
        action="store_true",
        help="then wait for the stack to store every reading and print the scorecard: per "
        "check, faults injected, detected, missed, detection delay, false alarms per "
        "venue-week and flaps (play each scenario on a fresh `tapsense up`)",
    )
    sim.add_argument(
        "--venues",
        type=positive_int,
        default=3,
        metavar="N",
        help="without a scenario: how many venues",
    )
    sim.add_argument(
        "--taps",
        type=positive_int,
        default=4,
        metavar="M",
        help="without a scenario: taps per venue",
    )
    sim.add_argument(
        "--interval",
        type=positive_int,
        default=5,
        metavar="S",
        help="without a scenario: seconds between samples",
    )
    sim.set_defaults(run=cmd_simulate)

    load = sub.add_parser(
        "load",
        help="load test: N venues x M taps in real time, then what was lost",
        description="Runs N x M simulated taps, each sampled every S seconds, against a "
        "running stack for a while, then compares what was sent with what InfluxDB holds. "
        "Exit code 1 if anything was lost or stored twice.",
    )
    load.add_argument("--venues", type=positive_int, default=50, metavar="N")
    load.add_argument("--taps", type=positive_int, default=8, metavar="M")
    load.add_argument("--interval", type=positive_int, default=1, metavar="S")
    load.add_argument("--seconds", type=positive_int, default=60)
    load.set_defaults(run=cmd_load)

    deadletters_cli.add_parser(sub, positive_int)
    alerts_cli.add_parser(sub, positive_int, _stop_on_signals)
    report_cli.add_parsers(sub, _stop_on_signals)
    coupons_cli.add_parser(sub)

    sub.add_parser("config", help="print the settings in force (secrets left out)").set_defaults(
        run=cmd_config
    )
    registry_cli.add_parser(sub)
    return parser


def configure_logging(level: str) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("weasyprint").setLevel(logging.WARNING)  # a line per layout step
    logging.getLogger("fontTools").setLevel(logging.WARNING)
    # Alembic says "Context impl SQLiteImpl" each time a service checks the registry's revision.
    logging.getLogger("alembic.runtime.migration").setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"tapsense: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    run: Callable[[Settings, argparse.Namespace], int] = args.run
    return run(settings, args)


if __name__ == "__main__":
    sys.exit(main())
