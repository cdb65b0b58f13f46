"""Create a webhook subscription for the caller's party."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import asyncpg

from correspondence.adapters.webhooks import target_host
from correspondence.auth import scopes
from correspondence.auth.caller import Caller
from correspondence.events import errors, signing
from correspondence.events import repository as repo
from correspondence.events.outbox import KINDS, PREFIX
from correspondence.events.schemas import SubscriptionRequestModel
from correspondence.kit import addresses, clock
from correspondence.kit.numbers import is_ascii_digits

ORG_URN = "urn:altinn:organization:identifier-no:"
PERSON_URN = "urn:altinn:person:identifier-no:"
RESOURCE_URN = "urn:altinn:resource:"


def consumer_of(caller: Caller) -> str:
    """The party a caller subscribes for: its organisation, else the person."""
    if caller.org is not None:
        return ORG_URN + caller.org
    if caller.pid is not None:
        return PERSON_URN + caller.pid
    raise errors.not_your_subscription()


def role_of(caller: Caller) -> int:
    role = 0
    if caller.is_sender and caller.org is not None:
        role |= repo.OWNER
    if scopes.READ in caller.scopes:
        role |= repo.RECIPIENT
    return role


def _end_point(url: str, *, production: bool) -> str:
    """An absolute http(s) URL without credentials. In production mode also https only, and no
    address of this machine or its private network, in any form the resolver reads as a number
    (`127.1`, `2130706433`, `0x7f.0.0.1`, `[::ffff:127.0.0.1]`). Names are not resolved here: the
    webhook sender checks the addresses a name resolves to when it connects."""
    parts = urlsplit(url.strip())
    try:
        hosts = [parts.hostname, target_host(url.strip())]  # as written, and as aiohttp reads it
    except ValueError:
        hosts = [None]
    if parts.scheme not in ("http", "https") or not all(hosts):
        raise errors.invalid("endPoint must be an absolute http(s) URL.")
    if parts.username or parts.password:
        raise errors.invalid("endPoint must not carry credentials.")
    if production:
        if parts.scheme != "https":
            raise errors.invalid("endPoint must use https.")
        if any(_internal(host) for host in hosts if host):
            raise errors.invalid("endPoint must not be a local or private address.")
    return url.strip()


def _internal(host: str) -> bool:
    name = host.lower().removesuffix(".")
    if name == "localhost" or name.endswith((".localhost", ".local", ".internal")):
        return True
    try:
        address = addresses.numeric_host(name)
    except addresses.NotAnAddress:
        return True  # a numeric-looking host that is no address: resolvers disagree on it
    return address is not None and addresses.forbidden(address)


def _type_filter(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    name = value.strip().lower().removeprefix(PREFIX)
    if name not in KINDS:
        raise errors.invalid(f"typeFilter must name a correspondence event type ({PREFIX}…).")
    return PREFIX + name


def _resource_filter(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    resource = value.strip().removeprefix(RESOURCE_URN)
    if not resource or any(c.isspace() for c in resource):
        raise errors.invalid("resourceFilter must be a resource id or urn:altinn:resource:{id}.")
    return RESOURCE_URN + resource


def _subject_filter(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    subject = value.strip()
    if is_ascii_digits(subject) and len(subject) == 9:
        return ORG_URN + subject
    if is_ascii_digits(subject) and len(subject) == 11:
        return PERSON_URN + subject
    if not subject.startswith((ORG_URN, PERSON_URN)):
        raise errors.invalid("subjectFilter must be an organisation or person URN.")
    return subject


async def subscribe(
    pool: asyncpg.Pool, *, caller: Caller, request: SubscriptionRequestModel, production: bool
) -> dict[str, Any]:
    role = role_of(caller)
    if role == 0:
        raise errors.invalid("The caller can neither send nor receive correspondence.")
    secret = signing.new_secret()
    row = await repo.insert_subscription(
        pool,
        consumer=consumer_of(caller),
        role=role,
        end_point=_end_point(request.endPoint, production=production),
        resource_filter=_resource_filter(request.resourceFilter),
        type_filter=_type_filter(request.typeFilter),
        subject_filter=_subject_filter(request.subjectFilter),
        secret=secret,
        created_by=consumer_of(caller),
        created=clock.now(),
    )
    return {**subscription_body(row), "secret": secret}


def subscription_body(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "endPoint": row["end_point"],
        "sourceFilter": None,
        "resourceFilter": row["resource_filter"],
        "typeFilter": row["type_filter"],
        "subjectFilter": row["subject_filter"],
        "consumer": row["consumer"],
        "createdBy": row["created_by"],
        "created": row["created"],
        "validated": True,
    }
