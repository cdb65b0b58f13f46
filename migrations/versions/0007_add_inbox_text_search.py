"""Text search for the web inbox: a GIN index over each content's words, and correspondences by content.

The inbox (web/repository.py) finds a recipient's correspondences whose title or summary has the
searched words. A common word is found by walking the recipient's newest-first list and checking each
content row; a rare word would make that walk read the whole list, so it is found the other way
round: the few matching content rows from the GIN index, then their correspondences by content_id.
pg_trgm would allow infix search, but the embedded PostgreSQL (pgserver) ships no contrib extensions,
so this uses the built-in full text search ('simple' configuration: no stemming, any language).
Content ids are UUIDv7, so the content_id index grows at its right edge (an Initialize appends to it).

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

UPGRADE = """
CREATE INDEX correspondence_contents_words ON correspondence_contents
    USING gin (to_tsvector('simple', message_title || ' ' || message_summary));
CREATE INDEX correspondences_by_content ON correspondences (content_id)
"""

DOWNGRADE = """
DROP INDEX correspondences_by_content;
DROP INDEX correspondence_contents_words
"""


def _run(sql: str) -> None:
    for statement in sql.split(";"):
        if statement.strip():
            op.execute(statement)


def upgrade() -> None:
    _run(UPGRADE)


def downgrade() -> None:
    _run(DOWNGRADE)
