"""Odd input answers 4xx in the reference's shapes, never 500: Unicode and signed digits, thousands of
digits, dates at the ends of time, ids beyond bigint; and the web forms are read within limits
(media type and size) before anything else looks at the request."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx

from correspondence.auth.tokens import DevIssuer
from tests import builders
from tests.attachment_fixtures import published_attachment
from tests.conftest import INITIALIZE, Sender

API = "/correspondence/api/v1"
SUBSCRIPTIONS = "/events/api/v1/subscriptions"
PROBLEM = "application/problem+json"
THOUSANDS = "9" * 5000


def validation_errors(response: httpx.Response) -> dict[str, list[str]]:
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["code"] == "STD-00000" and body["status"] == 400, body
    errors: dict[str, list[str]] = body["errors"]
    return errors


def problem(response: httpx.Response, status: int) -> dict[str, Any]:
    """A ProblemDetails body (api.md §1.6.1) with `status`."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and body["traceId"], body
    return body


# --- search's query parameters (the hand-written fast path) ----------------------------------------


async def test_search_refuses_enum_values_with_unicode_or_doubled_sign_digits(
    client: httpx.AsyncClient, sender: Sender
) -> None:
    for name, value in [("role", "²"), ("role", "--1"), ("role", "١"), ("status", "--1"), ("status", "²")]:
        params = {"resourceId": sender.resource_id, "role": "Sender", name: value}
        response = await client.get(INITIALIZE, params=params, headers=sender.headers)
        assert validation_errors(response) == {name: [f"The value '{value}' is not valid."]}, value


async def test_search_reads_offset_and_limit_as_ascii_digits_only(
    client: httpx.AsyncClient, sender: Sender
) -> None:
    for value in ("²", "٣", "+1", " 1", "1_0", "--1", THOUSANDS):
        for name in ("offset", "limit"):
            params = {"resourceId": sender.resource_id, "role": "Sender", name: value}
            response = await client.get(INITIALIZE, params=params, headers=sender.headers)
            assert list(validation_errors(response)) == [name], (name, value[:20])


# --- JSON bodies --------------------------------------------------------------------------------------


async def test_a_notification_template_with_odd_digits_is_the_references_invalid_template(
    client: httpx.AsyncClient, sender: Sender
) -> None:
    for value in ("--1", "²", "+1", THOUSANDS):
        body = builders.initialize_body(
            sender.resource_id,
            [builders.national_id()],
            notification_block=builders.notification(notificationTemplate=value),
        )
        response = await client.post(INITIALIZE, json=body, headers=sender.headers)
        assert response.status_code == 400, (value[:20], response.text)
        assert response.json() == "Invalid notification template"


async def test_a_transmission_type_with_odd_digits_is_a_validation_problem(
    client: httpx.AsyncClient, sender: Sender
) -> None:
    for value in ("²", "٣", THOUSANDS):
        references = [{"referenceType": "DialogportenTransmissionType", "referenceValue": value}]
        body = builders.initialize_body(
            sender.resource_id, [builders.national_id()], externalReferences=references
        )
        response = await client.post(INITIALIZE, json=body, headers=sender.headers)
        assert validation_errors(response) == {
            "Correspondence.ExternalReferences": [
                "DialogportenTransmissionType referenceValue must be a valid transmission type"
            ]
        }, value[:20]


async def test_custom_notification_recipients_are_at_most_fifty(
    client: httpx.AsyncClient, sender: Sender
) -> None:
    def custom(n: int) -> list[dict[str, str]]:
        return [{"emailAddress": f"mottaker{i}@example.no"} for i in range(n)]

    body = builders.initialize_body(
        sender.resource_id,
        [builders.national_id()],
        notification_block=builders.notification(customRecipients=custom(51)),
    )
    response = await client.post(INITIALIZE, json=body, headers=sender.headers)
    assert validation_errors(response) == {
        "Correspondence.Notification.CustomRecipients": ["customRecipients can contain at most 50 recipients"]
    }
    deprecated = [{"recipientToOverride": "x", "recipients": custom(51)}]
    body = builders.initialize_body(
        sender.resource_id,
        [builders.national_id()],
        notification_block=builders.notification(customNotificationRecipients=deprecated),
    )
    response = await client.post(INITIALIZE, json=body, headers=sender.headers)
    assert validation_errors(response) == {
        "Correspondence.Notification.CustomNotificationRecipients[0].Recipients": [
            "recipients can contain at most 50 recipients"
        ]
    }
    body = builders.initialize_body(
        sender.resource_id,
        [builders.national_id()],
        notification_block=builders.notification(customRecipients=custom(50)),
    )
    response = await client.post(INITIALIZE, json=body, headers=sender.headers)
    assert response.status_code == 200, response.text


# --- multipart form names ----------------------------------------------------------------------------


async def test_a_form_index_that_is_not_ascii_digits_is_a_validation_problem(
    client: httpx.AsyncClient, sender: Sender
) -> None:
    for index in ("²", "١", "9" * 4000, THOUSANDS):
        fields = {
            "Correspondence.ResourceId": sender.resource_id,
            "Correspondence.SendersReference": "ref",
            "Correspondence.Content.Language": "nb",
            "Correspondence.Content.MessageTitle": "Tittel",
            "Correspondence.Content.MessageBody": "Tekst",
            f"Recipients[{index}]": builders.national_id(),
        }
        files = [("attachments", ("a.pdf", b"%PDF-1.7", "application/pdf"))]
        response = await client.post(
            f"{API}/correspondence/upload", data=fields, files=files, headers=sender.headers
        )
        if index == THOUSANDS:  # a part header beyond the parser's limit: refused before binding
            assert "not valid multipart/form-data" in problem(response, 400)["detail"]
        else:
            assert list(validation_errors(response)) == ["Recipients"], index[:20]


# --- headers -------------------------------------------------------------------------------------------


async def test_a_range_with_thousands_of_digits_is_not_a_server_error(
    client: httpx.AsyncClient, sender: Sender, services: Any
) -> None:
    data = b"%PDF-1.7 odd ranges"
    attachment_id = await published_attachment(client, sender, services, data=data)
    url = f"{API}/attachment/{attachment_id}/download"

    async def get(range_header: str) -> httpx.Response:
        return await client.get(url, headers={**sender.headers, "Range": range_header.encode()})

    beyond = await get(f"bytes={THOUSANDS}-")
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{len(data)}"
    beyond_closed = await get(f"bytes={THOUSANDS}-{THOUSANDS}")
    assert beyond_closed.status_code == 416
    to_the_end = await get(f"bytes=2-{THOUSANDS}")
    assert to_the_end.status_code == 206 and to_the_end.content == data[2:]
    suffix = await get(f"bytes=-{THOUSANDS}")
    assert suffix.status_code == 206 and suffix.content == data
    for odd in ("bytes=²-", "bytes=١-٣", "bytes=+1-2"):  # not a range: the whole file
        whole = await get(odd)
        assert whole.status_code == 200 and whole.content == data, odd


async def test_a_content_length_of_unicode_digits_is_not_a_server_error(app: Any, sender: Sender) -> None:
    body = builders.initialize_body(sender.resource_id, [builders.national_id()])
    raw = httpx.Request("POST", "http://test", json=body).content
    for declared in ("²", "١٢", THOUSANDS):
        status, _, _ = await asgi(
            app,
            "POST",
            INITIALIZE,
            [
                (b"authorization", sender.headers["Authorization"].encode()),
                (b"content-type", b"application/json"),
                (b"content-length", declared.encode()),
            ],
            [raw],
        )
        assert status == (413 if declared == THOUSANDS else 200), declared[:20]


# --- dates at the ends of time -----------------------------------------------------------------------


async def test_inbox_dates_at_the_ends_of_time_are_refused(
    client: httpx.AsyncClient, dev_issuer: DevIssuer
) -> None:
    client.cookies.set(
        "corr_session", dev_issuer.mint(scope="altinn:correspondence.read", pid=builders.national_id())
    )
    for query in ("to=9999-12-31", "from=9999-12-31", "from=0001-01-01", "to=0001-01-01"):
        response = await client.get(f"/inbox?{query}")
        assert response.status_code == 400, (query, response.text[:200])
        assert "is not valid" in response.text
    paged = await client.get("/inbox?before=9999-12-31T23:59:59-14:00_" + str(uuid.uuid4()))
    assert paged.status_code == 200  # an impossible cursor is no cursor


# --- the subscriptions API -------------------------------------------------------------------------


async def test_a_subscription_id_beyond_bigint_is_a_validation_problem(
    client: httpx.AsyncClient, sender: Sender
) -> None:
    for value in (str(2**63), str(2**64), "-" + str(2**63 + 1), THOUSANDS, "²", "+1", "1_0"):
        for method, path in [("GET", ""), ("DELETE", ""), ("GET", "/deliveries")]:
            response = await client.request(method, f"{SUBSCRIPTIONS}/{value}{path}", headers=sender.headers)
            assert validation_errors(response) == {
                "subscription_id": [f"The value '{value}' is not valid."]
            }, (method, path, value[:20])
    for name, value in [("before", str(2**63)), ("before", "0"), ("limit", "1001"), ("limit", "²")]:
        response = await client.get(
            f"{SUBSCRIPTIONS}/1/deliveries", params={name: value}, headers=sender.headers
        )
        assert list(validation_errors(response)) == [name], (name, value)
    found = await client.get(f"{SUBSCRIPTIONS}/{2**63 - 1}", headers=sender.headers)
    problem(found, 404)


# --- the web pages' forms ----------------------------------------------------------------------------


async def asgi(
    app: Any, method: str, path: str, headers: list[tuple[bytes, bytes]], chunks: list[bytes]
) -> tuple[int, dict[str, str], bytes]:
    """One request straight through the ASGI app, its body sent in `chunks` with the headers as
    given (so a Content-Length can be missing or wrong)."""
    pending = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)
    ]
    pending = pending or [{"type": "http.request", "body": b"", "more_body": False}]
    started: dict[str, Any] = {}
    body = bytearray()

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop(0)
        await asyncio.Event().wait()  # no disconnect: the client waits for its answer
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            started.update(message)
        elif message["type"] == "http.response.body":
            body.extend(message.get("body", b""))

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"test"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("test", 80),
        "app": app,
    }
    await app(scope, receive, send)
    return started["status"], {k.decode(): v.decode() for k, v in started.get("headers", [])}, bytes(body)


FORM = (b"content-type", b"application/x-www-form-urlencoded")
WEB_POSTS = ["/signin", "/signout", "/act", "/inbox/bulk", f"/inbox/{uuid.uuid4()}/confirm"]


async def test_web_forms_must_be_urlencoded(app: Any) -> None:
    for path in WEB_POSTS:
        for media in (b"multipart/form-data; boundary=x", b"application/json", b"text/plain"):
            body = b'--x\r\nContent-Disposition: form-data; name="csrf"\r\n\r\nx\r\n--x--\r\n'
            status, headers, _ = await asgi(app, "POST", path, [(b"content-type", media)], [body])
            assert status == 415 and headers["content-type"] == PROBLEM, (path, media)
        status, _, _ = await asgi(app, "POST", path, [], [b"csrf=x"])
        assert status == 415, path


class CountingValidator:
    """The service's token validator, counting the tokens it is asked about."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.asked = 0

    async def validate(self, token: str) -> Any:
        self.asked += 1
        return await self.inner.validate(token)


async def test_web_forms_are_capped_while_reading_before_the_session_is_looked_at(
    app: Any, dev_issuer: DevIssuer, services: Any
) -> None:
    session = (
        b"cookie",
        b"corr_session="
        + dev_issuer.mint(scope="altinn:correspondence.read", pid=builders.national_id()).encode(),
    )
    big = [b"ids=" + b"x" * 16 * 1024 + b"&" for _ in range(5)]  # 80 KiB in 5 chunks
    counting = services.validator = CountingValidator(services.validator)  # a recording fake at the port
    try:
        for path in WEB_POSTS:
            for cookies in ([], [session]):
                # Declared honestly, not declared at all, and declared small.
                for declared in (
                    [(b"content-length", str(sum(map(len, big))).encode())],
                    [],
                    [(b"content-length", b"10")],
                ):
                    status, headers, _ = await asgi(app, "POST", path, [FORM, *cookies, *declared], big)
                    assert status == 413 and headers["content-type"] == PROBLEM, (path, declared, cookies)
    finally:
        services.validator = counting.inner
    assert counting.asked == 0, "the session was validated before the form was read"
    # The largest legitimate form, the inbox's bulk action with its maximum of 200 ids (and a long
    # `back`), is well within the cap: read and judged (the CSRF token is wrong, not the size).
    fields = [("csrf", "0" * 64), ("action", "read"), ("back", "/inbox?" + "q=x&" * 200)]
    fields += [("ids", str(uuid.uuid4())) for _ in range(200)]
    body = "&".join(f"{k}={v}" for k, v in fields).encode()
    status, _, _ = await asgi(app, "POST", "/inbox/bulk", [FORM, session], [body])
    assert status == 403


async def test_form_tokens_with_non_ascii_characters_are_refused_not_a_server_error(
    client: httpx.AsyncClient, dev_issuer: DevIssuer
) -> None:
    token = dev_issuer.mint(scope="altinn:correspondence.read", pid=builders.national_id())
    client.cookies.set("corr_session", token)
    for path in ("/signout", "/act", "/inbox/bulk", f"/inbox/{uuid.uuid4()}/confirm"):
        response = await client.post(path, data={"csrf": "²", "ids": str(uuid.uuid4()), "action": "read"})
        assert response.status_code == 403, (path, response.text[:200])
    client.cookies.clear()
    client.cookies.set("corr_signin", "abc")
    response = await client.post(
        "/signin", data={"csrf": "æøå", "kind": "person", "pid": builders.national_id()}
    )
    assert response.status_code == 403
