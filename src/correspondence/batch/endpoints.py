"""Routes of the batch extension, under /ext/api/v1 (the real service has no such prefix, so no
route of ours can ever meet one of its): auth dependency → one use case → response."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from correspondence.auth.dependencies import Sender, ServicesDep
from correspondence.batch.schemas import (
    MAX_PAGE_NUMBER,
    BatchExt,
    BatchListExt,
    BatchPageExt,
    BatchRecipientsPageExt,
    InitializeBatchExt,
)
from correspondence.batch.use_cases.add_page import add_page
from correspondence.batch.use_cases.cancel import cancel_batch
from correspondence.batch.use_cases.commit import commit_batch
from correspondence.batch.use_cases.create import create_batch
from correspondence.batch.use_cases.view import get_batch, list_batches
from correspondence.kit.errors import FieldError, ValidationProblem
from correspondence.kit.http import json_response, read_json_body
from correspondence.kit.text import is_valid_resource_id
from correspondence.kit.wire import parse_json
from correspondence.notification.errors import INVALID_TEMPLATE_TEXT
from correspondence.notification.rules import InvalidTemplate

router = APIRouter(prefix="/ext/api/v1", tags=["Extensions"])

_REPLAYED = {"Idempotent-Replayed": "true"}


def _body(component: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{component}"}}},
        }
    }


@router.post(
    "/batches",
    response_model=None,
    status_code=201,
    responses={201: {"model": BatchExt}, 200: {"model": BatchExt, "description": "Replayed"}},
    openapi_extra=_body("InitializeBatchExt"),
)
async def create(request: Request, caller: Sender, svc: ServicesDep) -> Response:
    """Create a batch: one correspondence (as Initialize takes it, without recipients) for the
    recipients added in pages. Checked now as Initialize checks it; nothing is sent before commit.
    The same `idempotentKey` with the same body answers the first batch again (200)."""
    body = parse_json(InitializeBatchExt, await read_json_body(request, svc.settings.max_body_bytes))
    try:
        result = await create_batch(
            pool=svc.pool,
            resources=svc.resources,
            caller=caller,
            request=body,
            reminder_delay=timedelta(days=svc.settings.reminder_delay_days),
        )
    except InvalidTemplate:
        return json_response(INVALID_TEMPLATE_TEXT, status=400)
    if result.replayed:
        return json_response(result.body, headers=_REPLAYED)
    return json_response(result.body, status=201)


@router.put(
    "/batches/{batchId}/recipients/{page}",
    response_model=None,
    status_code=201,
    responses={201: {"model": BatchPageExt}, 200: {"model": BatchPageExt, "description": "Replayed"}},
    openapi_extra=_body("BatchRecipientsPageExt"),
)
async def put_page(
    request: Request,
    batchId: uuid.UUID,
    page: Annotated[int, Path(ge=1, le=MAX_PAGE_NUMBER)],
    caller: Sender,
    svc: ServicesDep,
) -> Response:
    """Add page `page` of recipients (at most 10,000) to an open batch. The same page with the same
    recipients again answers 200; with other recipients 409."""
    body = parse_json(BatchRecipientsPageExt, await read_json_body(request, svc.settings.max_body_bytes))
    result = await add_page(pool=svc.pool, caller=caller, batch_id=batchId, page=page, request=body)
    if result.replayed:
        return json_response(result.body, headers=_REPLAYED)
    return json_response(result.body, status=201)


@router.post("/batches/{batchId}/commit", response_model=None, responses={200: {"model": BatchExt}})
async def commit(batchId: uuid.UUID, caller: Sender, svc: ServicesDep) -> Response:
    """Commit an open batch: its correspondences are created and published by the worker."""
    body = await commit_batch(pool=svc.pool, caller=caller, batch_id=batchId)
    svc.wake_worker()
    return json_response(body)


@router.post("/batches/{batchId}/cancel", response_model=None, responses={200: {"model": BatchExt}})
async def cancel(batchId: uuid.UUID, caller: Sender, svc: ServicesDep) -> Response:
    """Cancel an open batch (a committed one is stopped by recall)."""
    return json_response(await cancel_batch(pool=svc.pool, caller=caller, batch_id=batchId))


@router.get("/batches/{batchId}", response_model=None, responses={200: {"model": BatchExt}})
async def show(batchId: uuid.UUID, caller: Sender, svc: ServicesDep) -> Response:
    """A batch with its progress counts (poll this)."""
    return json_response(await get_batch(pool=svc.pool, caller=caller, batch_id=batchId))


@router.get("/batches", response_model=None, responses={200: {"model": BatchListExt}})
async def index(
    caller: Sender,
    svc: ServicesDep,
    resourceId: Annotated[str | None, Query(max_length=255)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=2_000_000_000)] = 0,
) -> Response:
    """The caller's batches, newest first; of one resource it owns when `resourceId` is given."""
    if resourceId and ("\x00" in resourceId or not is_valid_resource_id(resourceId)):
        raise ValidationProblem([FieldError("resourceId", f"The value '{resourceId}' is not valid.")])
    return json_response(
        await list_batches(
            pool=svc.pool,
            resources=svc.resources,
            caller=caller,
            resource_id=resourceId or None,
            limit=limit,
            offset=offset,
        )
    )
