"""Routes of the limits slice, under our own prefix /ext/api/v1 (never the real service's)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from correspondence.auth.dependencies import Sender, ServicesDep
from correspondence.kit.errors import PlainError
from correspondence.kit.http import json_response
from correspondence.limits.schemas import OwnerLimitsExt
from correspondence.limits.use_cases.view import owner_limits

router = APIRouter(prefix="/ext/api/v1", tags=["Extensions"])


@router.get("/limits", response_model=None, responses={200: {"model": OwnerLimitsExt}})
async def limits(caller: Sender, svc: ServicesDep) -> Response:
    """The calling service owner's limits (requests per minute, notifications per day) and what it
    has ordered today. A service owner sees its own limits only."""
    if caller.org is None:
        raise PlainError(403, "The token names no organization.")
    return json_response(await owner_limits(svc.pool, owner=caller.org, limits=svc.limits))
