"""Overviews are read in batches (kit/batch.py), with their Fetched rows: concurrent overviews share
one statement and one commit, each answer still comes after its row is committed, the 15 s debounce
holds inside a batch as across batches, the statement writes a Fetched row exactly where the answer
is 200 to a recipient (whoever else shares the batch), and a failed batch fails every request in it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import httpx
import pytest

from correspondence.auth.tokens import DevIssuer
from correspondence.kit.batch import Batcher
from correspondence.services import Services
from tests.conftest import INITIALIZE, Sender
from tests.test_access_hardening import add_resource
from tests.test_access_hardening import send as send_for
from tests.test_recipients import READ, People, bearer, drain, send
from tests.test_recipients import people as people  # the fixture

FETCHED_ROWS = "SELECT count(*) FROM correspondence_fetches WHERE correspondence_id = $1::uuid"


async def test_concurrent_overviews_write_one_fetched_row_each(
    client: httpx.AsyncClient, sender: Sender, people: People, services: Services, db: asyncpg.Connection
) -> None:
    cids = [cid for _ in range(6) for cid in await send(client, sender, [people.person])]
    await drain(services)
    # Each correspondence three times at once: one batch (or a few) holds duplicates of the same
    # correspondence and party, which the debounce inside the batch must fold into one row.
    responses = await asyncio.gather(
        *(client.get(f"{INITIALIZE}/{cid}", headers=bearer(people.person_token)) for cid in cids * 3)
    )
    assert [r.status_code for r in responses] == [200] * 18
    for cid in cids:
        assert await db.fetchval(FETCHED_ROWS, cid) == 1
    # and a second round, right after, is debounced against the committed rows
    responses = await asyncio.gather(
        *(client.get(f"{INITIALIZE}/{cid}", headers=bearer(people.person_token)) for cid in cids)
    )
    assert [r.status_code for r in responses] == [200] * 6
    for cid in cids:
        assert await db.fetchval(FETCHED_ROWS, cid) == 1


async def test_a_batch_of_callers_writes_fetched_rows_only_for_recipients_answered_200(
    client: httpx.AsyncClient,
    sender: Sender,
    people: People,
    services: Services,
    db: asyncpg.Connection,
    dev_issuer: DevIssuer,
) -> None:
    level3 = await add_resource(db, sender.org, min_auth_level=3)
    [mine] = await send(client, sender, [people.person])
    [senders] = await send(client, sender, [people.person])
    [orgs] = await send(client, sender, [f"0192:{people.org}"])
    [strict] = await send_for(client, sender, [people.person], resource_id=level3)
    [to_itself] = await send(client, sender, [f"0192:{sender.org}"])
    await drain(services)
    both = dev_issuer.mint(scope=f"altinn:correspondence.write altinn:serviceowner {READ}", org=sender.org)
    [unpublished] = await send(client, sender, [people.person])  # sent after the drain: not published
    low = dev_issuer.mint(scope=READ, pid=people.person, auth_level=2)
    calls = [
        (mine, people.person_token, 200),
        (senders, sender.token, 200),  # the owner as sender: no Fetched row
        (to_itself, both, 200),  # the owner is also the recipient: the sender role comes first
        (orgs, people.org_token, 200),
        (orgs, people.employee_token, 200),  # through a delegation: the person is named
        (mine, people.stranger_token, 403),
        (orgs, people.stranger_org_token, 403),
        (strict, low, 403),  # below the resource's minimum authentication level
        (unpublished, people.person_token, 404),
    ]
    responses = await asyncio.gather(
        *(client.get(f"{INITIALIZE}/{cid}", headers=bearer(token)) for cid, token, _ in calls)
    )
    assert [r.status_code for r in responses] == [status for _, _, status in calls]
    person = f"urn:altinn:person:identifier-no:{people.person}"
    parties = {
        cid: sorted(
            r["party"]
            for r in await db.fetch(
                "SELECT party FROM correspondence_fetches WHERE correspondence_id = $1", cid
            )
        )
        for cid in (mine, senders, to_itself, orgs, strict, unpublished)
    }
    assert parties == {
        mine: [person],
        senders: [],
        to_itself: [],
        orgs: sorted(
            [
                f"urn:altinn:organization:identifier-no:{people.org}",
                f"urn:altinn:person:identifier-no:{people.employee}",
            ]
        ),
        strict: [],
        unpublished: [],
    }
    high = dev_issuer.mint(scope=READ, pid=people.person, auth_level=3)
    assert (await client.get(f"{INITIALIZE}/{strict}", headers=bearer(high))).status_code == 200
    assert await db.fetchval(FETCHED_ROWS, strict) == 1


async def test_the_overview_answers_after_its_fetched_row_is_committed(
    client: httpx.AsyncClient, sender: Sender, people: People, services: Services, db: asyncpg.Connection
) -> None:
    cids = [cid for _ in range(4) for cid in await send(client, sender, [people.person])]
    await drain(services)

    async def read_then_count(cid: str) -> int:
        response = await client.get(f"{INITIALIZE}/{cid}", headers=bearer(people.person_token))
        assert response.status_code == 200
        count: int = await db.fetchval(FETCHED_ROWS, cid)
        return count

    counts = []
    for cid in cids:  # one at a time: the `db` connection is not shared between tasks
        counts.append(await read_then_count(cid))
    assert counts == [1, 1, 1, 1]


class Sessions:
    """Stands in for a pool: counts the sessions opened and the ones given back."""

    def __init__(self) -> None:
        self.opened = 0
        self.closed = 0

    @asynccontextmanager
    async def open(self) -> AsyncIterator[int]:
        self.opened += 1
        try:
            yield self.opened
        finally:
            self.closed += 1


async def test_items_that_arrive_during_a_flush_go_in_the_next_batch() -> None:
    batches: list[list[int]] = []
    release = asyncio.Event()

    async def flush(session: int, items: list[int]) -> None:
        batches.append(items)
        if len(batches) == 1:
            await release.wait()

    sessions = Sessions()
    batcher: Batcher[int, int] = Batcher(sessions.open, flush)
    first = asyncio.create_task(batcher.submit(0))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert batches == [[0]]
    rest = [asyncio.create_task(batcher.submit(i)) for i in range(1, 6)]
    await asyncio.sleep(0)
    assert not first.done()
    release.set()
    await asyncio.gather(first, *rest)
    assert batches == [[0], [1, 2, 3, 4, 5]]
    assert (sessions.opened, sessions.closed) == (1, 1)  # one session for both, given back after


async def test_a_failed_flush_fails_every_request_of_its_batch_and_the_next_batch_runs() -> None:
    calls = 0
    gate = asyncio.Event()

    async def flush(session: int, items: list[int]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            await gate.wait()
            return
        if calls == 2:
            raise asyncpg.PostgresConnectionError("gone")

    sessions = Sessions()
    batcher: Batcher[int, int] = Batcher(sessions.open, flush)
    first = asyncio.create_task(batcher.submit(0))
    await asyncio.sleep(0)
    second = [asyncio.create_task(batcher.submit(i)) for i in (1, 2)]
    await asyncio.sleep(0)
    gate.set()
    await first
    for task in second:
        with pytest.raises(asyncpg.PostgresConnectionError):
            await task
    await batcher.submit(3)  # the writer goes on after a failed batch, in a new session
    assert calls == 3
    assert (sessions.opened, sessions.closed) == (2, 2)


async def test_a_request_that_gives_up_does_not_stop_the_batch() -> None:
    written: list[int] = []
    gate = asyncio.Event()

    async def flush(session: int, items: list[int]) -> None:
        await gate.wait()
        written.extend(items)

    batcher: Batcher[int, int] = Batcher(Sessions().open, flush)
    a = asyncio.create_task(batcher.submit(1))
    b = asyncio.create_task(batcher.submit(2))
    await asyncio.sleep(0)
    a.cancel()
    gate.set()
    await b
    assert written == [1, 2]
    assert a.cancelled()


async def test_a_session_that_cannot_be_opened_fails_the_batch_and_the_next_one_tries_again() -> None:
    tries = 0

    @asynccontextmanager
    async def flaky() -> AsyncIterator[int]:
        nonlocal tries
        tries += 1
        if tries == 1:
            raise OSError("connection refused")
        yield tries

    written: list[int] = []

    async def flush(session: int, items: list[int]) -> None:
        written.extend(items)

    batcher: Batcher[int, int] = Batcher(flaky, flush)
    with pytest.raises(OSError):
        await batcher.submit(1)
    await batcher.submit(2)
    assert written == [2]
