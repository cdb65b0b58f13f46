"""Current status on the correspondence row, due-date facts, and the list indexes for search.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

UPGRADE = """
ALTER TABLE correspondences
    ADD COLUMN status smallint NOT NULL DEFAULT 1,
    ADD COLUMN status_changed timestamptz,
    ADD COLUMN read_at timestamptz,
    ADD COLUMN confirmed_at timestamptz,
    ADD COLUMN due_checked timestamptz,
    ADD COLUMN never_read boolean,
    ADD COLUMN never_confirmed boolean;
UPDATE correspondences c SET status = s.status, status_changed = s.status_changed
FROM (SELECT DISTINCT ON (correspondence_id) correspondence_id, status, status_changed
      FROM correspondence_statuses WHERE status NOT IN (3, 12)
      ORDER BY correspondence_id, status IN (7, 8) DESC, status_changed DESC, id DESC) s
WHERE s.correspondence_id = c.id;
UPDATE correspondences SET status_changed = created WHERE status_changed IS NULL;
ALTER TABLE correspondences ALTER COLUMN status_changed SET NOT NULL;
-- Inbox and sent lists across resources, newest first, with status and resource riding along so the
-- filters are answered from the index.
DROP INDEX correspondences_recipient_list;
DROP INDEX correspondences_owner_list;
CREATE INDEX correspondences_recipient_list
    ON correspondences (recipient, resource_id, requested_publish_time DESC, id DESC) INCLUDE (status);
CREATE INDEX correspondences_owner_list
    ON correspondences (service_owner_id, resource_id, requested_publish_time DESC, id DESC) INCLUDE (status);
CREATE INDEX correspondences_recipient_inbox
    ON correspondences (recipient, requested_publish_time DESC, id DESC) INCLUDE (status, resource_id);
CREATE INDEX correspondences_owner_sent
    ON correspondences (service_owner_id, requested_publish_time DESC, id DESC) INCLUDE (status, resource_id);
CREATE INDEX correspondence_statuses_fetched
    ON correspondence_statuses (correspondence_id, party, status_changed DESC) WHERE status = 3
"""

DOWNGRADE = """
DROP INDEX correspondence_statuses_fetched;
DROP INDEX correspondences_owner_sent;
DROP INDEX correspondences_recipient_inbox;
ALTER TABLE correspondences DROP COLUMN status, DROP COLUMN status_changed, DROP COLUMN read_at,
    DROP COLUMN confirmed_at, DROP COLUMN due_checked, DROP COLUMN never_read, DROP COLUMN never_confirmed
"""


def _run(sql: str) -> None:
    for statement in sql.split(";"):
        if statement.strip():
            op.execute(statement)


def upgrade() -> None:
    _run(UPGRADE)


def downgrade() -> None:
    _run(DOWNGRADE)
