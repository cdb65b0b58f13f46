"""Batches (issue 13, README "Batches"): one correspondence sent to any number of recipients.

A batch holds the correspondence as given, its recipients in idempotent pages, and its progress.
Nothing is created before commit; then the worker creates the correspondences in chunks through
Initialize's own statement, writing each recipient's correspondence id back here (the link between
a batch and its correspondences: `correspondences` itself is not touched). The partial indexes are
the worker's queues: recipients still to create, created ones not yet published (or failed), and
published ones whose first notification has no outcome yet.

status: 0 Open, 1 Committed, 2 Completed, 3 Cancelled.
outcome: NULL pending, 1 published, 2 failed (not created, or publishing failed), 3 purged first.
notified: NULL pending, 0 no notification ordered, 1 sent, 2 failed (none sent).

Revision ID: 0017
Revises: 0016
"""

from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE batches (
    id                  uuid PRIMARY KEY,
    owner_org           text NOT NULL,
    resource_id         text NOT NULL,
    senders_reference   text NOT NULL,
    request             jsonb NOT NULL,
    idempotent_key      uuid,
    request_hash        bytea,
    status              smallint NOT NULL DEFAULT 0,
    pages               integer NOT NULL DEFAULT 0,
    recipients          integer NOT NULL DEFAULT 0,
    created_count       integer NOT NULL DEFAULT 0,
    published_count     integer NOT NULL DEFAULT 0,
    failed_count        integer NOT NULL DEFAULT 0,
    purged_count        integer NOT NULL DEFAULT 0,
    notified_count      integer NOT NULL DEFAULT 0,
    notify_failed_count integer NOT NULL DEFAULT 0,
    created_by          text,
    created             timestamptz NOT NULL,
    committed           timestamptz,
    completed           timestamptz,
    cancelled           timestamptz
);
CREATE INDEX batches_by_owner ON batches (owner_org, resource_id, created DESC);
CREATE UNIQUE INDEX batches_idempotency ON batches (owner_org, idempotent_key)
    WHERE idempotent_key IS NOT NULL;

CREATE TABLE batch_pages (
    batch_id    uuid NOT NULL,
    page        integer NOT NULL,
    recipients  integer NOT NULL,
    hash        bytea NOT NULL,
    created     timestamptz NOT NULL,
    PRIMARY KEY (batch_id, page)
);

CREATE TABLE batch_recipients (
    batch_id          uuid NOT NULL,
    page              integer NOT NULL,
    position          integer NOT NULL,
    recipient         text NOT NULL,
    correspondence_id uuid,
    outcome           smallint,
    notified          smallint,
    error             text,
    PRIMARY KEY (batch_id, page, position)
);
CREATE UNIQUE INDEX batch_recipients_once ON batch_recipients (batch_id, recipient);
CREATE INDEX batch_recipients_to_create ON batch_recipients (batch_id, page, position)
    WHERE correspondence_id IS NULL AND outcome IS NULL;
CREATE INDEX batch_recipients_to_settle ON batch_recipients (batch_id)
    WHERE correspondence_id IS NOT NULL AND outcome IS NULL;
CREATE INDEX batch_recipients_to_notify ON batch_recipients (batch_id)
    WHERE outcome = 1 AND notified IS NULL
"""

DOWNGRADE = "DROP TABLE batch_recipients, batch_pages, batches"


def _run(sql: str) -> None:
    for statement in sql.split(";"):
        if statement.strip():
            op.execute(statement)


def upgrade() -> None:
    _run(UPGRADE)


def downgrade() -> None:
    _run(DOWNGRADE)
