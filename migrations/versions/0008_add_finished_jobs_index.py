"""Finished jobs by the time they finished, so housekeeping can delete old ones without scanning
the whole table.

Revision ID: 0008
Revises: 0007
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("CREATE INDEX jobs_done ON jobs (finished) WHERE status = 2")


def downgrade() -> None:
    op.execute("DROP INDEX jobs_done")
