"""GET /metrics: the Prometheus text format of the app's registry (metrics/collector.py).

With CORRESPONDENCE_METRICS_TOKEN set it needs `Authorization: Bearer <token>`: the figures tell
volumes, and even cheap queries should not be anyone's to run."""

from __future__ import annotations

import hashlib
import hmac

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client.core import Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from pydantic import SecretStr

from correspondence.auth.dependencies import ServicesDep
from correspondence.kit.errors import PlainError
from correspondence.limits.collector import usage_families
from correspondence.metrics.collector import Exposition, read_families
from correspondence.services import Services

router = APIRouter(tags=["Health"])


def token_matches(authorization: str | None, token: SecretStr) -> bool:
    """Constant time: both sides are hashed first, so not even the length is told."""
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    expected = hashlib.sha256(token.get_secret_value().encode()).digest()
    return hmac.compare_digest(hashlib.sha256(given.strip().encode()).digest(), expected)


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request, services: ServicesDep) -> Response:
    settings = services.settings
    if not settings.metrics_enabled:
        raise PlainError(404, "Metrics are disabled.")
    if settings.metrics_token is not None and not token_matches(
        request.headers.get("authorization"), settings.metrics_token
    ):
        raise PlainError(401, "/metrics needs the metrics token.", headers={"WWW-Authenticate": "Bearer"})
    exposition: Exposition = request.app.state.metrics
    await exposition.database.refresh(lambda: _read(services))
    return Response(generate_latest(exposition.registry), media_type=CONTENT_TYPE_PLAIN_0_0_4)


async def _read(services: Services) -> list[Metric]:
    return [*await read_families(services.pool), *await usage_families(services.pool, services.limits)]
