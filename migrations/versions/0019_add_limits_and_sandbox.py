"""Per-owner limits and sandbox outcomes (issue 13, parts 3 and 4).

`owner_notification_usage`: notifications each service owner ordered per day, the count behind
the daily notification cap (reserved by Initialize, given back when it writes nothing); the worker
forgets days older than a week. `contacts.sandbox`: the contact registry's rows the sandbox wrote,
so that only those are removed when the sandbox is turned off (a constant default: no rewrite).

Revision ID: 0019
Revises: 0018
"""

from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE owner_notification_usage (
    owner_org text NOT NULL,
    day       date NOT NULL,
    ordered   bigint NOT NULL,
    PRIMARY KEY (owner_org, day)
);
ALTER TABLE contacts ADD COLUMN sandbox boolean NOT NULL DEFAULT false
"""

DOWNGRADE = """
DELETE FROM contacts WHERE sandbox;
ALTER TABLE contacts DROP COLUMN sandbox;
DROP TABLE owner_notification_usage
"""


def _run(sql: str) -> None:
    for statement in sql.split(";"):
        if statement.strip():
            op.execute(statement)


def upgrade() -> None:
    _run(UPGRADE)


def downgrade() -> None:
    _run(DOWNGRADE)
