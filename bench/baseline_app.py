"""A bare FastAPI + asyncpg app: the yardstick for the Initialize benchmark.

`POST /create` parses the load-test body with a plain pydantic model (FastAPI body parameter, no
custom validation, no auth) and writes one correspondence as a 4-INSERT transaction: correspondence,
content, status and notification rows, in tables of its own. Pool of 10, asyncpg's defaults.

    BASELINE_DATABASE_URL=postgresql://... .venv/bin/python bench/baseline_app.py --port 8001

`initialize.py` starts it exactly like that, creates its database and applies `SCHEMA`.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import asyncpg
import uuid_utils
from fastapi import FastAPI, Request
from pydantic import BaseModel, ConfigDict, Field

POOL_SIZE = 10

SCHEMA = """
CREATE TABLE IF NOT EXISTS b_correspondence (
    id                 uuid PRIMARY KEY,
    resource_id        text NOT NULL,
    recipient          text NOT NULL,
    sender             text NOT NULL,
    senders_reference  text NOT NULL,
    due_date_time      timestamptz,
    created            timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS b_correspondence_recipient
    ON b_correspondence (recipient, resource_id, created DESC);
CREATE INDEX IF NOT EXISTS b_correspondence_sender
    ON b_correspondence (sender, resource_id, created DESC);
CREATE TABLE IF NOT EXISTS b_content (
    correspondence_id  uuid PRIMARY KEY REFERENCES b_correspondence (id),
    language           text NOT NULL,
    title              text NOT NULL,
    summary            text NOT NULL,
    body               text NOT NULL
);
CREATE TABLE IF NOT EXISTS b_status (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    correspondence_id  uuid NOT NULL REFERENCES b_correspondence (id),
    status             smallint NOT NULL,
    changed            timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS b_status_by_correspondence ON b_status (correspondence_id);
CREATE TABLE IF NOT EXISTS b_notification (
    id                 uuid PRIMARY KEY,
    correspondence_id  uuid NOT NULL REFERENCES b_correspondence (id),
    template           smallint NOT NULL,
    channel            smallint NOT NULL,
    email_subject      text,
    email_body         text,
    sms_body           text,
    created            timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS b_notification_by_correspondence ON b_notification (correspondence_id);
"""


def _uuid7_sql(salt: str, epoch_ms: int) -> str:
    """A time-ordered (UUIDv7-shaped) id for row g: epoch_ms + g milliseconds, md5-derived random bits."""
    return (
        f"(lpad(to_hex({epoch_ms}::bigint + g), 12, '0') || '7' || substr(md5(g::text || '{salt}'), 1, 3)"
        f" || '8' || substr(md5(g::text || '{salt}'), 4, 15))::uuid"
    )


def prefill_sql(rows: int) -> list[str]:
    """Set-based statements that add `rows` old correspondences with their 3 child rows each."""
    epoch_ms = int((time.time() - 60 * 86400) * 1000)  # one value for every statement: ids must match
    cid = _uuid7_sql("c", epoch_ms)
    created = f"to_timestamp(({epoch_ms}::bigint + g) / 1000.0)"
    series = f"FROM generate_series(1, {rows}) g"
    return [
        f"""INSERT INTO b_correspondence (id, resource_id, recipient, sender, senders_reference,
              due_date_time, created)
            SELECT {cid}, 'bench-initialize',
              'urn:altinn:person:identifier-no:' || lpad((g % 60000)::text, 11, '0'),
              'urn:altinn:organization:identifier-no:991825827', '1',
              {created} + interval '31 days', {created}
            {series}""",
        f"""INSERT INTO b_content (correspondence_id, language, title, summary, body)
            SELECT {cid}, 'nb', 'Meldingstittel', 'Ett sammendrag for meldingen',
              '# meldingsteksten. Som kan være plain text eller markdown '
            {series}""",
        f"""INSERT INTO b_status (correspondence_id, status, changed) SELECT {cid}, 0, {created} {series}""",
        f"""INSERT INTO b_notification (id, correspondence_id, template, channel, email_subject, email_body,
              sms_body, created)
            SELECT {_uuid7_sql("n", epoch_ms)}, {cid}, 0, 3, 'Dette er innholdet i ett varsel',
              'Test av varsel', 'Dette er innholdet i ett testvarsel', {created}
            {series}""",
    ]


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")


class Content(_Model):
    language: str = "nb"
    messageTitle: str
    messageSummary: str | None = None
    messageBody: str


class Notification(_Model):
    notificationTemplate: int = 0
    notificationChannel: int = 0
    emailSubject: str | None = Field(None, alias="EmailSubject")
    emailBody: str | None = Field(None, alias="EmailBody")
    smsBody: str | None = Field(None, alias="SmsBody")
    sendReminder: bool = Field(False, alias="SendReminder")


class Correspondence(_Model):
    resourceId: str
    sendersReference: str
    content: Content
    dueDateTime: datetime | None = None
    notification: Notification | None = None


class CreateRequest(_Model):
    correspondence: Correspondence = Field(alias="Correspondence")
    recipients: list[str] = Field(alias="Recipients")


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    url = os.environ["BASELINE_DATABASE_URL"]
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(SCHEMA)
    finally:
        await conn.close()
    app.state.pool = await asyncpg.create_pool(url, min_size=POOL_SIZE, max_size=POOL_SIZE)
    try:
        yield
    finally:
        await app.state.pool.close()


app = FastAPI(lifespan=lifespan)


def _uuid7() -> uuid.UUID:
    return uuid.UUID(bytes=uuid_utils.uuid7().bytes)


@app.post("/create")
async def create(req: CreateRequest, request: Request) -> dict[str, Any]:
    corr = req.correspondence
    now = datetime.now(UTC)
    cid = _uuid7()
    nid = _uuid7()
    note = corr.notification or Notification()
    pool: asyncpg.Pool = request.app.state.pool
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO b_correspondence (id, resource_id, recipient, sender, senders_reference,"
            " due_date_time, created) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            cid,
            corr.resourceId,
            req.recipients[0],
            "urn:altinn:organization:identifier-no:991825827",
            corr.sendersReference,
            corr.dueDateTime,
            now,
        )
        await conn.execute(
            "INSERT INTO b_content (correspondence_id, language, title, summary, body)"
            " VALUES ($1, $2, $3, $4, $5)",
            cid,
            corr.content.language,
            corr.content.messageTitle,
            corr.content.messageSummary or "",
            corr.content.messageBody,
        )
        await conn.execute(
            "INSERT INTO b_status (correspondence_id, status, changed) VALUES ($1, 0, $2)", cid, now
        )
        await conn.execute(
            "INSERT INTO b_notification (id, correspondence_id, template, channel, email_subject, email_body,"
            " sms_body, created) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            nid,
            cid,
            note.notificationTemplate,
            note.notificationChannel,
            note.emailSubject,
            note.emailBody,
            note.smsBody,
            now,
        )
    return {"correspondenceId": str(cid), "status": "Initialized", "recipient": req.recipients[0]}


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
