"""Attachments: the shared file objects, their status history, and their links to correspondences.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

UPGRADE = """
-- One row per file, which many correspondences may link (behaviour.md §1.3). status/status_text/
-- status_changed repeat the latest row of attachment_statuses, so checks need no history scan.
CREATE TABLE attachments (
    id                  uuid PRIMARY KEY,
    resource_id         text NOT NULL,
    sender              text NOT NULL,
    service_owner_id    text NOT NULL,
    file_name           text NOT NULL,
    display_name        text,
    is_encrypted        boolean NOT NULL,
    checksum            text,
    senders_reference   text NOT NULL,
    expiration_in_days  integer,
    data_location_type  smallint NOT NULL DEFAULT 0,
    blob_key            text,
    size                bigint,
    status              smallint NOT NULL,
    status_text         text NOT NULL,
    status_changed      timestamptz NOT NULL,
    created             timestamptz NOT NULL
);
CREATE INDEX attachments_by_owner ON attachments (service_owner_id);

-- Append-only history. status: 0 Initialized, 1 UploadProcessing, 2 Published, 3 Purged,
-- 4 Failed, 5 Expired (api.md §7.2).
CREATE TABLE attachment_statuses (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    attachment_id      uuid NOT NULL,
    status             smallint NOT NULL,
    status_text        text NOT NULL,
    status_changed     timestamptz NOT NULL,
    party              text
);
CREATE INDEX attachment_statuses_by_attachment ON attachment_statuses (attachment_id, id);

-- Which correspondences use which attachments, in the order the request named them, each link
-- with its own expiry (max(requestedPublishTime, now) + expirationInDays, behaviour.md §3.6).
CREATE TABLE correspondence_attachments (
    correspondence_id  uuid NOT NULL,
    attachment_id      uuid NOT NULL,
    position           smallint NOT NULL,
    expiration_time    timestamptz,
    created            timestamptz NOT NULL,
    PRIMARY KEY (correspondence_id, attachment_id)
);
CREATE INDEX correspondence_attachments_by_attachment ON correspondence_attachments (attachment_id)
"""

DOWNGRADE = """
DROP TABLE correspondence_attachments, attachment_statuses, attachments
"""


def _run(sql: str) -> None:
    for statement in sql.split(";"):
        if statement.strip():
            op.execute(statement)


def upgrade() -> None:
    _run(UPGRADE)


def downgrade() -> None:
    _run(DOWNGRADE)
