"""Routes of the notification slice: the send-condition endpoints a notification service asks just
before sending (api.md §4.2). Hidden in the reference's public document; documented in ours."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from correspondence.auth.dependencies import NotificationChecker, ServicesDep
from correspondence.kit.http import json_response
from correspondence.notification.schemas import CheckNotificationResponse
from correspondence.notification.use_cases.check import check_notification

router = APIRouter(prefix="/correspondence/api/v1", tags=["Notification"])
_ANSWER: dict[int | str, dict[str, Any]] = {200: {"model": CheckNotificationResponse}}


@router.get("/correspondence/{correspondenceId}/notification/check", response_model=None, responses=_ANSWER)
async def check_reminder(
    correspondenceId: uuid.UUID, caller: NotificationChecker, svc: ServicesDep
) -> Response:
    """Whether a reminder should be sent now: only while the correspondence is published, never
    read, and neither purged nor failed."""
    send = await check_notification(pool=svc.pool, correspondence_id=correspondenceId, reminder=True)
    return json_response({"sendNotification": send})


@router.get(
    "/correspondence/{correspondenceId}/notification/check/main", response_model=None, responses=_ANSWER
)
async def check_main(correspondenceId: uuid.UUID, caller: NotificationChecker, svc: ServicesDep) -> Response:
    """Whether the main notification should be sent now: once published, even when already read,
    unless purged or failed."""
    send = await check_notification(pool=svc.pool, correspondence_id=correspondenceId, reminder=False)
    return json_response({"sendNotification": send})
