"""Initialize no longer stores the first two rows of a correspondence's history.

Every correspondence starts with `Initialized` and, in the same instant, `ReadyForPublish` (or
`Reserved`; nothing more while its attachments await their scan). Stored, they were two heap rows and
four index entries a correspondence, a fifth of what bulk Initialize wrote (bench/RESULTS.md). Now
`initial_status` holds the status it was created in (0, 1 or 10) and the history shows the two rows
from it and `created` (repository._HISTORY); their party was always the sender, `sender`.

Rows written before this migration keep their stored rows and `initial_status` NULL, so nothing is
rewritten here: adding a nullable column without a default only changes the catalogue.

Revision ID: 0023
Revises: 0022
"""

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE correspondences ADD COLUMN initial_status smallint")


def downgrade() -> None:
    # Store the implied rows again, in history order (Initialized first), then forget the column.
    op.execute(
        """INSERT INTO correspondence_statuses (correspondence_id, status, status_text, status_changed, party)
           SELECT c.id, i.status, i.txt, c.created, c.sender
           FROM correspondences c
           CROSS JOIN LATERAL (VALUES (0, 0::smallint, 'Initialized'),
             (1, c.initial_status, CASE c.initial_status WHEN 10 THEN 'Reserved' ELSE 'ReadyForPublish' END))
             i(ord, status, txt)
           WHERE c.initial_status IS NOT NULL AND (i.ord = 0 OR c.initial_status <> 0)
           ORDER BY c.id, i.ord"""
    )
    op.execute("ALTER TABLE correspondences DROP COLUMN initial_status")
