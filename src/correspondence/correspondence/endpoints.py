"""Routes of the correspondence slice: auth dependency → one use case → response."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse, Response
from pydantic_core import PydanticCustomError

from correspondence.auth.caller import Caller
from correspondence.auth.dependencies import (
    ForwardChecker,
    Recipient,
    Sender,
    SenderOrRecipient,
    ServicesDep,
    caller_from_header,
    check_sender,
    check_sender_or_recipient,
)
from correspondence.correspondence.schemas import (
    STATUS_NAMES,
    CheckAllowForwardingExt,
    CorrespondenceDetailsExt,
    CorrespondenceOverviewExt,
    CorrespondencesExt,
    CorrespondencesRoleType,
    CorrespondenceStatusExt,
    ForwardCorrespondenceRequestExt,
    InitializeCorrespondencesExt,
    InitializeCorrespondencesResponseExt,
)
from correspondence.correspondence.use_cases.archive import archive
from correspondence.correspondence.use_cases.confirm import confirm
from correspondence.correspondence.use_cases.forward import allow_forwarding, forward
from correspondence.correspondence.use_cases.initialize import initialize_correspondences
from correspondence.correspondence.use_cases.mark_as_read import mark_as_read
from correspondence.correspondence.use_cases.purge import purge
from correspondence.correspondence.use_cases.search import SearchQuery, search_correspondences
from correspondence.correspondence.use_cases.view import get_content, get_details, get_overview
from correspondence.kit.errors import FieldError, ValidationProblem
from correspondence.kit.fastpath import Handler, body_chunks, header
from correspondence.kit.http import json_response, read_json, read_json_body
from correspondence.kit.middleware import Receive, Scope
from correspondence.kit.numbers import INT32, parse_int
from correspondence.kit.text import (
    ORG_PARTY_RE,
    ORG_URN,
    PERSON_PARTY_RE,
    PERSON_URN,
    is_national_identity_number,
    strip_resource_prefix,
)
from correspondence.kit.wire import NUL_MESSAGE, enum_parser, parse_json
from correspondence.notification.errors import INVALID_TEMPLATE_TEXT
from correspondence.notification.rules import InvalidTemplate
from correspondence.services import Services

router = APIRouter(prefix="/correspondence/api/v1", tags=["Correspondence"])


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
    return await _initialize(svc, caller, await read_json_body(request, svc.settings.max_body_bytes))


async def _initialize(svc: Services, caller: Caller, raw: bytes) -> Response:
    body = parse_json(InitializeCorrespondencesExt, raw)
    try:
        result = await initialize_correspondences(
            pool=svc.pool,
            resources=svc.resources,
            caller=caller,
            request=body,
            reminder_delay=timedelta(days=svc.settings.reminder_delay_days),
            notification_cap=svc.limits.notification_cap,
            writer=svc.initialize_writer,
        )
    except InvalidTemplate:
        return json_response(INVALID_TEMPLATE_TEXT, status=400)
    if result.created:
        svc.wake_worker()
    headers = {"Idempotent-Replayed": "true"} if result.replayed else None
    return json_response(result.body, headers=headers)


@router.get(
    "/correspondence/{correspondenceId}",
    response_model=None,
    responses={200: {"model": CorrespondenceOverviewExt}},
)
async def overview(correspondenceId: uuid.UUID, caller: SenderOrRecipient, svc: ServicesDep) -> Response:
    """Overview of one correspondence."""
    return await _overview(svc, caller, correspondenceId)


async def _overview(svc: Services, caller: Caller, cid: uuid.UUID) -> Response:
    return json_response(await get_overview(pool=svc.pool, caller=caller, correspondence_id=cid))


@router.get(
    "/correspondence/{correspondenceId}/details",
    response_model=None,
    responses={200: {"model": CorrespondenceDetailsExt}},
)
async def details(correspondenceId: uuid.UUID, caller: SenderOrRecipient, svc: ServicesDep) -> Response:
    """Details of one correspondence, with status history and notification orders."""
    return json_response(await get_details(pool=svc.pool, caller=caller, correspondence_id=correspondenceId))


def _uuid_param(name: str, value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ValidationProblem([FieldError(name, f"The value '{value}' is not valid.")]) from None


def _party_param(value: str | None) -> str | None:
    """onBehalfOf: an organisation (0192: or URN) or a person (URN or bare 11 digits)."""
    if value is None or not value.strip():
        return None
    v = value.strip()
    if ORG_PARTY_RE.match(v):
        return ORG_URN + v[-9:]
    if PERSON_PARTY_RE.match(v):
        if not is_national_identity_number(v[-11:]):
            raise ValidationProblem(
                [FieldError("onBehalfOf", "The given OnBehalfOf national identity number is not valid")]
            )
        return PERSON_URN + v[-11:]
    raise ValidationProblem([FieldError("onBehalfOf", _ON_BEHALF_OF_MESSAGE)])


_ON_BEHALF_OF_MESSAGE = (
    "OnBehalfOf must be either a valid organization number (format: "
    "'urn:altinn:organization:identifier-no:organizationnumber' or '0192:organizationnumber') or a valid "
    "national identity number (format: 'urn:altinn:person:identifier-no:nationalidentitynumber' or just "
    "'nationalidentitynumber')"
)
_ROLE = enum_parser(CorrespondencesRoleType)
_STATUS = enum_parser(CorrespondenceStatusExt)


def _enum_param(name: str, value: str | None, parse: Any) -> Any:
    if value is None or value == "":
        return None
    try:
        return parse(value)
    except PydanticCustomError:
        raise ValidationProblem([FieldError(name, f"The value '{value}' is not valid.")]) from None


def _int_param(name: str, value: str | None) -> int | None:
    if value is None or value == "":
        return None
    number = parse_int(value, *INT32)  # int32, as the official document says
    if number is None:
        raise ValidationProblem([FieldError(name, f"The value '{value}' is not valid.")])
    return number


def _time_param(name: str, value: str | None) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: the UTC instant is outside years 1..9999
        raise ValidationProblem([FieldError(name, f"The value '{value}' is not valid.")]) from None


def _text_param(name: str, value: str) -> str:
    if "\x00" in value:  # PostgreSQL text cannot hold it
        raise ValidationProblem([FieldError(name, NUL_MESSAGE)])
    return value


# Query parameters are parsed by hand (messages as the reference's); documented as the official types.
_INT32 = {"type": "integer", "format": "int32"}
_DATE_TIME = {"type": "string", "format": "date-time"}
_UUID = {"type": "string", "format": "uuid"}
_BARE_ID: dict[int | str, dict[str, Any]] = {200: {"content": {"application/json": {"schema": _UUID}}}}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _documented_as(schema: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    def replace(generated: dict[str, Any]) -> None:
        generated.clear()
        generated.update(schema)

    return replace


@router.get(
    "/correspondence",
    response_model=None,
    responses={200: {"model": CorrespondencesExt}},
)
async def search(
    caller: SenderOrRecipient,
    svc: ServicesDep,
    resourceId: str,
    role: Annotated[str, Query(json_schema_extra=_documented_as(_ref("CorrespondencesRoleType")))],
    offset: Annotated[str | None, Query(json_schema_extra=_documented_as(_INT32))] = None,
    limit: Annotated[str | None, Query(json_schema_extra=_documented_as(_INT32))] = None,
    from_: Annotated[str | None, Query(alias="from", json_schema_extra=_documented_as(_DATE_TIME))] = None,
    to: Annotated[str | None, Query(json_schema_extra=_documented_as(_DATE_TIME))] = None,
    status: Annotated[
        str | None, Query(json_schema_extra=_documented_as(_ref("CorrespondenceStatusExt")))
    ] = None,
    onBehalfOf: str | None = None,
    sendersReference: str | None = None,
    idempotentKey: Annotated[str | None, Query(json_schema_extra=_documented_as(_UUID))] = None,
) -> Response:
    """Find correspondences of one resource, newest first, one page at a time. `status`: those that
    have had that status (api.md §9)."""
    given = {
        "resourceId": resourceId,
        "offset": offset,
        "limit": limit,
        "from": from_,
        "to": to,
        "status": status,
        "role": role,
        "onBehalfOf": onBehalfOf,
        "sendersReference": sendersReference,
        "idempotentKey": idempotentKey,
    }
    return await _search(svc, caller, {k: v for k, v in given.items() if v is not None})


def _required(params: Mapping[str, str]) -> tuple[str, str]:
    """resourceId and role, which must be given (api.md §3.3), as the reference's binding says."""
    resource_id, role = params.get("resourceId") or "", params.get("role") or ""
    missing = [name for name, value in (("resourceId", resource_id), ("role", role)) if not value.strip()]
    if missing:
        raise ValidationProblem([FieldError(name, f"The {name} field is required.") for name in missing])
    return resource_id, role


def _search_query(params: Mapping[str, str]) -> SearchQuery:
    """The search parameters as given in the query string (absent ones missing from `params`)."""
    resource_id, role = _required(params)
    parsed_role = _enum_param("role", role, _ROLE)
    parsed_status = _enum_param("status", params.get("status"), _STATUS)
    senders_reference = params.get("sendersReference")
    idempotent_key = params.get("idempotentKey")
    return SearchQuery(
        role=parsed_role.name,
        resource_id=strip_resource_prefix(_text_param("resourceId", resource_id)),
        from_time=_time_param("from", params.get("from")),
        to_time=_time_param("to", params.get("to")),
        status=STATUS_NAMES.index(parsed_status.name) if parsed_status else None,
        on_behalf_of=_party_param(params.get("onBehalfOf")),
        offset=_int_param("offset", params.get("offset")) or 0,
        limit=_int_param("limit", params.get("limit")) or 0,
        senders_reference=_text_param("sendersReference", senders_reference) if senders_reference else None,
        idempotent_key=_uuid_param("idempotentKey", idempotent_key) if idempotent_key else None,
    )


async def _search(svc: Services, caller: Caller, params: Mapping[str, str]) -> Response:
    query = _search_query(params)
    found = await search_correspondences(pool=svc.pool, resources=svc.resources, caller=caller, query=query)
    return json_response(found)


# --- the hot routes, served by kit/fastpath without FastAPI's routing (same checks and code) ------

_BASE = "/correspondence/api/v1/correspondence"
_HEX_UUID = r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}"
_ONE = re.compile(rf"/correspondence/api/v1/correspondence/({_HEX_UUID})\Z")


async def _fast_initialize(svc: Services, scope: Scope, receive: Receive) -> Response:
    caller = check_sender(await caller_from_header(svc, header(scope, b"authorization")))
    raw = await read_json(
        header(scope, b"content-type") or "",
        header(scope, b"content-length"),
        body_chunks(receive),
        svc.settings.max_body_bytes,
    )
    return await _initialize(svc, caller, raw)


async def _fast_search(svc: Services, scope: Scope, receive: Receive) -> Response:
    caller = check_sender_or_recipient(await caller_from_header(svc, header(scope, b"authorization")))
    # As Starlette reads a query string: latin-1, blank values kept, the last of repeated names wins.
    params = dict(parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True))
    return await _search(svc, caller, params)


async def _fast_overview(svc: Services, scope: Scope, receive: Receive) -> Response:
    caller = check_sender_or_recipient(await caller_from_header(svc, header(scope, b"authorization")))
    match = _ONE.match(scope["path"])
    assert match is not None
    return await _overview(svc, caller, uuid.UUID(match.group(1)))


def resolve_fast(method: str, path: str) -> Handler | None:
    """The fast handler for a request, or None to let FastAPI serve it."""
    if path == _BASE:
        return _fast_initialize if method == "POST" else _fast_search if method == "GET" else None
    if method == "GET" and len(path) == len(_BASE) + 37 and _ONE.match(path):
        return _fast_overview
    return None


@router.get(
    "/correspondence/{correspondenceId}/content",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def content(correspondenceId: uuid.UUID, caller: Recipient, svc: ServicesDep) -> Response:
    """The message body (markdown) for the recipient; reading it marks it Read."""
    text = await get_content(pool=svc.pool, caller=caller, correspondence_id=correspondenceId)
    return PlainTextResponse(text)


@router.post("/correspondence/{correspondenceId}/markasread", response_model=None, responses=_BARE_ID)
async def markasread(correspondenceId: uuid.UUID, caller: Recipient, svc: ServicesDep) -> Response:
    """Mark the correspondence as read (the recipient must have fetched it)."""
    cid = await mark_as_read(pool=svc.pool, caller=caller, correspondence_id=correspondenceId)
    return json_response(str(cid))


@router.post("/correspondence/{correspondenceId}/confirm", response_model=None, responses=_BARE_ID)
async def confirm_endpoint(correspondenceId: uuid.UUID, caller: Recipient, svc: ServicesDep) -> Response:
    """Confirm the correspondence; Confirmed is stored before the answer."""
    cid = await confirm(pool=svc.pool, caller=caller, correspondence_id=correspondenceId)
    return json_response(str(cid))


@router.post("/correspondence/{correspondenceId}/archive", response_model=None, responses=_BARE_ID)
async def archive_endpoint(correspondenceId: uuid.UUID, caller: Recipient, svc: ServicesDep) -> Response:
    """File the correspondence away (status Archived); it stays searchable."""
    cid = await archive(pool=svc.pool, caller=caller, correspondence_id=correspondenceId)
    return json_response(str(cid))


@router.delete("/correspondence/{correspondenceId}/purge", response_model=None, responses=_BARE_ID)
async def purge_endpoint(
    correspondenceId: uuid.UUID, caller: SenderOrRecipient, svc: ServicesDep
) -> Response:
    """Purge: the sender before publication, or the recipient."""
    cid = await purge(pool=svc.pool, caller=caller, correspondence_id=correspondenceId)
    return json_response(str(cid))


@router.post(
    "/correspondence/{correspondenceId}/forward",
    response_model=None,
    responses=_BARE_ID,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _ref("ForwardCorrespondenceRequestExt")}},
        }
    },
)
async def forward_endpoint(
    correspondenceId: uuid.UUID, request: Request, caller: Recipient, svc: ServicesDep
) -> Response:
    """Forward the correspondence to an e-mail address (it must have been read); the e-mail, with
    its attachments, is sent by the worker. Answers the forward's id."""
    body = parse_json(
        ForwardCorrespondenceRequestExt, await read_json_body(request, svc.settings.max_body_bytes)
    )
    forwarding_id = await forward(
        pool=svc.pool,
        caller=caller,
        correspondence_id=correspondenceId,
        forward_to=body.forwardTo,
        forwarding_text=body.forwardingText,
    )
    svc.wake_worker()
    return json_response(str(forwarding_id))


@router.get(
    "/correspondence/{correspondenceId}/forward/check",
    response_model=None,
    # Hidden from the reference's public document (api.md §4.3); documented in ours.
    responses={200: {"model": CheckAllowForwardingExt}},
)
async def forward_check(correspondenceId: uuid.UUID, caller: ForwardChecker, svc: ServicesDep) -> Response:
    """Whether the correspondence allows forwarding; for the platform, no access check."""
    allowed = await allow_forwarding(pool=svc.pool, correspondence_id=correspondenceId)
    return json_response({"allowForwarding": allowed})
