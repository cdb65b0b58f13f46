"""Send the e-mail of a forward (behaviour.md §8.4), at most once, with the attachments that fit.

As the reference composes it: subject = the message title; body = the forwarding text, a `---`
line and the message body (or the body alone), as plain text; the attachments as files. They are
included in their order while their total stays within `attachment_limit` bytes; the ones that do
not fit, or whose bytes are gone (expired, purged), are named in a note at the end of the body
saying they are in the recipient's inbox.

Sending follows the notification slice's discipline: the forward is claimed (`Email_Sending`) and
committed before the message leaves, and settled right after in its own transaction together with
the `Forwarded` history row and the `correspondenceforwarded` event, so a job that runs again, or
is taken over from a dead worker, never sends it twice (a forward left mid-send ends
`Email_Failed` with "outcome unknown"). Transient failures are retried with the notification
slice's backoff and attempt limit.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from correspondence.adapters.blobs import BlobNotFound, BlobStore
from correspondence.adapters.email import Email, EmailAttachment, EmailSender
from correspondence.adapters.outbound import DeliveryError
from correspondence.attachment import repository as attachment_repo
from correspondence.attachment.files import download_type
from correspondence.correspondence import repository as repo
from correspondence.events import outbox
from correspondence.kit import clock, jobs
from correspondence.notification import statuses as st
from correspondence.notification.repository import UNKNOWN_OUTCOME
from correspondence.notification.use_cases.deliver import RetryPolicy

log = logging.getLogger("correspondence.forward")

CLAIMABLE = [st.EMAIL_NEW, st.EMAIL_TRANSIENT]

# The note under the body naming the attachments left out, in the correspondence's language.
LEFT_OUT = {
    "nb": "Disse vedleggene er ikke med i e-posten, fordi de til sammen er større enn {limit} som kan "
    "videresendes på e-post, eller ikke lenger er tilgjengelige. De finnes i mottakerens innboks:",
    "nn": "Desse vedlegga er ikkje med i e-posten, fordi dei til saman er større enn {limit} som kan "
    "vidaresendast på e-post, eller ikkje lenger er tilgjengelege. Dei finst i innboksen til mottakaren:",
    "en": "These attachments are not included in this e-mail, as together they exceed the {limit} that "
    "can be forwarded by e-mail, or are no longer available. They are in the recipient's inbox:",
}


@dataclass(frozen=True, slots=True)
class Composed:
    email: Email
    left_out: int


def megabytes(size: int) -> str:
    return f"{size / 1_000_000:g} MB"


async def _read(blobs: BlobStore, key: str) -> bytes:
    return b"".join([chunk async for chunk in blobs.get(key)])


async def _attachments(
    pool: asyncpg.Pool, blobs: BlobStore, cid: uuid.UUID, limit: int, now: datetime
) -> tuple[list[EmailAttachment], list[str]]:
    """The files that fit within `limit` bytes in all, in order, and the names of the others."""
    included: list[EmailAttachment] = []
    left_out: list[str] = []
    total = 0
    for row in await attachment_repo.of_correspondence(pool, cid):
        name = row["display_name"] or row["file_name"]
        expired = row["expiration_time"] is not None and row["expiration_time"] <= now
        size = row["size"]
        usable = row["status"] == attachment_repo.PUBLISHED and row["blob_key"] and size is not None
        if not usable or expired or total + int(size) > limit:
            left_out.append(name)
            continue
        try:
            data = await _read(blobs, row["blob_key"])
        except BlobNotFound:
            left_out.append(name)
            continue
        total += len(data)
        included.append(EmailAttachment(name, download_type(row["file_name"]), data))
    return included, left_out


async def compose(
    pool: asyncpg.Pool, blobs: BlobStore, claimed: asyncpg.Record, limit: int, now: datetime
) -> Composed:
    row = await repo.get_correspondence(pool, claimed["correspondence_id"])
    assert row is not None  # correspondences are never deleted
    text = claimed["forwarding_text"]
    body = f"{text}\n\n---\n\n{row['message_body']}" if text else str(row["message_body"])
    files, left_out = await _attachments(pool, blobs, claimed["correspondence_id"], limit, now)
    if left_out:
        note = LEFT_OUT.get(row["language"], LEFT_OUT["nb"]).format(limit=megabytes(limit))
        body += "\n\n---\n\n" + note + "\n" + "\n".join(f"- {name}" for name in left_out)
    email = Email(
        claimed["address_as_given"],
        str(row["message_title"]),
        body,
        attachments=tuple(files),
        attempt=claimed["attempts"],
    )
    return Composed(email, len(left_out))


async def _send(
    pool: asyncpg.Pool, blobs: BlobStore, sender: EmailSender, claimed: asyncpg.Record, limit: int
) -> tuple[DeliveryError | None, int | None]:
    try:
        composed = await compose(pool, blobs, claimed, limit, clock.now())
        await sender.send(composed.email)
    except DeliveryError as exc:
        return exc, None
    except Exception as exc:  # storage trouble or an adapter's bug: try again later
        log.exception("forwarding e-mail failed")
        return DeliveryError(f"{type(exc).__name__}: {exc}", permanent=False), None
    return None, composed.left_out


async def _settle(
    pool: asyncpg.Pool,
    claimed: asyncpg.Record,
    failure: DeliveryError | None,
    left_out: int | None,
    retry: RetryPolicy,
) -> None:
    """The outcome, and on success the history row and the event, committed together."""
    done = clock.now()
    if failure is None:
        status, next_attempt = st.EMAIL_SUCCEEDED, done
    elif failure.permanent or claimed["attempts"] >= retry.max_attempts:
        status, next_attempt = st.EMAIL_FAILED, done
    else:
        status, next_attempt = st.EMAIL_TRANSIENT, done + retry.delay(claimed["attempts"])
    cid = claimed["correspondence_id"]
    async with pool.acquire() as conn, conn.transaction():
        await repo.record_forward_outcome(
            conn,
            claimed["id"],
            status=status,
            error=None if failure is None else str(failure)[:2000],
            next_attempt=next_attempt,
            sent=done if failure is None else None,
            left_out=left_out,
            at=done,
        )
        if failure is None:
            # Dated when it was forwarded, as the reference does (behaviour.md §2.3).
            await repo.append_statuses(
                conn, [cid], [repo.FORWARDED], ["Forwarded"], claimed["forwarded_on"], claimed["forwarded_by"]
            )
            await outbox.record(conn, "correspondenceforwarded", [cid])


async def send_forwards(
    conn: asyncpg.Connection,
    *,
    pool: asyncpg.Pool,
    ids: list[uuid.UUID],
    sender: EmailSender,
    blobs: BlobStore,
    retry: RetryPolicy,
    attachment_limit: int,
) -> None:
    now = clock.now()
    until = now + timedelta(seconds=retry.claim_seconds)
    claimed = await repo.claim_forwardings(
        pool, ids, now, until, sending=st.EMAIL_SENDING, claimable=CLAIMABLE
    )
    for row in claimed:  # one at a time: each holds its files in memory while it is sent
        failure, left_out = await _send(pool, blobs, sender, row, attachment_limit)
        await _settle(pool, row, failure, left_out, retry)
    await _follow_up(conn, ids, clock.now())


async def _follow_up(conn: asyncpg.Connection, ids: list[uuid.UUID], now: datetime) -> None:
    """Derived from the stored state only, so a re-run does exactly what a first run would."""
    await repo.give_up_stale_forwardings(
        conn, ids, now, sending=st.EMAIL_SENDING, failed=st.EMAIL_FAILED, reason=UNKNOWN_OUTCOME
    )
    waiting, due = await repo.unfinished_forwardings(conn, ids, sending=st.EMAIL_SENDING, claimable=CLAIMABLE)
    if waiting and due is not None:
        run_at = max(due, now + timedelta(seconds=1))
        await jobs.enqueue(conn, repo.FORWARD_TASK, run_at=run_at, payload={"ids": [str(i) for i in waiting]})
