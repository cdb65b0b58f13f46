"""Pure ASGI middleware (no per-request task): trace id, access log, security headers and
Accept negotiation per RFC 9110."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from correspondence.kit.http import weighted
from correspondence.kit.logs import AccessLog, trace_id_var
from correspondence.kit.request_metrics import RequestMetrics, route_label

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

access_log = AccessLog()

_NOT_ACCEPTABLE = (
    b"This endpoint does not support the requested Accept header. "
    b"Supported Accept headers are: application/json, */*."
)
_NOT_ACCEPTABLE_TEXT = (
    b"This endpoint does not support the requested Accept header. "
    b"Supported Accept headers are: text/plain, */*."
)


_rng = random.Random()
_bits = _rng.getrandbits
os.register_at_fork(after_in_child=_rng.seed)  # forked workers must not repeat each other's ids


def _trace_id(headers: list[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name == b"traceparent":
            parts = value.decode("latin-1").split("-")
            if len(parts) == 4 and len(parts[1]) == 32:
                return f"00-{parts[1]}-{_bits(64):016x}-01"
    # Trace ids need to be unique, not secret: a PRNG spares two getrandom calls per request.
    return f"00-{_bits(128):032x}-{_bits(64):016x}-01"


def accepts_json(accept: str) -> bool:
    """True when any media range in Accept (with q > 0) admits application/json."""
    return _accepts(accept, json=True)


def accepts_text(accept: str) -> bool:
    """True when any media range in Accept (with q > 0) admits text/plain."""
    return _accepts(accept, json=False)


def _accepts(accept: str, *, json: bool) -> bool:
    for media, q in weighted(accept):
        if q <= 0:
            continue
        if not json:
            if media in ("*/*", "text/*", "text/plain"):
                return True
            continue
        if media in ("*/*", "application/*", "application/json", "application/problem+json", "text/json"):
            return True
        if media.startswith("application/") and media.endswith("+json"):
            return True
    return False


class RequestContext:
    def __init__(
        self,
        app: ASGIApp,
        *,
        log_requests: bool = True,
        json_prefix: str = "/correspondence/api/v1/",
        metrics: RequestMetrics | None = None,
    ) -> None:
        self.app = app
        self.log_requests = log_requests
        self.json_prefix = json_prefix
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        trace = _trace_id(headers)
        token = trace_id_var.set(trace)
        started = time.perf_counter()
        status_holder = [500]
        path: str = scope["path"]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                out = message.setdefault("headers", [])
                out.append((b"x-content-type-options", b"nosniff"))
                out.append((b"cache-control", b"no-store"))
                out.append((b"x-trace-id", trace.encode()))
            await send(message)

        try:
            if path.startswith(self.json_prefix):
                text = path.endswith("/content")
                check = accepts_text if text else accepts_json
                for name, value in headers:
                    if name == b"accept" and not check(value.decode("latin-1")):
                        await send_wrapper(
                            {
                                "type": "http.response.start",
                                "status": 406,
                                "headers": [(b"content-type", b"text/plain; charset=utf-8")],
                            }
                        )
                        body = _NOT_ACCEPTABLE_TEXT if text else _NOT_ACCEPTABLE
                        await send({"type": "http.response.body", "body": body})
                        return
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            if self.metrics is not None:
                # The router (or the fast path) has put the matched route in the scope by now.
                self.metrics.observe(scope["method"], route_label(scope), status_holder[0], elapsed)
            if self.log_requests and access_log.enabled():
                access_log.write(scope["method"], path, status_holder[0], round(elapsed * 1000, 2))
            trace_id_var.reset(token)
