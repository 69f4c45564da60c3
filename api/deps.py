"""What routes depend on: the database session, the caller, and the objects the caller may see.

The lookups (`VisibleVenue`, `VisibleTap`, ...) are dependencies so that they run before the
request body is validated: a caller asking about another tenant's venue gets a 404 whatever
they send, and learns nothing about what exists.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any, TypeVar

from fastapi import Depends, HTTPException, Path, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from api.schemas import Page, RowId
from api.settings import ApiSetup
from registry import access
from registry.access import NotFound, Principal, Role
from registry.models import ApiKey, Beer, Device, Tap, User, Venue
from timeseries.influx import InfluxQL

M = TypeVar("M", bound=BaseModel)

_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="api_key",
    description="An API key: `Authorization: Bearer tsk_...` (see `tapsense registry key`).",
)


def _session(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as db:
        yield db


def _setup(request: Request) -> ApiSetup:
    return request.app.state.setup  # type: ignore[no-any-return]


def _influx(request: Request) -> InfluxQL:
    return request.app.state.influx  # type: ignore[no-any-return]


Db = Annotated[Session, Depends(_session)]
SetupDep = Annotated[ApiSetup, Depends(_setup)]
InfluxDep = Annotated[InfluxQL, Depends(_influx)]


def _caller(
    db: Db, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    who = access.authenticate(db, credentials.credentials) if credentials else None
    if who is None:
        raise HTTPException(
            401, "a valid API key is needed", headers={"WWW-Authenticate": "Bearer"}
        )
    return who


Caller = Annotated[Principal, Depends(_caller)]


def _person(who: Caller) -> Principal:
    if who.role is Role.DEVICE:
        raise access.Forbidden("a device key may only read its own configuration (GET /device)")
    return who


# Operators and owners; devices are refused.
Person = Annotated[Principal, Depends(_person)]


def _operator(who: Person) -> Principal:
    access.require(who, Role.OPERATOR)
    return who


# Operators only: checked before the body is read, like every other refusal.
Operator = Annotated[Principal, Depends(_operator)]

VenuePath = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="venue id")]
TapPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="tap id")]
DevicePath = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="device id")]
KeyPath = Annotated[str, Path(pattern=r"^[0-9a-f]{12}$", description="key id")]


def _venue(db: Db, who: Person, venue: VenuePath) -> Venue:
    return access.venue_for(db, who, venue)


VisibleVenue = Annotated[Venue, Depends(_venue)]


def _tap(db: Db, venue: VisibleVenue, tap: TapPath) -> Tap:
    found = db.get(Tap, (venue.id, tap))
    if found is None:
        raise NotFound(f"tap {tap!r} of venue {venue.id!r} not found")
    return found


VisibleTap = Annotated[Tap, Depends(_tap)]


def _device(db: Db, venue: VisibleVenue, device: DevicePath) -> Device:
    found = db.get(Device, (venue.id, device))
    if found is None:
        raise NotFound(f"device {device!r} of venue {venue.id!r} not found")
    return found


VisibleDevice = Annotated[Device, Depends(_device)]


def _beer(db: Db, who: Person, beer_id: Annotated[RowId, Path()]) -> Beer:
    beer = db.get(Beer, beer_id)
    if beer is None or beer.organisation_id != who.organisation_id:
        raise NotFound(f"beer {beer_id} not found")
    return beer


VisibleBeer = Annotated[Beer, Depends(_beer)]


def _user(db: Db, who: Person, user_id: Annotated[RowId, Path()]) -> User:
    return access.user_for(db, who, user_id)


VisibleUser = Annotated[User, Depends(_user)]


def _key(db: Db, who: Person, key_id: KeyPath) -> ApiKey:
    key = db.get(ApiKey, key_id)
    visible = False
    if key is not None and key.user_id is not None:
        owner = select(User.id).where(User.id == key.user_id, access.users_visible(who))
        visible = db.scalar(owner) is not None
    elif key is not None and key.venue_id is not None:
        venue = select(Venue.id).where(Venue.id == key.venue_id, access.venues_visible(who))
        visible = db.scalar(venue) is not None
    if key is None or not visible:
        raise NotFound(f"key {key_id} not found")
    return key


VisibleKey = Annotated[ApiKey, Depends(_key)]


class Paging:
    def __init__(
        self,
        limit: Annotated[int, Query(ge=1, le=500, description="items per page")] = 100,
        offset: Annotated[int, Query(ge=0, le=2**31, description="items to skip")] = 0,
    ) -> None:
        self.limit = limit
        self.offset = offset


PagingDep = Annotated[Paging, Depends()]


def page(db: Session, statement: Select[Any], paging: Paging, out: type[M]) -> Page[M]:
    """One page of the rows `statement` selects, as `out`, and how many it selects in all."""
    total = db.scalar(select(func.count()).select_from(statement.subquery())) or 0
    rows = db.scalars(statement.limit(paging.limit).offset(paging.offset))
    items = [out.model_validate(row) for row in rows]
    return Page[out](items=items, total=total, limit=paging.limit, offset=paging.offset)  # type: ignore[valid-type]
