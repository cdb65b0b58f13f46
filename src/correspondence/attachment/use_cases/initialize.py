"""Initialize a shared attachment: metadata now, bytes later by upload (api.md §3.12)."""

from __future__ import annotations

import uuid

import asyncpg

from correspondence.attachment import errors
from correspondence.attachment import repository as repo
from correspondence.attachment.files import check_file_name
from correspondence.attachment.schemas import InitializeAttachmentExt
from correspondence.auth.caller import Caller
from correspondence.correspondence.use_cases.access import caller_party
from correspondence.kit import clock
from correspondence.kit.ids import new_id
from correspondence.kit.text import ORG_URN, strip_resource_prefix
from correspondence.registry.cache import ResourceCache

_ATTACHMENT_RESOURCE_TYPES = frozenset({"GenericAccessResource", "CorrespondenceService"})


def check_expiration(days: int | None, minimum: int) -> None:
    if days is not None and days < minimum:
        raise errors.EXPIRATION_TOO_SOON(days=minimum)


async def initialize_attachment(
    *,
    pool: asyncpg.Pool,
    resources: ResourceCache,
    caller: Caller,
    request: InitializeAttachmentExt,
    min_expiration_days: int,
) -> uuid.UUID:
    resource_id = strip_resource_prefix(request.resourceId)
    resource = await resources.get(pool, resource_id)
    if resource is None:
        raise errors.RESOURCE_UNKNOWN()
    if caller.org is None or caller.org != resource.owner_org:
        raise errors.NO_ACCESS()
    if resource.resource_type not in _ATTACHMENT_RESOURCE_TYPES:
        raise errors.RESOURCE_TYPE()
    file_name = request.file_name
    problem = check_file_name(file_name)
    if problem is not None:
        raise problem
    assert file_name is not None
    check_expiration(request.expirationInDays, min_expiration_days)

    attachment_id = new_id()
    row = {
        "id": attachment_id,
        "resource_id": resource_id,
        "sender": ORG_URN + resource.owner_org,
        "service_owner_id": resource.owner_org,
        "file_name": file_name,
        "display_name": request.display_name,
        "is_encrypted": request.isEncrypted,
        "checksum": request.checksum or None,
        "senders_reference": request.sendersReference,
        "expiration_in_days": request.expirationInDays,
        "data_location_type": 0,
        "blob_key": None,
        "size": None,
    }
    await repo.insert_attachments(
        pool, [row], [(repo.INITIALIZED, "Initialized")], clock.now(), caller_party(caller)
    )
    return attachment_id
