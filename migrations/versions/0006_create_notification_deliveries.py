"""Notification sending: one delivery row per order, channel and address, and the order's progress.

A delivery row is written before anything is sent and marked `*_Sending` in its own committed
statement before the message leaves, so neither a re-run job nor a crashed worker can send the
same order to the same address twice (the unique key), and a row's status is what details show.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE notification_orders
    ADD COLUMN status_changed timestamptz,
    ADD COLUMN sent timestamptz;
CREATE TABLE notification_deliveries (
    id                uuid PRIMARY KEY,
    order_id          uuid NOT NULL,
    correspondence_id uuid NOT NULL,
    channel           text NOT NULL CHECK (channel IN ('Email', 'SMS')),
    -- The e-mail address or mobile number, or, for a recipient nobody could be found for (or who
    -- is reserved), the party's identifier, so the row is still unique and shown.
    address           text NOT NULL,
    recipient         jsonb NOT NULL,
    subject           text,
    body              text NOT NULL,
    html              boolean NOT NULL DEFAULT false,
    status            text NOT NULL,
    attempts          integer NOT NULL DEFAULT 0,
    next_attempt      timestamptz NOT NULL,
    claimed_until     timestamptz,
    last_error        text,
    sent              timestamptz,
    created           timestamptz NOT NULL,
    updated           timestamptz NOT NULL,
    UNIQUE (order_id, channel, address)
);
CREATE INDEX notification_deliveries_by_correspondence ON notification_deliveries (correspondence_id)
"""

DOWNGRADE = """
DROP TABLE notification_deliveries;
ALTER TABLE notification_orders DROP COLUMN status_changed, DROP COLUMN sent
"""


def _run(sql: str) -> None:
    for statement in sql.split(";"):
        if statement.strip():
            op.execute(statement)


def upgrade() -> None:
    _run(UPGRADE)


def downgrade() -> None:
    _run(DOWNGRADE)
