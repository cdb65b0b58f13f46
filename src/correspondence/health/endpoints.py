from __future__ import annotations

import orjson
from fastapi import APIRouter
from fastapi.responses import Response

from correspondence.auth.dependencies import ServicesDep

router = APIRouter(tags=["Health"])


@router.get("/health")
@router.get("/healthz", include_in_schema=False)
async def health(svc: ServicesDep) -> Response:
    """200 when the database answers, 503 when it does not."""
    try:
        await svc.pool.fetchval("SELECT 1", timeout=5)
    except Exception as exc:  # any failure to reach the database means unhealthy
        body = {"status": "Unhealthy", "database": str(exc)[:200]}
        return Response(orjson.dumps(body), status_code=503, media_type="application/json")
    return Response(orjson.dumps({"status": "Healthy"}), media_type="application/json")
