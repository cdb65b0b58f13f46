"""Recipients' Fetched rows in a table of their own, as the reference keeps them (CorrespondenceFetches).

Every recipient overview and details call writes a Fetched row, so they outnumber all other history
rows put together. In correspondence_statuses each cost a primary-key entry and two random index
entries (…_by_correspondence and the partial …_fetched index the debounce read); at 10 M
correspondences the overviews spent more PostgreSQL time writing those than reading the
correspondence. Here a Fetched row is one heap row and one index entry, (correspondence_id,
fetched), which serves both the history and the debounce probe (same party within 15 s).

The ids come from the status history's sequence, so a correspondence's history keeps one order
(time, then id) across both tables. Searching by `status=Fetched` now finds nothing, as in the
reference, where Fetched is not in the status table either.

Revision ID: 0022
Revises: 0021
"""

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

UPGRADE = [
    """CREATE TABLE correspondence_fetches (
         id                bigint NOT NULL DEFAULT nextval('correspondence_statuses_id_seq'::regclass),
         correspondence_id uuid NOT NULL,
         party             text,
         fetched           timestamptz NOT NULL
       )""",
    """INSERT INTO correspondence_fetches (id, correspondence_id, party, fetched)
       SELECT id, correspondence_id, party, status_changed FROM correspondence_statuses WHERE status = 3""",
    "DELETE FROM correspondence_statuses WHERE status = 3",
    "DROP INDEX correspondence_statuses_fetched",
    """CREATE INDEX correspondence_fetches_by_correspondence
       ON correspondence_fetches (correspondence_id, fetched)""",
]

DOWNGRADE = [
    """INSERT INTO correspondence_statuses (id, correspondence_id, status, status_text, status_changed, party)
       OVERRIDING SYSTEM VALUE
       SELECT id, correspondence_id, 3, 'Fetched', fetched, party FROM correspondence_fetches""",
    """CREATE INDEX correspondence_statuses_fetched
       ON correspondence_statuses (correspondence_id, party, status_changed DESC) WHERE status = 3""",
    "DROP TABLE correspondence_fetches",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
