"""Malware scans run outside any transaction under a lease on the attachment: a claim (its token),
kept alive by a heartbeat, so a scan is not taken twice while it runs and is taken again when its
worker died; transient failures wait with backoff (never a job attempt) and count towards the
operator's give-up bound.

`scan_due` is both: while a scan holds `scan_token`, the end of its lease; otherwise when the next
attempt may start (NULL: now). The partial index holds only the files awaiting their scan.

Revision ID: 0014
Revises: 0013
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """ALTER TABLE attachments
             ADD COLUMN scan_token uuid,
             ADD COLUMN scan_due timestamptz,
             ADD COLUMN scan_tries integer NOT NULL DEFAULT 0,
             ADD COLUMN scan_failing_since timestamptz"""
    )
    op.execute(
        "CREATE INDEX attachments_awaiting_scan ON attachments (scan_due)"
        " WHERE status = 1 AND blob_key IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX attachments_awaiting_scan")
    op.execute(
        """ALTER TABLE attachments DROP COLUMN scan_token, DROP COLUMN scan_due,
             DROP COLUMN scan_tries, DROP COLUMN scan_failing_since"""
    )
