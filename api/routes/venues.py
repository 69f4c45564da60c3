"""Venues: the registry's rows and their live tap state."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import select

from api.deps import Db, InfluxDep, Operator, PagingDep, Person, SetupDep, VisibleVenue, page
from api.live import VenueState, venue_state
from api.problems import PROBLEM_RESPONSES
from api.schemas import Page, RowId, Text, VenueIn, VenueOut, VenuePatch
from registry import access, changes
from registry.models import Venue
from timeseries.influx import InfluxError

router = APIRouter(prefix="/venues", tags=["venues"], responses=PROBLEM_RESPONSES)


@router.get("", response_model=Page[VenueOut])
def list_venues(
    db: Db,
    who: Person,
    paging: PagingDep,
    region: Annotated[Text | None, Query()] = None,
    owner_id: Annotated[RowId | None, Query()] = None,
) -> Page[VenueOut]:
    """The venues the caller may see, filtered by region or owner."""
    statement = select(Venue).where(access.venues_visible(who))
    if region is not None:
        statement = statement.where(Venue.region == region)
    if owner_id is not None:
        statement = statement.where(Venue.owner_id == owner_id)
    return page(db, statement.order_by(Venue.id), paging, VenueOut)


@router.post("", response_model=VenueOut, status_code=201)
def create_venue(db: Db, who: Operator, body: VenueIn) -> VenueOut:
    """Operators only. The id is the venue's MQTT topic segment and cannot change."""
    venue = changes.create_venue(db, who.organisation_id, body)
    db.commit()
    return VenueOut.model_validate(venue)


@router.get("/{venue}", response_model=VenueOut)
def get_venue(venue: VisibleVenue) -> VenueOut:
    return VenueOut.model_validate(venue)


@router.patch("/{venue}", response_model=VenueOut)
def update_venue(db: Db, who: Person, venue: VisibleVenue, body: VenuePatch) -> VenueOut:
    """Operators, and the venue's owner (who cannot hand it to someone else)."""
    changes.update_venue(db, who, venue, body)
    db.commit()
    return VenueOut.model_validate(venue)


@router.delete("/{venue}", status_code=204)
def delete_venue(db: Db, who: Operator, setup: SetupDep, venue: VisibleVenue) -> Response:
    """Operators only: the venue, its taps and devices go; its devices are refused from now."""
    changes.delete_venue(db, venue, setup.broker_auth_dir)
    db.commit()
    return Response(status_code=204)


@router.get("/{venue}/live", response_model=VenueState)
async def live(venue: VisibleVenue, influx: InfluxDep) -> VenueState:
    """Latest temperature, latest pour and warm-beer level of each tap that has reported."""
    try:
        return await run_in_threadpool(venue_state, influx, venue.id)
    except InfluxError as exc:
        raise access.Unavailable(f"InfluxDB: {exc}") from exc
