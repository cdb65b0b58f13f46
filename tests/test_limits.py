"""Per-owner limits (issue 13, part 4): requests per minute and notifications per day, answered
429 with Retry-After in the ProblemDetails shape, per owner, and shown in /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from typer.testing import CliRunner

from correspondence.app import create_app
from correspondence.auth.tokens import DevIssuer
from correspondence.cli import app as cli_app
from correspondence.config import Settings, get_settings
from correspondence.kit import clock
from correspondence.limits.buckets import RateLimiter
from correspondence.limits.rules import PerOwner, seconds_until_next_day
from correspondence.registry import repository as registry
from correspondence.sandbox.values import PARTIES
from tests import builders
from tests.conftest import INITIALIZE, Sender

LIMITS = "/ext/api/v1/limits"
WRITE = "altinn:correspondence.write altinn:serviceowner"
OSLO = ZoneInfo("Europe/Oslo")
RESERVED_PERSON = PARTIES[4].number

Limited = Callable[..., Awaitable[httpx.AsyncClient]]


@pytest.fixture
async def limited(settings: Settings, database_url: str) -> AsyncIterator[Limited]:
    """A running service (another app on the same database) with the given limit settings."""
    async with contextlib.AsyncExitStack() as stack:

        async def make(**overrides: Any) -> httpx.AsyncClient:
            application = create_app(settings.model_copy(update=overrides), database_url, run_worker=False)
            await stack.enter_async_context(application.router.lifespan_context(application))
            transport = httpx.ASGITransport(app=application)
            return await stack.enter_async_context(
                httpx.AsyncClient(transport=transport, base_url="http://test")
            )

        yield make


async def new_sender(db: asyncpg.Connection, dev_issuer: DevIssuer) -> Sender:
    org, resource_id = builders.org_number(), f"limits-{uuid.uuid4().hex[:10]}"
    await registry.upsert_resource(
        db,
        resource_id=resource_id,
        owner_org=org,
        title="Limits",
        resource_type="CorrespondenceService",
        confidential="NotConfidential",
        min_auth_level=0,
    )
    return Sender(org, resource_id, dev_issuer.mint(scope=WRITE, org=org))


def assert_problem(response: httpx.Response, code: int) -> int:
    """The 429's shape; returns its Retry-After."""
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "https://tools.ietf.org/html/rfc6585#section-4"
    assert (body["title"], body["status"]) == ("Too Many Requests", 429)
    assert (body["errorCode"], body["code"]) == (code, f"CORR-{code:05d}")
    assert body["detail"] and body["traceId"]
    retry_after = response.headers["retry-after"]
    assert retry_after.isdigit() and int(retry_after) >= 1
    return int(retry_after)


def notify(reminder: bool = True) -> dict[str, Any]:
    return {
        "notificationTemplate": "GenericAltinnMessage",
        "notificationChannel": "Email",
        "sendReminder": reminder,
    }


async def send(
    client: httpx.AsyncClient, sender: Sender, recipients: int, *, reminder: bool = True, **kw: Any
) -> httpx.Response:
    body = builders.initialize_body(
        sender.resource_id,
        [f"0192:{builders.org_number()}" for _ in range(recipients)],
        notification_block=notify(reminder),
        **kw,
    )
    return await client.post(INITIALIZE, json=body, headers=sender.headers)


# --- requests per minute ------------------------------------------------------------------------------


async def test_an_owner_over_its_rate_gets_429_with_retry_after_and_others_do_not(
    limited: Limited, db: asyncpg.Connection, dev_issuer: DevIssuer
) -> None:
    busy, other, exempt = [await new_sender(db, dev_issuer) for _ in range(3)]
    client = await limited(rate_limit_per_minute=3, rate_limit_overrides={exempt.org: 0})
    for _ in range(3):
        assert (await client.get(LIMITS, headers=busy.headers)).status_code == 200
    refused = await client.get(LIMITS, headers=busy.headers)
    assert 1 <= assert_problem(refused, 9429) <= 20  # 3 a minute: one more every 20 s
    assert busy.org in refused.json()["detail"]
    # The hot path (served outside FastAPI's router) answers the same.
    assert_problem(await send(client, busy, 1), 9429)

    for _ in range(3):  # another owner has a bucket of its own
        assert (await client.get(LIMITS, headers=other.headers)).status_code == 200
    for _ in range(10):
        assert (await client.get(LIMITS, headers=exempt.headers)).status_code == 200
    # The owner's organisation calling as a recipient (read scope) is not a service owner's request.
    reader = dev_issuer.mint(scope="altinn:correspondence.read", org=busy.org)
    assert (
        await client.get("/ext/api/v1/sandbox", headers={"Authorization": f"Bearer {reader}"})
    ).status_code == 200


async def test_without_limits_nothing_is_limited(client: httpx.AsyncClient, sender: Sender) -> None:
    for _ in range(30):
        assert (await client.get(LIMITS, headers=sender.headers)).status_code == 200
    body = (await client.get(LIMITS, headers=sender.headers)).json()
    assert body["requestsPerMinute"] is None and body["dailyNotificationCap"] is None


def test_a_bucket_refills_at_the_rate_and_says_how_long_to_wait() -> None:
    now = [100.0]
    limiter = RateLimiter(PerOwner(6, {"222222222": 60}), monotonic=lambda: now[0])
    assert [limiter.admit("111111111") for _ in range(6)] == [None] * 6
    assert limiter.admit("111111111") == pytest.approx(10.0)  # 6 a minute: one every 10 s
    now[0] += 9.0
    assert limiter.admit("111111111") == pytest.approx(1.0)
    now[0] += 1.0
    assert limiter.admit("111111111") is None
    now[0] += 3600.0  # a long pause refills to one minute's worth, no more
    assert [limiter.admit("111111111") for _ in range(7)][-2:] == [None, pytest.approx(10.0)]
    assert all(limiter.admit("222222222") is None for _ in range(60))
    assert limiter.rejections == {"111111111": 3}


# --- notifications per day -------------------------------------------------------------------------


async def test_the_initialize_that_would_pass_the_daily_cap_gets_429_and_writes_nothing(
    limited: Limited, db: asyncpg.Connection, dev_issuer: DevIssuer
) -> None:
    owner, other = await new_sender(db, dev_issuer), await new_sender(db, dev_issuer)
    client = await limited(daily_notification_cap=5, daily_notification_cap_overrides={other.org: 100})
    assert (await send(client, owner, 2)).status_code == 200  # 2 main + 2 reminders
    over = await send(client, owner, 1, sendersReference="over-the-cap")  # 2 more would make 6
    retry_after = assert_problem(over, 9430)
    assert abs(retry_after - seconds_until_next_day(clock.now(), OSLO)) <= 5
    assert "4 of 5" in over.json()["detail"]
    assert (
        await db.fetchval("SELECT count(*) FROM correspondences WHERE senders_reference = 'over-the-cap'")
        == 0
    )
    assert (await send(client, owner, 1, reminder=False)).status_code == 200  # exactly 5
    # Without a notification nothing is ordered, so nothing is capped.
    plain = builders.initialize_body(owner.resource_id, [f"0192:{builders.org_number()}"])
    assert (await client.post(INITIALIZE, json=plain, headers=owner.headers)).status_code == 200
    assert (await send(client, other, 10)).status_code == 200  # another owner, its own cap

    mine = (await client.get(LIMITS, headers=owner.headers)).json()
    assert (mine["dailyNotificationCap"], mine["notificationsOrderedToday"]) == (5, 5)
    assert mine["requestsPerMinute"] is None

    # The count is in the database: a restarted (or another) process holds the same line.
    again = await limited(daily_notification_cap=5)
    assert_problem(await send(again, owner, 1, reminder=False), 9430)
    # Tomorrow it starts again.
    clock.shift(timedelta(days=1))
    assert (await send(again, owner, 1)).status_code == 200
    assert (await again.get(LIMITS, headers=owner.headers)).json()["notificationsOrderedToday"] == 2


async def test_what_is_not_written_is_not_counted(
    limited: Limited, db: asyncpg.Connection, dev_issuer: DevIssuer
) -> None:
    owner = await new_sender(db, dev_issuer)
    client = await limited(daily_notification_cap=4)  # a development-mode app: the sandbox is on
    key = str(uuid.uuid4())
    body = builders.initialize_body(
        owner.resource_id, [f"0192:{builders.org_number()}"], notification_block=notify(), idempotent_key=key
    )
    assert (await client.post(INITIALIZE, json=body, headers=owner.headers)).status_code == 200
    replay = await client.post(INITIALIZE, json=body, headers=owner.headers)
    assert (replay.status_code, replay.headers.get("idempotent-replayed")) == (200, "true")
    # A single reserved recipient is refused (422) and gives its reservation back.
    reserved = builders.initialize_body(owner.resource_id, [RESERVED_PERSON], notification_block=notify())
    refused = await client.post(INITIALIZE, json=reserved, headers=owner.headers)
    assert (refused.status_code, refused.json()["errorCode"]) == (422, 1030)
    # Concurrent requests can never together pass the cap.
    answers = await asyncio.gather(*(send(client, owner, 1, reminder=False) for _ in range(4)))
    assert sorted(a.status_code for a in answers) == [200, 200, 429, 429]
    assert (await client.get(LIMITS, headers=owner.headers)).json()["notificationsOrderedToday"] == 4


# --- metrics and the command line ---------------------------------------------------------------------


async def test_metrics_show_rejections_per_owner_and_limit_and_todays_orders(
    limited: Limited, db: asyncpg.Connection, dev_issuer: DevIssuer
) -> None:
    owner, other = await new_sender(db, dev_issuer), await new_sender(db, dev_issuer)
    client = await limited(rate_limit_per_minute=2, daily_notification_cap=2)
    assert (await send(client, owner, 1)).status_code == 200
    assert_problem(await send(client, owner, 1), 9430)
    assert_problem(await send(client, owner, 1), 9429)
    assert (await send(client, other, 1, reminder=False)).status_code == 200
    text = (await client.get("/metrics")).text
    assert f'correspondence_limit_rejections_total{{limit="rate",owner="{owner.org}"}} 1.0' in text
    assert (
        f'correspondence_limit_rejections_total{{limit="daily_notifications",owner="{owner.org}"}} 1.0'
        in text
    )
    assert f'correspondence_owner_notifications_ordered_today{{owner="{owner.org}"}} 2.0' in text
    assert f'correspondence_owner_notifications_ordered_today{{owner="{other.org}"}} 1.0' in text
    assert f'correspondence_owner_daily_notification_cap{{owner="{owner.org}"}} 2.0' in text
    assert f'correspondence_limit_rejections_total{{limit="rate",owner="{other.org}"}}' not in text


async def test_metrics_without_limits_show_no_limit_families(client: httpx.AsyncClient) -> None:
    text = (await client.get("/metrics")).text
    assert "correspondence_limit_rejections" not in text
    assert "correspondence_owner_notifications_ordered_today" not in text


async def test_limits_show_and_reset_on_the_command_line(
    limited: Limited,
    db: asyncpg.Connection,
    dev_issuer: DevIssuer,
    database_url: str,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    owner = await new_sender(db, dev_issuer)
    client = await limited(daily_notification_cap=4)
    assert (await send(client, owner, 2)).status_code == 200
    for name, value in (
        ("DATABASE_URL", database_url),
        ("DATA_DIR", str(data_dir)),
        ("DAILY_NOTIFICATION_CAP", "4"),
    ):
        monkeypatch.setenv(f"CORRESPONDENCE_{name}", value)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        shown = await asyncio.to_thread(runner.invoke, cli_app, ["limits", "show", "--org", owner.org])
        assert shown.exit_code == 0, shown.output
        assert "notifications per day: 4" in shown.output and f"{owner.org}: 4 of 4" in shown.output
        reset = await asyncio.to_thread(runner.invoke, cli_app, ["limits", "reset", owner.org])
        assert reset.exit_code == 0 and "reset" in reset.output
        assert (await send(client, owner, 2)).status_code == 200
        bad = await asyncio.to_thread(runner.invoke, cli_app, ["limits", "reset", "12"])
        assert bad.exit_code == 2
        table = await asyncio.to_thread(runner.invoke, cli_app, ["sandbox", "show"])
        assert table.exit_code == 0 and "sandbox: on" in table.output and RESERVED_PERSON in table.output
    finally:
        get_settings.cache_clear()


def test_overrides_must_name_organisations() -> None:
    with pytest.raises(ValueError, match="organisation numbers"):
        Settings(rate_limit_overrides={"abc": 5})
    with pytest.raises(ValueError):
        Settings(daily_notification_cap=-1)


async def test_the_multipart_initialize_is_capped_too_and_keeps_no_files(
    limited: Limited, db: asyncpg.Connection, dev_issuer: DevIssuer
) -> None:
    owner = await new_sender(db, dev_issuer)
    client = await limited(daily_notification_cap=2)

    async def post(reference: str) -> httpx.Response:
        fields = {
            "Correspondence.ResourceId": owner.resource_id,
            "Correspondence.SendersReference": reference,
            "Correspondence.Content.Language": "nb",
            "Correspondence.Content.MessageTitle": "Vedtak",
            "Correspondence.Content.MessageBody": "Se vedlegget.",
            "Correspondence.Content.Attachments[0].FileName": "a.txt",
            "Correspondence.Content.Attachments[0].SendersReference": reference,
            "Correspondence.Notification.NotificationTemplate": "GenericAltinnMessage",
            "Correspondence.Notification.NotificationChannel": "Email",
            "Correspondence.Notification.SendReminder": "true",
            "Recipients": [f"0192:{builders.org_number()}"],
        }
        files = [("attachments", ("a.txt", b"hei", "text/plain"))]
        return await client.post(INITIALIZE + "/upload", data=fields, files=files, headers=owner.headers)

    first = await post("within-" + uuid.uuid4().hex[:6])
    assert first.status_code == 200, first.text
    reference = "over-" + uuid.uuid4().hex[:6]
    assert_problem(await post(reference), 9430)
    assert await db.fetchval("SELECT count(*) FROM attachments WHERE senders_reference = $1", reference) == 0
