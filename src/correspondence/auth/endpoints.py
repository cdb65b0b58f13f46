"""The development issuer's discovery document and JWKS, served by the service itself."""

from __future__ import annotations

import orjson
from fastapi import APIRouter
from fastapi.responses import Response

from correspondence.auth.dependencies import ServicesDep
from correspondence.kit.errors import PlainError

router = APIRouter(prefix="/authentication/api/v1/openid", tags=["Authentication"], include_in_schema=False)


@router.get("/.well-known/jwks.json")
async def jwks(svc: ServicesDep) -> Response:
    if svc.dev_issuer is None:
        raise PlainError(404, "The development issuer is off in production mode.")
    return Response(orjson.dumps(svc.dev_issuer.jwks()), media_type="application/json")


@router.get("/.well-known/openid-configuration")
async def discovery(svc: ServicesDep) -> Response:
    if svc.dev_issuer is None:
        raise PlainError(404, "The development issuer is off in production mode.")
    base = svc.settings.public_base_url
    body = {
        "issuer": svc.dev_issuer.issuer,
        "jwks_uri": f"{base}/authentication/api/v1/openid/.well-known/jwks.json",
        "id_token_signing_alg_values_supported": ["RS256"],
    }
    return Response(orjson.dumps(body), media_type="application/json")
