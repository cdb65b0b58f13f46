"""Uploads in progress say they are alive, so one cut off by a crashed server can be failed (and
uploaded again) instead of staying UploadProcessing for ever.

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE attachments ADD COLUMN upload_alive timestamptz")
    op.execute(
        "CREATE INDEX attachments_uploading ON attachments (status_changed)"
        " WHERE status = 1 AND blob_key IS NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX attachments_uploading")
    op.execute("ALTER TABLE attachments DROP COLUMN upload_alive")
