"""Due jobs indexed per worker lane: publishing is claimed on its own.

A worker runs two lanes side by side (kit/jobs.py): the first claims only publish jobs, the other
everything else. One due-jobs index over all tasks made the first lane's claim walk past every
notification, delivery and reminder job due before it; with one partial index per lane each claim
reads only its own jobs. Every queued job is still in exactly one of them, so Initialize writes no
more index entries than before.

Revision ID: 0021
Revises: 0020
"""

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

UPGRADE = [
    "CREATE INDEX jobs_due_first ON jobs (run_at) WHERE status = 0 AND task IN ('correspondence.publish')",
    "CREATE INDEX jobs_due_rest ON jobs (run_at) WHERE status = 0 AND task NOT IN ('correspondence.publish')",
    "DROP INDEX jobs_due",
]

DOWNGRADE = [
    "CREATE INDEX jobs_due ON jobs (run_at) WHERE status = 0",
    "DROP INDEX jobs_due_rest",
    "DROP INDEX jobs_due_first",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
