"""Routes of the sandbox slice, under our own prefix /ext/api/v1 (never the real service's)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from correspondence.auth.dependencies import SenderOrRecipient, ServicesDep
from correspondence.kit.http import json_response
from correspondence.sandbox.schemas import SandboxExt
from correspondence.sandbox.use_cases.describe import describe

router = APIRouter(prefix="/ext/api/v1", tags=["Extensions"])


@router.get("/sandbox", response_model=None, responses={200: {"model": SandboxExt}})
async def sandbox(caller: SenderOrRecipient, svc: ServicesDep) -> Response:
    """The sandbox's reserved e-mail addresses, mobile numbers and parties, what each does, and
    whether the sandbox is on here (when it is off they are ordinary values)."""
    return json_response(describe(enabled=svc.settings.sandbox_enabled))
