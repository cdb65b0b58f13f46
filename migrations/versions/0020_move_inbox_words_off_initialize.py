"""The inbox's search words in a table of their own, written when correspondences are published.

Migration 0007 indexed each content's words with a GIN expression index on correspondence_contents,
so every Initialize updated it inside its statement (and the insert that found GIN's pending list
full merged it, in the request). Recipients only ever search published correspondences, so the
words are written by the publish job instead (correspondence/use_cases/publish.py), off the API's
hot path: one row per content, the first time one of its correspondences is published.

Revision ID: 0020
Revises: 0019
"""

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

UPGRADE = [
    "CREATE TABLE content_words (content_id uuid PRIMARY KEY, words tsvector NOT NULL)",
    """INSERT INTO content_words (content_id, words)
       SELECT id, to_tsvector('simple', message_title || ' ' || message_summary) FROM correspondence_contents""",
    "CREATE INDEX content_words_words ON content_words USING gin (words)",
    "DROP INDEX correspondence_contents_words",
]

DOWNGRADE = [
    """CREATE INDEX correspondence_contents_words ON correspondence_contents
       USING gin (to_tsvector('simple', message_title || ' ' || message_summary))""",
    "DROP TABLE content_words",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
