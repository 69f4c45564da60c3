"""`tapsense registry ...`: the operator's commands for the registry, without the API.

They act on the database directly (`registry.url`), as whoever runs them: this is how the
first organisation, operator and key come to exist. Input is validated by the same models as
the API's (`api.schemas`), so a venue made here is one the API would have accepted.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.provisioning import agent_config, mqtt_login
from api.schemas import DeviceIn, TapIn, UserIn, VenueIn
from registry import access
from registry.access import AccessError, Role
from registry.broker import SERVICE_ACL, sync_broker
from registry.db import RegistryError, migrate, open_registry, transaction
from registry.models import Device, Organisation, Venue
from stack.settings import Settings

EPILOG = """\
a first organisation, from nothing:
  tapsense registry migrate
  tapsense registry org "Brouwerij De Haan" --operator ops@dehaan.nl --name "Ops"
                                   prints the operator's API key, once
  tapsense registry venue --org "Brouwerij De Haan" --id cafe-dom --name "Café Dom" \\
      --lat 52.09 --lon 5.12 --region Utrecht
  tapsense registry tap --venue cafe-dom --id tap-01 --keg-l 50
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


def _print_key(token: str) -> None:
    print(f"API key (shown once, keep it): {token}")


def cmd_migrate(settings: Settings, _args: argparse.Namespace) -> None:
    migrate(settings.registry_url)
    print(f"registry at the current revision: {settings.registry_url}")


def cmd_org(settings: Settings, args: argparse.Namespace) -> None:
    with _session(settings) as db:
        org = access.create_organisation(db, args.org_name)
        print(f"organisation {org.id}: {org.name}")
        if args.operator:
            body = UserIn(email=args.operator, name=args.name or args.operator, role="operator")
            user = access.create_user(db, org.id, body.email, body.name, Role.OPERATOR)
            print(f"operator {user.id}: {user.email}")
            _print_key(access.create_key(db, "first key", user_id=user.id)[1])


def cmd_user(settings: Settings, args: argparse.Namespace) -> None:
    body = UserIn(email=args.email, name=args.name or args.email, role=args.role)
    with _session(settings) as db:
        org = _organisation(db, args.org)
        user = access.create_user(db, org.id, body.email, body.name, Role(body.role))
        print(f"{user.role} {user.id}: {user.email} of {org.name}")
        if args.key:
            _print_key(access.create_key(db, "cli", user_id=user.id)[1])


def cmd_key(settings: Settings, args: argparse.Namespace) -> None:
    with _session(settings) as db:
        _print_key(access.create_key(db, args.key_name, user_id=args.user)[1])


def cmd_venue(settings: Settings, args: argparse.Namespace) -> None:
    body = VenueIn(id=args.id, name=args.name, latitude=args.lat, longitude=args.lon,
                   region=args.region, timezone=args.timezone, owner_id=args.owner)  # fmt: skip
    with _session(settings) as db:
        org = _organisation(db, args.org)
        access.create_venue(db, org.id, body.model_dump())
        print(f"venue {body.id} of {org.name}")


def cmd_tap(settings: Settings, args: argparse.Namespace) -> None:
    body = TapIn(id=args.id, keg_l=args.keg_l, beer_id=args.beer, warm_max_c=args.warm_max_c)
    with _session(settings) as db:
        venue = _venue(db, args.venue)
        access.create_tap(db, venue, body.model_dump())
        print(f"tap {body.id} of {venue.id}")


def cmd_device(settings: Settings, args: argparse.Namespace) -> None:
    body = DeviceIn(id=args.id)
    with _session(settings) as db:
        new = access.provision_device(db, _venue(db, args.venue), body.id)
    _sync(settings)
    login = mqtt_login(settings, new.device, new.mqtt_password)
    print(f"device {new.device.id} of {new.device.venue_id}; shown once, keep it secret:\n")
    print(agent_config(login, new.device, settings.mqtt.tls))
    _print_key(new.api_key)


def cmd_revoke(settings: Settings, args: argparse.Namespace) -> None:
    with _session(settings) as db:
        device = db.get(Device, (args.venue, args.id))
        if device is None:
            raise access.NotFound(f"no device {args.id!r} in venue {args.venue!r}")
        access.revoke_device(db, device)
    _sync(settings)
    print(f"device {args.id} of {args.venue} revoked")


def cmd_service_login(settings: Settings, args: argparse.Namespace) -> None:
    with _session(settings) as db:
        username, password = access.service_login(db, args.service, rotate=args.rotate)
    if args.rotate:
        _sync(settings)
    print(f"# broker login of the {args.service} service; keep it secret")
    print(f"TAPSENSE_MQTT__USERNAME={username}\nTAPSENSE_MQTT__PASSWORD={password}")
    if args.rotate:
        print(f"# rotated: the old password stops working; restart {args.service} to use this")


def cmd_sync_broker(settings: Settings, _args: argparse.Namespace) -> None:
    if settings.broker_auth_dir is None:
        raise access.Invalid(
            "no managed broker: set registry.broker_auth_dir, or run `tapsense up` with this home"
        )
    _sync(settings)
    print(f"broker users and ACL written to {settings.broker_auth_dir}")


@contextmanager
def _session(settings: Settings) -> Iterator[Session]:
    engine = open_registry(settings.registry_url)
    try:
        with transaction(engine) as db:
            yield db
    finally:
        engine.dispose()


def _sync(settings: Settings) -> None:
    engine = open_registry(settings.registry_url)
    try:
        sync_broker(engine, settings.broker_auth_dir)
    finally:
        engine.dispose()


def run(settings: Settings, args: argparse.Namespace) -> int:
    command: Callable[[Settings, argparse.Namespace], None] = args.registry_run
    try:
        command(settings, args)
    except (AccessError, RegistryError) as exc:
        print(f"tapsense registry: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        print(f"tapsense registry: {reasons}", file=sys.stderr)
        return 2
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = sub.add_parser(
        "registry",
        help="create organisations, users, keys, venues, taps and devices",
        description=__doc__,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.set_defaults(run=run)
    commands = parser.add_subparsers(dest="registry_command", required=True, metavar="WHAT")

    def command(name: str, handler: Callable[..., None], text: str) -> argparse.ArgumentParser:
        p = commands.add_parser(name, help=text, description=text)
        p.set_defaults(registry_run=handler)
        return p

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
