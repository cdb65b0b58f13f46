"""Forward a correspondence to an e-mail address (api.md §3.11, behaviour.md §8.4).

The recipient asks; the forward is stored with its sending job in one transaction and the answer
is the forward's id. The worker sends the e-mail (send_forward.py), and once it is accepted the
history gets `Forwarded`, dated when it was forwarded: in the history only, never the current
status (DESIGN decision 3, as for AttachmentsDownloaded).

Where we differ: no Dialogporten (DESIGN decision 7), so there is no dialog activity; the forward
of a purged correspondence is refused as not found (1001), as our other recipient actions are;
and a forward whose e-mail finally failed may be made again to the same address.
"""

from __future__ import annotations

import uuid

import asyncpg

from correspondence.auth.caller import Caller
from correspondence.correspondence import errors
from correspondence.correspondence import repository as repo
from correspondence.correspondence.use_cases.access import resolve
from correspondence.kit import clock
from correspondence.kit.ids import new_id
from correspondence.kit.text import is_plain_text, is_valid_email
from correspondence.notification import errors as notification_errors
from correspondence.notification import statuses as st

MAX_ADDRESS_LENGTH = 1000
MAX_TEXT_LENGTH = 200


def check_request(row: asyncpg.Record, forward_to: str, text: str | None) -> None:
    """The reference's checks after access, in its order: 3011, 3027, 1063, 1066, 1067."""
    if not is_valid_email(forward_to):
        raise notification_errors.INVALID_EMAIL()
    if len(forward_to) > MAX_ADDRESS_LENGTH:
        raise errors.FORWARD_ADDRESS_TOO_LONG()
    if not row["allow_forwarding"]:
        raise errors.NO_FORWARDING()
    if text is not None and len(text) > MAX_TEXT_LENGTH:
        raise errors.FORWARDING_TEXT_TOO_LONG()
    if text is not None and ("\x00" in text or not is_plain_text(text)):  # NUL: not text at all
        raise errors.FORWARDING_TEXT_NOT_PLAIN()


async def forward(
    *,
    pool: asyncpg.Pool,
    caller: Caller,
    correspondence_id: uuid.UUID,
    forward_to: str,
    forwarding_text: str | None,
) -> uuid.UUID:
    text = forwarding_text if forwarding_text and forwarding_text.strip() else None
    async with pool.acquire() as conn, conn.transaction():
        access = await resolve(conn, caller, correspondence_id, allow=("recipient",), lock=True)
        if access.purged:
            raise errors.NOT_FOUND()
        check_request(access.row, forward_to, text)
        if access.row["read_at"] is None:
            raise errors.NOT_READ_BEFORE_FORWARD()
        address = forward_to.strip().lower()
        if await repo.forwarded_to(conn, correspondence_id, address):
            raise errors.ALREADY_FORWARDED()
        if access.party is None:
            raise errors.PARTY_NOT_FOUND()
        forwarding_id = new_id()
        created = await repo.insert_forwarding(
            conn,
            forwarding_id=forwarding_id,
            cid=correspondence_id,
            at=clock.now(),
            by=access.party,
            text=text,
            address=address,
            as_given=forward_to.strip(),
            status=st.EMAIL_NEW,
        )
        if not created:
            raise errors.ALREADY_FORWARDED()
    return forwarding_id


async def allow_forwarding(*, pool: asyncpg.Pool, correspondence_id: uuid.UUID) -> bool:
    """Forward check (api.md §4.3): for the platform's forward-check scope; no access check."""
    row = await repo.get_correspondence(pool, correspondence_id)
    if row is None:
        raise errors.NOT_FOUND()
    return bool(row["allow_forwarding"])
