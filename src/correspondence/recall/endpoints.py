"""Routes of the recall slice, under /ext/api/v1/ (routes the real service does not have, so they
cannot clash with its own): auth dependency → one use case → response. Every route is the
service owner's, with the scopes Initialize asks for, and only for its own resources and
correspondences (403 otherwise)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import Response

from correspondence.auth.dependencies import Sender, ServicesDep
from correspondence.correspondence import errors as correspondence_errors
from correspondence.kit.errors import FieldError, ValidationProblem
from correspondence.kit.http import json_response
from correspondence.kit.wire import NUL_MESSAGE
from correspondence.recall.schemas import RecallResultExt, ResourceStateExt
from correspondence.recall.use_cases.pause import get_resource_state, set_paused
from correspondence.recall.use_cases.recall import (
    ResourceFilter,
    recall_batch,
    recall_correspondence,
    recall_resource,
)

PREFIX = "/ext/api/v1"
router = APIRouter(prefix=PREFIX, tags=["Extensions"])


def _time(name: str, value: str | None) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValidationProblem([FieldError(name, f"The value '{value}' is not valid.")]) from None


def _filter(from_: str | None, to: str | None, senders_reference: str | None) -> ResourceFilter:
    if senders_reference is not None and "\x00" in senders_reference:
        raise ValidationProblem([FieldError("sendersReference", NUL_MESSAGE)])
    where = ResourceFilter(_time("from", from_), _time("to", to), senders_reference or None)
    if where.from_time and where.to_time and where.from_time > where.to_time:
        raise correspondence_errors.FROM_AFTER_TO()
    return where


@router.post(
    "/correspondences/{correspondenceId}/recall",
    response_model=None,
    responses={200: {"model": RecallResultExt}},
)
async def recall_one(correspondenceId: uuid.UUID, caller: Sender, svc: ServicesDep) -> Response:
    """Recall one correspondence: purged if not yet published, its notifications and reminders
    not yet sent cancelled. Recalling again is harmless."""
    outcome = await recall_correspondence(pool=svc.pool, caller=caller, correspondence_id=correspondenceId)
    return json_response(outcome.wire())


@router.post(
    "/batches/{batchId}/recall",
    response_model=None,
    responses={200: {"model": RecallResultExt}},
)
async def recall_whole_batch(batchId: uuid.UUID, caller: Sender, svc: ServicesDep) -> Response:
    """Recall a batch: an open one is cancelled; of a committed one, recipients not created yet
    will not be, and its correspondences are recalled as one correspondence is. Harmless twice."""
    outcome = await recall_batch(pool=svc.pool, caller=caller, batch_id=batchId)
    return json_response(outcome.wire())


@router.post(
    "/resources/{resourceId}/recall",
    response_model=None,
    responses={200: {"model": RecallResultExt}},
)
async def recall_all(
    resourceId: str,
    caller: Sender,
    svc: ServicesDep,
    from_: Annotated[str | None, Query(alias="from", description="requestedPublishTime after this")] = None,
    to: Annotated[str | None, Query(description="requestedPublishTime before this")] = None,
    sendersReference: Annotated[str | None, Query(description="Only this sendersReference")] = None,
) -> Response:
    """Recall every correspondence of a resource the caller owns (optionally only those with
    requestedPublishTime in (from, to), or one sendersReference), in one transaction."""
    outcome = await recall_resource(
        pool=svc.pool,
        resources=svc.resources,
        caller=caller,
        resource_id=resourceId,
        where=_filter(from_, to, sendersReference),
    )
    return json_response(outcome.wire())


@router.get(
    "/resources/{resourceId}",
    response_model=None,
    responses={200: {"model": ResourceStateExt}},
)
async def resource_state(resourceId: str, caller: Sender, svc: ServicesDep) -> Response:
    """Whether the resource is paused, and how many correspondences wait to be published."""
    state = await get_resource_state(
        pool=svc.pool, resources=svc.resources, caller=caller, resource_id=resourceId
    )
    return json_response(state)


@router.post(
    "/resources/{resourceId}/pause",
    response_model=None,
    responses={200: {"model": ResourceStateExt}},
)
async def pause(resourceId: str, caller: Sender, svc: ServicesDep) -> Response:
    """Pause a resource: nothing of it is published or notified until it is resumed (Initialize
    still accepts; the correspondences wait). Pausing again changes nothing."""
    state = await set_paused(
        pool=svc.pool, resources=svc.resources, caller=caller, resource_id=resourceId, paused=True
    )
    return json_response(state)


@router.post(
    "/resources/{resourceId}/resume",
    response_model=None,
    responses={200: {"model": ResourceStateExt}},
)
async def resume(resourceId: str, caller: Sender, svc: ServicesDep) -> Response:
    """Resume a paused resource: everything due proceeds now, once."""
    state = await set_paused(
        pool=svc.pool, resources=svc.resources, caller=caller, resource_id=resourceId, paused=False
    )
    svc.wake_worker()
    return json_response(state)
