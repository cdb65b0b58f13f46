"""Routes of the correspondence slice: auth dependency → one use case → response."""

from __future__ import annotations

import uuid
from datetime import timedelta

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import ValidationError

from correspondence.auth.dependencies import Sender, SenderOrRecipient, ServicesDep
from correspondence.correspondence.schemas import (
    CorrespondenceDetailsExt,
    CorrespondenceOverviewExt,
    InitializeCorrespondencesExt,
    InitializeCorrespondencesResponseExt,
)
from correspondence.correspondence.use_cases.initialize import initialize_correspondences
from correspondence.correspondence.use_cases.view import get_details, get_overview
from correspondence.kit.errors import PlainError
from correspondence.kit.wire import to_validation_problem
from correspondence.notification.errors import INVALID_TEMPLATE_TEXT
from correspondence.notification.rules import InvalidTemplate

router = APIRouter(prefix="/correspondence/api/v1", tags=["Correspondence"])

JSON = "application/json; charset=utf-8"


def _json(body: object, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=JSON, headers=headers)


def _require_json(request: Request) -> None:
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != "application/json" and not (
        content_type.startswith("application/") and content_type.endswith("+json")
    ):
        raise PlainError(415, "The request body must be application/json.")


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PlainError(413, f"The request body is larger than {limit} bytes.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PlainError(413, f"The request body is larger than {limit} bytes.")
        chunks.append(chunk)
    body = b"".join(chunks)
    if not body:
        raise PlainError(400, "A non-empty request body is required.")
    return body


@router.post(
    "/correspondence",
    response_model=None,
    responses={200: {"model": InitializeCorrespondencesResponseExt}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/InitializeCorrespondencesExt"}}
            },
        }
    },
)
async def initialize(request: Request, caller: Sender, svc: ServicesDep) -> Response:
    """Initialize one correspondence per recipient (up to 500)."""
    _require_json(request)
    raw = await _read_body(request, svc.settings.max_body_bytes)
    try:
        body = InitializeCorrespondencesExt.model_validate_json(raw)
    except ValidationError as exc:
        raise to_validation_problem(exc) from None
    try:
        result = await initialize_correspondences(
            pool=svc.pool,
            resources=svc.resources,
            caller=caller,
            request=body,
            reminder_delay=timedelta(days=svc.settings.reminder_delay_days),
        )
    except InvalidTemplate:
        return _json(INVALID_TEMPLATE_TEXT, status=400)
    if result.created:
        svc.wake_worker()
    headers = {"Idempotent-Replayed": "true"} if result.replayed else None
    return _json(result.body, headers=headers)


@router.get(
    "/correspondence/{correspondenceId}",
    response_model=None,
    responses={200: {"model": CorrespondenceOverviewExt}},
)
async def overview(correspondenceId: uuid.UUID, caller: SenderOrRecipient, svc: ServicesDep) -> Response:
    """Overview of one correspondence."""
    return _json(await get_overview(pool=svc.pool, caller=caller, correspondence_id=correspondenceId))


@router.get(
    "/correspondence/{correspondenceId}/details",
    response_model=None,
    responses={200: {"model": CorrespondenceDetailsExt}},
)
async def details(correspondenceId: uuid.UUID, caller: SenderOrRecipient, svc: ServicesDep) -> Response:
    """Details of one correspondence, with status history and notification orders."""
    return _json(await get_details(pool=svc.pool, caller=caller, correspondence_id=correspondenceId))
