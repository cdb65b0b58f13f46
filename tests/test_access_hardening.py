"""Who may act as sender, and what a recipient may read: the sender policy's scopes on every route
and page, the resource's minimum authentication level, confidential post through delegations, and
search by role and by idempotentKey (issue: safe to expose, items 2, 3 and 11)."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
from typer.testing import CliRunner

from correspondence.auth.caller import Caller, caller_from_claims
from correspondence.auth.tokens import DevIssuer
from correspondence.cli import app as cli_app
from correspondence.config import get_settings
from correspondence.correspondence.use_cases.purge import purge
from correspondence.correspondence.use_cases.view import get_details
from correspondence.kit.errors import ApiError
from correspondence.registry import repository as registry
from correspondence.services import Services
from tests import builders
from tests.attachment_fixtures import drain
from tests.conftest import INITIALIZE, Sender

READ = "altinn:correspondence.read"
WRITE = "altinn:correspondence.write"
SERVICE_OWNER = "altinn:serviceowner"
PERSON_URN = "urn:altinn:person:identifier-no:"
ORG_URN = "urn:altinn:organization:identifier-no:"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def send(
    client: httpx.AsyncClient,
    sender: Sender,
    recipients: list[str],
    *,
    resource_id: str | None = None,
    **kw: Any,
) -> list[str]:
    body = builders.initialize_body(resource_id or sender.resource_id, recipients, **kw)
    response = await client.post(INITIALIZE, json=body, headers=sender.headers)
    assert response.status_code == 200, response.text
    return [i["correspondenceId"] for i in response.json()["correspondences"]]


async def add_resource(
    db: asyncpg.Connection, owner: str, *, min_auth_level: int = 0, confidential: str = "NotConfidential"
) -> str:
    resource_id = f"hardening-{uuid.uuid4().hex[:10]}"
    await registry.upsert_resource(
        db,
        resource_id=resource_id,
        owner_org=owner,
        title="Hardening",
        resource_type="CorrespondenceService",
        confidential=confidential,
        min_auth_level=min_auth_level,
    )
    return resource_id


async def search(client: httpx.AsyncClient, token: str, **params: str) -> httpx.Response:
    return await client.get(INITIALIZE, params=params, headers=bearer(token))


@pytest.fixture
async def browser(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client


def signed_in(client: httpx.AsyncClient, token: str) -> httpx.AsyncClient:
    client.cookies.clear()
    client.cookies.set("corr_session", token)
    return client


def row_ids(page: str) -> list[str]:
    return re.findall(r'data-testid="row" data-id="([0-9a-f-]+)"', page)


# --- acting as sender needs the sender policy -----------------------------------------------------


async def test_read_only_owner_token_is_refused_details(
    client: httpx.AsyncClient, sender: Sender, dev_issuer: DevIssuer
) -> None:
    [cid] = await send(client, sender, [builders.national_id()])
    read_only = dev_issuer.mint(scope=READ, org=sender.org)
    response = await client.get(f"{INITIALIZE}/{cid}/details", headers=bearer(read_only))
    assert response.status_code == 403 and response.json()["errorCode"] == 4001
    assert (await client.get(f"{INITIALIZE}/{cid}", headers=bearer(read_only))).status_code == 403
    # The owner calling with the write scope still reads it as sender.
    assert (await client.get(f"{INITIALIZE}/{cid}/details", headers=sender.headers)).status_code == 200


async def test_read_only_owner_token_cannot_purge_unpublished(
    client: httpx.AsyncClient, sender: Sender, dev_issuer: DevIssuer, db: asyncpg.Connection
) -> None:
    [cid] = await send(client, sender, [builders.national_id()])
    read_only = dev_issuer.mint(scope=READ, org=sender.org)
    response = await client.delete(f"{INITIALIZE}/{cid}/purge", headers=bearer(read_only))
    assert response.status_code == 403
    status = await db.fetchval("SELECT status FROM correspondences WHERE id = $1::uuid", cid)
    assert status not in (7, 8)


async def test_web_sent_pages_need_the_write_scope(
    client: httpx.AsyncClient, browser: httpx.AsyncClient, sender: Sender, dev_issuer: DevIssuer
) -> None:
    [cid] = await send(client, sender, [builders.national_id()])
    read_only = dev_issuer.mint(scope=READ, org=sender.org)
    signed_in(browser, read_only)
    assert (await browser.get("/sent")).status_code == 403
    assert (await browser.get(f"/sent/{cid}")).status_code == 403
    signed_in(browser, sender.token)
    assert (await browser.get("/sent")).status_code == 200
    assert (await browser.get(f"/sent/{cid}")).status_code == 200


async def test_maskinporten_owner_without_serviceowner_is_not_the_sender(
    client: httpx.AsyncClient, sender: Sender, services: Services
) -> None:
    [cid] = await send(client, sender, [builders.national_id()])

    def maskinporten(*scopes: str) -> Caller:
        return Caller(
            issuer="https://test.maskinporten.no/", kind="maskinporten", scopes=frozenset(scopes),
            org=sender.org, pid=None, expires=0.0,
        )  # fmt: skip

    for use_case in (get_details, purge):
        with pytest.raises(ApiError) as refused:
            await use_case(
                pool=services.pool, caller=maskinporten(WRITE, READ), correspondence_id=uuid.UUID(cid)
            )
        assert refused.value.status == 403 and refused.value.code == 4001
    details = await get_details(
        pool=services.pool, caller=maskinporten(WRITE, SERVICE_OWNER), correspondence_id=uuid.UUID(cid)
    )
    assert details["correspondenceId"] == cid


# --- minimum authentication level -------------------------------------------------------------------


async def test_level_two_is_refused_a_level_three_resource_and_level_three_reads_it(
    client: httpx.AsyncClient,
    browser: httpx.AsyncClient,
    sender: Sender,
    services: Services,
    dev_issuer: DevIssuer,
    db: asyncpg.Connection,
) -> None:
    person = builders.national_id()
    level3 = await add_resource(db, sender.org, min_auth_level=3)
    [open_cid] = await send(client, sender, [person])
    [strict_cid] = await send(client, sender, [person], resource_id=level3)
    await drain(services)
    low = dev_issuer.mint(scope=READ, pid=person, auth_level=2)
    high = dev_issuer.mint(scope=READ, pid=person, auth_level=3)

    for path in ("", "/details", "/content"):
        response = await client.get(f"{INITIALIZE}/{strict_cid}{path}", headers=bearer(low))
        assert response.status_code == 403, path
    for action in ("markasread", "confirm", "archive"):
        assert (
            await client.post(f"{INITIALIZE}/{strict_cid}/{action}", headers=bearer(low))
        ).status_code == 403
    assert (await client.delete(f"{INITIALIZE}/{strict_cid}/purge", headers=bearer(low))).status_code == 403
    assert (await search(client, low, role="Recipient", resourceId=sender.resource_id)).json()["ids"] == [
        open_cid
    ]
    assert (await search(client, low, role="Recipient", resourceId=level3)).status_code == 403
    page = await signed_in(browser, low).get("/inbox")
    assert page.status_code == 200 and row_ids(page.text) == [open_cid]
    assert (await browser.get(f"/inbox/{strict_cid}")).status_code == 403

    assert (await client.get(f"{INITIALIZE}/{strict_cid}", headers=bearer(high))).status_code == 200
    assert (await client.get(f"{INITIALIZE}/{strict_cid}/content", headers=bearer(high))).status_code == 200
    assert (await search(client, high, role="Recipient", resourceId=sender.resource_id)).json()["ids"] == [
        open_cid
    ]
    assert (await search(client, high, role="Recipient", resourceId=level3)).json()["ids"] == [strict_cid]
    page = await signed_in(browser, high).get("/inbox")
    assert set(row_ids(page.text)) == {open_cid, strict_cid}

    # The owner acting as sender is not held to the minimum level.
    owner = dev_issuer.mint(scope=f"{WRITE} {SERVICE_OWNER}", org=sender.org, auth_level=0)
    assert (await client.get(f"{INITIALIZE}/{strict_cid}/details", headers=bearer(owner))).status_code == 200
    assert (await search(client, owner, role="Sender", resourceId=level3)).json()["ids"] == [strict_cid]


@pytest.mark.parametrize(
    ("claims", "level"),
    [
        ({"urn:altinn:authlevel": 3}, 3),
        ({"urn:altinn:authlevel": "4"}, 4),
        ({"acr": "idporten-loa-high"}, 4),
        ({"acr": "idporten-loa-substantial"}, 3),
        ({"acr": "idporten-loa-low"}, 2),
        ({"acr": "selfregistered-email"}, 0),
        ({"acr": "Level4"}, 4),
        ({"acr": "Level3"}, 3),
        ({}, 0),
        ({"urn:altinn:authlevel": "high"}, 0),
    ],
)
def test_the_callers_level_comes_from_authlevel_or_acr(claims: dict[str, Any], level: int) -> None:
    caller = caller_from_claims({"iss": "x", "exp": 1, "scope": READ, **claims}, "altinn")
    assert caller.auth_level == level


async def test_id_porten_acr_decides_the_level(
    client: httpx.AsyncClient,
    sender: Sender,
    services: Services,
    dev_issuer: DevIssuer,
    db: asyncpg.Connection,
) -> None:
    person = builders.national_id()
    level3 = await add_resource(db, sender.org, min_auth_level=3)
    [cid] = await send(client, sender, [person], resource_id=level3)
    await drain(services)

    def id_porten(acr: str) -> str:
        return dev_issuer.mint(scope=READ, pid=person, extra={"urn:altinn:authlevel": None, "acr": acr})

    assert (
        await client.get(f"{INITIALIZE}/{cid}", headers=bearer(id_porten("idporten-loa-low")))
    ).status_code == 403
    ok = await client.get(f"{INITIALIZE}/{cid}", headers=bearer(id_porten("idporten-loa-substantial")))
    assert ok.status_code == 200


# --- confidential correspondence through delegations ---------------------------------------------


async def test_delegation_needs_confidential_post_for_confidential_correspondence(
    client: httpx.AsyncClient,
    browser: httpx.AsyncClient,
    sender: Sender,
    services: Services,
    dev_issuer: DevIssuer,
    db: asyncpg.Connection,
) -> None:
    org = builders.org_number()
    plain_employee, trusted_employee = builders.national_id(), builders.national_id()
    await registry.grant_access(db, person=PERSON_URN + plain_employee, party=ORG_URN + org)
    secret_resource = await add_resource(db, sender.org, confidential="Confidential")
    [secret] = await send(client, sender, [ORG_URN + org], resource_id=secret_resource, isConfidential=True)
    [ordinary] = await send(client, sender, [ORG_URN + org])
    await drain(services)
    plain = dev_issuer.mint(scope=READ, pid=plain_employee)
    trusted = dev_issuer.mint(scope=READ, pid=trusted_employee)
    org_token = dev_issuer.mint(scope=READ, org=org)

    assert (await client.get(f"{INITIALIZE}/{secret}", headers=bearer(plain))).status_code == 403
    assert (await client.get(f"{INITIALIZE}/{secret}/content", headers=bearer(plain))).status_code == 403
    assert (await client.get(f"{INITIALIZE}/{ordinary}", headers=bearer(plain))).status_code == 200
    for resource_id, expected in ((sender.resource_id, [ordinary]), (secret_resource, [])):
        listed = await search(
            client, plain, role="Recipient", onBehalfOf=f"0192:{org}", resourceId=resource_id
        )
        assert listed.json()["ids"] == expected
    signed_in(browser, plain).cookies.set("corr_party", ORG_URN + org)
    assert row_ids((await browser.get("/inbox")).text) == [ordinary]

    await registry.grant_access(
        db, person=PERSON_URN + trusted_employee, party=ORG_URN + org, confidential=True
    )
    assert (await client.get(f"{INITIALIZE}/{secret}", headers=bearer(trusted))).status_code == 200
    for resource_id, expected in ((sender.resource_id, [ordinary]), (secret_resource, [secret])):
        listed = await search(
            client, trusted, role="Recipient", onBehalfOf=f"0192:{org}", resourceId=resource_id
        )
        assert listed.json()["ids"] == expected
    signed_in(browser, trusted).cookies.set("corr_party", ORG_URN + org)
    assert set(row_ids((await browser.get("/inbox")).text)) == {secret, ordinary}
    # The organisation's own token is unchanged.
    assert (await client.get(f"{INITIALIZE}/{secret}", headers=bearer(org_token))).status_code == 200


def test_access_grant_confidential_writes_the_flag(
    monkeypatch: pytest.MonkeyPatch, database_url: str, data_dir: Any
) -> None:
    import asyncio

    monkeypatch.setenv("CORRESPONDENCE_DATABASE_URL", database_url)
    monkeypatch.setenv("CORRESPONDENCE_DATA_DIR", str(data_dir))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        person, org = builders.national_id(), builders.org_number()
        granted = runner.invoke(cli_app, ["access", "grant", person, "--party", org, "--confidential"])
        assert granted.exit_code == 0, granted.output

        async def flag() -> bool | None:
            conn = await asyncpg.connect(database_url)
            try:
                found: bool | None = await conn.fetchval(
                    "SELECT confidential FROM delegations WHERE person = $1 AND party = $2",
                    PERSON_URN + person,
                    ORG_URN + org,
                )
                return found
            finally:
                await conn.close()

        assert asyncio.run(flag()) is True
        assert runner.invoke(cli_app, ["access", "grant", person, "--party", org]).exit_code == 0
        assert asyncio.run(flag()) is False
        token = runner.invoke(cli_app, ["token", "--pid", person, "--scope", READ, "--auth-level", "2"])
        assert token.exit_code == 0, token.output
        claims = jwt.decode(token.output.strip(), options={"verify_signature": False})
        assert claims["urn:altinn:authlevel"] == 2
        default = runner.invoke(cli_app, ["token", "--pid", person, "--scope", READ])
        assert (
            jwt.decode(default.output.strip(), options={"verify_signature": False})["urn:altinn:authlevel"]
            == 3
        )
        assert runner.invoke(cli_app, ["token", "--pid", person, "--auth-level", "5"]).exit_code != 0
    finally:
        get_settings.cache_clear()


# --- search by role and by idempotentKey -------------------------------------------------------------


async def test_search_as_sender_needs_the_write_scope(
    client: httpx.AsyncClient, sender: Sender, services: Services, dev_issuer: DevIssuer
) -> None:
    [sent] = await send(client, sender, [builders.national_id()])
    [received] = await send(client, sender, [ORG_URN + sender.org])  # the owner is also its recipient
    await drain(services)
    read_only = dev_issuer.mint(scope=READ, org=sender.org)
    assert (await search(client, read_only, role="Sender", resourceId=sender.resource_id)).status_code == 403
    both = await search(client, read_only, role="RecipientAndSender", resourceId=sender.resource_id)
    assert both.status_code == 200 and both.json()["ids"] == [received]
    assert (
        sent
        in (await search(client, sender.token, role="Sender", resourceId=sender.resource_id)).json()["ids"]
    )


async def test_search_by_idempotent_key_hides_what_the_recipient_may_not_see(
    client: httpx.AsyncClient,
    sender: Sender,
    services: Services,
    dev_issuer: DevIssuer,
    db: asyncpg.Connection,
) -> None:
    person = builders.national_id()
    key = str(uuid.uuid4())
    [cid] = await send(client, sender, [person], idempotent_key=key)  # not yet published
    recipient = dev_issuer.mint(scope=READ, pid=person)
    stranger = dev_issuer.mint(scope=READ, pid=builders.national_id())
    assert (
        await search(client, recipient, role="Recipient", idempotentKey=key, resourceId=sender.resource_id)
    ).json()["ids"] == []
    assert (
        await search(client, sender.token, role="Sender", idempotentKey=key, resourceId=sender.resource_id)
    ).json()["ids"] == [cid]
    await drain(services)
    assert (
        await search(client, recipient, role="Recipient", idempotentKey=key, resourceId=sender.resource_id)
    ).json()["ids"] == [cid]
    assert (
        await search(client, stranger, role="Recipient", idempotentKey=key, resourceId=sender.resource_id)
    ).json()["ids"] == []
    strict_key = str(uuid.uuid4())
    level3 = await add_resource(db, sender.org, min_auth_level=3)
    [strict] = await send(client, sender, [person], resource_id=level3, idempotent_key=strict_key)
    await drain(services)
    low = dev_issuer.mint(scope=READ, pid=person, auth_level=2)
    assert (
        await search(client, low, role="Recipient", idempotentKey=strict_key, resourceId=sender.resource_id)
    ).json()["ids"] == []
    assert (
        await search(
            client, recipient, role="Recipient", idempotentKey=strict_key, resourceId=sender.resource_id
        )
    ).json()["ids"] == [strict]


# --- event subscriptions as owner --------------------------------------------------------------------


async def test_owner_subscriptions_need_the_write_scope(
    client: httpx.AsyncClient, sender: Sender, dev_issuer: DevIssuer
) -> None:
    subscriptions = "/events/api/v1/subscriptions"
    created = await client.post(
        subscriptions, json={"endPoint": "http://127.0.0.1:9/hook"}, headers=sender.headers
    )
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    read_only = bearer(dev_issuer.mint(scope=READ, org=sender.org))
    assert (await client.get(subscriptions, headers=read_only)).json()["subscriptions"] == []
    for method in ("GET", "DELETE"):
        assert (await client.request(method, f"{subscriptions}/{sid}", headers=read_only)).status_code == 403
    assert (await client.get(f"{subscriptions}/{sid}/deliveries", headers=read_only)).status_code == 403
    assert (await client.get(f"{subscriptions}/{sid}", headers=sender.headers)).status_code == 200
