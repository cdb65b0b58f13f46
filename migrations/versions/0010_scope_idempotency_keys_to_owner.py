"""Idempotency keys belong to the service owner that used them: the key is (owner, key), so one
owner's key neither blocks another owner's request nor hands it the first owner's answer.

Existing keys take the owner of the correspondence they created; keys whose correspondences are
gone are dropped (there is no answer left to replay).

Revision ID: 0010
Revises: 0009
"""

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE idempotency_keys ADD COLUMN owner_org text")
    op.execute(
        "UPDATE idempotency_keys k SET owner_org = c.service_owner_id"
        " FROM correspondences c WHERE c.id = k.correspondence_ids[1]"
    )
    op.execute("DELETE FROM idempotency_keys WHERE owner_org IS NULL")
    op.execute("ALTER TABLE idempotency_keys ALTER COLUMN owner_org SET NOT NULL")
    op.execute("ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey")
    op.execute("ALTER TABLE idempotency_keys ADD PRIMARY KEY (owner_org, key)")


def downgrade() -> None:
    # One owner per key again: the first use of a key wins.
    op.execute(
        "DELETE FROM idempotency_keys a USING idempotency_keys b"
        " WHERE a.key = b.key AND (a.created, a.owner_org) > (b.created, b.owner_org)"
    )
    op.execute("ALTER TABLE idempotency_keys DROP CONSTRAINT idempotency_keys_pkey")
    op.execute("ALTER TABLE idempotency_keys ADD PRIMARY KEY (key)")
    op.execute("ALTER TABLE idempotency_keys DROP COLUMN owner_org")
