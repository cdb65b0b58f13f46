"""GET /metrics: orders, sends, queues, events and deliveries as Prometheus gauges.

Values are counted in PostgreSQL when scraped, so any number of API and worker processes report
the same truth and nothing is lost on restart (no per-process registry to merge)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import Response

from correspondence.auth.dependencies import ServicesDep
from correspondence.kit.errors import PlainError
from correspondence.metrics import repository as repo

router = APIRouter(tags=["Health"])

TEXT = "text/plain; version=0.0.4; charset=utf-8"


def _label(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class _Text:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, help_text: str, kind: str = "gauge") -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, value: float, **labels: object) -> None:
        inner = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
        self.lines.append(f"{name}{{{inner}}} {value}" if inner else f"{name} {value}")

    def render(self) -> str:
        return "\n".join(self.lines) + "\n"


@router.get("/metrics", include_in_schema=False)
async def metrics(services: ServicesDep) -> Response:
    if not services.settings.metrics_enabled:
        raise PlainError(404, "Metrics are disabled.")
    out = _Text()
    async with services.pool.acquire() as conn:
        jobs = await repo.job_counts(conn)
        orders = await repo.notification_order_counts(conn)
        deliveries = await repo.notification_delivery_counts(conn)
        events = await repo.event_counts(conn)
        event_deliveries = await repo.event_delivery_counts(conn)

    out.family("correspondence_jobs", "Background jobs not yet done, by task and state.")
    for r in jobs:
        out.sample("correspondence_jobs", r["n"], task=r["task"], state=repo.JOB_STATES[r["status"]])

    out.family("correspondence_notification_orders", "Notification orders by processing status.")
    for r in orders:
        out.sample("correspondence_notification_orders", r["n"], status=r["status"])

    out.family(
        "correspondence_notifications",
        "Notifications per recipient address by channel and send status (Email_Succeeded, SMS_Failed, ...).",
    )
    for r in deliveries:
        out.sample("correspondence_notifications", r["n"], channel=r["channel"], status=r["status"])
    sent = sum(r["n"] for r in deliveries if r["status"] in _SENT)
    failed = sum(r["n"] for r in deliveries if "_Failed" in r["status"])
    out.family("correspondence_notifications_sent", "Notifications accepted by the SMTP server or gateway.")
    out.sample("correspondence_notifications_sent", sent)
    out.family("correspondence_notifications_failed", "Notifications that finally failed.")
    out.sample("correspondence_notifications_failed", failed)
    out.family("correspondence_notifications_queued", "Notifications waiting to be sent or retried.")
    out.sample("correspondence_notifications_queued", sum(r["n"] for r in deliveries) - sent - failed)

    out.family("correspondence_events_outbox_pending", "Outbox rows not yet expanded into events.")
    out.sample("correspondence_events_outbox_pending", events["outbox_pending"])
    out.family("correspondence_events", "CloudEvents recorded.")
    out.sample("correspondence_events", events["events"])
    out.family("correspondence_event_subscriptions", "Active webhook subscriptions.")
    out.sample("correspondence_event_subscriptions", events["subscriptions"])
    out.family("correspondence_event_deliveries", "Webhook deliveries by state.")
    for r in event_deliveries:
        out.sample("correspondence_event_deliveries", r["n"], state=repo.DELIVERY_STATES[r["status"]])
    out.family("correspondence_event_delivery_attempts", "POST attempts made for webhook deliveries.")
    out.sample("correspondence_event_delivery_attempts", sum(r["attempts"] for r in event_deliveries))
    return Response(out.render(), media_type=TEXT)


_SENT = frozenset({"Email_Succeeded", "Email_Delivered", "SMS_Accepted", "SMS_Delivered"})
