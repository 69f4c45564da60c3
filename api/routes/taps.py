"""A venue's taps, the kegs put on them and the cleanings of their lines."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Response
from sqlalchemy import Select, select

from api.deps import Db, PagingDep, Person, VisibleTap, VisibleVenue, page
from api.problems import PROBLEM_RESPONSES
from api.schemas import (
    CleaningIn,
    CleaningOut,
    KegChangeIn,
    KegChangeOut,
    KegChangePatch,
    Page,
    RowId,
    TapIn,
    TapOut,
    TapPatch,
)
from registry import changes
from registry.access import NotFound
from registry.models import KegChange, LineCleaning, Tap

router = APIRouter(prefix="/venues/{venue}/taps", tags=["taps"], responses=PROBLEM_RESPONSES)


def _newest_first(kind: type[KegChange] | type[LineCleaning], tap: Tap) -> Select[Any]:
    """A tap's keg changes or cleanings, newest first."""
    return (
        select(kind)
        .where(kind.venue_id == tap.venue_id, kind.tap_id == tap.id)
        .order_by(kind.at_ms.desc(), kind.id.desc())
    )


@router.get("", response_model=Page[TapOut])
def list_taps(db: Db, venue: VisibleVenue, paging: PagingDep) -> Page[TapOut]:
    return page(db, select(Tap).where(Tap.venue_id == venue.id).order_by(Tap.id), paging, TapOut)


@router.post("", response_model=TapOut, status_code=201)
def create_tap(db: Db, who: Person, venue: VisibleVenue, body: TapIn) -> TapOut:
    """The id is the `tap` its readings carry and cannot change."""
    tap = changes.create_tap(db, venue, body)
    db.commit()
    return TapOut.model_validate(tap)


@router.get("/{tap}", response_model=TapOut)
def get_tap(tap: VisibleTap) -> TapOut:
    return TapOut.model_validate(tap)


@router.patch("/{tap}", response_model=TapOut)
def update_tap(db: Db, venue: VisibleVenue, tap: VisibleTap, body: TapPatch) -> TapOut:
    changes.update_tap(db, venue, tap, body)
    db.commit()
    return TapOut.model_validate(tap)


@router.delete("/{tap}", status_code=204)
def delete_tap(db: Db, tap: VisibleTap) -> Response:
    changes.delete_tap(db, tap)
    db.commit()
    return Response(status_code=204)


@router.get("/{tap}/kegs", response_model=Page[KegChangeOut])
def list_keg_changes(db: Db, tap: VisibleTap, paging: PagingDep) -> Page[KegChangeOut]:
    return page(db, _newest_first(KegChange, tap), paging, KegChangeOut)


@router.post("/{tap}/kegs", response_model=KegChangeOut, status_code=201)
def change_keg(db: Db, venue: VisibleVenue, tap: VisibleTap, body: KegChangeIn) -> KegChangeOut:
    """A full keg went on: the keg check counts from zero, with this keg's size and beer."""
    change = changes.change_keg(db, venue, tap, body)
    db.commit()
    return KegChangeOut.model_validate(change)


def _keg_change(db: Db, tap: VisibleTap, change_id: Annotated[RowId, Path()]) -> KegChange:
    change = db.get(KegChange, change_id)
    if change is None or (change.venue_id, change.tap_id) != (tap.venue_id, tap.id):
        raise NotFound(f"keg change {change_id} of tap {tap.id!r} not found")
    return change


VisibleKegChange = Annotated[KegChange, Depends(_keg_change)]


@router.patch("/{tap}/kegs/{change_id}", response_model=KegChangeOut)
def correct_keg_change(
    db: Db, venue: VisibleVenue, tap: VisibleTap, change: VisibleKegChange, body: KegChangePatch
) -> KegChangeOut:
    """Confirm or correct a keg change; an inferred one becomes recorded."""
    changes.correct_keg_change(db, venue, tap, change, body)
    db.commit()
    return KegChangeOut.model_validate(change)


@router.delete("/{tap}/kegs/{change_id}", status_code=204)
def delete_keg_change(db: Db, change: VisibleKegChange) -> Response:
    """A keg change that did not happen (a wrong inference, a mistyped record)."""
    changes.delete_keg_change(db, change)
    db.commit()
    return Response(status_code=204)


@router.get("/{tap}/cleanings", response_model=Page[CleaningOut])
def list_cleanings(db: Db, tap: VisibleTap, paging: PagingDep) -> Page[CleaningOut]:
    return page(db, _newest_first(LineCleaning, tap), paging, CleaningOut)


@router.post("/{tap}/cleanings", response_model=CleaningOut, status_code=201)
def record_cleaning(db: Db, tap: VisibleTap, body: CleaningIn) -> CleaningOut:
    """The line was cleaned: an overdue-cleaning warning clears, the count starts again."""
    cleaning = changes.record_cleaning(db, tap, body)
    db.commit()
    return CleaningOut.model_validate(cleaning)
