"""Who is calling, users and their API keys."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy import select

from api.deps import Caller, Db, Operator, PagingDep, Person, VisibleKey, VisibleUser, page
from api.problems import PROBLEM_RESPONSES
from api.schemas import (
    KeyIn,
    KeyOut,
    Me,
    NewKey,
    OrganisationOut,
    Page,
    UserIn,
    UserOut,
    UserPatch,
)  # fmt: skip
from registry import access, changes
from registry.models import ApiKey, Organisation, User

router = APIRouter(responses=PROBLEM_RESPONSES)


@router.get("/me", response_model=Me, tags=["people"])
def me(who: Caller) -> Me:
    """The role and scope of the key in use."""
    return Me(
        role=who.role.value, organisation_id=who.organisation_id, user_id=who.user_id,
        venue_id=who.venue_id, device_id=who.device_id,
    )  # fmt: skip


@router.get("/organisation", response_model=OrganisationOut, tags=["people"])
def organisation(db: Db, who: Person) -> OrganisationOut:
    """The caller's organisation (organisations are made with `tapsense registry org`)."""
    return OrganisationOut.model_validate(db.get(Organisation, who.organisation_id))


@router.get("/users", response_model=Page[UserOut], tags=["people"])
def list_users(db: Db, who: Person, paging: PagingDep) -> Page[UserOut]:
    """Operators see their organisation's users; owners see themselves."""
    return page(
        db, select(User).where(access.users_visible(who)).order_by(User.id), paging, UserOut
    )


@router.post("/users", response_model=UserOut, status_code=201, tags=["people"])
def create_user(db: Db, who: Operator, body: UserIn) -> UserOut:
    """A new operator or venue owner in the caller's organisation (operators only)."""
    user = changes.create_user(db, who.organisation_id, body)
    db.commit()
    return UserOut.model_validate(user)


@router.get("/users/{user_id}", response_model=UserOut, tags=["people"])
def get_user(user: VisibleUser) -> UserOut:
    return UserOut.model_validate(user)


@router.patch("/users/{user_id}", response_model=UserOut, tags=["people"])
def update_user(db: Db, user: VisibleUser, body: UserPatch) -> UserOut:
    """A user's name, and the language they read alerts, e-mails and reports in (`en`, `nl`).
    Owners may change their own; operators anyone's in the organisation."""
    changes.update_user(db, user, body)
    db.commit()
    return UserOut.model_validate(user)


@router.delete("/users/{user_id}", status_code=204, tags=["people"])
def disable_user(db: Db, who: Operator, user: VisibleUser) -> Response:
    """Disables the user and revokes their keys (operators only)."""
    changes.disable_user(db, user)
    db.commit()
    return Response(status_code=204)


@router.get("/users/{user_id}/keys", response_model=Page[KeyOut], tags=["people"])
def list_keys(db: Db, user: VisibleUser, paging: PagingDep) -> Page[KeyOut]:
    """A user's API keys, without their secrets."""
    statement = select(ApiKey).where(ApiKey.user_id == user.id).order_by(ApiKey.created_ms)
    return page(db, statement, paging, KeyOut)


@router.post("/users/{user_id}/keys", response_model=NewKey, status_code=201, tags=["people"])
def create_key(db: Db, user: VisibleUser, body: KeyIn) -> NewKey:
    """A new API key for the user; the answer holds the key itself, shown this once."""
    key, token = changes.create_key(db, body.name, user_id=user.id)
    db.commit()
    return NewKey(**KeyOut.model_validate(key).model_dump(), token=token)


@router.delete("/keys/{key_id}", status_code=204, tags=["people"])
def revoke_key(db: Db, key: VisibleKey) -> Response:
    changes.revoke_key(db, key)
    db.commit()
    return Response(status_code=204)
