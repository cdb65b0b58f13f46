"""Blobs written before the rows that refer to them commit are recorded as pending first, so a
sweeper can delete the bytes of a writer that died in between; and an upload's own blob key is
recorded when it starts, so an upload that finishes after it lost (purged, failed, superseded)
knows it and deletes its bytes instead of bringing the attachment back.

Existing rows keep their recorded `blob_key` (attachments/{id}); new uploads write a fresh key
each (attachments/{id}.{uploadId}).

Revision ID: 0011
Revises: 0010
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE attachments ADD COLUMN upload_key text")
    op.execute(
        "CREATE TABLE pending_blobs ("
        " key text PRIMARY KEY,"
        " created timestamptz NOT NULL,"
        " alive timestamptz NOT NULL)"
    )
    op.execute("CREATE INDEX pending_blobs_by_alive ON pending_blobs (alive)")


def downgrade() -> None:
    op.execute("DROP TABLE pending_blobs")
    op.execute("ALTER TABLE attachments DROP COLUMN upload_key")
