"""Recall and pause (issue 13, part 2): a service owner may pause a resource, so nothing of it is
published or notified until it is resumed, and every pause and resume is logged, so the events
outbox can name it.

`resource_pauses` holds the resources paused now: the job paths (publish, notification orders and
deliveries, due dates) ask it whether a row's resource is paused, and it is almost always empty,
so asking costs next to nothing. `resource_pause_log` keeps each pause and resume (who, when): the
id of a log row is what a `resourcepaused` or `resourceresumed` event names.

Recalled notification orders get the processing status `Order_Cancelled` (a text column), so no
schema change is needed for them.

Revision ID: 0018
Revises: 0017
"""

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

UPGRADE = [
    """CREATE TABLE resource_pauses (
    resource_id  text PRIMARY KEY,
    paused       timestamptz NOT NULL,
    paused_by    text
)""",
    """CREATE TABLE resource_pause_log (
    id           uuid PRIMARY KEY,
    resource_id  text NOT NULL,
    owner_org    text NOT NULL,
    action       text NOT NULL CHECK (action IN ('paused', 'resumed')),
    party        text,
    at           timestamptz NOT NULL
)""",
    "CREATE INDEX resource_pause_log_by_resource ON resource_pause_log (resource_id, at DESC)",
]

DOWNGRADE = ["DROP TABLE resource_pause_log", "DROP TABLE resource_pauses"]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
