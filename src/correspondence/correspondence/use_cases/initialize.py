"""Initialize: one correspondence per recipient, written by one statement (api.md §3.1)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson

from correspondence.attachment import repository as attachment_repo
from correspondence.attachment.use_cases.attach import UploadedFile, plan_attachments, write_initialize
from correspondence.auth.caller import Caller
from correspondence.correspondence import errors
from correspondence.correspondence import repository as repo
from correspondence.correspondence.schemas import (
    STATUS_NAMES,
    InitializeCorrespondencesExt,
    ReferenceTypeExt,
)
from correspondence.correspondence.use_cases.access import caller_party
from correspondence.correspondence.use_cases.group_write import InitializeWriter, groupable
from correspondence.kit import clock
from correspondence.kit.ids import new_id, new_ids
from correspondence.kit.text import (
    ORG_URN,
    is_https_url,
    is_markdown,
    is_plain_text,
    normalise_recipient,
    strip_resource_prefix,
)
from correspondence.limits.use_cases.notification_cap import NotificationCap
from correspondence.notification.rules import NotificationPlan, parse_template, validate_notification
from correspondence.registry.cache import ResourceCache

_LANGUAGES = ("nb", "nn", "en")
_ORDER_STATUS = ("Success", "MissingContact", "Failure")
_END_OF_TIME = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True)
class InitializeResult:
    body: dict[str, Any]
    replayed: bool
    created: int


def _request_hash(
    request: InitializeCorrespondencesExt, resource_id: str, uploads: list[UploadedFile] | None
) -> bytes:
    """The payload a key stands for; with a multipart Initialize's files (name, size, MD5), so the
    same form with other files is another payload (409), not a replay."""
    canonical = request.model_dump(mode="json", by_alias=True)
    canonical["correspondence"]["resourceId"] = resource_id
    canonical.pop("idempotentKey", None)
    if uploads:
        canonical["files"] = [[u.file_name, u.size, u.md5] for u in uploads]
    return hashlib.blake2b(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS), digest_size=16).digest()


def _check_external_references(request: InitializeCorrespondencesExt) -> None:
    refs = request.correspondence.externalReferences or []
    kinds = [r.referenceType for r in refs]
    if kinds.count(ReferenceTypeExt.DialogportenTransmissionType) > 1:
        raise errors.ONE_TRANSMISSION_TYPE()
    has_dialog = ReferenceTypeExt.DialogportenDialogId in kinds
    if ReferenceTypeExt.DialogportenTransmissionType in kinds and not has_dialog:
        raise errors.TRANSMISSION_TYPE_NEEDS_DIALOG()
    for ref in refs:
        if ref.referenceType is ReferenceTypeExt.DialogportenDialogId:
            try:
                dialog = uuid.UUID(ref.referenceValue)
            except (ValueError, AttributeError, TypeError):
                raise errors.DIALOG_ID_INVALID() from None
            if dialog.int == 0:
                raise errors.DIALOG_ID_INVALID()
            if len(request.recipients) > 1:
                raise errors.TRANSMISSION_ONE_RECIPIENT()
            if request.correspondence.replyOptions or request.correspondence.isConfirmationNeeded:
                raise errors.TRANSMISSION_NO_GUI_ACTIONS()
            # There is no Dialogporten here (DESIGN decision 7): no dialog can be found.
            raise errors.DIALOG_NOT_FOUND()


async def initialize_correspondences(
    *,
    pool: asyncpg.Pool,
    resources: ResourceCache,
    caller: Caller,
    request: InitializeCorrespondencesExt,
    reminder_delay: timedelta,
    uploads: list[UploadedFile] | None = None,
    scan: bool = False,
    min_expiration_days: int = 1,
    max_file_bytes: int = 2_000_000_000,
    notification_cap: NotificationCap | None = None,
    writer: InitializeWriter | None = None,
) -> InitializeResult:
    """`uploads`: the files of a multipart Initialize (None on the JSON endpoint); `scan`: new
    files wait for a malware scan before the correspondences may be published;
    `notification_cap`: the daily cap, when some owner has one (429 instead of writing);
    `writer`: group commit with concurrent requests (group_write.py), for those it can write."""
    corr = request.correspondence
    content = corr.content
    now = clock.now()
    if corr.notification is not None:
        parse_template(corr.notification.notificationTemplate)  # an undefined number fails first
    # Any number of recipients (DESIGN decision 2; the reference answers 1047 for more than one).
    key = request.idempotentKey
    resource_id = strip_resource_prefix(corr.resourceId)
    request_hash = _request_hash(request, resource_id, uploads) if key is not None else b""

    resource = await resources.get(pool, resource_id)
    if resource is None:
        raise errors.RESOURCE_UNKNOWN()
    if caller.org is None or caller.org != resource.owner_org:
        raise errors.NO_ACCESS()
    # Only now, with the caller allowed to send for the resource's owner: that owner's keys.
    if key is not None:
        replay = await _replay(pool, resource.owner_org, key, request_hash)
        if replay is not None:
            return replay
    has_dialog = any(
        r.referenceType is ReferenceTypeExt.DialogportenDialogId for r in corr.externalReferences or []
    )
    if not (
        resource.resource_type == "CorrespondenceService"
        or (resource.resource_type == "AltinnApp" and has_dialog)
    ):
        raise errors.RESOURCE_TYPE()
    if resource.resource_type != "AltinnApp":
        if resource.confidential == "Confidential" and not corr.isConfidential:
            raise errors.CONFIDENTIAL_REQUIRED()
        if corr.isConfidential and resource.confidential == "NotConfidential":
            raise errors.NOT_CONFIDENTIAL_RESOURCE()
    if corr.allowForwarding and resource.min_auth_level > 0:
        raise errors.FORWARDING_AUTH_LEVEL()

    recipients = [normalise_recipient(r) for r in request.recipients]
    if len(set(recipients)) != len(recipients):
        raise errors.RECIPIENTS_NOT_UNIQUE()
    if corr.isConfirmationNeeded and corr.dueDateTime is None:
        raise errors.DUE_REQUIRED()

    publish_time = corr.requestedPublishTime or now
    if corr.dueDateTime is not None:
        if corr.dueDateTime < now:
            raise errors.DUE_BEFORE_TODAY()
        if corr.dueDateTime < publish_time:
            raise errors.DUE_BEFORE_PUBLISH()

    language = content.language if content.language and content.language.strip() else "nb"
    if language.lower() not in _LANGUAGES:
        raise errors.INVALID_LANGUAGE()
    if not content.messageTitle.strip():
        raise errors.TITLE_EMPTY()
    if not is_plain_text(content.messageTitle):
        raise errors.TITLE_NOT_PLAIN()
    if not is_markdown(content.messageBody):
        raise errors.BODY_NOT_MARKDOWN()
    if not content.messageBody.strip():
        raise errors.BODY_EMPTY()
    if corr.messageSender and not is_plain_text(corr.messageSender):
        raise errors.MESSAGE_SENDER_NOT_PLAIN()

    _check_external_references(request)

    attachments = await plan_attachments(
        pool,
        request,
        owner_org=resource.owner_org,
        resource_id=resource_id,
        uploads=uploads,
        publish_time=publish_time,
        now=now,
        min_expiration_days=min_expiration_days,
        max_file_bytes=max_file_bytes,
        scan=scan,
    )

    for option in corr.replyOptions:
        if not is_https_url(option.linkURL):
            raise errors.REPLY_OPTIONS_INVALID()

    plan: NotificationPlan | None = None
    if corr.notification is not None:
        plan = validate_notification(corr.notification, language=language, recipient_count=len(recipients))
    attachments.verify_checksums()

    n = len(recipients)
    ids = new_ids(n)
    content_id = new_id()
    main_oids: list[uuid.UUID] | None = None
    rem_oids: list[uuid.UUID | None] | None = None
    main_time = max(publish_time, now)
    # Capped: a publish time within the delay of year 9999's end would overflow (a 500 before).
    reminder_time = main_time + min(reminder_delay, _END_OF_TIME - main_time)
    if plan is not None:
        main_oids = new_ids(n)
        rem_oids = list(new_ids(n)) if plan.send_reminder else [None] * n
    else:
        main_oids = [None] * n  # type: ignore[list-item]
        rem_oids = [None] * n

    args: list[Any] = [
        content_id,
        language,
        content.messageTitle,
        content.messageSummary or "",
        content.messageBody,
        orjson.dumps([o.model_dump(by_alias=True) for o in corr.replyOptions]).decode(),
        orjson.dumps(corr.propertyList).decode(),
        orjson.dumps(
            [
                {"referenceValue": r.referenceValue, "referenceType": r.referenceType.name}
                for r in corr.externalReferences or []
            ]
        ).decode(),
        orjson.dumps(plan.stored).decode() if plan is not None else None,
        ids,
        recipients,
        resource_id,
        ORG_URN + resource.owner_org,
        resource.owner_org,
        corr.sendersReference,
        corr.messageSender,
        publish_time,
        corr.dueDateTime,
        corr.ignoreReservation,
        corr.isConfirmationNeeded,
        corr.isConfidential,
        corr.allowForwarding,
        key,
        request_hash,
        main_oids,
        rem_oids,
        plan.template if plan is not None else None,
        plan.channel if plan is not None else 0,
        plan.reminder_channel if plan is not None else 0,
        main_time,
        reminder_time,
        now,
        n == 1,
        plan.override_registered if plan is not None else False,
        bool(plan.custom_recipients) if plan is not None else False,
        attachments.ids,
        attachments.expirations,
        attachments.pending,
    ]

    def write() -> Awaitable[list[asyncpg.Record]]:
        if writer is not None and groupable(args):
            return writer.write(args)
        return write_initialize(
            pool,
            attachments,
            now=now,
            party=caller_party(caller),
            write=lambda conn: repo.insert_initialize(conn, args),
        )

    if notification_cap is None or plan is None:
        rows = await write()
    else:
        rows = await notification_cap.within(
            pool,
            owner=resource.owner_org,
            count=n * (2 if plan.send_reminder else 1),
            now=now,
            write=write,
            written=lambda rows: bool(rows) and rows[0]["written"],
        )
    if not rows or not rows[0]["written"]:
        if n == 1 and rows and rows[0]["reserved"]:
            raise errors.RECIPIENT_RESERVED(recipient=recipients[0])
        if key is not None:
            replay = await _replay(pool, resource.owner_org, key, request_hash)
            if replay is not None:
                return replay
        raise errors.IDEMPOTENT_KEY_USED()

    items = []
    for i, row in enumerate(rows):
        notifications: list[dict[str, Any]] = []
        if row["main_status"] is not None:
            notifications.append(
                {
                    "orderId": str(main_oids[i]),
                    "isReminder": False,
                    "status": _ORDER_STATUS[row["main_status"]],
                }
            )
        if row["rem_status"] is not None:
            notifications.append(
                {"orderId": str(rem_oids[i]), "isReminder": True, "status": _ORDER_STATUS[row["rem_status"]]}
            )
        items.append(
            {
                "correspondenceId": str(ids[i]),
                "status": "Reserved"
                if row["reserved"]
                else ("Initialized" if attachments.pending else "ReadyForPublish"),
                "recipient": recipients[i],
                "notifications": notifications,
            }
        )
    attachment_ids = [str(a) for a in attachments.ids]
    return InitializeResult(
        {"correspondences": items, "attachmentIds": attachment_ids}, replayed=False, created=n
    )


async def _replay(
    pool: asyncpg.Pool, owner_org: str, key: uuid.UUID, request_hash: bytes
) -> InitializeResult | None:
    """The same key and payload → the original answer again; another payload → 409 (DESIGN 2).
    Keys are the service owner's: the caller was already found allowed to send for `owner_org`."""
    found = await repo.find_idempotency_key(pool, owner_org, key)
    if found is None:
        return None
    if bytes(found["request_hash"]) != request_hash:
        raise errors.IDEMPOTENT_KEY_USED()
    rows = await repo.initialized_results(pool, list(found["correspondence_ids"]))
    items = []
    for row in rows:
        notifications = [
            {"orderId": str(oid), "isReminder": rem, "status": _ORDER_STATUS[st]}
            for oid, rem, st in zip(
                row["order_ids"], row["order_reminders"], row["order_statuses"], strict=True
            )
        ]
        items.append(
            {
                "correspondenceId": str(row["id"]),
                "status": STATUS_NAMES[row["status"]],
                "recipient": row["recipient"],
                "notifications": notifications,
            }
        )
    attachment_ids = await attachment_repo.attachment_ids_of(pool, list(found["correspondence_ids"]))
    return InitializeResult(
        {"correspondences": items, "attachmentIds": [str(a) for a in attachment_ids]},
        replayed=True,
        created=0,
    )
