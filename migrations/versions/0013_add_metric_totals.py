"""Metrics that stay cheap at 100 M rows: totals over history kept incrementally, backlogs counted
from partial indexes that only hold the backlog.

`metric_totals` holds one row per (metric, labels). Statement-level triggers with transition tables
add what each statement changed, once per statement (the worker settles notifications and expands
events in batches), in the transaction of the change, so the totals are exactly what a full count
would say. Only the worker writes the tables with triggers: Initialize inserts notification orders,
and orders have an UPDATE trigger only, so the Initialize path pays nothing. Upserts lock their rows
in key order, so two batches never wait for each other in a circle.

What is still waiting (registered/processing orders, new/sending/retrying notifications) is counted
through partial indexes whose size follows the backlog, not the history. Existing rows are counted
once here (the backfill), after the triggers exist and in the same transaction, so nothing written
meanwhile is lost or counted twice.

Revision ID: 0013
Revises: 0012
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

# Per-address statuses that are still waiting (to be sent, for a retry, or being sent).
_WAITING = "'Email_New', 'Email_Failed_TransientError', 'SMS_New', 'Email_Sending', 'SMS_Sending'"
_OPEN_ORDERS = "'Registered', 'Processing'"

UPGRADE = [
    """CREATE TABLE metric_totals (
    metric  text NOT NULL,
    a       text NOT NULL DEFAULT '',
    b       text NOT NULL DEFAULT '',
    value   bigint NOT NULL,
    PRIMARY KEY (metric, a, b))""",
    f"""CREATE INDEX notification_deliveries_waiting ON notification_deliveries (channel, status)
    WHERE status IN ({_WAITING})""",
    f"""CREATE INDEX notification_orders_open ON notification_orders (processing_status)
    WHERE processing_status IN ({_OPEN_ORDERS})""",
]

# Per table: the (metric, a, b, delta) rows one changed row adds (sign +1 for a new row, -1 for an
# old one; {rows} is the transition table), and the statements counted. Notification orders are
# inserted by Initialize, so they have no INSERT trigger: a new order is Registered (a backlog).
_COUNTED = {
    "notification_deliveries": (
        f"SELECT 'notifications', channel, status, {{sign}}::bigint FROM {{rows}}"
        f" WHERE status NOT IN ({_WAITING})",
        ("INSERT", "UPDATE", "DELETE"),
    ),
    "notification_orders": (
        f"SELECT 'notification_orders', processing_status, '', {{sign}}::bigint FROM {{rows}}"
        f" WHERE processing_status NOT IN ({_OPEN_ORDERS})",
        ("UPDATE", "DELETE"),
    ),
    "events": ("SELECT 'events', '', '', {sign}::bigint FROM {rows}", ("INSERT", "DELETE")),
    "event_deliveries": (
        "SELECT 'event_deliveries', status::text, '', {sign}::bigint FROM {rows} WHERE status <> 0"
        " UNION ALL SELECT 'event_delivery_attempts', '', '', {sign}::bigint * attempts FROM {rows}",
        ("INSERT", "UPDATE", "DELETE"),
    ),
}
_TRANSITIONS = {
    "INSERT": ("NEW TABLE AS new_rows", [("new_rows", 1)]),
    "UPDATE": ("OLD TABLE AS old_rows NEW TABLE AS new_rows", [("new_rows", 1), ("old_rows", -1)]),
    "DELETE": ("OLD TABLE AS old_rows", [("old_rows", -1)]),
}
_TRIGGERS: list[str] = []
for _table, (_row, _operations) in _COUNTED.items():
    for _operation in _operations:
        _referencing, _sources = _TRANSITIONS[_operation]
        _changes = " UNION ALL ".join(_row.format(sign=sign, rows=rows) for rows, sign in _sources)
        _name = f"{_table}_{_operation.lower()}_totals"
        UPGRADE.append(
            f"""CREATE FUNCTION {_name}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO metric_totals AS t (metric, a, b, value)
  SELECT metric, a, b, sum(delta) FROM ({_changes}) c(metric, a, b, delta)
  GROUP BY metric, a, b HAVING sum(delta) <> 0 ORDER BY metric, a, b
  ON CONFLICT (metric, a, b) DO UPDATE SET value = t.value + excluded.value;
  RETURN NULL;
END $$"""
        )
        UPGRADE.append(
            f"CREATE TRIGGER {_name} AFTER {_operation} ON {_table} REFERENCING {_referencing}"
            f" FOR EACH STATEMENT EXECUTE FUNCTION {_name}()"
        )
        _TRIGGERS.append(f"DROP TRIGGER {_name} ON {_table}; DROP FUNCTION {_name}")

UPGRADE.append(
    f"""INSERT INTO metric_totals (metric, a, b, value)
    SELECT 'notifications', channel, status, count(*) FROM notification_deliveries
    WHERE status NOT IN ({_WAITING}) GROUP BY channel, status
    UNION ALL
    SELECT 'notification_orders', processing_status, '', count(*) FROM notification_orders
    WHERE processing_status NOT IN ({_OPEN_ORDERS}) GROUP BY processing_status
    UNION ALL
    SELECT 'events', '', '', count(*) FROM events
    UNION ALL
    SELECT 'event_deliveries', status::text, '', count(*) FROM event_deliveries WHERE status <> 0
    GROUP BY status
    UNION ALL
    SELECT 'event_delivery_attempts', '', '', coalesce(sum(attempts), 0) FROM event_deliveries"""
)

DOWNGRADE = [
    *(part for drop in _TRIGGERS for part in drop.split("; ")),
    "DROP TABLE metric_totals",
    "DROP INDEX notification_deliveries_waiting",
    "DROP INDEX notification_orders_open",
]


def upgrade() -> None:
    for statement in UPGRADE:
        op.execute(statement)


def downgrade() -> None:
    for statement in DOWNGRADE:
        op.execute(statement)
