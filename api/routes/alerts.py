"""Alerts: list and filter, one with its history, acknowledge, resolve, and a live stream; per
venue, the notification policy and webhook endpoints; the notifications given up on.

The alerts service writes alerts; people change them here. Every route is tenant-scoped
through the venue the alert, policy or endpoint belongs to.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.sse import EventSourceResponse, ServerSentEvent
from sqlalchemy import Select, select

from alerts import admin, outbox, store
from alerts.admin import CommentIn, PolicyIn, ResolveIn, WebhookIn
from alerts.lifecycle import ALERT_CHECKS
from api.deps import Db, PagingDep, Person, VisibleVenue, page
from api.problems import PROBLEM_RESPONSES
from api.schemas import AlertDetail, AlertOut, NewWebhook, NotificationOut, Page, RowId, WebhookOut
from registry import access
from registry.access import NotFound, Principal
from registry.alert_models import Alert, AlertTransition, Notification, WebhookEndpoint
from registry.models import Venue

router = APIRouter(tags=["alerts"], responses=PROBLEM_RESPONSES)

STREAM_POLL_S = 1.0
CheckName = Literal[ALERT_CHECKS]  # type: ignore[valid-type]


def _alert(db: Db, who: Person, alert_id: Annotated[RowId, Path()]) -> Alert:
    alert = db.get(Alert, alert_id)
    visible = alert is not None and db.scalar(
        select(Venue.id).where(Venue.id == alert.venue_id, access.venues_visible(who))
    )
    if alert is None or not visible:
        raise NotFound(f"alert {alert_id} not found")
    return alert


VisibleAlert = Annotated[Alert, Depends(_alert)]


def _webhook(db: Db, venue: VisibleVenue, webhook_id: Annotated[RowId, Path()]) -> WebhookEndpoint:
    hook = db.get(WebhookEndpoint, webhook_id)
    if hook is None or hook.venue_id != venue.id:
        raise NotFound(f"webhook {webhook_id} of venue {venue.id!r} not found")
    return hook


VisibleWebhook = Annotated[WebhookEndpoint, Depends(_webhook)]


def _visible(who: Principal) -> Select[Any]:
    return select(Venue.id).where(access.venues_visible(who))


@router.get("/alerts", response_model=Page[AlertOut])
def list_alerts(
    db: Db,
    who: Person,
    paging: PagingDep,
    venue: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = None,
    state: Literal["open", "acknowledged", "resolved", "unresolved"] | None = None,
    check: CheckName | None = None,
    severity: Literal["warning", "critical"] | None = None,
    since_ms: Annotated[int | None, Query(ge=0, le=2**62, description="opened at or after")] = None,
    until_ms: Annotated[int | None, Query(ge=0, le=2**62, description="opened before")] = None,
) -> Page[AlertOut]:
    """Newest first. `state=unresolved`: open and acknowledged."""
    q = select(Alert).where(Alert.venue_id.in_(_visible(who)))
    if venue is not None:
        q = q.where(Alert.venue_id == venue)
    if state == "unresolved":
        q = q.where(Alert.state != "resolved")
    elif state is not None:
        q = q.where(Alert.state == state)
    if check is not None:
        q = q.where(Alert.check == check)
    if severity is not None:
        q = q.where(Alert.severity == severity)
    if since_ms is not None:
        q = q.where(Alert.opened_ms >= since_ms)
    if until_ms is not None:
        q = q.where(Alert.opened_ms < until_ms)
    return page(db, q.order_by(Alert.opened_ms.desc(), Alert.id.desc()), paging, AlertOut)


@router.get(
    "/alerts/stream",
    response_class=EventSourceResponse,
    responses={200: {"description": "`alert` events: an alert as `GET /alerts/{id}` shows it, "
                     "each time it is opened or changes"}},
)  # fmt: skip
async def stream_alerts(request: Request, who: Person) -> AsyncIterator[ServerSentEvent]:
    """Server-Sent Events: every alert change from now on (reconnect with `Last-Event-ID` to
    get those missed meanwhile)."""
    sessions = request.app.state.sessions
    last = request.headers.get("last-event-id", "")

    def newest() -> int:
        with sessions() as db:
            return db.scalar(select(AlertTransition.id).order_by(AlertTransition.id.desc())) or 0

    def since(after: int) -> list[tuple[int, AlertDetail]]:
        with sessions() as db:
            rows = db.execute(
                select(AlertTransition.id, Alert)
                .join(Alert, Alert.id == AlertTransition.alert_id)
                .where(AlertTransition.id > after, Alert.venue_id.in_(_visible(who)))
                .order_by(AlertTransition.id)
                .limit(500)
            ).all()
            return [(tid, _detail(db, alert)) for tid, alert in rows]

    after = int(last) if last.isdigit() else await run_in_threadpool(newest)
    while not await request.is_disconnected():
        for tid, detail in await run_in_threadpool(since, after):
            after = tid
            yield ServerSentEvent(data=detail, event="alert", id=str(tid))
        await asyncio.sleep(STREAM_POLL_S)


def _detail(db: Db, alert: Alert) -> AlertDetail:
    history = db.scalars(
        select(AlertTransition).where(AlertTransition.alert_id == alert.id)
        .order_by(AlertTransition.id)
    ).all()  # fmt: skip
    return AlertDetail.model_validate({**AlertOut.model_validate(alert).model_dump(),
                                       "history": history})  # fmt: skip


@router.get("/alerts/{alert_id}", response_model=AlertDetail)
def get_alert(db: Db, alert: VisibleAlert) -> AlertDetail:
    return _detail(db, alert)


@router.post("/alerts/{alert_id}/acknowledge", response_model=AlertDetail)
def acknowledge_alert(db: Db, who: Person, alert: VisibleAlert, body: CommentIn) -> AlertDetail:
    """Someone is on it: reminders and escalation stop. Again: no change."""
    admin.acknowledge(db, alert, who.user_id, body.comment)
    db.commit()
    return _detail(db, alert)


@router.post("/alerts/{alert_id}/resolve", response_model=AlertDetail)
def resolve_alert(db: Db, who: Person, alert: VisibleAlert, body: ResolveIn) -> AlertDetail:
    """Resolved by a person, with a comment; those told of the alert are told it is over. If
    the check still finds the problem, a new alert opens when it is raised again."""
    admin.resolve(db, alert, who.user_id, body.comment)
    db.commit()
    return _detail(db, alert)


@router.get("/venues/{venue}/alert-policy", response_model=PolicyIn)
def get_policy(db: Db, venue: VisibleVenue) -> PolicyIn:
    """Who hears what: the venue's policy, or the defaults when none was set."""
    return PolicyIn.of(store.policy_of(db, venue.id))


@router.put("/venues/{venue}/alert-policy", response_model=PolicyIn)
def set_policy(db: Db, venue: VisibleVenue, body: PolicyIn) -> PolicyIn:
    policy = admin.set_policy(db, venue.id, body)
    db.commit()
    return PolicyIn.of(policy)


@router.get("/venues/{venue}/webhooks", response_model=list[WebhookOut])
def list_webhooks(db: Db, venue: VisibleVenue) -> list[WebhookOut]:
    hooks = db.scalars(
        select(WebhookEndpoint).where(WebhookEndpoint.venue_id == venue.id)
        .order_by(WebhookEndpoint.id)
    )  # fmt: skip
    return [WebhookOut.model_validate(h) for h in hooks]


@router.post("/venues/{venue}/webhooks", response_model=NewWebhook, status_code=201)
def create_webhook(db: Db, venue: VisibleVenue, body: WebhookIn) -> NewWebhook:
    """The `secret` (Standard Webhooks, `whsec_...`) is shown this once: verify each
    message's `webhook-signature` with it."""
    hook = admin.add_webhook(db, venue.id, body)
    db.commit()
    return NewWebhook.model_validate({**WebhookOut.model_validate(hook).model_dump(),
                                      "secret": hook.secret})  # fmt: skip


@router.delete("/venues/{venue}/webhooks/{webhook_id}", status_code=204)
def delete_webhook(db: Db, hook: VisibleWebhook) -> Response:
    db.delete(hook)
    db.commit()
    return Response(status_code=204)


@router.post("/venues/{venue}/webhooks/{webhook_id}/test", response_model=NotificationOut,
             status_code=202)  # fmt: skip
def test_webhook(db: Db, venue: VisibleVenue, hook: VisibleWebhook) -> NotificationOut:
    """A test message, sent by the alerts service as any other (see its state with
    `GET /notifications`)."""
    note = outbox.test_message(db, venue, hook, store.now_ms())
    db.commit()
    return NotificationOut.model_validate(note)


@router.get("/notifications", response_model=Page[NotificationOut])
def list_notifications(
    db: Db,
    who: Person,
    paging: PagingDep,
    state: Literal["pending", "sent", "dead"] | None = Query(
        None, description="`dead`: given up on (the dead-letter list)"
    ),
    venue: Annotated[str | None, Query(pattern=r"^[A-Za-z0-9_-]{1,64}$")] = None,
) -> Page[NotificationOut]:
    """Notifications, newest first: where each went, how many attempts, the last error."""
    q = select(Notification).where(Notification.venue_id.in_(_visible(who)))
    if state is not None:
        q = q.where(Notification.state == state)
    if venue is not None:
        q = q.where(Notification.venue_id == venue)
    return page(db, q.order_by(Notification.created_ms.desc()), paging, NotificationOut)
