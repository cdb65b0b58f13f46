"""Health, as the reference has it (api.md §4.8): `/health` asks the database, `/healthz` only
that the process answers.

For orchestrators: `/healthz` (alias `/health/live`) is the liveness probe, 200 whenever the event
loop serves requests, even while the database is away; restarting the process would not bring the
database back. `/health` (alias `/health/ready`) is the readiness probe: 503 while the database
does not answer, so a load balancer sends traffic elsewhere until it does.
"""

from __future__ import annotations

import logging

import orjson
from fastapi import APIRouter
from fastapi.responses import Response

from correspondence.auth.dependencies import ServicesDep
from correspondence.kit.outage import describe

log = logging.getLogger("correspondence")
router = APIRouter(tags=["Health"])

_HEALTHY = orjson.dumps({"status": "Healthy"})
# The cause goes to the log, never to an anonymous caller (it can name hosts and users).
_UNHEALTHY = orjson.dumps({"status": "Unhealthy", "database": "unavailable"})


@router.get("/health")
@router.get("/health/ready", include_in_schema=False)
async def health(svc: ServicesDep) -> Response:
    """Readiness: 200 when the database answers, 503 when it does not."""
    try:
        await svc.pool.fetchval("SELECT 1", timeout=5)
    except Exception as exc:  # any failure to reach the database means not ready
        # One line, no stack trace: probes ask every few seconds for as long as an outage lasts.
        log.warning("health: the database does not answer (%s)", describe(exc))
        return Response(_UNHEALTHY, status_code=503, media_type="application/json")
    return Response(_HEALTHY, media_type="application/json")


@router.get("/healthz", include_in_schema=False)
@router.get("/health/live", include_in_schema=False)
async def liveness() -> Response:
    """Liveness: the process serves requests. Never touches the database."""
    return Response(_HEALTHY, media_type="application/json")
