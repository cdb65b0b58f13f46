"""Routes of the attachment slice: auth dependency → one use case → response.

Bodies stream: the octet-stream upload and the multipart Initialize read `request.stream()`
chunk by chunk, and downloads answer with the blob store's stream (with HTTP ranges)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.requests import ClientDisconnect

from correspondence.adapters.blobs import BlobStore
from correspondence.attachment.files import content_disposition, download_type, zip_content_disposition
from correspondence.attachment.form_schema import FORM_SCHEMA
from correspondence.attachment.ranges import RangeNotSatisfiable
from correspondence.attachment.schemas import (
    AttachmentDetailsExt,
    AttachmentOverviewExt,
    InitializeAttachmentExt,
)
from correspondence.attachment.streams import UploadInterrupted
from correspondence.attachment.use_cases.download import Download, recipient_download, sender_download
from correspondence.attachment.use_cases.download_all import recipient_download_all
from correspondence.attachment.use_cases.initialize import initialize_attachment
from correspondence.attachment.use_cases.initialize_with_upload import initialize_with_upload
from correspondence.attachment.use_cases.purge import purge_attachment
from correspondence.attachment.use_cases.upload import upload_attachment
from correspondence.attachment.use_cases.view import get_details, get_overview
from correspondence.auth.dependencies import Recipient, Sender, ServicesDep
from correspondence.correspondence.schemas import InitializeCorrespondencesResponseExt
from correspondence.kit.errors import PlainError
from correspondence.kit.http import json_response, media_type, read_json_body
from correspondence.kit.multipart import boundary_of
from correspondence.kit.numbers import INT64, parse_int
from correspondence.kit.wire import parse_json
from correspondence.notification.errors import INVALID_TEMPLATE_TEXT
from correspondence.notification.rules import InvalidTemplate

router = APIRouter(prefix="/correspondence/api/v1")

_OVERVIEW: dict[int | str, dict[str, Any]] = {200: {"model": AttachmentOverviewExt}}
_FILE: dict[int | str, dict[str, Any]] = {
    200: {"description": "The file", "content": {"application/octet-stream": {}}},
    206: {"description": "Part of the file"},
}


async def _body(request: Request) -> AsyncIterator[bytes]:
    """The request body as it arrives; a client that goes away is an interrupted upload."""
    try:
        async for chunk in request.stream():
            yield chunk
    except ClientDisconnect:
        raise UploadInterrupted() from None


def _declared_length(request: Request) -> int | None:
    value = request.headers.get("content-length")
    return None if value is None else parse_int(value.strip(), 0, INT64[1], signed=False)


def _stream(blobs: BlobStore, download: Download, media_type: str, headers: dict[str, str]) -> Response:
    headers = {**headers, "Accept-Ranges": "bytes"}
    if download.etag:
        headers["ETag"] = download.etag
    chosen = download.range
    if chosen is None:
        headers["Content-Length"] = str(download.size)
        return StreamingResponse(blobs.get(download.key), media_type=media_type, headers=headers)
    headers["Content-Length"] = str(chosen.end - chosen.start)
    headers["Content-Range"] = chosen.content_range(download.size)
    return StreamingResponse(
        blobs.get(download.key, chosen.start, chosen.end),
        status_code=206,
        media_type=media_type,
        headers=headers,
    )


def _not_satisfiable(exc: RangeNotSatisfiable) -> Response:
    return Response(status_code=416, headers={"Content-Range": f"bytes */{exc.size}"})


# --- shared attachments -----------------------------------------------------------------------------


@router.post(
    "/attachment",
    tags=["Attachment"],
    response_model=None,
    responses={200: {"content": {"application/json": {"schema": {"type": "string", "format": "uuid"}}}}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/InitializeAttachmentExt"}}
            },
        }
    },
)
async def initialize(request: Request, caller: Sender, svc: ServicesDep) -> Response:
    """Initialize a shared attachment; upload its bytes next."""
    raw = await read_json_body(request, svc.settings.max_body_bytes)
    body = parse_json(InitializeAttachmentExt, raw)
    attachment_id = await initialize_attachment(
        pool=svc.pool,
        resources=svc.resources,
        caller=caller,
        request=body,
        min_expiration_days=svc.settings.min_attachment_expiration_days,
    )
    return json_response(str(attachment_id))


@router.post(
    "/attachment/{attachmentId}/upload",
    tags=["Attachment"],
    response_model=None,
    responses=_OVERVIEW,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def upload(attachmentId: uuid.UUID, request: Request, caller: Sender, svc: ServicesDep) -> Response:
    """Upload the attachment's bytes as the raw body (streamed; up to 50 GB by default)."""
    if media_type(request) != "application/octet-stream":
        raise PlainError(415, "The request body must be application/octet-stream.")
    body = await upload_attachment(
        pool=svc.pool,
        blobs=svc.blob_store(),
        scan=svc.scanner is not None,
        caller=caller,
        attachment_id=attachmentId,
        chunks=_body(request),
        declared_length=_declared_length(request),
        max_bytes=svc.settings.max_upload_bytes,
        idle_seconds=svc.settings.upload_idle_timeout_seconds,
    )
    svc.wake_worker()
    return json_response(body)


@router.get("/attachment/{attachmentId}", tags=["Attachment"], response_model=None, responses=_OVERVIEW)
async def overview(attachmentId: uuid.UUID, caller: Sender, svc: ServicesDep) -> Response:
    """The attachment and its current status."""
    return json_response(await get_overview(pool=svc.pool, caller=caller, attachment_id=attachmentId))


@router.get(
    "/attachment/{attachmentId}/details",
    tags=["Attachment"],
    response_model=None,
    responses={200: {"model": AttachmentDetailsExt}},
)
async def details(attachmentId: uuid.UUID, caller: Sender, svc: ServicesDep) -> Response:
    """The attachment with its status history."""
    return json_response(await get_details(pool=svc.pool, caller=caller, attachment_id=attachmentId))


@router.delete(
    "/attachment/{attachmentId}",
    tags=["Attachment"],
    status_code=204,
    response_model=None,
    responses={
        204: {"description": "Purged (the reference answers 204 No Content, api.md §3.16)"},
        200: {
            "model": AttachmentOverviewExt,
            "description": "Listed by the official document; this service, like the reference, answers 204",
        },
    },
)
async def purge(attachmentId: uuid.UUID, caller: Sender, svc: ServicesDep) -> Response:
    """Purge an attachment no correspondence uses; its bytes are deleted."""
    await purge_attachment(pool=svc.pool, blobs=svc.blob_store(), caller=caller, attachment_id=attachmentId)
    return Response(status_code=204)


@router.get("/attachment/{attachmentId}/download", tags=["Attachment"], response_model=None, responses=_FILE)
async def sender_download_endpoint(
    attachmentId: uuid.UUID, request: Request, caller: Sender, svc: ServicesDep
) -> Response:
    """The sender's download, until a correspondence using the attachment is published."""
    try:
        download = await sender_download(
            pool=svc.pool,
            caller=caller,
            attachment_id=attachmentId,
            range_header=request.headers.get("range"),
            if_range=request.headers.get("if-range"),
        )
    except RangeNotSatisfiable as exc:
        return _not_satisfiable(exc)
    return _stream(svc.blob_store(), download, "application/octet-stream", {})


# --- attachments of correspondences -----------------------------------------------------------------


@router.get(
    "/correspondence/{correspondenceId}/attachment/{attachmentId}/download",
    tags=["Correspondence"],
    response_model=None,
    responses=_FILE,
)
async def recipient_download_endpoint(
    correspondenceId: uuid.UUID,
    attachmentId: uuid.UUID,
    request: Request,
    caller: Recipient,
    svc: ServicesDep,
) -> Response:
    """The recipient's download; recorded as AttachmentsDownloaded in the correspondence's history."""
    try:
        download = await recipient_download(
            pool=svc.pool,
            caller=caller,
            correspondence_id=correspondenceId,
            attachment_id=attachmentId,
            range_header=request.headers.get("range"),
            if_range=request.headers.get("if-range"),
        )
    except RangeNotSatisfiable as exc:
        return _not_satisfiable(exc)
    headers = {"Content-Disposition": content_disposition(download.file_name)}
    return _stream(svc.blob_store(), download, download_type(download.file_name), headers)


DOWNLOAD_ALL_DISABLED = "Download all attachments is not available in this environment."


@router.get(
    "/correspondence/{correspondenceId}/attachments/downloadall",
    tags=["Correspondence"],
    response_model=None,
    response_class=StreamingResponse,  # a zip only: no JSON body documented for the 200
    responses={
        200: {
            "description": "A zip of the attachments",
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def download_all_endpoint(correspondenceId: uuid.UUID, caller: Recipient, svc: ServicesDep) -> Response:
    """All attachments of the correspondence in one zip (stored, streamed); recorded as one
    AttachmentsDownloaded in its history."""
    if not svc.settings.download_all_enabled:
        raise PlainError(404, DOWNLOAD_ALL_DISABLED)
    found = await recipient_download_all(
        pool=svc.pool,
        blobs=svc.blob_store(),
        caller=caller,
        correspondence_id=correspondenceId,
        max_bytes=svc.settings.download_all_max_bytes,
    )
    headers = {
        "Content-Disposition": zip_content_disposition(found.file_name),
        "Content-Length": str(found.size),
    }
    return StreamingResponse(found.stream(), media_type="application/zip", headers=headers)


@router.post(
    "/correspondence/upload",
    tags=["Correspondence"],
    response_model=None,
    responses={200: {"model": InitializeCorrespondencesResponseExt}},
    openapi_extra={
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": FORM_SCHEMA}}}
    },
)
async def initialize_with_files(request: Request, caller: Sender, svc: ServicesDep) -> Response:
    """Initialize correspondences with new attachments in one multipart request (files streamed)."""
    boundary = boundary_of(request.headers.get("content-type"))
    if boundary is None:
        raise PlainError(415, "The request body must be multipart/form-data with a boundary.")
    settings = svc.settings
    try:
        result = await initialize_with_upload(
            pool=svc.pool,
            blobs=svc.blob_store(),
            resources=svc.resources,
            caller=caller,
            chunks=_body(request),
            boundary=boundary,
            reminder_delay=timedelta(days=settings.reminder_delay_days),
            scan=svc.scanner is not None,
            max_field_bytes=settings.max_body_bytes,
            max_file_bytes=settings.max_inline_file_bytes,
            min_expiration_days=settings.min_attachment_expiration_days,
            idle_seconds=settings.upload_idle_timeout_seconds,
            notification_cap=svc.limits.notification_cap,
        )
    except InvalidTemplate:
        return json_response(INVALID_TEMPLATE_TEXT, status=400)
    if result.created:
        svc.wake_worker()
    headers = {"Idempotent-Replayed": "true"} if result.replayed else None
    return json_response(result.body, headers=headers)
