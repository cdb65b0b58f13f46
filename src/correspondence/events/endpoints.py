"""Routes of the subscriptions API: auth dependency → one use case → response."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from correspondence.auth.dependencies import SenderOrRecipient, ServicesDep
from correspondence.events.schemas import SubscriptionRequestModel
from correspondence.events.use_cases.subscribe import subscribe
from correspondence.events.use_cases.subscriptions import (
    delete_subscription,
    delivery_log,
    get_subscription,
    list_subscriptions,
)
from correspondence.kit.errors import FieldError, ValidationProblem
from correspondence.kit.http import json_response, read_json_body
from correspondence.kit.numbers import INT64, parse_int
from correspondence.kit.wire import parse_json

router = APIRouter(prefix="/events/api/v1/subscriptions", tags=["Subscriptions"])


_SCHEMA = SubscriptionRequestModel.model_json_schema(by_alias=True)
_BODY: dict[str, Any] = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": _SCHEMA}}}
}


_ID_SCHEMA = {"type": "integer", "format": "int64"}
# Parsed by hand (kit/numbers): ASCII digits, within PostgreSQL's bigint; documented as an integer.
SubscriptionId = Annotated[str, Path(json_schema_extra=lambda schema: _replace(schema, _ID_SCHEMA))]
Before = Annotated[
    str | None, Query(json_schema_extra=lambda schema: _replace(schema, {**_ID_SCHEMA, "minimum": 1}))
]
Limit = Annotated[
    str | None,
    Query(json_schema_extra=lambda schema: _replace(schema, {**_ID_SCHEMA, "minimum": 1, "maximum": 1000})),
]


def _replace(schema: dict[str, Any], documented: dict[str, Any]) -> None:
    schema.clear()
    schema.update(documented)


def _integer(name: str, value: str, lo: int, hi: int) -> int:
    number = parse_int(value, lo, hi)
    if number is None:
        raise ValidationProblem([FieldError(name, f"The value '{value}' is not valid.")])
    return number


def _sid(value: str) -> int:
    return _integer("subscription_id", value, INT64[0], INT64[1])


@router.post("", status_code=201, openapi_extra=_BODY, summary="Subscribe a webhook to correspondence events")
async def create(request: Request, caller: SenderOrRecipient, services: ServicesDep) -> Response:
    body = parse_json(SubscriptionRequestModel, await read_json_body(request, 64 * 1024))
    result = await subscribe(
        services.pool, caller=caller, request=body, production=services.settings.mode == "production"
    )
    location = f"{services.settings.public_base_url}/events/api/v1/subscriptions/{result['id']}"
    return json_response(result, 201, {"Location": location})


@router.get("", summary="The caller's subscriptions")
async def list_all(caller: SenderOrRecipient, services: ServicesDep) -> Response:
    return json_response(await list_subscriptions(services.pool, caller=caller))


@router.get("/{subscription_id}", summary="One subscription")
async def get_one(
    subscription_id: SubscriptionId, caller: SenderOrRecipient, services: ServicesDep
) -> Response:
    sid = _sid(subscription_id)
    return json_response(await get_subscription(services.pool, caller=caller, sid=sid))


@router.delete("/{subscription_id}", summary="Delete a subscription; pending deliveries are cancelled")
async def delete(
    subscription_id: SubscriptionId, caller: SenderOrRecipient, services: ServicesDep
) -> Response:
    await delete_subscription(services.pool, caller=caller, sid=_sid(subscription_id))
    return Response(status_code=200)


@router.get("/{subscription_id}/deliveries", summary="The subscription's delivery log, newest first")
async def deliveries(
    subscription_id: SubscriptionId,
    caller: SenderOrRecipient,
    services: ServicesDep,
    before: Before = None,
    limit: Limit = None,
) -> Response:
    sid = _sid(subscription_id)
    first = None if before is None else _integer("before", before, 1, INT64[1])
    count = 100 if limit is None else _integer("limit", limit, 1, 1000)
    return json_response(await delivery_log(services.pool, caller=caller, sid=sid, before=first, limit=count))
