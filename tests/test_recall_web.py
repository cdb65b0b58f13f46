"""The sent view's recall (with its confirm step) and pause/resume, through the ASGI app: the API's
use cases and access rules, CSRF-checked forms, POST-redirect-GET."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from correspondence.auth.tokens import DevIssuer
from tests import builders
from tests.conftest import INITIALIZE, Sender

ORG_SCOPES = "altinn:correspondence.read altinn:correspondence.write altinn:serviceowner"
Browser = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def browser(app: Any) -> Browser:
    @asynccontextmanager
    async def open_browser(token: str) -> AsyncIterator[httpx.AsyncClient]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", headers={"Accept-Language": "en"}
        ) as client:
            client.cookies.set("corr_session", token)
            yield client

    return open_browser


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "the page has no CSRF field"
    return found.group(1)


async def scheduled(client: httpx.AsyncClient, sender: Sender) -> str:
    body = builders.initialize_body(
        sender.resource_id,
        [f"0192:{builders.org_number()}"],
        requestedPublishTime=(datetime.now(UTC) + timedelta(days=1)).isoformat(),
    )
    response = await client.post(INITIALIZE, json=body, headers=sender.headers)
    assert response.status_code == 200, response.text
    cid: str = response.json()["correspondences"][0]["correspondenceId"]
    return cid


async def test_recall_from_the_sent_item_page_asks_first(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection, browser: Browser, dev_issuer: DevIssuer
) -> None:
    cid = await scheduled(client, sender)
    async with browser(dev_issuer.mint(scope=ORG_SCOPES, org=sender.org)) as web:
        item = await web.get(f"/sent/{cid}")
        assert item.status_code == 200 and f'action="/sent/{cid}/recall"' in item.text
        confirm = await web.get(f"/sent/{cid}/recall")
        assert confirm.status_code == 200
        assert "it is purged and never published" in confirm.text
        assert await db.fetchval("SELECT status FROM correspondences WHERE id = $1", uuid.UUID(cid)) == 1

        forged = await web.post(f"/sent/{cid}/recall", data={"csrf": "forged"})
        assert forged.status_code == 403
        assert await db.fetchval("SELECT status FROM correspondences WHERE id = $1", uuid.UUID(cid)) == 1

        done = await web.post(f"/sent/{cid}/recall", data={"csrf": csrf_of(confirm.text)})
        assert done.status_code == 303 and done.headers["location"] == f"/sent/{cid}"
        assert await db.fetchval("SELECT status FROM correspondences WHERE id = $1", uuid.UUID(cid)) == 8
        after = await web.get(f"/sent/{cid}")
        assert "Recalled: 1 purged" in after.text
        assert f'action="/sent/{cid}/recall"' not in after.text  # nothing left to recall


async def test_only_the_owner_may_recall_in_the_web_view(
    client: httpx.AsyncClient, sender: Sender, browser: Browser, dev_issuer: DevIssuer
) -> None:
    cid = await scheduled(client, sender)
    async with browser(dev_issuer.mint(scope=ORG_SCOPES, org=builders.org_number())) as web:
        assert (await web.get(f"/sent/{cid}/recall")).status_code == 403
        page = await web.get("/sent")
        posted = await web.post(f"/sent/{cid}/recall", data={"csrf": csrf_of(page.text)})
        assert posted.status_code == 403


async def test_pause_and_resume_from_the_sent_view(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection, browser: Browser, dev_issuer: DevIssuer
) -> None:
    async with browser(dev_issuer.mint(scope=ORG_SCOPES, org=sender.org)) as web:
        page = await web.get("/sent", params={"resource": sender.resource_id})
        assert page.status_code == 200 and 'data-testid="pause-panel"' in page.text
        assert "publishes and notifies as usual" in page.text
        form = {"csrf": csrf_of(page.text), "resource": sender.resource_id, "action": "pause"}

        assert (await web.post("/sent/pause", data={**form, "csrf": "forged"})).status_code == 403
        paused = await web.post("/sent/pause", data=form)
        assert paused.status_code == 303
        assert await db.fetchval(
            "SELECT count(*) FROM resource_pauses WHERE resource_id = $1", sender.resource_id
        )
        page = await web.get(paused.headers["location"])
        assert "The service is paused." in page.text and "This service is paused" in page.text
        assert 'value="resume"' in page.text

        resumed = await web.post("/sent/pause", data={**form, "action": "resume"})
        assert resumed.status_code == 303
        count = "SELECT count(*) FROM resource_pauses WHERE resource_id = $1"
        assert await db.fetchval(count, sender.resource_id) == 0

        other = await web.post("/sent/pause", data={**form, "resource": f"not-mine-{uuid.uuid4().hex[:6]}"})
        assert other.status_code == 404
        assert (await web.post("/sent/pause", data={**form, "action": "explode"})).status_code == 404


async def test_someone_elses_resource_cannot_be_paused_from_the_web_view(
    sender: Sender, db: asyncpg.Connection, browser: Browser, dev_issuer: DevIssuer
) -> None:
    async with browser(dev_issuer.mint(scope=ORG_SCOPES, org=builders.org_number())) as web:
        page = await web.get("/sent")
        form = {"csrf": csrf_of(page.text), "resource": sender.resource_id, "action": "pause"}
        assert (await web.post("/sent/pause", data=form)).status_code == 403
    count = "SELECT count(*) FROM resource_pauses WHERE resource_id = $1"
    assert await db.fetchval(count, sender.resource_id) == 0
