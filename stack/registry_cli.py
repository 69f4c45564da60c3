"""`tapsense registry ...`: the operator's commands for the registry, without the API.

They act on the database directly (`registry.url`), as whoever runs them: this is how the
first organisation, operator and key come to exist. Input is validated and changes are made by
the same code as the API's (`registry.inputs`, `registry.changes`), so a venue made here is one
the API would have accepted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from registry import access, changes
from registry.access import AccessError
from registry.broker import SERVICE_ACL, sync_broker
from registry.db import RegistryError, migrate, open_registry, transaction
from registry.inputs import BeerIn, CleaningIn, DeviceIn, KegChangeIn, TapIn, UserIn, VenueIn
from registry.models import Device, Organisation, Tap, Venue
from registry.provisioning import agent_config, mqtt_login
from stack.settings import Settings

EPILOG = """\
a first organisation, from nothing:
  tapsense registry migrate
  tapsense registry org "Brouwerij De Haan" --operator ops@dehaan.nl --name "Ops"
                                   prints the operator's API key, once
  tapsense registry venue --org "Brouwerij De Haan" --id cafe-dom --name "Café Dom" \\
      --lat 52.09 --lon 5.12 --region Utrecht
  tapsense registry beer --org "Brouwerij De Haan" --name "Haan Dubbel" --style dubbel \
      --serving-max-c 10
  tapsense registry tap --venue cafe-dom --id tap-01 --keg-l 30 --beer 1
  tapsense registry keg --venue cafe-dom --tap tap-01 --keg-l 30
                                   a full keg went on (the keg check counts from zero)
  tapsense registry cleaning --venue cafe-dom --tap tap-01
  tapsense registry device --venue cafe-dom --id edge-1
                                   prints its MQTT login and agent config, once
  tapsense registry revoke --venue cafe-dom --id edge-1
  tapsense registry service-login ingest > /etc/tapsense/ingest.env
                                   the ingest service's broker login, for its systemd unit
"""


def _organisation(db: Session, name_or_id: str) -> Organisation:
    org = db.get(Organisation, int(name_or_id)) if name_or_id.isdigit() else None
    org = org or db.scalar(select(Organisation).where(Organisation.name == name_or_id))
    if org is None:
        raise access.NotFound(f"no organisation {name_or_id!r}")
    return org


def _venue(db: Session, venue_id: str) -> Venue:
    venue = db.get(Venue, venue_id)
    if venue is None:
        raise access.NotFound(f"no venue {venue_id!r}")
    return venue


def _tap(db: Session, venue_id: str, tap_id: str) -> Tap:
    tap = db.get(Tap, (venue_id, tap_id))
    if tap is None:
        raise access.NotFound(f"no tap {tap_id!r} in venue {venue_id!r}")
    return tap


def _print_key(token: str) -> None:
    print(f"API key (shown once, keep it): {token}")


def cmd_migrate(settings: Settings, _args: argparse.Namespace) -> None:
    migrate(settings.registry_url)
    print(f"registry at the current revision: {settings.registry_url}")


def cmd_org(settings: Settings, args: argparse.Namespace) -> None:
    with _session(settings) as db:
        org = changes.create_organisation(db, args.org_name)
        print(f"organisation {org.id}: {org.name}")
        if args.operator:
            body = UserIn(email=args.operator, name=args.name or args.operator, role="operator")
            user = changes.create_user(db, org.id, body)
            print(f"operator {user.id}: {user.email}")
            _print_key(changes.create_key(db, "first key", user_id=user.id)[1])


def cmd_user(settings: Settings, args: argparse.Namespace) -> None:
    body = UserIn(email=args.email, name=args.name or args.email, role=args.role,
                  language=args.language)  # fmt: skip
    with _session(settings) as db:
        org = _organisation(db, args.org)
        user = changes.create_user(db, org.id, body)
        print(f"{user.role} {user.id}: {user.email} of {org.name}")
        if args.key:
            _print_key(changes.create_key(db, "cli", user_id=user.id)[1])


def cmd_key(settings: Settings, args: argparse.Namespace) -> None:
    with _session(settings) as db:
        _print_key(changes.create_key(db, args.key_name, user_id=args.user)[1])


def cmd_venue(settings: Settings, args: argparse.Namespace) -> None:
    body = VenueIn(id=args.id, name=args.name, latitude=args.lat, longitude=args.lon,
                   region=args.region, timezone=args.timezone, owner_id=args.owner)  # fmt: skip
    with _session(settings) as db:
        org = _organisation(db, args.org)
        changes.create_venue(db, org.id, body)
        print(f"venue {body.id} of {org.name}")


def cmd_beer(settings: Settings, args: argparse.Namespace) -> None:
    body = BeerIn(name=args.name, style=args.style, serving_min_c=args.serving_min_c,
                  serving_max_c=args.serving_max_c, foam_c=args.foam_c,
                  price_per_l=args.price_per_l)  # fmt: skip
    with _session(settings) as db:
        org = _organisation(db, args.org)
        beer = changes.create_beer(db, org.id, body)
        print(f"beer {beer.id}: {beer.name} of {org.name}")


def cmd_tap(settings: Settings, args: argparse.Namespace) -> None:
    body = TapIn(id=args.id, keg_l=args.keg_l, beer_id=args.beer, warm_max_c=args.warm_max_c)
    with _session(settings) as db:
        venue = _venue(db, args.venue)
        changes.create_tap(db, venue, body)
        print(f"tap {body.id} of {venue.id}")


def cmd_keg(settings: Settings, args: argparse.Namespace) -> None:
    body = KegChangeIn(keg_l=args.keg_l, beer_id=args.beer, at_ms=args.at_ms)
    with _session(settings) as db:
        venue = _venue(db, args.venue)
        change = changes.change_keg(db, venue, _tap(db, venue.id, args.tap), body)
        print(f"keg of {change.keg_l:g} L on {args.tap} of {venue.id}, at {change.at_ms}")


def cmd_cleaning(settings: Settings, args: argparse.Namespace) -> None:
    body = CleaningIn(at_ms=args.at_ms)
    with _session(settings) as db:
        cleaning = changes.record_cleaning(db, _tap(db, args.venue, args.tap), body)
        print(f"line of {args.tap} of {args.venue} cleaned, at {cleaning.at_ms}")


def cmd_device(settings: Settings, args: argparse.Namespace) -> None:
    body = DeviceIn(id=args.id)
    with _session(settings) as db:
        new = changes.provision_device(
            db, _venue(db, args.venue), body.id, broker_auth_dir=settings.broker_auth_dir
        )
    login = mqtt_login(settings.mqtt, new.device, new.mqtt_password)
    print(f"device {new.device.id} of {new.device.venue_id}; shown once, keep it secret:\n")
    print(agent_config(login, new.device, settings.mqtt.tls))
    _print_key(new.api_key)


def cmd_revoke(settings: Settings, args: argparse.Namespace) -> None:
    with _session(settings) as db:
        device = db.get(Device, (args.venue, args.id))
        if device is None:
            raise access.NotFound(f"no device {args.id!r} in venue {args.venue!r}")
        changes.revoke_device(db, device, broker_auth_dir=settings.broker_auth_dir)
    print(f"device {args.id} of {args.venue} revoked")


def cmd_service_login(settings: Settings, args: argparse.Namespace) -> None:
    with _session(settings) as db:
        username, password = changes.service_login(
            db, args.service, rotate=args.rotate, broker_auth_dir=settings.broker_auth_dir
        )
    print(f"# broker login of the {args.service} service; keep it secret")
    print(f"TAPSENSE_MQTT__USERNAME={username}\nTAPSENSE_MQTT__PASSWORD={password}")
    if args.rotate:
        print(f"# rotated: the old password stops working; restart {args.service} to use this")


def cmd_sync_broker(settings: Settings, _args: argparse.Namespace) -> None:
    if settings.broker_auth_dir is None:
        raise access.Invalid(
            "no managed broker: set registry.broker_auth_dir, or run `tapsense up` with this home"
        )
    engine = open_registry(settings.registry_url)
    try:
        sync_broker(engine, settings.broker_auth_dir)
    finally:
        engine.dispose()
    print(f"broker users and ACL written to {settings.broker_auth_dir}")


@contextmanager
def _session(settings: Settings) -> Iterator[Session]:
    engine = open_registry(settings.registry_url)
    try:
        with transaction(engine) as db:
            yield db
    finally:
        engine.dispose()


Handler = Callable[[Settings, argparse.Namespace], None]
Command = Callable[[str, Handler, str], argparse.ArgumentParser]


def command_group(sub: argparse._SubParsersAction, name: str, help_text: str,  # type: ignore[type-arg]
                  description: str | None, epilog: str,
                  refusals: tuple[type[Exception], ...] = ()) -> Command:  # fmt: skip
    """`tapsense NAME WHAT ...`: a group of subcommands whose refusals (the registry's, invalid
    input, and `refusals`) print their reason and exit with 2. Returns the way to add one."""
    parser = sub.add_parser(name, help=help_text, description=description, epilog=epilog,
                            formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    commands = parser.add_subparsers(dest=f"{name}_command", required=True, metavar="WHAT")

    refused: tuple[type[Exception], ...] = (AccessError, RegistryError, *refusals)

    def run(settings: Settings, args: argparse.Namespace) -> int:
        try:
            args.handler(settings, args)
        except refused as exc:
            print(f"tapsense {name}: {exc}", file=sys.stderr)
            return 2
        except ValidationError as exc:
            reasons = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                for e in exc.errors())  # fmt: skip
            print(f"tapsense {name}: {reasons}", file=sys.stderr)
            return 2
        return 0

    parser.set_defaults(run=run)

    def command(what: str, handler: Handler, text: str) -> argparse.ArgumentParser:
        p = commands.add_parser(what, help=text, description=text)
        p.set_defaults(handler=handler)
        return p

    return command


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    command = command_group(sub, "registry",
                            "create organisations, users, keys, venues, taps and devices",
                            __doc__, EPILOG)  # fmt: skip

    command("migrate", cmd_migrate, "create the registry or upgrade it to this version's schema")
    org = command("org", cmd_org, "create an organisation (a brewer or distributor)")
    org.add_argument("org_name", metavar="NAME")
    org.add_argument("--operator", metavar="EMAIL", help="also create its first operator + key")
    org.add_argument("--name", help="the operator's name (default: the e-mail)")
    user = command("user", cmd_user, "create an operator or venue owner")
    user.add_argument("--org", required=True, help="organisation name or id")
    user.add_argument("--email", required=True)
    user.add_argument("--name")
    user.add_argument("--role", choices=["operator", "owner"], default="owner")
    user.add_argument("--key", action="store_true", help="also create an API key for them")
    user.add_argument("--language", choices=["en", "nl"], default="en",
                      help="what they read: alerts, e-mail, reports")  # fmt: skip
    key = command("key", cmd_key, "create an API key for a user (printed once)")
    key.add_argument("--user", type=int, required=True, help="user id")
    key.add_argument("--name", dest="key_name", default="cli")
    venue = command("venue", cmd_venue, "register a venue")
    venue.add_argument("--org", required=True, help="organisation name or id")
    venue.add_argument("--id", required=True, help="its MQTT topic segment, [A-Za-z0-9_-]")
    venue.add_argument("--name", required=True)
    venue.add_argument("--lat", type=float, required=True)
    venue.add_argument("--lon", type=float, required=True)
    venue.add_argument("--region", required=True)
    venue.add_argument("--timezone", default="Europe/Amsterdam")
    venue.add_argument("--owner", type=int, help="user id of its owner")
    tap = command("tap", cmd_tap, "register a tap of a venue")
    tap.add_argument("--venue", required=True)
    tap.add_argument("--id", required=True)
    tap.add_argument("--keg-l", type=float, default=50.0)
    tap.add_argument("--beer", type=int, help="beer id")
    tap.add_argument("--warm-max-c", type=float, help="warm limit (default: the beer's)")
    beer = command("beer", cmd_beer, "register a beer and its serving temperature range")
    beer.add_argument("--org", required=True, help="organisation name or id")
    beer.add_argument("--name", required=True)
    beer.add_argument("--style", default="lager")
    beer.add_argument("--serving-min-c", type=float, default=2.0)
    beer.add_argument(
        "--serving-max-c",
        type=float,
        default=7.0,
        help="above this the beer is served warm (its taps' warm limit)",
    )
    beer.add_argument("--foam-c", type=float, help="pours above this foam (default: 9)")
    beer.add_argument(
        "--price-per-l", type=float, help="euros a litre sells for (reports show money with it)"
    )
    keg = command("keg", cmd_keg, "record a keg change: a full keg went on a tap")
    keg.add_argument("--venue", required=True)
    keg.add_argument("--tap", required=True)
    keg.add_argument("--keg-l", type=float, required=True, help="the new keg's size in litres")
    keg.add_argument("--beer", type=int, help="beer id (default: the beer the tap pours now)")
    keg.add_argument("--at-ms", type=int, help="when, in ms since the epoch (default: now)")
    cleaning = command("cleaning", cmd_cleaning, "record that a tap's line was cleaned")
    cleaning.add_argument("--venue", required=True)
    cleaning.add_argument("--tap", required=True)
    cleaning.add_argument("--at-ms", type=int, help="when, in ms since the epoch (default: now)")
    device = command("device", cmd_device, "provision an edge device: prints its login once")
    device.add_argument("--venue", required=True)
    device.add_argument("--id", required=True)
    revoke = command("revoke", cmd_revoke, "revoke a device: the broker and ingest refuse it")
    revoke.add_argument("--venue", required=True)
    revoke.add_argument("--id", required=True)
    login = command(
        "service-login",
        cmd_service_login,
        "show a service's broker login (made on first use) as TAPSENSE_* lines, "
        "ready for an environment file; --rotate makes a new password",
    )
    login.add_argument("service", choices=sorted(SERVICE_ACL))
    login.add_argument("--rotate", action="store_true", help="a new password; the old one ends")
    command("sync-broker", cmd_sync_broker, "rewrite the broker's users and ACL and reload it")
