"""Webhook delivery port: POST one body to a subscriber's endpoint, tell what came back."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import httpx


@dataclass(frozen=True, slots=True)
class PostResult:
    status_code: int | None  # None: no HTTP answer (refused, timed out, TLS failure)
    error: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


class WebhookSender(Protocol):
    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> PostResult: ...

    async def close(self) -> None: ...


class HttpWebhookSender:
    """One shared httpx client: pooled keep-alive connections, explicit timeouts, no redirects
    (a redirect could send a signed event somewhere the subscriber did not register)."""

    def __init__(self, *, timeout_seconds: float, max_connections: int) -> None:
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout_seconds),
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            follow_redirects=False,
            headers={"user-agent": "correspondence-events/1"},
        )

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> PostResult:
        try:
            response = await self._client.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return PostResult(None, f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__)
        await response.aclose()
        error = None if 200 <= response.status_code < 300 else f"HTTP {response.status_code}"
        return PostResult(response.status_code, error)

    async def close(self) -> None:
        await self._client.aclose()
