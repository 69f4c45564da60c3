"""The organisation's beers: serving temperature ranges that set their taps' thresholds."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlalchemy import select

from api.deps import Db, Operator, PagingDep, Person, VisibleBeer, page
from api.problems import PROBLEM_RESPONSES
from api.schemas import BeerIn, BeerOut, BeerPatch, Page, Text
from registry import changes
from registry.models import Beer

router = APIRouter(prefix="/beers", tags=["beers"], responses=PROBLEM_RESPONSES)


@router.get("", response_model=Page[BeerOut])
def list_beers(
    db: Db, who: Person, paging: PagingDep, style: Annotated[Text | None, Query()] = None
) -> Page[BeerOut]:
    statement = select(Beer).where(Beer.organisation_id == who.organisation_id)
    if style is not None:
        statement = statement.where(Beer.style == style)
    return page(db, statement.order_by(Beer.id), paging, BeerOut)


@router.post("", response_model=BeerOut, status_code=201)
def create_beer(db: Db, who: Operator, body: BeerIn) -> BeerOut:
    """Operators only."""
    beer = changes.create_beer(db, who.organisation_id, body)
    db.commit()
    return BeerOut.model_validate(beer)


@router.get("/{beer_id}", response_model=BeerOut)
def get_beer(beer: VisibleBeer) -> BeerOut:
    return BeerOut.model_validate(beer)


@router.patch("/{beer_id}", response_model=BeerOut)
def update_beer(db: Db, who: Operator, beer: VisibleBeer, body: BeerPatch) -> BeerOut:
    """Operators only; the taps pouring it get its new thresholds within seconds."""
    changes.update_beer(db, beer, body)
    db.commit()
    return BeerOut.model_validate(beer)


@router.delete("/{beer_id}", status_code=204)
def delete_beer(db: Db, who: Operator, beer: VisibleBeer) -> Response:
    """Operators only; a beer still on a tap cannot go."""
    changes.delete_beer(db, beer)
    db.commit()
    return Response(status_code=204)
