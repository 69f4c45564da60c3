"""The organisation's beers: serving temperature ranges that set their taps' thresholds."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from sqlalchemy import select

from api.deps import Db, Operator, PagingDep, Person, VisibleBeer, page
from api.problems import PROBLEM_RESPONSES
from api.schemas import BeerIn, BeerOut, BeerPatch, Page, Text, check_serving_range
from registry import access
from registry.models import Beer, Tap

router = APIRouter(prefix="/beers", tags=["beers"], responses=PROBLEM_RESPONSES)


@router.get("", response_model=Page[BeerOut])
def list_beers(
    db: Db, who: Person, paging: PagingDep, style: Annotated[Text | None, Query()] = None
) -> Page[BeerOut]:
    statement = select(Beer).where(Beer.organisation_id == who.organisation_id)
    if style is not None:
        statement = statement.where(Beer.style == style)
    return page(db, statement.order_by(Beer.id), paging, BeerOut)


def _unique_name(db: Db, organisation_id: int, name: str, beer_id: int | None = None) -> None:
    clash = db.scalar(select(Beer.id).where(Beer.organisation_id == organisation_id,
                                            Beer.name == name))  # fmt: skip
    if clash is not None and clash != beer_id:
        raise access.Conflict(f"a beer named {name!r} exists")


@router.post("", response_model=BeerOut, status_code=201)
def create_beer(db: Db, who: Operator, body: BeerIn) -> BeerOut:
    """Operators only."""
    check_serving_range(body.serving_min_c, body.serving_max_c)
    _unique_name(db, who.organisation_id, body.name)
    beer = Beer(organisation_id=who.organisation_id, created_ms=access.now_ms(),
                **body.model_dump())  # fmt: skip
    db.add(beer)
    db.commit()
    return BeerOut.model_validate(beer)


@router.get("/{beer_id}", response_model=BeerOut)
def get_beer(beer: VisibleBeer) -> BeerOut:
    return BeerOut.model_validate(beer)


@router.patch("/{beer_id}", response_model=BeerOut)
def update_beer(db: Db, who: Operator, beer: VisibleBeer, body: BeerPatch) -> BeerOut:
    """Operators only; the taps pouring it get its new thresholds within seconds."""
    changes = body.model_dump(exclude_unset=True)
    for field in ("name", "style", "serving_min_c", "serving_max_c"):
        if field in changes and changes[field] is None:
            raise access.Invalid(f"{field} cannot be null")
    if "name" in changes:
        _unique_name(db, who.organisation_id, changes["name"], beer.id)
    check_serving_range(changes.get("serving_min_c", beer.serving_min_c),
                        changes.get("serving_max_c", beer.serving_max_c))  # fmt: skip
    for field, value in changes.items():
        setattr(beer, field, value)
    db.commit()
    return BeerOut.model_validate(beer)


@router.delete("/{beer_id}", status_code=204)
def delete_beer(db: Db, who: Operator, beer: VisibleBeer) -> Response:
    """Operators only; a beer still on a tap cannot go."""
    if db.scalar(select(Tap.id).where(Tap.beer_id == beer.id).limit(1)) is not None:
        raise access.Conflict(f"beer {beer.id} is on a tap; change the tap first")
    db.delete(beer)
    db.commit()
    return Response(status_code=204)
