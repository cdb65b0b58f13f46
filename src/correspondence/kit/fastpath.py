"""Hot routes served straight from ASGI, in front of FastAPI's router.

Initialize, search and overview carry almost all traffic. Routing, dependency resolution and the
Request/Response plumbing cost FastAPI about 90 µs of a ~400 µs Initialize (bench/RESULTS.md), so
these routes skip them: a slice offers a `resolve(method, path)` that returns a handler for the
requests it can serve this way, and None for anything else (odd path forms, other methods), which
FastAPI then serves as before. Handlers call the same auth checks and the same code as the
FastAPI routes (which stay, and document the operations in the OpenAPI document), and errors are
rendered by the same function as the app's exception handlers.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.responses import Response

from correspondence.kit.errors import problem_response, render_error
from correspondence.kit.logs import trace_id_var
from correspondence.kit.middleware import ASGIApp, Receive, Scope, Send
from correspondence.kit.outage import is_database_unavailable, unavailable_response
from correspondence.kit.request_metrics import UNMATCHED

if TYPE_CHECKING:
    from correspondence.services import Services

log = logging.getLogger("correspondence")

Handler = Callable[["Services", Scope, Receive], Awaitable[Response]]
Resolver = Callable[[str, str], Handler | None]


class ClientGone(Exception):
    """The client disconnected while sending its body: nobody is left to answer."""


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            text: str = value.decode("latin-1")
            return text
    return None


async def body_chunks(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk: bytes = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


class FastRoutes:
    def __init__(self, app: ASGIApp, *, resolvers: list[Resolver]) -> None:
        self.app = app
        self.resolvers = resolvers
        self._routes: dict[Handler, _Route] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            method, path = scope["method"], scope["path"]
            for resolve in self.resolvers:
                handler = resolve(method, path)
                if handler is not None:
                    await self._serve(handler, scope, receive, send)
                    return
        await self.app(scope, receive, send)

    def _route(self, handler: Handler, scope: Scope) -> _Route:
        """The documented route this handler serves (found once per handler), so request metrics
        label the request with the same route template as when FastAPI serves it."""
        route = self._routes.get(handler)
        if route is None:
            try:
                template = _documented_template(scope["app"].openapi(), scope["method"], scope["path"])
            except Exception:  # a label must never cost a request
                log.exception("no route template for the fast path's %s %s", scope["method"], scope["path"])
                template = UNMATCHED
            route = _Route(template)
            self._routes[handler] = route
        return route

    async def _serve(self, handler: Handler, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self._route(handler, scope)
        services: Services = scope["app"].state.services
        try:
            response = await handler(services, scope, receive)
        except ClientGone:
            return
        except Exception as exc:
            rendered = render_error(exc, trace_id_var.get())
            if rendered is None and is_database_unavailable(exc):
                scope["app"].state.outages.note(exc, scope["method"], scope["path"])
                rendered = unavailable_response(trace_id_var.get())
            if rendered is None:
                log.exception("unhandled error on %s %s", scope["method"], scope["path"])
                rendered = problem_response(500, "", trace_id_var.get())
            response = rendered
        await response(scope, receive, send)


class _Route:
    """What the router would put in scope["route"]: request metrics read its `path` template."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path


def _documented_template(document: dict[str, Any], method: str, path: str) -> str:
    """The OpenAPI path template that matches this path for this method (the fast routes stay
    documented), read from the public document rather than the router's internals."""
    for template, operations in document.get("paths", {}).items():
        pattern = "".join(
            "[^/]+" if part.startswith("{") else re.escape(part)
            for part in re.split(r"(\{[^}]+\})", template)
        )
        if method.lower() in operations and re.fullmatch(pattern, path):
            return str(template)
    return UNMATCHED
