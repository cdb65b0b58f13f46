"""Forwarding a correspondence to an e-mail address (api.md §3.11, behaviour.md §1.15, §8.4).

One row per forward: who forwarded, the text, the address (trimmed, lower-case, as the reference
stores it) and the address as given, and the sending of its one e-mail under the notification
slice's discipline (claimed and committed before sending, settled after). A correspondence is
forwarded to an address at most once (error 1064), unless the earlier forward finally failed.

Revision ID: 0015
Revises: 0014
"""

from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE correspondence_forwardings (
    id                uuid PRIMARY KEY,
    correspondence_id uuid NOT NULL,
    forwarded_on      timestamptz NOT NULL,
    forwarded_by      text NOT NULL,
    forwarding_text   text,
    email_address     text NOT NULL,
    address_as_given  text NOT NULL,
    status            text NOT NULL,
    attempts          integer NOT NULL DEFAULT 0,
    next_attempt      timestamptz NOT NULL,
    claimed_until     timestamptz,
    last_error        text,
    sent              timestamptz,
    attachments_left_out integer,
    created           timestamptz NOT NULL,
    updated           timestamptz NOT NULL
);
CREATE UNIQUE INDEX correspondence_forwardings_once
    ON correspondence_forwardings (correspondence_id, email_address) WHERE status <> 'Email_Failed'
"""

DOWNGRADE = "DROP TABLE correspondence_forwardings"


def _run(sql: str) -> None:
    for statement in sql.split(";"):
        if statement.strip():
            op.execute(statement)


def upgrade() -> None:
    _run(UPGRADE)


def downgrade() -> None:
    _run(DOWNGRADE)
