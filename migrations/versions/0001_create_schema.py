"""Create the schema: registries, correspondences, statuses, notification orders, idempotency, jobs.

Revision ID: 0001
Revises:
"""

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

UPGRADE = """
CREATE TABLE resources (
    resource_id      text PRIMARY KEY,
    owner_org        text NOT NULL CHECK (owner_org ~ '^[0-9]{9}$'),
    title            text,
    resource_type    text NOT NULL DEFAULT 'CorrespondenceService',
    confidential     text NOT NULL DEFAULT 'NotConfidential',
    min_auth_level   smallint NOT NULL DEFAULT 0,
    created          timestamptz NOT NULL DEFAULT now()
);

-- Party registry (names) and contact registry (like KRR: e-mail, mobile, reservation).
CREATE TABLE parties (
    party            text PRIMARY KEY,
    name             text NOT NULL
);
CREATE TABLE contacts (
    party            text PRIMARY KEY,
    email            text,
    mobile           text,
    reserved         boolean NOT NULL DEFAULT false,
    updated          timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE delegations (
    person           text NOT NULL,
    party            text NOT NULL,
    created          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (person, party)
);

-- One content row per Initialize request, shared by all its correspondences.
CREATE TABLE correspondence_contents (
    id                  uuid PRIMARY KEY,
    language            text NOT NULL,
    message_title       text NOT NULL,
    message_summary     text NOT NULL,
    message_body        text NOT NULL,
    reply_options       jsonb NOT NULL,
    property_list       jsonb NOT NULL,
    external_references jsonb NOT NULL,
    notification        jsonb,
    created             timestamptz NOT NULL
);

CREATE TABLE correspondences (
    id                     uuid PRIMARY KEY,
    content_id             uuid NOT NULL REFERENCES correspondence_contents (id),
    resource_id            text NOT NULL,
    recipient              text NOT NULL,
    sender                 text NOT NULL,
    service_owner_id       text NOT NULL,
    senders_reference      text NOT NULL,
    message_sender         text,
    requested_publish_time timestamptz NOT NULL,
    due_date_time          timestamptz,
    published              timestamptz,
    ignore_reservation     boolean,
    is_confirmation_needed boolean NOT NULL,
    is_confidential        boolean NOT NULL,
    allow_forwarding       boolean NOT NULL,
    idempotent_key         uuid,
    created                timestamptz NOT NULL
);
-- The lists the reference had to add to stop search time-outs: party, resource, newest first.
CREATE INDEX correspondences_recipient_list
    ON correspondences (recipient, resource_id, requested_publish_time DESC, id);
CREATE INDEX correspondences_owner_list
    ON correspondences (service_owner_id, resource_id, requested_publish_time DESC, id);

-- Append-only history. No FK: parent and children are written by the same statement.
CREATE TABLE correspondence_statuses (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    correspondence_id  uuid NOT NULL,
    status             smallint NOT NULL,
    status_text        text NOT NULL,
    status_changed     timestamptz NOT NULL,
    party              text
);
CREATE INDEX correspondence_statuses_by_correspondence
    ON correspondence_statuses (correspondence_id, status);

-- Notification orders, created at Initialize with the contact points resolved then.
-- status: 0 Success (contact found), 1 MissingContact, 2 Failure.
CREATE TABLE notification_orders (
    id                  uuid PRIMARY KEY,
    correspondence_id   uuid NOT NULL,
    is_reminder         boolean NOT NULL,
    template            smallint NOT NULL,
    channel             smallint NOT NULL,
    requested_send_time timestamptz NOT NULL,
    recipient           text NOT NULL,
    email_address       text,
    mobile_number       text,
    status              smallint NOT NULL,
    processing_status   text NOT NULL DEFAULT 'Registered',
    created             timestamptz NOT NULL
);
CREATE INDEX notification_orders_by_correspondence ON notification_orders (correspondence_id);

CREATE TABLE idempotency_keys (
    key                 uuid PRIMARY KEY,
    request_hash        bytea NOT NULL,
    correspondence_ids  uuid[] NOT NULL,
    created             timestamptz NOT NULL DEFAULT now()
);

-- Jobs, enqueued in the transaction that causes them. status: 0 queued, 1 running, 2 done, 3 failed.
CREATE TABLE jobs (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    task          text NOT NULL,
    ref_id        uuid,
    payload       jsonb,
    run_at        timestamptz NOT NULL,
    status        smallint NOT NULL DEFAULT 0,
    attempts      integer NOT NULL DEFAULT 0,
    locked_until  timestamptz,
    last_error    text,
    created       timestamptz NOT NULL DEFAULT now(),
    finished      timestamptz
);
CREATE INDEX jobs_due ON jobs (run_at) WHERE status = 0;
CREATE INDEX jobs_leased ON jobs (locked_until) WHERE status = 1;
"""

DOWNGRADE = """
DROP TABLE jobs, idempotency_keys, notification_orders, correspondence_statuses, correspondences,
    correspondence_contents, delegations, contacts, parties, resources;
"""


def _run(sql: str) -> None:
    # asyncpg prepares each statement, so a script is sent one statement at a time.
    for statement in sql.split(";"):
        if statement.strip():
            op.execute(statement)


def upgrade() -> None:
    _run(UPGRADE)


def downgrade() -> None:
    _run(DOWNGRADE)
