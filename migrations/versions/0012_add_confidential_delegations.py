"""A delegation says whether it includes confidential post (the reference's access package
post-til-virksomheten-med-taushetsbelagt-innhold): without it, a person acting for an organisation
is not shown the organisation's confidential correspondence.

Revision ID: 0012
Revises: 0011
"""

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE delegations ADD COLUMN confidential boolean NOT NULL DEFAULT false")


def downgrade() -> None:
    op.execute("ALTER TABLE delegations DROP COLUMN confidential")
