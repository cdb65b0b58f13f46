"""/metrics is safe to expose: a token when configured (and always in production), bounded labels,
counts that do not scan history, and the same meanings as before (a transient failure waits for
its retry; it has not finally failed)."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr, ValidationError

from correspondence.adapters import open_email_sender
from correspondence.app import build_worker, create_app
from correspondence.config import Settings, TrustedIssuer
from correspondence.kit.db import with_database
from correspondence.kit.migrate import MIGRATIONS, alembic_url
from correspondence.registry import repository as registry
from correspondence.services import Services
from tests import builders
from tests.conftest import INITIALIZE, Sender
from tests.notification_servers import SmtpServer, start_smtp_server

TOKEN = "metrics-" + uuid.uuid4().hex
ORG = "urn:altinn:organization:identifier-no:"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def scrape(client: httpx.AsyncClient, **headers: str) -> Samples:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


def requests_of(samples: Samples, **labels: str) -> float:
    return value(samples, "correspondence_http_requests_total", **labels)


@pytest.fixture
async def token_client(settings: Settings, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """An app of its own with a metrics token configured."""
    app = create_app(
        settings.model_copy(update={"metrics_token": SecretStr(TOKEN)}), database_url, run_worker=False
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


# --- who may read ----------------------------------------------------------------------------------


async def test_metrics_need_the_token_when_one_is_configured(token_client: httpx.AsyncClient) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        response = await token_client.get("/metrics", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["status"] == 401
        assert "correspondence_" not in response.text
    samples = await scrape(token_client, Authorization=f"Bearer {TOKEN}")
    assert ("correspondence_events", frozenset()) in samples


def test_production_refuses_metrics_without_a_token_and_says_how_to_choose() -> None:
    production: dict[str, Any] = {
        "mode": "production",
        "trusted_issuers": [
            TrustedIssuer(issuer="https://issuer.example", jwks_url="https://issuer.example/j")
        ],
        "malware_scan": "off",
    }
    with pytest.raises(ValidationError) as refused:
        Settings(**production)
    assert "CORRESPONDENCE_METRICS_TOKEN" in str(refused.value)
    assert "CORRESPONDENCE_METRICS_ENABLED=false" in str(refused.value)
    with pytest.raises(ValidationError):
        Settings(**production, metrics_token=SecretStr("  "))  # blank is no token

    with_token = Settings(**production, metrics_token=SecretStr(TOKEN))
    assert with_token.metrics_token is not None
    assert Settings(**production, metrics_enabled=False).metrics_token is None
    assert Settings(mode="development").metrics_token is None  # development stays anonymous


# --- what is exposed -------------------------------------------------------------------------------


async def test_metrics_parse_with_the_prometheus_parser_and_include_request_histograms(
    client: httpx.AsyncClient,
) -> None:
    await client.get("/metrics")
    response = await client.get("/metrics")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    assert families["correspondence_jobs"].type == "gauge"
    assert families["correspondence_http_requests"].type == "counter"
    assert families["correspondence_http_request_duration_seconds"].type == "histogram"
    buckets = [
        s
        for s in families["correspondence_http_request_duration_seconds"].samples
        if s.name.endswith("_bucket") and s.labels["route"] == "/metrics"
    ]
    assert buckets and buckets[-1].labels["le"] == "+Inf" and buckets[-1].value >= 1


async def test_requests_are_counted_per_route_template_on_the_fast_path_and_through_fastapi(
    client: httpx.AsyncClient, sender: Sender
) -> None:
    before = await scrape(client)
    body = builders.initialize_body(sender.resource_id, [builders.national_id()])
    created = await client.post(INITIALIZE, json=body, headers=sender.headers)  # served by kit/fastpath
    assert created.status_code == 200, created.text
    cid = created.json()["correspondences"][0]["correspondenceId"]
    for _ in range(2):
        shown = await client.get(f"{INITIALIZE}/{cid}/details", headers=sender.headers)  # by FastAPI
        assert shown.status_code == 200, shown.text
    after = await scrape(client)

    initialize = {"method": "POST", "route": "/correspondence/api/v1/correspondence", "status": "200"}
    assert requests_of(after, **initialize) == requests_of(before, **initialize) + 1
    details = {
        "method": "GET",
        "route": "/correspondence/api/v1/correspondence/{correspondenceId}/details",
        "status": "200",
    }
    assert requests_of(after, **details) == requests_of(before, **details) + 2
    assert not any(cid in str(labels) for _, labels in after)
    observed = value(
        after,
        "correspondence_http_request_duration_seconds_count",
        method="POST",
        route="/correspondence/api/v1/correspondence",
    )
    assert observed >= 1


async def test_unknown_paths_and_methods_do_not_make_new_label_values(client: httpx.AsyncClient) -> None:
    before = await scrape(client)
    for _ in range(3):
        assert (await client.get(f"/no-such-{uuid.uuid4().hex}")).status_code == 404
    assert (await client.request(f"X{uuid.uuid4().hex[:8].upper()}", "/metrics")).status_code == 405
    after = await scrape(client)

    routes = {dict(labels).get("route") for name, labels in after if name.startswith("correspondence_http")}
    assert not any(route and "no-such" in route for route in routes)
    methods = {dict(labels).get("method") for name, labels in after if name.startswith("correspondence_http")}
    assert methods <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert requests_of(after, **unmatched) == requests_of(before, **unmatched) + 3
    other = {"method": "other", "route": "/metrics", "status": "405"}
    assert requests_of(after, **other) == requests_of(before, **other) + 1


# --- what is counted -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def smtp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpServer]:
    server = start_smtp_server(tmp_path_factory.mktemp("smtp") / "messages.jsonl")
    yield server
    server.stop()


@pytest.fixture
async def mailer(services: Services, smtp: SmtpServer) -> AsyncIterator[Services]:
    settings = services.settings.model_copy(
        update={"smtp_host": "127.0.0.1", "smtp_port": smtp.port, "smtp_tls": "none", "smtp_connections": 2}
    )
    svc = dataclasses.replace(services, settings=settings, worker=None)
    svc.email = open_email_sender(settings)
    yield svc
    await svc.close_messaging()


async def test_a_sent_email_is_counted_sent_and_a_transient_failure_queued_not_failed(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection, mailer: Services
) -> None:
    good, flaky = builders.org_number(), builders.org_number()
    good_mail = f"post-{uuid.uuid4().hex[:8]}@example.no"
    await registry.set_contact(db, party=ORG + good, email=good_mail, mobile=None, reserved=None)
    refused_mail = f"fail451-{uuid.uuid4().hex[:8]}@example.no"
    await registry.set_contact(db, party=ORG + flaky, email=refused_mail, mobile=None, reserved=None)
    before = await scrape(client)

    note = {"notificationTemplate": "GenericAltinnMessage", "notificationChannel": "Email"}
    body = builders.initialize_body(
        sender.resource_id, [f"0192:{good}", f"0192:{flaky}"], notification_block=note
    )
    assert (await client.post(INITIALIZE, json=body, headers=sender.headers)).status_code == 200
    worker = build_worker(mailer)
    while await worker.run_once():
        pass
    after = await scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("correspondence_notifications_sent") == 1
    assert delta("correspondence_notifications", channel="Email", status="Email_Succeeded") == 1
    assert delta("correspondence_notifications", channel="Email", status="Email_Failed_TransientError") == 1
    assert delta("correspondence_notifications_queued") == 1
    assert delta("correspondence_notifications_failed") == 0
    assert delta("correspondence_notification_orders", status="Order_Completed") == 1
    assert delta("correspondence_notification_orders", status="Processing") == 1
    assert delta("correspondence_events") >= 4  # initialized ×2, published ×2, notifications, …


# --- existing data ---------------------------------------------------------------------------------


@pytest.fixture
async def old_database(server_url: str) -> AsyncIterator[str]:
    name = f"corr_metrics_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(server_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(server_url, name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def _config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(Path(MIGRATIONS)))
    config.set_main_option("sqlalchemy.url", alembic_url(url).replace("%", "%%"))
    return config


def _migrate(url: str, revision: str) -> None:
    command.upgrade(_config(url), revision)


def _before_metric_totals() -> str:
    """The revision before the one that adds metric_totals (whatever its number after merges)."""
    scripts = ScriptDirectory.from_config(_config("postgresql://unused/unused"))
    [revision] = [r for r in scripts.walk_revisions() if r.path.endswith("_add_metric_totals.py")]
    assert isinstance(revision.down_revision, str)
    return revision.down_revision


async def test_rows_written_before_the_upgrade_are_counted_after_it(old_database: str) -> None:
    # alembic runs its own event loop, so it runs in a thread here
    await asyncio.to_thread(_migrate, old_database, _before_metric_totals())
    conn = await asyncpg.connect(old_database)
    try:
        await conn.execute(
            """INSERT INTO notification_deliveries (id, order_id, correspondence_id, channel, address,
                 recipient, body, status, next_attempt, created, updated)
               SELECT gen_random_uuid(), gen_random_uuid(), gen_random_uuid(), 'Email', 'a' || i, '{}', 'b',
                      (ARRAY['Email_Succeeded', 'Email_Failed', 'Email_Failed_TransientError'])[i % 3 + 1],
                      now(), now(), now()
               FROM generate_series(1, 9) i;
               INSERT INTO events (id, type, source, resource, resourceinstance, time, owner_org)
               SELECT gen_random_uuid(), 't', 's', 'r', 'i', now(), 'o' FROM generate_series(1, 5);
               INSERT INTO event_deliveries
                 (event_id, subscription_id, status, attempts, next_attempt, created)
               SELECT id, 1, 1, 2, now(), now() FROM events"""
        )
    finally:
        await conn.close()
    await asyncio.to_thread(_migrate, old_database, "head")
    from correspondence.metrics.collector import read_families  # imported here: absent before

    pool = await asyncpg.create_pool(old_database, min_size=1, max_size=1)
    try:
        samples = {
            (s.name, frozenset(s.labels.items())): s.value
            for family in await read_families(pool)
            for s in family.samples
        }
    finally:
        await pool.close()
    assert value(samples, "correspondence_notifications_sent") == 3
    assert value(samples, "correspondence_notifications_failed") == 3
    assert value(samples, "correspondence_notifications_queued") == 3
    assert value(samples, "correspondence_events") == 5
    assert value(samples, "correspondence_event_deliveries", state="delivered") == 5
    assert value(samples, "correspondence_event_delivery_attempts") == 10
