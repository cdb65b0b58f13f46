"""The web pages through the ASGI app: sign-in, the API's access rules, CSRF, the inbox's search,
filters and paging, a message's actions, and the sent view (issue 6)."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import asyncpg
import httpx
import pytest

from correspondence.auth.tokens import DevIssuer
from correspondence.correspondence.errors import CONFIRMATION_REQUIRED
from correspondence.registry import repository as registry
from correspondence.services import Services
from correspondence.web import repository as web_repository
from correspondence.web.texts import EN, NB, pick_language
from tests import builders
from tests.attachment_fixtures import drain, published_attachment
from tests.conftest import INITIALIZE, Sender

READ = "altinn:correspondence.read"
PERSON_URN = "urn:altinn:person:identifier-no:"
ORG_URN = "urn:altinn:organization:identifier-no:"

Browser = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def browser(app: Any) -> Browser:
    """A client with its own cookie jar, signed in with `token` when one is given."""

    @asynccontextmanager
    async def open_browser(token: str | None = None, lang: str = "en") -> AsyncIterator[httpx.AsyncClient]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://test", headers={"Accept-Language": lang}
        ) as client:
            if token is not None:
                client.cookies.set("corr_session", token)
            yield client

    return open_browser


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "the page has no CSRF field"
    return found.group(1)


async def send(
    client: httpx.AsyncClient,
    sender: Sender,
    services: Services,
    recipients: list[str],
    attachments: list[str] | None = None,
    **kw: Any,
) -> list[str]:
    body = builders.initialize_body(sender.resource_id, recipients, **kw)
    if attachments:
        body["existingAttachments"] = attachments
    response = await client.post(INITIALIZE, json=body, headers=sender.headers)
    assert response.status_code == 200, response.text
    await drain(services)  # publish
    return [i["correspondenceId"] for i in response.json()["correspondences"]]


def with_content(title: str, body: str = "Hei **du**.", summary: str = "Et sammendrag") -> dict[str, Any]:
    content = {"language": "nb", "messageTitle": title, "messageSummary": summary, "messageBody": body}
    return {"content": content}


NEEDS_CONFIRMATION: dict[str, Any] = {"isConfirmationNeeded": True, "dueDateTime": builders.future()}


def row_ids(page: str) -> list[str]:
    return re.findall(r'data-testid="row" data-id="([0-9a-f-]+)"', page)


# --- language ----------------------------------------------------------------------------------------


def test_both_languages_have_the_same_texts() -> None:
    assert set(NB) == set(EN)


@pytest.mark.parametrize(
    ("cookie", "header", "expected"),
    [
        (None, "en-GB,en;q=0.9,nb;q=0.8", "en"),
        (None, "nn-NO,en;q=0.5", "nb"),
        (None, "de-DE,en;q=0.3,no;q=0.7", "nb"),
        (None, "fr", "nb"),
        ("en", "nb", "en"),
    ],
)
def test_the_language_follows_the_switch_then_accept_language(
    cookie: str | None, header: str, expected: str
) -> None:
    assert pick_language(cookie, header) == expected


async def test_the_language_switch_sets_a_cookie_and_only_redirects_locally(browser: Browser) -> None:
    async with browser(lang="nb") as b:
        assert "Logg inn" in (await b.get("/signin")).text
        switched = await b.get("/lang/en?next=/signin")
        assert switched.status_code == 303 and switched.headers["location"] == "/signin"
        assert "Sign in" in (await b.get("/signin")).text
        elsewhere = await b.get("/lang/en?next=//evil.example/")
        assert elsewhere.headers["location"] == "/"


# --- signing in --------------------------------------------------------------------------------------


async def test_pages_without_a_session_go_to_sign_in(browser: Browser) -> None:
    async with browser() as b:
        for path in ("/", "/inbox", "/sent", f"/inbox/{uuid.uuid4()}"):
            response = await b.get(path)
            assert response.status_code == 303 and response.headers["location"].startswith("/signin"), path


async def test_signing_in_as_a_person_keeps_the_token_in_an_httponly_lax_cookie(
    browser: Browser, services: Services
) -> None:
    pid = builders.national_id()
    async with browser() as b:
        page = await b.get("/signin")
        assert 'name="pid"' in page.text and 'name="org"' in page.text  # development mode
        response = await b.post("/signin", data={"csrf": csrf_of(page.text), "kind": "person", "pid": pid})
        assert response.status_code == 303 and response.headers["location"] == "/inbox"
        cookie = next(c for c in response.headers.get_list("set-cookie") if c.startswith("corr_session="))
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Path=/" in cookie
        caller = await services.validator.validate(b.cookies["corr_session"])
        assert caller.pid == pid and caller.scopes == {READ}
        inbox = await b.get("/inbox")
        assert inbox.status_code == 200 and pid in inbox.text


async def test_sign_in_needs_its_form_token(browser: Browser) -> None:
    async with browser() as b:
        await b.get("/signin")
        response = await b.post("/signin", data={"kind": "person", "pid": builders.national_id()})
        assert response.status_code == 403 and "corr_session" not in b.cookies
        forged = await b.post(
            "/signin", data={"csrf": "guess", "kind": "person", "pid": builders.national_id()}
        )
        assert forged.status_code == 403


async def test_sign_in_with_a_pasted_token_validates_it(browser: Browser, dev_issuer: DevIssuer) -> None:
    async with browser() as b:
        page = await b.get("/signin")
        bad = await b.post("/signin", data={"csrf": csrf_of(page.text), "kind": "token", "token": "x.y.z"})
        assert bad.status_code == 400 and "The token is not valid" in bad.text
        token = dev_issuer.mint(scope=READ, pid=builders.national_id())
        good = await b.post(
            "/signin", data={"csrf": csrf_of(page.text), "kind": "token", "token": f"Bearer {token}"}
        )
        assert good.status_code == 303 and b.cookies["corr_session"] == token


async def test_an_expired_session_goes_back_to_sign_in(browser: Browser, dev_issuer: DevIssuer) -> None:
    expired = dev_issuer.mint(scope=READ, pid=builders.national_id(), lifetime_seconds=-10)
    async with browser(expired) as b:
        response = await b.get("/inbox")
        assert response.status_code == 303 and "expired=1" in response.headers["location"]


async def test_signing_out_needs_the_form_token_and_clears_the_session(
    browser: Browser, dev_issuer: DevIssuer
) -> None:
    async with browser(dev_issuer.mint(scope=READ, pid=builders.national_id())) as b:
        page = await b.get("/inbox")
        refused = await b.post("/signout", data={"csrf": "nope"})
        assert refused.status_code == 403
        out = await b.post("/signout", data={"csrf": csrf_of(page.text)})
        assert out.status_code == 303
        cleared = [c for c in out.headers.get_list("set-cookie") if c.startswith("corr_session=")]
        assert len(cleared) == 1 and "Max-Age=0" in cleared[0]


# --- inbox and access ------------------------------------------------------------------------------


async def test_the_inbox_lists_only_the_callers_published_correspondence(
    browser: Browser, client: httpx.AsyncClient, sender: Sender, services: Services, dev_issuer: DevIssuer
) -> None:
    me, other = builders.national_id(), builders.national_id()
    [mine] = await send(client, sender, services, [me], **with_content("Til meg"))
    [theirs] = await send(client, sender, services, [other], **with_content("Til en annen"))
    later = builders.initialize_body(sender.resource_id, [me], requestedPublishTime=builders.future(5))
    assert (await client.post(INITIALIZE, json=later, headers=sender.headers)).status_code == 200
    async with browser(dev_issuer.mint(scope=READ, pid=me)) as b:
        page = (await b.get("/inbox")).text
    assert row_ids(page) == [mine] and theirs not in page and "Til meg" in page
    assert 'class="unread"' in page and "Unread: " in page


async def test_opening_a_correspondence_marks_it_read_and_renders_safe_markdown(
    browser: Browser,
    client: httpx.AsyncClient,
    sender: Sender,
    services: Services,
    dev_issuer: DevIssuer,
    db: asyncpg.Connection,
) -> None:
    me = builders.national_id()
    [cid] = await send(client, sender, services, [me], **with_content("Vedtak", "# Vedtak"))
    # The API refuses raw HTML in a body (1003); rows written another way must not get through either.
    body = "# Vedtak\n\nDu har fått **medhold**. <script>alert(1)</script> [lenke](javascript:alert(2))"
    await db.execute(
        """UPDATE correspondence_contents SET message_body = $2
           WHERE id = (SELECT content_id FROM correspondences WHERE id = $1)""",
        uuid.UUID(cid),
        body,
    )
    async with browser(dev_issuer.mint(scope=READ, pid=me)) as b:
        page = (await b.get(f"/inbox/{cid}")).text
        assert "<strong>medhold</strong>" in page and "<h1>Vedtak</h1>" in page
        assert "<script>alert" not in page and "&lt;script&gt;" in page and 'href="javascript' not in page
        assert "content-security-policy" in (await b.get(f"/inbox/{cid}")).headers
        listed = (await b.get("/inbox")).text
    assert 'class="read"' in listed and 'class="unread"' not in listed
    statuses = [r["status"] for r in await db.fetch(
        "SELECT status FROM correspondence_statuses WHERE correspondence_id = $1 ORDER BY id", uuid.UUID(cid)
    )]  # fmt: skip
    assert 4 in statuses  # Read
    fetches = "SELECT count(*) FROM correspondence_fetches WHERE correspondence_id = $1"
    assert await db.fetchval(fetches, uuid.UUID(cid)) == 1  # Fetched
    assert await db.fetchval("SELECT read_at IS NOT NULL FROM correspondences WHERE id = $1", uuid.UUID(cid))


async def test_nobody_opens_another_partys_correspondence_by_url(
    browser: Browser, client: httpx.AsyncClient, sender: Sender, services: Services, dev_issuer: DevIssuer
) -> None:
    me, stranger = builders.national_id(), builders.national_id()
    [cid] = await send(client, sender, services, [me], **with_content("Hemmelig"))
    async with browser(dev_issuer.mint(scope=READ, pid=stranger)) as b:
        response = await b.get(f"/inbox/{cid}")
        assert response.status_code == 403 and "Hemmelig" not in response.text
        assert "not authorized" in response.text.lower() or "access" in response.text.lower()
        page = (await b.get("/inbox")).text
        for action in ("confirm", "archive", "delete"):
            denied = await b.post(f"/inbox/{cid}/{action}", data={"csrf": csrf_of(page)})
            assert denied.status_code == 403, action
        assert (await b.get(f"/inbox/{uuid.uuid4()}")).status_code == 404
        assert (await b.get("/inbox/not-a-uuid")).status_code == 404
    async with browser(sender.token) as owner:  # the sender is not a recipient
        assert (await owner.get(f"/inbox/{cid}")).status_code == 403


async def test_actions_need_the_csrf_token(
    browser: Browser,
    client: httpx.AsyncClient,
    sender: Sender,
    services: Services,
    dev_issuer: DevIssuer,
    db: asyncpg.Connection,
) -> None:
    me = builders.national_id()
    [cid] = await send(client, sender, services, [me], **NEEDS_CONFIRMATION)
    async with browser(dev_issuer.mint(scope=READ, pid=me)) as b:
        await b.get(f"/inbox/{cid}")
        assert (await b.post(f"/inbox/{cid}/confirm", data={"action": "confirm"})).status_code == 403
        assert (await b.post(f"/inbox/{cid}/confirm")).status_code == 415  # not a form at all
        assert (await b.post(f"/inbox/{cid}/confirm", data={"csrf": "0" * 64})).status_code == 403
        other_session = dev_issuer.mint(scope=READ, pid=me, lifetime_seconds=1800)
        async with browser(other_session) as b2:  # a token of another session of the same person
            theirs = csrf_of((await b2.get("/inbox")).text)
        assert (await b.post(f"/inbox/{cid}/confirm", data={"csrf": theirs})).status_code == 403
        assert (await b.post("/inbox/bulk", data={"action": "archive", "ids": [cid]})).status_code == 403
    confirmed = await db.fetchval("SELECT confirmed_at FROM correspondences WHERE id = $1", uuid.UUID(cid))
    assert confirmed is None


async def test_confirm_then_archive_with_the_apis_rules(
    browser: Browser,
    client: httpx.AsyncClient,
    sender: Sender,
    services: Services,
    dev_issuer: DevIssuer,
) -> None:
    me = builders.national_id()
    [cid] = await send(client, sender, services, [me], **NEEDS_CONFIRMATION)
    async with browser(dev_issuer.mint(scope=READ, pid=me)) as b:
        page = (await b.get(f"/inbox/{cid}")).text
        assert f'action="/inbox/{cid}/confirm"' in page
        token = csrf_of(page)
        refused = await b.post(f"/inbox/{cid}/archive", data={"csrf": token})
        assert refused.status_code == 303
        shown = (await b.get(refused.headers["location"])).text
        assert html.escape(CONFIRMATION_REQUIRED.message) in shown
        confirmed = await b.post(f"/inbox/{cid}/confirm", data={"csrf": token})
        assert confirmed.status_code == 303
        page = (await b.get(f"/inbox/{cid}")).text
        assert "The message is confirmed." in page and f'action="/inbox/{cid}/confirm"' not in page
        archived = await b.post(f"/inbox/{cid}/archive", data={"csrf": token})
        assert archived.headers["location"] == "/inbox"
        assert cid not in (await b.get("/inbox")).text  # the default list leaves archived ones out
        assert row_ids((await b.get("/inbox?status=Archived")).text) == [cid]


async def test_delete_purges_for_the_recipient(
    browser: Browser, client: httpx.AsyncClient, sender: Sender, services: Services, dev_issuer: DevIssuer
) -> None:
    me = builders.national_id()
    [cid] = await send(client, sender, services, [me])
    async with browser(dev_issuer.mint(scope=READ, pid=me)) as b:
        token = csrf_of((await b.get(f"/inbox/{cid}")).text)
        deleted = await b.post(f"/inbox/{cid}/delete", data={"csrf": token})
        assert deleted.status_code == 303 and deleted.headers["location"] == "/inbox"
        assert row_ids((await b.get("/inbox?status=any")).text) == []
        assert (await b.get(f"/inbox/{cid}")).status_code == 404


async def test_bulk_mark_as_read_and_archive(
    browser: Browser, client: httpx.AsyncClient, sender: Sender, services: Services, dev_issuer: DevIssuer
) -> None:
    me = builders.national_id()
    ids = await send(client, sender, services, [me])
    ids += await send(client, sender, services, [me])
    ids += await send(client, sender, services, [me], **NEEDS_CONFIRMATION)
    async with browser(dev_issuer.mint(scope=READ, pid=me)) as b:
        page = (await b.get("/inbox")).text
        assert page.count('class="unread"') == 3
        read = await b.post(
            "/inbox/bulk", data={"csrf": csrf_of(page), "action": "read", "ids": ids, "back": "/inbox"}
        )
        assert read.status_code == 303
        page = (await b.get("/inbox")).text
        assert "3 of 3 messages were updated." in page and 'class="unread"' not in page
        archived = await b.post(
            "/inbox/bulk", data={"csrf": csrf_of(page), "action": "archive", "ids": ids, "back": "/inbox"}
        )
        page = (await b.get(archived.headers["location"])).text
        assert "2 of 3 messages were updated." in page and "confirmation is required" in page
        assert row_ids(page) == [ids[2]]


async def test_search_and_filters(
    browser: Browser,
    client: httpx.AsyncClient,
    sender: Sender,
    services: Services,
    dev_issuer: DevIssuer,
    db: asyncpg.Connection,
) -> None:
    me = builders.national_id()
    tax_content = with_content("Skattemelding 2025", summary="Frist i mai")
    [tax] = await send(client, sender, services, [me], **tax_content)
    [fine] = await send(client, sender, services, [me], **with_content("Parkeringsbot", summary="Betal nå"))
    other = Sender(builders.org_number(), f"web-other-{uuid.uuid4().hex[:8]}", "")
    await registry.upsert_resource(
        db,
        resource_id=other.resource_id,
        owner_org=other.org,
        title="Annen tjeneste",
        resource_type="CorrespondenceService",
        confidential="NotConfidential",
        min_auth_level=0,
    )
    other.token = dev_issuer.mint(scope="altinn:correspondence.write altinn:serviceowner", org=other.org)
    [elsewhere] = await send(client, other, services, [me], **with_content("Brev fra en annen"))
    async with browser(dev_issuer.mint(scope=READ, pid=me)) as b:
        assert row_ids((await b.get("/inbox?q=skatt")).text) == [tax]
        assert row_ids((await b.get("/inbox?q=BETAL+parker")).text) == [fine]
        assert row_ids((await b.get("/inbox?q=mai+parkering")).text) == []
        assert row_ids((await b.get("/inbox?q=%27%3A*+%26+!")).text) == [elsewhere, fine, tax]  # no words
        assert row_ids((await b.get(f"/inbox?resource={other.resource_id}")).text) == [elsewhere]
        assert row_ids((await b.get(f"/inbox?sender={sender.org}")).text) == [fine, tax]
        page = (await b.get("/inbox")).text
        assert f'value="{other.resource_id}"' in page and f'value="{other.org}"' in page
        await b.get(f"/inbox/{fine}")
        assert row_ids((await b.get("/inbox?unread=1")).text) == [elsewhere, tax]
        assert row_ids((await b.get("/inbox?status=Read")).text) == [fine]
        assert row_ids((await b.get("/inbox?from=2000-01-01&to=2000-12-31")).text) == []
        assert len(row_ids((await b.get("/inbox?from=2000-01-01")).text)) == 3
        bad = await b.get("/inbox?from=2030-01-01&to=2029-01-01")
        assert bad.status_code == 400 and "From date cannot be after to date" in bad.text


async def test_a_common_word_is_searched_by_walking_the_list(
    browser: Browser,
    client: httpx.AsyncClient,
    sender: Sender,
    services: Services,
    dev_issuer: DevIssuer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    me = builders.national_id()
    [hit] = await send(client, sender, services, [me], **with_content("Årsoppgave", summary="for 2025"))
    await send(client, sender, services, [me], **with_content("Noe annet"))
    monkeypatch.setattr(web_repository, "RARE_CONTENTS", 1)  # every word counts as common
    async with browser(dev_issuer.mint(scope=READ, pid=me)) as b:
        page = (await b.get("/inbox?q=%C3%A5rsoppg+2025")).text
    assert row_ids(page) == [hit] and "1 messages" in page


async def test_the_inbox_pages_by_keyset_both_ways(
    browser: Browser, client: httpx.AsyncClient, sender: Sender, services: Services, dev_issuer: DevIssuer
) -> None:
    me = builders.national_id()
    body = builders.initialize_body(sender.resource_id, [me])
    ids: list[str] = []
    for _ in range(30):
        body["correspondence"]["sendersReference"] = "ref-" + uuid.uuid4().hex[:8]
        response = await client.post(INITIALIZE, json=body, headers=sender.headers)
        ids += [c["correspondenceId"] for c in response.json()["correspondences"]]
    await drain(services)
    async with browser(dev_issuer.mint(scope=READ, pid=me)) as b:
        first = (await b.get("/inbox")).text
        assert len(row_ids(first)) == 25 and "30 messages" in first and 'rel="prev"' not in first
        older = html.unescape(re.search(r'href="([^"]+)" rel="next"', first).group(1))  # type: ignore[union-attr]
        second = (await b.get(older)).text
        assert len(row_ids(second)) == 5 and 'rel="next"' not in second
        assert set(row_ids(first)) | set(row_ids(second)) == set(ids)
        newer = html.unescape(re.search(r'href="([^"]+)" rel="prev"', second).group(1))  # type: ignore[union-attr]
        assert row_ids((await b.get(newer)).text) == row_ids(first)


async def test_a_person_acts_for_an_organisation_by_delegation(
    browser: Browser,
    client: httpx.AsyncClient,
    sender: Sender,
    services: Services,
    dev_issuer: DevIssuer,
    db: asyncpg.Connection,
) -> None:
    org, employee, outsider = builders.org_number(), builders.national_id(), builders.national_id()
    await registry.grant_access(db, person=PERSON_URN + employee, party=ORG_URN + org)
    await registry.set_party_name(db, party=ORG_URN + org, name="Bakeri AS")
    [cid] = await send(client, sender, services, [f"0192:{org}"], **with_content("Til bakeriet"))
    async with browser(dev_issuer.mint(scope=READ, pid=employee)) as b:
        page = (await b.get("/inbox")).text
        assert "Bakeri AS" in page and row_ids(page) == []
        switched = await b.post("/act", data={"csrf": csrf_of(page), "party": ORG_URN + org})
        assert switched.status_code == 303
        assert row_ids((await b.get("/inbox")).text) == [cid]
        assert "Til bakeriet" in (await b.get(f"/inbox/{cid}")).text
    async with browser(dev_issuer.mint(scope=READ, pid=outsider)) as b:
        page = (await b.get("/inbox")).text
        refused = await b.post("/act", data={"csrf": csrf_of(page), "party": ORG_URN + org})
        assert refused.status_code == 403
        b.cookies.set("corr_party", ORG_URN + org)  # a forged choice is checked on every page
        assert (await b.get("/inbox")).status_code == 403


async def test_the_attachment_downloads_for_the_recipient_only(
    browser: Browser, client: httpx.AsyncClient, sender: Sender, services: Services, dev_issuer: DevIssuer
) -> None:
    me = builders.national_id()
    attachment_id = await published_attachment(client, sender, services, b"%PDF-1.7 web", fileName="brev.pdf")
    [cid] = await send(client, sender, services, [me], attachments=[attachment_id])
    url = f"/inbox/{cid}/attachments/{attachment_id}"
    async with browser(dev_issuer.mint(scope=READ, pid=me)) as b:
        assert url in (await b.get(f"/inbox/{cid}")).text
        response = await b.get(url)
        assert response.status_code == 200 and response.content == b"%PDF-1.7 web"
        assert response.headers["content-security-policy"] == "sandbox"
    async with browser(dev_issuer.mint(scope=READ, pid=builders.national_id())) as b:
        assert (await b.get(url)).status_code == 403


# --- sent --------------------------------------------------------------------------------------------


async def test_the_sent_view_shows_each_recipients_status_and_notifications(
    browser: Browser,
    client: httpx.AsyncClient,
    sender: Sender,
    services: Services,
    dev_issuer: DevIssuer,
    db: asyncpg.Connection,
) -> None:
    reader, ignorer = builders.national_id(), builders.national_id()
    await registry.set_contact(
        db, party=PERSON_URN + reader, email="reader@example.no", mobile=None, reserved=None,
        clear_email=False, clear_mobile=False,
    )  # fmt: skip
    ids = await send(
        client,
        sender,
        services,
        [reader, ignorer],
        notification_block=builders.notification(notificationChannel="Email", sendReminder=False),
    )
    async with browser(dev_issuer.mint(scope=READ, pid=reader)) as b:
        await b.get(f"/inbox/{ids[0]}")
    async with browser(sender.token) as owner:
        page = (await owner.get(f"/sent?resource={sender.resource_id}")).text
        statuses = dict(
            zip(
                re.findall(r'data-testid="sent-row" data-id="([0-9a-f-]+)"', page),
                re.findall(r'data-testid="sent-status">([^<]+)<', page),
                strict=True,
            )
        )
        assert statuses == {ids[0]: "Read", ids[1]: "Published"}
        assert "Success" in page and "MissingContact" in page
        item = (await owner.get(f"/sent/{ids[0]}")).text
        assert item.count('data-testid="order-row"') == 1 and "reader@example.no" in item
        assert "Fetched" in item and "Read" in item and "Published" in item
        deliveries = item[item.index('id="deliveries"') : item.index('id="events"')]
        assert deliveries.count('data-testid="delivery-row"') == 1 and "reader@example.no" in deliveries
        events = item[item.index('id="events"') :]
        assert "no.altinn.correspondence.correspondencepublished" in events
    async with browser(dev_issuer.mint(scope="altinn:correspondence.write", org=builders.org_number())) as b:
        assert (await b.get(f"/sent/{ids[0]}")).status_code == 403
        assert (await b.get(f"/sent?resource={sender.resource_id}")).status_code == 403
    async with browser(dev_issuer.mint(scope=READ, pid=reader)) as b:
        assert (await b.get("/sent")).status_code == 403
        assert (await b.get(f"/sent/{ids[0]}")).status_code == 403


async def test_static_files_are_served_and_others_are_not(browser: Browser) -> None:
    async with browser() as b:
        css = await b.get("/static/web/web.css")
        assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
        assert (await b.get("/static/web/..%2Fpages.py")).status_code == 404
        assert (await b.get("/static/web/nothing.css")).status_code == 404
