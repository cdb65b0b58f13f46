"""PostgreSQL goes away and comes back: nothing is answered 500, nothing acknowledged is lost.

While the database is down every route answers 503 with a ProblemDetails body and Retry-After
(the fast-path routes, FastAPI routes and web pages alike), readiness says 503 and liveness 200.
When it is back the same app serves again without a restart, and its worker, which waited with
one warning, publishes what is sent after the outage. The servers here are the tests' own
(tests/postgres_server.py): the shared one is never stopped.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from correspondence.app import create_app
from correspondence.auth.tokens import DevIssuer
from correspondence.config import Settings
from correspondence.kit.migrate import upgrade
from correspondence.kit.outage import DatabaseUnavailable, is_database_unavailable
from correspondence.registry import repository as registry
from tests import builders
from tests.conftest import INITIALIZE, Sender
from tests.postgres_server import ThrowawayPostgres

DEADLINE = 60.0  # generous: the machine is shared; the measured times are printed, not asserted


@pytest.fixture(scope="module")
def outage_server() -> Iterator[ThrowawayPostgres]:
    server = ThrowawayPostgres()
    try:
        server.start()
        upgrade(server.url)
        yield server
    finally:
        server.remove()


@pytest.fixture
async def running(outage_server: ThrowawayPostgres, settings: Settings) -> AsyncIterator[Any]:
    """An app with its worker, on the throwaway server (started again if a test left it down)."""
    if not await _answers(outage_server.url):
        await outage_server.start_async()
    app = create_app(settings, outage_server.url, run_worker=True)
    async with app.router.lifespan_context(app):
        yield app


@pytest.fixture
async def outage_client(running: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=running)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


@pytest.fixture
async def outage_sender(outage_server: ThrowawayPostgres, dev_issuer: DevIssuer) -> Sender:
    org = builders.org_number()
    resource_id = f"outage-{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(outage_server.url)
    try:
        await registry.upsert_resource(
            conn,
            resource_id=resource_id,
            owner_org=org,
            title="Outage resource",
            resource_type="CorrespondenceService",
            confidential="NotConfidential",
            min_auth_level=0,
        )
    finally:
        await conn.close()
    token = dev_issuer.mint(scope="altinn:correspondence.write altinn:serviceowner", org=org)
    return Sender(org, resource_id, token)


async def _answers(url: str) -> bool:
    try:
        conn = await asyncpg.connect(url, timeout=5)
    except (OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


def _initialize_body(sender: Sender) -> dict[str, Any]:
    return builders.initialize_body(sender.resource_id, [builders.national_id()])


def assert_retry_later(response: httpx.Response, *, page: bool = False) -> None:
    assert response.status_code == 503, response.text
    assert 1 <= int(response.headers["retry-after"]) <= 30
    if page:
        assert response.headers["content-type"].startswith("text/html")
        return
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "https://tools.ietf.org/html/rfc9110#section-15.6.4"
    assert body["title"] == "Service Unavailable"
    assert body["status"] == 503
    assert body["detail"] and body["traceId"].startswith("00-")
    assert "127.0.0.1" not in response.text  # never where the database is


async def _wait_for(condition: Any, what: str) -> float:
    """Seconds until `condition()` (a coroutine function) is true; fails after DEADLINE."""
    started = time.monotonic()
    while time.monotonic() - started < DEADLINE:
        if await condition():
            return time.monotonic() - started
        await asyncio.sleep(0.05)
    pytest.fail(f"{what} did not happen within {DEADLINE} s")


async def _status(client: httpx.AsyncClient, sender: Sender, cid: str) -> str:
    response = await client.get(f"{INITIALIZE}/{cid}", headers=sender.headers)
    assert response.status_code == 200, response.text
    return str(response.json()["status"])


@pytest.mark.parametrize("how", ["fast", "immediate"])  # a restart, and a crash with recovery
async def test_every_route_answers_503_while_the_database_is_down_and_serves_again_after(
    how: str,
    outage_server: ThrowawayPostgres,
    outage_client: httpx.AsyncClient,
    outage_sender: Sender,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client, sender = outage_client, outage_sender
    caplog.set_level(logging.INFO)
    sent = await client.post(INITIALIZE, json=_initialize_body(sender), headers=sender.headers)
    assert sent.status_code == 200, sent.text
    [before] = [c["correspondenceId"] for c in sent.json()["correspondences"]]

    await outage_server.stop_async(how)

    assert_retry_later(await client.post(INITIALIZE, json=_initialize_body(sender), headers=sender.headers))
    assert_retry_later(
        await client.get(
            INITIALIZE, params={"resourceId": sender.resource_id, "role": "Sender"}, headers=sender.headers
        )
    )
    assert_retry_later(await client.get(f"{INITIALIZE}/{before}", headers=sender.headers))  # fast path
    assert_retry_later(await client.get(f"{INITIALIZE}/{before}/details", headers=sender.headers))  # FastAPI
    client.cookies.set("corr_session", sender.token)
    assert_retry_later(await client.get(f"/sent/{before}"), page=True)
    client.cookies.clear()
    for ready in ("/health", "/health/ready"):
        response = await client.get(ready)
        assert response.status_code == 503
        assert response.json() == {"status": "Unhealthy", "database": "unavailable"}
    for live in ("/healthz", "/health/live"):
        assert (await client.get(live)).status_code == 200

    def worker_warnings() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "correspondence.jobs"]

    async def worker_noticed() -> bool:
        return any("database unavailable" in m for m in worker_warnings())

    await _wait_for(worker_noticed, "the worker noticing the outage")

    await outage_server.start_async()

    async def initialize_succeeds() -> bool:
        response = await client.post(INITIALIZE, json=_initialize_body(sender), headers=sender.headers)
        assert response.status_code in (200, 503), response.text  # never a 500
        return response.status_code == 200

    recovered = await _wait_for(initialize_succeeds, "Initialize answering 200 again")
    print(f"\nrecovery ({how}): Initialize answered 200 {recovered:.2f} s after PostgreSQL was ready again")

    after = await client.post(INITIALIZE, json=_initialize_body(sender), headers=sender.headers)
    assert after.status_code == 200, after.text
    [cid] = [c["correspondenceId"] for c in after.json()["correspondences"]]

    async def published() -> bool:
        return await _status(client, sender, cid) == "Published"

    took = await _wait_for(published, "the worker publishing after the outage")
    print(f"recovery: the worker published a correspondence {took:.2f} s after it was sent")

    async def published_before() -> bool:
        return await _status(client, sender, before) == "Published"

    # Acknowledged before the outage: not lost. If the worker was publishing it when the server
    # went, its job stays leased and runs again when the lease runs out (job_lease_seconds).
    took = await _wait_for(published_before, "the correspondence sent before the outage being published")
    print(f"recovery: the correspondence sent before the outage was published {took:.2f} s later")
    assert (await client.get("/health/ready")).status_code == 200
    client.cookies.set("corr_session", sender.token)
    assert (await client.get(f"/sent/{before}")).status_code == 200

    messages = worker_warnings()
    assert sum("database unavailable" in m for m in messages) == 1, messages  # one per outage
    assert sum("database is back" in m for m in messages) == 1, messages
    assert not [r for r in caplog.records if r.name.startswith("correspondence") and r.exc_info], (
        "a stack trace was logged for the outage"
    )


async def test_connections_the_server_drops_are_replaced_without_a_restart(
    outage_server: ThrowawayPostgres, outage_client: httpx.AsyncClient, outage_sender: Sender
) -> None:
    client, sender = outage_client, outage_sender
    sent = await client.post(INITIALIZE, json=_initialize_body(sender), headers=sender.headers)
    assert sent.status_code == 200, sent.text
    [cid] = [c["correspondenceId"] for c in sent.json()["correspondences"]]

    admin = await asyncpg.connect(outage_server.url)
    try:
        dropped = await admin.fetchval(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()) t"
        )
    finally:
        await admin.close()
    assert dropped >= 1  # the app's pool had connections to drop

    answers: list[int] = []

    async def serves() -> bool:
        response = await client.get(f"{INITIALIZE}/{cid}", headers=sender.headers)
        answers.append(response.status_code)
        return response.status_code == 200

    await _wait_for(serves, "the overview answering 200 again")
    for _ in range(20):  # and from then on, every connection handed out works
        response = await client.post(INITIALIZE, json=_initialize_body(sender), headers=sender.headers)
        assert response.status_code == 200, response.text
    assert set(answers) <= {200, 503}, answers  # a dropped connection is never a 500


@pytest.mark.parametrize(
    ("error", "unavailable"),
    [
        (DatabaseUnavailable("cannot connect"), True),
        (asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"), True),
        (asyncpg.ConnectionFailureError("connection failure"), True),
        (asyncpg.AdminShutdownError("terminating connection due to administrator command"), True),
        (asyncpg.CannotConnectNowError("the database system is shutting down"), True),
        (asyncpg.CrashShutdownError("crash"), True),
        (asyncpg.TooManyConnectionsError("too many clients"), True),
        (asyncpg.InterfaceError("cannot call Connection.fetch(): connection is closed"), True),
        (asyncpg.InterfaceError("pool is closing"), True),
        (asyncpg.InterfaceError("cannot perform operation: another operation is in progress"), False),
        (
            asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is in progress"),
            True,
        ),
        (
            asyncpg.InternalClientError("cannot switch to state 12; another operation (15) is in progress"),
            False,
        ),
        (asyncpg.ProtocolViolationError("insufficient data left in message"), False),
        (asyncpg.QueryCanceledError("canceling statement due to statement timeout"), False),
        (asyncpg.UniqueViolationError("duplicate key"), False),
        (ConnectionRefusedError(111, "refused"), False),  # only the pool's connect turns it into one
        (RuntimeError("a bug"), False),
    ],
)
def test_only_errors_that_mean_the_database_is_away_count_as_an_outage(
    error: BaseException, unavailable: bool
) -> None:
    assert is_database_unavailable(error) is unavailable
