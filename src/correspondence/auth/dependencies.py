"""FastAPI dependencies: who is calling, and may they act as a sender.

The checks are plain functions too, so that kit/fastpath's hot routes apply exactly the same ones."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from correspondence.auth import scopes
from correspondence.auth.caller import Caller
from correspondence.auth.tokens import InvalidToken
from correspondence.kit.errors import PlainError
from correspondence.services import Services


def _services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


async def services(request: Request) -> Services:
    # async: FastAPI runs a plain `def` dependency in its thread pool, a thread hand-off per request.
    return _services(request)


async def caller_from_header(svc: Services, header: str | None) -> Caller:
    """The caller named by an `Authorization: Bearer` header; 401 without a valid token, 429 when
    a service owner is over its request rate (limits/buckets.py)."""
    if not header or not header[:7].lower() == "bearer " or not header[7:].strip():
        raise PlainError(401, "A bearer token is required.", {"WWW-Authenticate": "Bearer"})
    try:
        caller = await svc.validator.validate(header[7:].strip())
    except InvalidToken as exc:
        raise PlainError(
            401,
            "The bearer token is not valid.",
            {"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{exc}"'[:500]},
        ) from exc
    limiter = svc.limits.limiter  # None unless some owner has a rate limit: nothing more to do
    if limiter is not None and caller.org is not None and caller.is_sender:
        limiter.check(caller.org)  # 429 (9429) with Retry-After when over its requests per minute
    return caller


def check_sender(caller: Caller) -> Caller:
    if not caller.is_sender:
        needed = scopes.WRITE if caller.kind == "altinn" else f"{scopes.SERVICE_OWNER} and {scopes.WRITE}"
        raise PlainError(403, f"The token must carry the scope {needed}.")
    return caller


def check_sender_or_recipient(caller: Caller) -> Caller:
    if caller.is_sender or scopes.READ in caller.scopes:
        return caller
    raise PlainError(403, f"The token must carry the scope {scopes.WRITE} or {scopes.READ}.")


def check_recipient(caller: Caller) -> Caller:
    if scopes.READ in caller.scopes:
        return caller
    raise PlainError(403, f"The token must carry the scope {scopes.READ}.")


def check_forward_checker(caller: Caller) -> Caller:
    """CheckAllowForwardingPolicy (api.md §2.3): the forward-check scope."""
    if scopes.FORWARD_CHECK in caller.scopes:
        return caller
    raise PlainError(403, f"The token must carry the scope {scopes.FORWARD_CHECK}.")


def check_notification_check(caller: Caller) -> Caller:
    """Policy NotificationCheck (api.md §2.3): the reference takes Maskinporten tokens only; here any
    trusted issuer's token with the scope (the development issuer mints it with `token --scope`)."""
    if scopes.NOTIFICATION_CHECK in caller.scopes:
        return caller
    raise PlainError(403, f"The token must carry the scope {scopes.NOTIFICATION_CHECK}.")


async def current_caller(request: Request) -> Caller:
    return await caller_from_header(_services(request), request.headers.get("authorization"))


async def require_sender(caller: Annotated[Caller, Depends(current_caller)]) -> Caller:
    return check_sender(caller)


async def require_sender_or_recipient(caller: Annotated[Caller, Depends(current_caller)]) -> Caller:
    return check_sender_or_recipient(caller)


async def require_recipient(caller: Annotated[Caller, Depends(current_caller)]) -> Caller:
    return check_recipient(caller)


async def require_forward_checker(caller: Annotated[Caller, Depends(current_caller)]) -> Caller:
    return check_forward_checker(caller)


async def require_notification_check(caller: Annotated[Caller, Depends(current_caller)]) -> Caller:
    return check_notification_check(caller)


Sender = Annotated[Caller, Depends(require_sender)]
Recipient = Annotated[Caller, Depends(require_recipient)]
SenderOrRecipient = Annotated[Caller, Depends(require_sender_or_recipient)]
ForwardChecker = Annotated[Caller, Depends(require_forward_checker)]
NotificationChecker = Annotated[Caller, Depends(require_notification_check)]
ServicesDep = Annotated[Services, Depends(services)]
