"""Drop correspondences_owner_sent: no statement needs it.

A service owner's lists always name the resource: search requires `resourceId` (api.md §3.3) and the
web's sent list is per resource, so they read correspondences_owner_list
(service_owner_id, resource_id, requested_publish_time DESC, id DESC), which answers the same
newest-first order for one resource with no filter. The one search that names no resource, the
idempotentKey short-cut, reads the owner's rows either way (with a filter on the key) and takes
owner_list as well. Every index on `correspondences` costs each Initialize row its insert (~7 µs),
and at 10 M rows this one is about 0.5 GB that every checkpoint and vacuum also walks
(bench/RESULTS.md, "Search and overview at 10M rows").

Revision ID: 0016
Revises: 0015
"""

from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("DROP INDEX IF EXISTS correspondences_owner_sent")


def downgrade() -> None:
    op.execute(
        """CREATE INDEX correspondences_owner_sent
             ON correspondences (service_owner_id, requested_publish_time DESC, id DESC)
             INCLUDE (status, resource_id)"""
    )
