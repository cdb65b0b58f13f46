"""Hypothesis throws odd values at every parameter and body field of every operation of OUR OpenAPI
document (the official operations and the subscriptions API), and at the web pages' query
parameters, forms and the download Range header: Unicode digits, signs, underscores, thousands of
digits, NUL, dates at the ends of time, integers beyond int64, NaN. Whatever the input, the answer
is never a server error, and an API's 4xx is in the reference's shapes (api.md §1.6).

tests/test_schemathesis.py fuzzes the official document's schemas over HTTP; this one aims at the
hand-written parsing behind them, in-process (fast enough for `make test`). Each case starts from a
request that would succeed (a seeded correspondence, attachment and subscription, valid bodies) and
puts odd values in one to three places, so the odd value is what the service has to deal with.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import asyncpg
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from correspondence.auth.tokens import DevIssuer
from correspondence.registry import repository as registry
from correspondence.services import Services
from tests import builders
from tests.attachment_fixtures import drain, published_attachment
from tests.conftest import INITIALIZE, Sender

MAX_EXAMPLES = 60  # per target (about 40 targets)
API = "/correspondence/api/v1"
SUBSCRIPTIONS = "/events/api/v1/subscriptions"
READ = "altinn:correspondence.read"
SENDER_SCOPES = "altinn:correspondence.write altinn:serviceowner"
CONDITION_CHECK = "altinn:system/notifications.condition.check"
PROBLEM = "application/problem+json"
HOOK = "http://127.0.0.1:9/odd"  # nothing listens: a delivery that runs anyway fails at once
BIG = "9" * 5000

# Odd text: each one has answered 500 somewhere, or is the kind of thing that does.
ODD_TEXT = [
    "²",
    "١٢٣",
    "９",
    "--1",
    "+1",
    " 1",
    "1 ",
    "1_000",
    "-0",
    "0x10",
    "1e309",
    "NaN",
    "-Infinity",
    "\x00",
    "a\x00b",
    BIG,
    "-" + BIG,
    "9" * 20,
    str(2**63),
    str(-(2**63) - 1),
    str(2**31),
    "9999-12-31",
    "0001-01-01",
    "9999-12-31T23:59:59-23:59",
    "0001-01-01T00:00:00+23:59",
    "9999-12-31T23:59:59.9999999Z",
    "99999-01-01T00:00:00Z",
    "2024-02-30T00:00:00Z",
    "",
    " ",
    "%",
    "%00",
    "../..",
    "\u202e",
    "x" * 10_000,
    "urn:altinn:organization:identifier-no:²²²²²²²²²",
    "0192:١٢٣٤٥٦٧٨٩",
    "urn:altinn:person:identifier-no:" + "²" * 11,
    "bytes=" + BIG + "-",
]
# Also tried in every slot one by one (the sweeps below), so no slot depends on the draw.
CORE = ["²", "--1", BIG, "\x00", "9999-12-31", "9999-12-31T23:59:59-23:59", "0001-01-01", str(2**63)]
CORE_JSON = [json.dumps(v) for v in CORE] + [BIG, "1e309", str(2**64)]
_DIGITISH = st.text(alphabet="0123456789²³¹٠١٢٣٤٥٦٧٨٩０１９-+_ .e:TZ\x00", min_size=1, max_size=30)
odd_text = st.one_of(
    st.sampled_from(ODD_TEXT), st.sampled_from(ODD_TEXT), _DIGITISH
)  # the list weighs double
# JSON values (as JSON text, so numbers can be anything the grammar allows, or not quite).
ODD_JSON_LITERALS = [
    BIG,
    "-" + BIG,
    "1e309",
    "-1e309",
    "1e-400",
    "NaN",
    "Infinity",
    str(2**64),
    str(-(2**63) - 1),
    str(2**31),
    "-1",
    "1.5",
    "true",
    "null",
    "[]",
    "{}",
    '["²"]',
    '{"²": "\\u0000"}',
]
odd_json = st.one_of(st.sampled_from(ODD_JSON_LITERALS), odd_text.map(json.dumps))


@dataclass
class World:
    """What the cases start from: callers, and ids that exist."""

    sender: dict[str, str]
    person: dict[str, str]
    resource_id: str
    recipient: str
    correspondence_id: str
    attachment_id: str  # the sender's own, published and in no correspondence
    shared_attachment_id: str  # in the published correspondence
    download_attachment_id: str  # the sender's, for the Range test only (the others may be purged)
    subscription_id: str
    person_token: str
    csrf: str  # the person's form token for the web pages
    notifications: dict[str, str]  # a notification service asking the send condition
    batch_id: str  # an open batch of the sender's (/ext/api/v1/batches)


@pytest.fixture(scope="module")
async def world(
    database_url: str, dev_issuer: DevIssuer, app: Any, services: Services
) -> AsyncIterator[World]:
    org = builders.org_number()
    resource_id = f"fuzz-odd-{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(database_url)
    try:
        await registry.upsert_resource(
            conn,
            resource_id=resource_id,
            owner_org=org,
            title="Odd values",
            resource_type="CorrespondenceService",
            confidential="NotConfidential",
            min_auth_level=0,
        )
    finally:
        await conn.close()
    sender = Sender(org, resource_id, dev_issuer.mint(scope=SENDER_SCOPES, org=org))
    recipient = builders.national_id()
    person_token = dev_issuer.mint(scope=READ, pid=recipient)
    person = {"Authorization": "Bearer " + person_token}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        attachment_id = await published_attachment(client, sender, services)
        shared_attachment_id = await published_attachment(client, sender, services)
        download_attachment_id = await published_attachment(client, sender, services)
        body = builders.initialize_body(
            resource_id, [recipient], notification_block=builders.notification(), allowForwarding=True
        )
        body["existingAttachments"] = [shared_attachment_id]
        created = await client.post(INITIALIZE, json=body, headers=sender.headers)
        assert created.status_code == 200, created.text
        await drain(services)
        subscription = await client.post(SUBSCRIPTIONS, json={"endPoint": HOOK}, headers=sender.headers)
        assert subscription.status_code == 201, subscription.text
        batch_body = builders.initialize_body(resource_id, [recipient])
        batch_body.pop("recipients")
        batch = await client.post("/ext/api/v1/batches", json=batch_body, headers=sender.headers)
        assert batch.status_code == 201, batch.text
        page = await client.get("/inbox", headers={"Cookie": f"corr_session={person_token}"})
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf, page.text[:300]
    yield World(
        sender=sender.headers,
        person=person,
        resource_id=resource_id,
        recipient=recipient,
        correspondence_id=created.json()["correspondences"][0]["correspondenceId"],
        attachment_id=attachment_id,
        shared_attachment_id=shared_attachment_id,
        download_attachment_id=download_attachment_id,
        subscription_id=str(subscription.json()["id"]),
        person_token=person_token,
        csrf=csrf.group(1),
        notifications={"Authorization": "Bearer " + dev_issuer.mint(scope=CONDITION_CHECK, org=org)},
        batch_id=batch.json()["id"],
    )
    await _leave_no_work(database_url, resource_id, org)


async def _leave_no_work(database_url: str, resource_id: str, org: str) -> None:
    """The fuzzing created hundreds of correspondences, attachments and subscriptions of its own
    resource and sender; their pending jobs and deliveries would make the next test's drain() run
    them all (minutes). Nothing here is checked after this module, so they go."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            """DELETE FROM jobs WHERE status = 0 AND (
                 ref_id IN (SELECT id FROM correspondences WHERE resource_id = $1)
                 OR ref_id IN (SELECT id FROM attachments WHERE resource_id = $1)
                 OR ref_id IN (SELECT id FROM batches WHERE resource_id = $1))""",
            resource_id,
        )
        await conn.execute(
            "DELETE FROM event_deliveries WHERE status = 0 AND subscription_id IN "
            "(SELECT id FROM event_subscriptions WHERE consumer LIKE '%' || $1)",
            org,
        )
        await conn.execute(
            "UPDATE event_subscriptions SET deleted = now() WHERE consumer LIKE '%' || $1", org
        )
    finally:
        await conn.close()


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test", timeout=60) as c:
        yield c


# --- the operations of our OpenAPI document ----------------------------------------------------------


def _document() -> dict[str, Any]:
    from correspondence.app import create_app
    from correspondence.config import Settings

    document: dict[str, Any] = create_app(Settings(mode="development"), "postgresql://unused/x").openapi()
    return document


DOCUMENT = _document()
OPERATIONS = [
    (method.upper(), path, operation)
    for path, operations in DOCUMENT["paths"].items()
    for method, operation in operations.items()
]


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = DOCUMENT["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [_resolve(s) for s in schema[key] if s.get("type") != "null"]
            return next(
                (s for s in options if "properties" in s or "items" in s), options[0] if options else {}
            )
    return schema


def field_paths(
    schema: dict[str, Any], prefix: tuple[str | int, ...] = (), depth: int = 0
) -> Iterator[tuple]:
    """Every property of a JSON body (lists as their first element), the containers included."""
    schema = _resolve(schema)
    if depth > 6:
        return
    for name, member in schema.get("properties", {}).items():
        path = (*prefix, name)
        yield path
        member = _resolve(member)
        if "properties" in member:
            yield from field_paths(member, path, depth + 1)
        elif "items" in member:
            yield (*path, 0)
            yield from field_paths(member["items"], (*path, 0), depth + 1)


def _body_schema(operation: dict[str, Any], media: str) -> dict[str, Any] | None:
    content = operation.get("requestBody", {}).get("content", {})
    return content[media]["schema"] if media in content else None


def _put(body: Any, path: tuple, value: Any) -> Any:
    """`body` with `value` at `path`, creating what is missing on the way."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(head, int):
        items = list(body) if isinstance(body, list) else []
        while len(items) <= head:
            items.append({})
        items[head] = _put(items[head], rest, value)
        return items
    out = dict(body) if isinstance(body, dict) else {}
    out[head] = _put(out.get(head), rest, value)
    return out


def _form_name(path: tuple) -> str:
    """A JSON body path as the multipart form's .NET binding name."""
    name = ""
    for part in path:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += ("." if name else "") + part[:1].upper() + part[1:]
    return name


INITIALIZE_PATHS = list(field_paths(DOCUMENT["components"]["schemas"]["InitializeCorrespondencesExt"]))


def _baseline_body(path: str, w: World) -> Any:
    if path == f"{API}/correspondence":
        return builders.initialize_body(
            w.resource_id, [w.recipient], notification_block=builders.notification()
        )
    if path == f"{API}/attachment":
        return {"resourceId": w.resource_id, "fileName": "odd.pdf", "sendersReference": "odd"}
    if path == SUBSCRIPTIONS:
        return {"endPoint": HOOK, "resourceFilter": w.resource_id}
    if path.endswith("/forward"):
        return {"forwardTo": "odd@example.no", "forwardingText": "Til orientering"}
    if path == "/ext/api/v1/batches":
        body = builders.initialize_body(w.resource_id, [w.recipient])
        body.pop("recipients")
        return body
    if path.endswith("/recipients/{page}"):
        return {"recipients": [w.recipient]}
    return {}


def _baseline_form(w: World) -> dict[str, str]:
    return {
        "Correspondence.ResourceId": w.resource_id,
        "Correspondence.SendersReference": "odd",
        "Correspondence.Content.Language": "nb",
        "Correspondence.Content.MessageTitle": "Tittel",
        "Correspondence.Content.MessageBody": "Tekst",
        "Recipients[0]": w.recipient,
    }


@dataclass
class Slot:
    kind: str  # path | query | header | body | form | form-name
    name: str | tuple


def _slots(method: str, path: str, operation: dict[str, Any]) -> list[Slot]:
    slots = [Slot(p["in"], p["name"]) for p in operation.get("parameters", [])]
    slots += [Slot("header", "Accept"), Slot("header", "Accept-Language"), Slot("query", "unexpected")]
    if path.endswith("/download"):
        slots += [Slot("header", "Range"), Slot("header", "Range"), Slot("header", "If-Range")]
    json_schema = _body_schema(operation, "application/json")
    if json_schema is not None:
        slots += [Slot("body", p) for p in field_paths(json_schema)]
    if _body_schema(operation, "multipart/form-data") is not None:
        slots += [Slot("form", _form_name(p)) for p in INITIALIZE_PATHS]
        slots += [Slot("form-name", "Recipients"), Slot("form-name", "Correspondence.Content.Attachments")]
    return slots


def _path_value(name: str, w: World, recipient: bool) -> str:
    return {
        "correspondenceId": w.correspondence_id,
        "attachmentId": w.shared_attachment_id if recipient else w.attachment_id,
        "subscription_id": w.subscription_id,
        "resourceId": w.resource_id,
        "batchId": w.batch_id,
        "page": "1",
    }[name]


def _header(value: str) -> bytes:
    return value.replace("\r", " ").replace("\n", " ").encode()  # a header cannot carry line breaks


async def _call(
    client: httpx.AsyncClient,
    method: str,
    path: str,
    operation: dict[str, Any],
    w: World,
    odd: list[tuple[Slot, Any]],
) -> httpx.Response:
    params: dict[str, str] = (
        {"resourceId": w.resource_id, "role": "RecipientAndSender"}
        if path == f"{API}/correspondence" and method == "GET"
        else {}
    )
    recipient = operation.get("x-caller") == "recipient"
    headers: dict[str, Any] = dict(w.person if recipient else w.sender)
    if operation.get("x-caller") == "notifications":
        headers = dict(w.notifications)
    path_values = {
        p["name"]: _path_value(p["name"], w, recipient)
        for p in operation.get("parameters", [])
        if p["in"] == "path"
    }
    body = _baseline_body(path, w)
    raw_json: dict[str, str] = {}
    form: list[tuple[str, str]] = list(_baseline_form(w).items())
    for i, (slot, value) in enumerate(odd):
        if slot.kind == "path":
            path_values[str(slot.name)] = value
        elif slot.kind == "query":
            params[str(slot.name)] = value
        elif slot.kind == "header":
            headers[str(slot.name)] = _header(value)
        elif slot.kind == "body":
            marker = f"__odd_{i}__"
            body = _put(body, tuple(slot.name), marker)
            raw_json[json.dumps(marker)] = value
        elif slot.kind == "form":
            form = [(k, v) for k, v in form if k != slot.name] + [(str(slot.name), value)]
        else:  # an odd index in a form name
            form.append((f"{slot.name}[{value}]", w.recipient))
    url = path.format(**{k: quote(v, safe="") for k, v in path_values.items()})
    if _body_schema(operation, "application/json") is not None:
        text = json.dumps(body)
        for marker, value in raw_json.items():
            text = text.replace(marker, value)
        headers["Content-Type"] = "application/json"
        return await client.request(method, url, params=params, headers=headers, content=text.encode())
    if _body_schema(operation, "multipart/form-data") is not None:
        files = [("attachments", ("a.pdf", b"%PDF-1.7", "application/pdf"))]
        return await client.request(method, url, params=params, headers=headers, data=dict(form), files=files)
    if _body_schema(operation, "application/octet-stream") is not None:
        headers["Content-Type"] = "application/octet-stream"
        return await client.request(method, url, params=params, headers=headers, content=b"%PDF-1.7 odd")
    return await client.request(method, url, params=params, headers=headers)


def _odd_for(slot: Slot) -> st.SearchStrategy[Any]:
    return odd_json if slot.kind == "body" else odd_text


def _cases(slots: list[Slot]) -> st.SearchStrategy[list[tuple[Slot, Any]]]:
    one = st.sampled_from(slots).flatmap(lambda s: _odd_for(s).map(lambda v: (s, v)))
    return st.lists(one, min_size=1, max_size=4)


def assert_answer_shape(response: httpx.Response, what: str) -> None:
    assert response.status_code < 500, f"{what}: {response.status_code} {response.text[:500]}"
    if response.status_code < 400 or response.status_code in (406, 416):
        return  # 406: the Accept header admits no JSON, so the answer is not JSON (kit/middleware)
    body = response.json()  # every 4xx of the API is JSON
    if isinstance(body, str):  # the reference's bare string for an undefined template (api.md §6.5)
        assert body == "Invalid notification template", what
        return
    assert response.headers["content-type"].startswith(PROBLEM), what
    assert body["status"] == response.status_code and body["title"], (what, body)
    if "errors" in body:
        assert body["code"] == "STD-00000" and body["validationErrors"], (what, body)


SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)

RECIPIENT_ONLY = re.compile(
    r"/(content|markasread|confirm|archive)$|/correspondence/\{correspondenceId\}/attachments?/"
)
for _method, _path, _operation in OPERATIONS:
    if RECIPIENT_ONLY.search(_path):
        _operation["x-caller"] = "recipient"
    elif "/notification/check" in _path:
        _operation["x-caller"] = "notifications"


@pytest.mark.parametrize(
    ("method", "path"), [(m, p) for m, p, _ in OPERATIONS], ids=[f"{m} {p}" for m, p, _ in OPERATIONS]
)
@SETTINGS
@given(data=st.data())
async def test_odd_values_in_any_parameter_or_field_are_never_a_server_error(
    method: str, path: str, client: httpx.AsyncClient, world: World, data: st.DataObject
) -> None:
    operation = DOCUMENT["paths"][path][method.lower()]
    odd = data.draw(_cases(_slots(method, path, operation)))
    response = await _call(client, method, path, operation, world, odd)
    assert_answer_shape(response, f"{method} {path} with {[(s.kind, s.name, str(v)[:40]) for s, v in odd]}")


@pytest.mark.parametrize(
    ("method", "path"), [(m, p) for m, p, _ in OPERATIONS], ids=[f"{m} {p}" for m, p, _ in OPERATIONS]
)
async def test_each_core_odd_value_in_each_slot_is_never_a_server_error(
    method: str, path: str, client: httpx.AsyncClient, world: World
) -> None:
    operation = DOCUMENT["paths"][path][method.lower()]
    for slot in _slots(method, path, operation):
        for value in CORE_JSON if slot.kind == "body" else CORE:
            response = await _call(client, method, path, operation, world, [(slot, value)])
            assert_answer_shape(response, f"{method} {path} with {slot.kind} {slot.name} = {value[:40]!r}")


def test_every_operation_and_field_is_a_target() -> None:
    """The targets follow the document: a new operation or body field is fuzzed without edits."""
    assert len(OPERATIONS) >= 23
    names = {(s.kind, s.name) for m, p, o in OPERATIONS for s in _slots(m, p, o)}
    assert ("path", "subscription_id") in names and ("query", "role") in names
    assert ("body", ("correspondence", "notification", "customRecipients", 0, "mobileNumber")) in names
    assert ("form", "Correspondence.Notification.NotificationTemplate") in names
    assert ("body", ("endPoint",)) in names


# --- the web pages -------------------------------------------------------------------------------------

WEB_QUERY = {
    "/inbox": ["q", "sender", "resource", "status", "from", "to", "unread", "before", "after"],
    "/sent": ["resource", "before"],
    "/signin": ["next", "expired"],
    "/lang/en": ["next"],
    "/": ["next"],
}


@pytest.mark.parametrize("page", list(WEB_QUERY))
async def test_each_core_odd_value_in_each_web_query_parameter_is_never_a_server_error(
    page: str, client: httpx.AsyncClient, world: World
) -> None:
    for name in WEB_QUERY[page]:
        for value in CORE:
            response = await client.get(
                page, params={name: value}, headers={"Cookie": f"corr_session={world.person_token}"}
            )
            assert response.status_code < 500, (page, name, value[:40], response.text[:300])


@pytest.mark.parametrize("page", list(WEB_QUERY))
@SETTINGS
@given(
    odd=st.lists(st.tuples(st.integers(0, 8), odd_text), min_size=1, max_size=9),
    as_sender=st.booleans(),
)
async def test_odd_values_in_web_query_parameters_are_never_a_server_error(
    page: str,
    client: httpx.AsyncClient,
    world: World,
    dev_issuer: DevIssuer,
    odd: list[tuple[int, str]],
    as_sender: bool,
) -> None:
    names = WEB_QUERY[page]
    params = {names[i % len(names)]: value for i, value in odd}
    token = world.sender["Authorization"].removeprefix("Bearer ") if as_sender else world.person_token
    response = await client.get(page, params=params, headers={"Cookie": f"corr_session={token}"})
    assert response.status_code < 500, (page, params, response.text[:300])


WEB_FORMS = {
    "/signin": ["csrf", "kind", "pid", "org", "token", "next"],
    "/signout": ["csrf"],
    "/act": ["csrf", "party"],
    "/inbox/bulk": ["csrf", "action", "ids", "back"],
    "/inbox/{cid}/confirm": ["csrf"],
    "/inbox/{cid}/archive": ["csrf"],
    "/inbox/{cid}/forward": ["csrf", "forward_to", "forwarding_text"],
    "/inbox/{cid}/{odd}": ["csrf"],  # an odd action name
}


def _good_form(world: World) -> dict[str, str]:
    return {
        "csrf": world.csrf,
        "kind": "person",
        "pid": world.recipient,
        "action": "read",
        "ids": world.correspondence_id,
        "forward_to": "odd@example.no",
    }


@pytest.mark.parametrize("form_path", list(WEB_FORMS))
async def test_each_core_odd_value_in_each_web_form_field_is_never_a_server_error(
    form_path: str, client: httpx.AsyncClient, world: World
) -> None:
    for name in WEB_FORMS[form_path]:
        for value in CORE:
            url = form_path.format(cid=world.correspondence_id, odd=quote(value, safe=""))
            fields = {**_good_form(world), name: value}
            response = await client.post(
                url, data=fields, headers={"Cookie": f"corr_session={world.person_token}"}
            )
            assert response.status_code < 500, (url, name, value[:40], response.text[:300])


@pytest.mark.parametrize("form_path", list(WEB_FORMS))
@SETTINGS
@given(odd=st.lists(st.tuples(st.integers(0, 8), odd_text), min_size=1, max_size=3), in_path=odd_text)
async def test_odd_values_in_web_forms_are_never_a_server_error(
    form_path: str,
    client: httpx.AsyncClient,
    world: World,
    odd: list[tuple[int, str]],
    in_path: str,
) -> None:
    names = WEB_FORMS[form_path]
    fields = {**_good_form(world), **{names[i % len(names)]: value for i, value in odd}}
    url = form_path.format(cid=world.correspondence_id, odd=quote(in_path, safe=""))
    response = await client.post(url, data=fields, headers={"Cookie": f"corr_session={world.person_token}"})
    assert response.status_code < 500, (url, fields, response.text[:300])


_NUMBER = st.one_of(odd_text, st.integers(min_value=0, max_value=2**70).map(str), st.just(""))


@SETTINGS
@given(
    first=_NUMBER,
    last=_NUMBER,
    unit=st.sampled_from(["bytes", "BYTES", "items", " bytes"]),
    as_recipient=st.booleans(),
)
async def test_odd_ranges_on_the_downloads_are_never_a_server_error(
    client: httpx.AsyncClient, world: World, first: str, last: str, unit: str, as_recipient: bool
) -> None:
    sender_url = f"{API}/attachment/{world.download_attachment_id}/download"
    recipient_url = (
        f"{API}/correspondence/{world.correspondence_id}/attachment/{world.shared_attachment_id}/download"
    )
    url, caller = (recipient_url, world.person) if as_recipient else (sender_url, world.sender)
    header = _header(f"{unit}={first}-{last}")
    response = await client.get(url, headers={**caller, "Range": header})
    assert response.status_code in (200, 206, 416), (header[:60], response.status_code, response.text[:300])
