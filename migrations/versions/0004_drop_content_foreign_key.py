"""Drop the foreign key from correspondences to their content.

The content row and its correspondences are written by the same statement, so the key only added
a trigger per correspondence: 27 % of a 500-recipient Initialize statement (bench/RESULTS.md).

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE correspondences DROP CONSTRAINT IF EXISTS correspondences_content_id_fkey")


def downgrade() -> None:
    op.execute(
        "ALTER TABLE correspondences ADD CONSTRAINT correspondences_content_id_fkey "
        "FOREIGN KEY (content_id) REFERENCES correspondence_contents (id)"
    )
