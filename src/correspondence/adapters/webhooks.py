"""Webhook delivery port: POST one body to a subscriber's endpoint, tell what came back.

A subscriber chooses the URL, so in production mode the sender is careful where it connects: the
addresses a name resolves to are checked when connecting (`GuardedResolver`; aiohttp connects only
to what its resolver returns, so a name that points inside, or is re-pointed there after the
subscription was made, reaches nothing), and what went wrong is told in a few generic words, never
the exception's text (which would name addresses and ports and make the log a port scanner)."""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass
from typing import Any, Protocol

import aiohttp
import yarl
from aiohttp.abc import AbstractResolver, ResolveResult

from correspondence.kit import addresses

# Every reason the delivery log may show, besides "HTTP {status}".
ADDRESS_NOT_ALLOWED = "address not allowed"
NAME_NOT_RESOLVED = "name not resolved"
TIMED_OUT = "timed out"
TLS_FAILED = "TLS handshake failed"
CONNECTION_FAILED = "connection failed"
INVALID_ENDPOINT = "invalid endpoint"
REASONS = frozenset(
    {ADDRESS_NOT_ALLOWED, NAME_NOT_RESOLVED, TIMED_OUT, TLS_FAILED, CONNECTION_FAILED, INVALID_ENDPOINT}
)


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


class AddressNotAllowed(OSError):
    """The endpoint's host is, or resolves only to, an address the service must not call."""


def target_host(url: str) -> str | None:
    """The host aiohttp connects to for `url` (after IDNA mapping: `ｌｏｃａｌｈｏｓｔ` is
    `localhost`, `127。0。0。1` is `127.0.0.1`). Raises ValueError for a URL it cannot read."""
    return yarl.URL(url).host


class GuardedResolver(AbstractResolver):
    """Wraps a resolver (the resolver port) and drops every forbidden address it returns; fails
    when none remain."""

    def __init__(self, inner: AbstractResolver) -> None:
        self._inner = inner

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        allowed = [r for r in found if not addresses.forbidden_text(r["host"])]
        if not allowed:
            raise AddressNotAllowed(host)
        return allowed

    async def close(self) -> None:
        await self._inner.close()


def _guarded_socket(addr_info: tuple[Any, Any, int, str, tuple[Any, ...]]) -> socket.socket:
    """The last check, on the very address a socket is about to connect to (it also covers hosts
    written as addresses, which aiohttp does not pass to the resolver)."""
    family, kind, proto, _, sockaddr = addr_info
    if addresses.forbidden_text(str(sockaddr[0])):
        raise AddressNotAllowed(str(sockaddr[0]))
    return socket.socket(family=family, type=kind, proto=proto)


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or any(e is s for s in seen):
            continue
        seen.append(e)
        todo += [e.__cause__, e.__context__, getattr(e, "os_error", None)]
    return seen


def reason(exc: BaseException) -> str:
    """A failure in a few generic words (the delivery log is read by the subscriber)."""
    chain = _chain(exc)
    if any(isinstance(e, AddressNotAllowed) for e in chain):
        return ADDRESS_NOT_ALLOWED
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return NAME_NOT_RESOLVED
    if any(isinstance(e, aiohttp.ClientSSLError | ssl.SSLError) for e in chain):
        return TLS_FAILED
    if any(isinstance(e, TimeoutError) for e in chain):
        return TIMED_OUT
    if isinstance(exc, aiohttp.InvalidURL) or (isinstance(exc, ValueError) and not isinstance(exc, OSError)):
        return INVALID_ENDPOINT
    return CONNECTION_FAILED


class HttpWebhookSender:
    """One shared aiohttp session: pooled keep-alive connections, a total timeout per POST, no
    redirects (a redirect could carry a signed event somewhere the subscriber did not register).

    `guard` (production mode): connect only to public addresses, checked at connect time.
    `resolver`: the resolver port (aiohttp's default when None); a guarded sender wraps it.

    aiohttp rather than httpx (used elsewhere for single calls): on this 2-core machine httpx spent
    1.1–2.3 ms of CPU per POST at 8–64 in flight, aiohttp 0.07–0.09 ms (bench/RESULTS.md, events)."""

    def __init__(
        self,
        *,
        timeout_seconds: float,
        max_connections: int,
        guard: bool = False,
        resolver: AbstractResolver | None = None,
    ) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._limit = max_connections
        self._guard = guard
        self._resolver = resolver
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:  # inside the running event loop
            resolver = self._resolver
            if self._guard:
                connector = aiohttp.TCPConnector(
                    limit=self._limit,
                    resolver=GuardedResolver(resolver or aiohttp.DefaultResolver()),
                    socket_factory=_guarded_socket,
                )
            else:
                connector = aiohttp.TCPConnector(limit=self._limit, resolver=resolver)
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=self._timeout,
                headers={"user-agent": "correspondence-events/1"},
            )
        return self._session

    def _refused(self, url: str) -> bool:
        """A host written as a forbidden address (in any form the C resolver reads) is refused
        before any connection; aiohttp would not ask the resolver about it."""
        if not self._guard:
            return False
        host = target_host(url)
        if host is None:
            return True
        try:
            address = addresses.numeric_host(host)
        except addresses.NotAnAddress:
            return True
        return address is not None and addresses.forbidden(address)

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> PostResult:
        try:
            if self._refused(url):
                return PostResult(None, ADDRESS_NOT_ALLOWED)
            async with self._open().post(url, data=body, headers=headers, allow_redirects=False) as response:
                await response.read()
                status = response.status
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as exc:
            return PostResult(None, reason(exc))
        return PostResult(status, None if 200 <= status < 300 else f"HTTP {status}")

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
