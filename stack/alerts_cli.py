"""`tapsense alerts ...`: the alerts service, and what an operator does with alerts from a
shell: list them, show one with its history, acknowledge, resolve, and the notifications given
up on (the dead letters)."""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from alerts import admin
from alerts.admin import CommentIn, ResolveIn
from alerts.lifecycle import ALERT_CHECKS
from registry.access import AccessError
from registry.alert_models import Alert, AlertTransition, Notification
from registry.db import open_registry, transaction
from stack.settings import Settings

DESCRIPTION = """\
Without a subcommand: run the alerts service. It consumes the quality events ingest publishes
and devices' presence, keeps alerts in the registry's database and sends notifications by
e-mail ([smtp] settings) and webhooks (see docs/alerts.md). Two may run at once, each with its
own alerts.client_id.

The subcommands are for operators: they act as the service does, on the registry directly,
without a person's name in the history (use the API for that).
"""

EPILOG = """\
examples:
  tapsense alerts                                   run the service (tapsense up starts it)
  tapsense alerts list --state unresolved           what is going on, newest first
  tapsense alerts list --venue cafe-dom --check warm_beer --limit 50
  tapsense alerts show 12                           one alert and its history
  tapsense alerts ack 12 --comment "technician called"
  tapsense alerts resolve 12 --comment "cooler repaired"
  tapsense alerts dead                              notifications given up on, and why
"""


def _when(ms: int | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000)) if ms else "-"


def _line(a: Alert) -> str:
    subject = a.subject or "(venue)"
    return (f"#{a.id:<6} {a.state:<12} {a.severity:<8} {a.venue_id}/{subject} {a.check}  "
            f"opened {_when(a.opened_ms)}")  # fmt: skip


def cmd_list(db: Session, args: argparse.Namespace) -> int:
    q = select(Alert)
    if args.venue:
        q = q.where(Alert.venue_id == args.venue)
    if args.state == "unresolved":
        q = q.where(Alert.state != "resolved")
    elif args.state:
        q = q.where(Alert.state == args.state)
    if args.check:
        q = q.where(Alert.check == args.check)
    rows = db.scalars(q.order_by(Alert.opened_ms.desc(), Alert.id.desc()).limit(args.limit)).all()
    for a in rows:
        print(_line(a))
    if not rows:
        print("no alerts match")
    return 0


def _alert(db: Session, alert_id: int) -> Alert:
    alert = db.get(Alert, alert_id)
    if alert is None:
        raise AccessError(f"no alert {alert_id}")
    return alert


def cmd_show(db: Session, args: argparse.Namespace) -> int:
    alert = _alert(db, args.id)
    print(_line(alert))
    print(f"        evidence: value {alert.value:g}, detail {alert.detail:g} (docs/alerts.md)")
    history = db.scalars(select(AlertTransition).where(AlertTransition.alert_id == alert.id)
                         .order_by(AlertTransition.id))  # fmt: skip
    for t in history:
        who = f"user {t.by_user_id}" if t.by_user_id else "sensors/service"
        comment = f"  {t.comment!r}" if t.comment else ""
        print(f"  {_when(t.at_ms)}  {t.change:<12} {t.severity:<8} by {who}{comment}")
    return 0


def cmd_ack(db: Session, args: argparse.Namespace) -> int:
    admin.acknowledge(db, _alert(db, args.id), None, CommentIn(comment=args.comment).comment)
    print(f"alert {args.id} acknowledged")
    return 0


def cmd_resolve(db: Session, args: argparse.Namespace) -> int:
    admin.resolve(db, _alert(db, args.id), None, ResolveIn(comment=args.comment).comment)
    print(f"alert {args.id} resolved")
    return 0


def cmd_dead(db: Session, args: argparse.Namespace) -> int:
    rows = db.scalars(select(Notification).where(Notification.state == "dead")
                      .order_by(Notification.dead_ms.desc()).limit(args.limit)).all()  # fmt: skip
    for n in rows:
        print(f"{n.id}  {_when(n.dead_ms)}  {n.venue_id}  {n.channel} -> {n.target}  "
              f"after {n.attempts} attempts: {n.last_error}")  # fmt: skip
    if not rows:
        print("no notification was given up on")
    return 0


def run(settings: Settings, args: argparse.Namespace) -> int:
    if args.alerts_command is None:
        from alerts.service import run_alerts

        run_alerts(settings.for_alerts(), args.stop_on_signals())
        return 0
    command: Callable[[Session, argparse.Namespace], int] = args.alerts_run
    engine = open_registry(settings.registry_url, serialised=True)
    try:
        with transaction(engine) as db:
            return command(db, args)
    except AccessError as exc:
        print(f"tapsense alerts: {exc}", file=sys.stderr)
        return 1
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        print(f"tapsense alerts: {reasons}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()


def add_parser(sub: argparse._SubParsersAction, positive_int: Callable[[str], int],
               stop_on_signals: Callable[[], threading.Event]) -> None:  # fmt: skip
    parser = sub.add_parser(
        "alerts",
        help="the alerts service; list, show, ack, resolve alerts; dead notifications",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(run=run, alerts_command=None, stop_on_signals=stop_on_signals)
    commands = parser.add_subparsers(dest="alerts_command", metavar="SUBCOMMAND")
    listing = commands.add_parser("list", help="alerts, newest first")
    listing.add_argument("--venue")
    listing.add_argument("--state", choices=["open", "acknowledged", "resolved", "unresolved"])
    listing.add_argument("--check", choices=ALERT_CHECKS)
    listing.add_argument("--limit", type=positive_int, default=20)
    listing.set_defaults(alerts_run=cmd_list)
    show = commands.add_parser("show", help="one alert and its history")
    show.add_argument("id", type=positive_int)
    show.set_defaults(alerts_run=cmd_show)
    ack = commands.add_parser("ack", help="acknowledge: reminders and escalation stop")
    ack.add_argument("id", type=positive_int)
    ack.add_argument("--comment")
    ack.set_defaults(alerts_run=cmd_ack)
    resolve = commands.add_parser("resolve", help="resolve, with a comment saying why")
    resolve.add_argument("id", type=positive_int)
    resolve.add_argument("--comment", required=True)
    resolve.set_defaults(alerts_run=cmd_resolve)
    dead = commands.add_parser("dead", help="notifications given up on, and why")
    dead.add_argument("--limit", type=positive_int, default=20)
    dead.set_defaults(alerts_run=cmd_dead)
