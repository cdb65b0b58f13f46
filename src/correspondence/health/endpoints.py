from __future__ import annotations

import logging

import orjson
from fastapi import APIRouter
from fastapi.responses import Response

from correspondence.auth.dependencies import ServicesDep

log = logging.getLogger("correspondence")
router = APIRouter(tags=["Health"])


@router.get("/health")
@router.get("/healthz", include_in_schema=False)
async def health(svc: ServicesDep) -> Response:
    """200 when the database answers, 503 when it does not."""
    try:
        await svc.pool.fetchval("SELECT 1", timeout=5)
    except Exception:  # any failure to reach the database means unhealthy
        # The cause goes to the log, never to an anonymous caller (it can name hosts and users).
        log.warning("health: the database does not answer", exc_info=True)
        body = {"status": "Unhealthy", "database": "unavailable"}
        return Response(orjson.dumps(body), status_code=503, media_type="application/json")
    return Response(orjson.dumps({"status": "Healthy"}), media_type="application/json")
