"""Routes of the subscriptions API: auth dependency → one use case → response."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
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
from correspondence.kit.http import json_response, read_json_body
from correspondence.kit.wire import parse_json

router = APIRouter(prefix="/events/api/v1/subscriptions", tags=["Subscriptions"])


_SCHEMA = SubscriptionRequestModel.model_json_schema(by_alias=True)
_BODY: dict[str, Any] = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": _SCHEMA}}}
}


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
async def get_one(subscription_id: int, caller: SenderOrRecipient, services: ServicesDep) -> Response:
    return json_response(await get_subscription(services.pool, caller=caller, sid=subscription_id))


@router.delete("/{subscription_id}", summary="Delete a subscription; pending deliveries are cancelled")
async def delete(subscription_id: int, caller: SenderOrRecipient, services: ServicesDep) -> Response:
    await delete_subscription(services.pool, caller=caller, sid=subscription_id)
    return Response(status_code=200)


@router.get("/{subscription_id}/deliveries", summary="The subscription's delivery log, newest first")
async def deliveries(
    subscription_id: int,
    caller: SenderOrRecipient,
    services: ServicesDep,
    before: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    return json_response(
        await delivery_log(services.pool, caller=caller, sid=subscription_id, before=before, limit=limit)
    )
