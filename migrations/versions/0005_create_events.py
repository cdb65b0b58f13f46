"""Events: the transactional outbox, the CloudEvents made from it, webhook subscriptions and their
deliveries.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

UPGRADE = """
-- UUIDv7 made in SQL, for rows created set-based (events expanded from the outbox).
CREATE FUNCTION uuid7(ts timestamptz) RETURNS uuid LANGUAGE sql VOLATILE AS $$
  SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
    PLACING substring(int8send(floor(extract(epoch FROM ts) * 1000)::bigint) FROM 3) FROM 1 FOR 6),
    52, 1), 53, 1), 'hex')::uuid
$$;
-- Written in the transaction of the change: one row per (event type, change), naming every
-- correspondence, attachment or notification order it concerns. A bulk Initialize of 500
-- recipients writes one row, not 500. The dispatcher expands rows into events.
CREATE TABLE event_outbox (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    type        text NOT NULL,
    ids         uuid[] NOT NULL,
    created     timestamptz NOT NULL,
    dispatched  timestamptz
);
CREATE INDEX event_outbox_pending ON event_outbox (id) WHERE dispatched IS NULL;

-- CloudEvents 1.0 (behaviour.md §6), one per item. correspondence_id links each event to the
-- correspondence it is about (NULL for stand-alone attachment events), for the sender's views.
CREATE TABLE events (
    id                  uuid PRIMARY KEY,
    type                text NOT NULL,
    source              text NOT NULL,
    resource            text NOT NULL,
    resourceinstance    text NOT NULL,
    subject             text,
    alternativesubject  text,
    time                timestamptz NOT NULL,
    owner_org           text NOT NULL,
    recipient           text,
    correspondence_id   uuid
);
CREATE INDEX events_by_correspondence ON events (correspondence_id) WHERE correspondence_id IS NOT NULL;

-- Webhook subscriptions of service owners (events of the resources they own) and recipients
-- (events of the correspondences they received). secret signs every delivery (HMAC-SHA256).
CREATE TABLE event_subscriptions (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    consumer         text NOT NULL,
    role             smallint NOT NULL,
    end_point        text NOT NULL,
    resource_filter  text,
    type_filter      text,
    subject_filter   text,
    secret           text NOT NULL,
    created_by       text NOT NULL,
    created          timestamptz NOT NULL,
    deleted          timestamptz
);
CREATE INDEX event_subscriptions_by_consumer ON event_subscriptions (consumer) WHERE deleted IS NULL;

-- One row per (event, subscription): the delivery log. status: 0 pending, 1 delivered, 2 failed.
CREATE TABLE event_deliveries (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id         uuid NOT NULL,
    subscription_id  bigint NOT NULL,
    status           smallint NOT NULL DEFAULT 0,
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt     timestamptz NOT NULL,
    locked_until     timestamptz,
    last_status_code integer,
    last_error       text,
    created          timestamptz NOT NULL,
    delivered        timestamptz,
    UNIQUE (event_id, subscription_id)
);
CREATE INDEX event_deliveries_due ON event_deliveries (next_attempt) WHERE status = 0;
CREATE INDEX event_deliveries_by_subscription ON event_deliveries (subscription_id, id DESC);
CREATE INDEX jobs_failed ON jobs (task) WHERE status = 3
"""

DOWNGRADE = """
DROP TABLE event_deliveries, event_subscriptions, events, event_outbox;
DROP FUNCTION uuid7;
DROP INDEX jobs_failed
"""


def _run(sql: str) -> None:
    for statement in sql.split(";"):
        if statement.strip():
            op.execute(statement)


def upgrade() -> None:
    _run(UPGRADE)


def downgrade() -> None:
    _run(DOWNGRADE)
