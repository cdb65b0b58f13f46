"""Schemathesis, driven by the OFFICIAL OpenAPI document, against the real service over HTTP.

The service runs as `correspondence serve` in a subprocess on 127.0.0.1 (a free port), on the test
session's database and data directory, so tokens minted by the `dev_issuer` fixture validate. The
schema is filtered to the operations implemented so far (tests/test_contract.py IMPLEMENTED), plus
the operations the official document lacks, taken from our served document: those the reference
hides from its document (HIDDEN there: the notification condition checks and the forward check) and
those newer than it (NEWER there: forward and download all).

Checks, for every generated request (positive and negative data):
* no server error (5xx), whatever the input;
* a 200 response conforms to the official document's 200 schema, with the members the service has
  today added (tests/official.py current_document: api.md wins over the older document).

Generated data alone mostly earns 400s (random resource ids, invalid recipients), so hooks steer
part of the fuzzing cases onto the deep paths (the coverage phase's boundary cases are sent as is,
by each operation's default caller):
* `flatmap_headers`: who calls. Each operation draws its caller from `CALLERS` (the first one is
  its default): the sender, an organisation recipient, a person recipient who also acts for that
  organisation by a delegation, or a person with the read scope and access to nothing seeded;
* `flatmap_body`: most bodies name the sender's registered resource and valid recipients, and many
  are also made plausible enough to pass validation (see `_aim`), the rest kept as generated;
* `flatmap_path_parameters`: about half the cases use ids of correspondences created before the
  run, from a pool per operation (see `_seed_recipient_pools`): published for the recipients,
  fetched already where mark-as-read and confirm need it, read and forwardable for the forward, a
  few needing confirmation, a few not yet published for the sender's purge;
* forward bodies mostly name a fresh e-mail address (each address can be forwarded to once), many
  also a plain forwarding text;
* `flatmap_query`: most searches name the sender's resource, a party the caller may act for (or
  none) and a small page, the rest kept as generated;
* the attachment operations are steered the same way by tests/schemathesis_attachments.py.
`test_the_deep_paths_were_reached` then checks that every operation answered 2xx at least once, and
that the operations open to both sides did so for the sender and for a recipient.

On `nullable: true`: the official document declares OpenAPI 3.1 but marks optional members with the
3.0 keyword `nullable`. Schemathesis 4 reads `nullable` for 3.1 documents too (its 3.1 adapter sets
`nullable_keyword = "nullable"` and turns such schemas into `anyOf: [schema, {type: null}]`), so the
nulls we write for nullable members (`dueDateTime: null`, ...) conform without any transform.

One member is not covered by that: `notification` on the overview and details responses is a bare
`$ref` to `InitializeCorrespondenceNotificationExt`, without `nullable`, yet the reference always
writes it as `null` (api.md §1.2 and §6.6: "inherited request member, never populated"), and so do
we; without a transform schemathesis reports it (ST108 "null is not of type object"). So
`_response_notification_may_be_null` makes exactly that member nullable in the document the test
loads, and nothing else; our responses keep writing the null.
"""

from __future__ import annotations

import copy
import itertools
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from correspondence.auth.tokens import DevIssuer
from tests import builders
from tests import schemathesis_attachments as attachment_fuzz
from tests.official import current_document
from tests.test_contract import EXTRA_OPERATIONS, IMPLEMENTED, operation_roots, reachable

INITIALIZE = "/correspondence/api/v1/correspondence"
COMPONENTS = "#/components/schemas/"
MAX_EXAMPLES = 200  # per operation, fuzzing phase (whole module: about 90 s on 2 cores)

Operation = tuple[str, str]  # (method, path) as in IMPLEMENTED
ONE = INITIALIZE + "/{correspondenceId}"
SEARCH, CREATE = ("get", INITIALIZE), ("post", INITIALIZE)
OVERVIEW, DETAILS, CONTENT = ("get", ONE), ("get", ONE + "/details"), ("get", ONE + "/content")
MARK_AS_READ, CONFIRM = ("post", ONE + "/markasread"), ("post", ONE + "/confirm")
ARCHIVE, PURGE = ("post", ONE + "/archive"), ("delete", ONE + "/purge")
CHECK_REMINDER = ("get", ONE + "/notification/check")
CHECK_MAIN = ("get", ONE + "/notification/check/main")
FORWARD, FORWARD_CHECK = ("post", ONE + "/forward"), ("get", ONE + "/forward/check")

# The fuzzing sender: a fixed resource owned by a fixed organisation, registered by `live` below.
# The hooks read these while Hypothesis draws data, so they live at module level.
RESOURCE_ID = "fuzz-schemathesis-resource"
SENDER_ORG = "991825827"
SENDER_SCOPES = "altinn:correspondence.write altinn:serviceowner"
OTHER_RESOURCE, OTHER_ORG = "fuzz-schemathesis-other", "991825828"  # a service owner the caller is not
VALID_RECIPIENTS = [  # fixed, so a reported failing case can be replayed as is
    "11035066626",
    "12100793146",
    "14070824648",
    "urn:altinn:person:identifier-no:03095406075",
    "urn:altinn:person:identifier-no:08118059655",
    "0192:910753614",
    "urn:altinn:organization:identifier-no:312345678",
    "urn:altinn:person:idporten-email:someone@example.no",
    "urn:altinn:person:legacy-selfidentified:fuzzer",
]
# The recipients of the correspondences seeded for the recipients' operations. Fixed, valid numbers.
RECIPIENT_ORG = "312000011"
RECIPIENT_PERSON = "15038510190"  # also acts for RECIPIENT_ORG (a delegation granted by `live`)
STRANGER = "15038510271"  # a person with the read scope who may see nothing seeded
READ_SCOPE = "altinn:correspondence.read"
ORG_PARTY = "urn:altinn:organization:identifier-no:" + RECIPIENT_ORG
PERSON_PARTY = "urn:altinn:person:identifier-no:" + RECIPIENT_PERSON
NOTIFICATIONS_ORG = "991825829"  # a notification service asking the send condition
CONDITION_CHECK = "altinn:system/notifications.condition.check"
FORWARD_CHECK_SCOPE = "altinn:correspondence.forward.check"  # the caller "platform" (any organisation)

# Who calls each operation in the fuzzing phase, drawn uniformly (a repeat weighs double); the first
# is the default, used for the coverage phase and whenever the hook did not run.
BOTH_SIDES = ["sender", "sender", "org", "person", "stranger"]
RECIPIENT_SIDE = ["org", "person", "person", "stranger", "sender"]
CALLERS: dict[Operation, list[str]] = {
    CREATE: ["sender"],
    SEARCH: BOTH_SIDES,
    OVERVIEW: BOTH_SIDES,
    DETAILS: BOTH_SIDES,
    PURGE: ["sender", "org", "person", "person", "stranger"],
    CONTENT: RECIPIENT_SIDE,
    MARK_AS_READ: RECIPIENT_SIDE,
    CONFIRM: RECIPIENT_SIDE,
    ARCHIVE: RECIPIENT_SIDE,
    CHECK_REMINDER: ["notifications", "notifications", "sender", "person"],
    CHECK_MAIN: ["notifications", "notifications", "sender", "person"],
    FORWARD: RECIPIENT_SIDE,
    FORWARD_CHECK: ["platform", "platform", "sender", "person"],
}
CALLERS.update(attachment_fuzz.CALLERS)
TWO_SIDED = {SEARCH, OVERVIEW, DETAILS, PURGE}  # each side can succeed
AUTHORIZATION: dict[str, str] = {}  # caller → Authorization header, filled by `live`
KNOWN_IDS: list[str] = []  # filled by `live` before any case is drawn
POOLS: dict[Operation, list[str]] = {}  # ids steered to per operation, filled by `live`
REACHED: Counter[tuple[str, str, int]] = Counter()  # (method, path, status) of every call
REACHED_BY: Counter[tuple[str, str, str, int]] = Counter()  # (method, path, caller, status)


def _response_notification_may_be_null(document: dict[str, Any]) -> dict[str, Any]:
    """The official document, with the response member `notification` allowed to be null (see above)."""
    document = copy.deepcopy(document)
    for name in ("CorrespondenceOverviewExt", "CorrespondenceDetailsExt"):
        member = document["components"]["schemas"][name]["properties"]["notification"]
        assert member == {"$ref": COMPONENTS + "InitializeCorrespondenceNotificationExt"}, member
        member["anyOf"] = [{"$ref": member.pop("$ref")}, {"type": "null"}]
    return document


def _with_our_extra_operations(document: dict[str, Any]) -> dict[str, Any]:
    """The official document plus the operations it lacks (tests/test_contract.py HIDDEN and NEWER),
    as our served document describes them, with the components they use that it lacks."""
    from correspondence.app import create_app
    from correspondence.config import Settings

    ours = create_app(Settings(mode="development"), "postgresql://unused/x").openapi()
    document = copy.deepcopy(document)
    roots: list[Any] = []
    for method, path in EXTRA_OPERATIONS:
        operation = ours["paths"][path][method]
        document["paths"].setdefault(path, {})[method] = operation
        roots += operation_roots(operation)
    components = document["components"]["schemas"]
    for name in reachable(ours, roots):
        components.setdefault(name, ours["components"]["schemas"][name])
    return document


_document = attachment_fuzz.nullable_expiration(
    _with_our_extra_operations(_response_notification_may_be_null(current_document()))
)
schema = schemathesis.openapi.from_dict(_document).include(
    lambda ctx: (ctx.operation.method.lower(), ctx.operation.path) in IMPLEMENTED | EXTRA_OPERATIONS
)


# --- steering hooks -------------------------------------------------------------------------------


# Drawn uniformly; the deepest level comes first, so failing cases shrink towards it.
AIM_LEVELS = [3, 3, 3, 2, 1, 0]
GOOD_TEXT = {
    "messageTitle": "Meldingstittel",
    "messageSummary": "Ett sammendrag",
    "messageBody": "# Meldingen\n\nMed *markdown*.",
}
NOTIFICATION_TEXT = {
    "emailSubject": "Melding",
    "emailBody": "Du har mottatt en melding",
    "smsBody": "Du har mottatt en melding",
    "reminderEmailSubject": "Påminnelse",
    "reminderEmailBody": "Påminnelse om melding",
    "reminderSmsBody": "Påminnelse om melding",
}


def _aim(body: Any, level: int, recipients: list[str], language: str | None) -> Any:
    """Steer a generated body towards the deep paths of Initialize, keeping the rest as generated.

    0: as generated. 1: our registered resource and valid recipients. 2: also a content that can pass
    the model (valid language, no attachments, required texts present). 3: also plain texts and dates
    that pass the handler's rules (future due date when confirmation is needed, publish/send now).
    """
    if level == 0 or not isinstance(body, dict):
        return body
    body = copy.deepcopy(body)
    body["recipients"] = recipients
    corr = body.get("correspondence")
    if not isinstance(corr, dict):
        return body
    corr["resourceId"] = RESOURCE_ID
    if level == 1:
        return body
    body.pop("existingAttachments", None)
    if not isinstance(corr.get("sendersReference"), str) or not corr["sendersReference"]:
        corr["sendersReference"] = "fuzz"
    content = corr.get("content")
    if not isinstance(content, dict):
        content = corr["content"] = {}
    content["language"] = language
    content.pop("attachments", None)
    for key in ("messageTitle", "messageBody"):
        if not isinstance(content.get(key), str) or not content[key].strip():
            content[key] = GOOD_TEXT[key]
    if level == 2:
        return body
    content.update(GOOD_TEXT)
    corr.pop("messageSender", None)
    corr.pop("requestedPublishTime", None)
    corr["dueDateTime"] = builders.future(30) if corr.get("isConfirmationNeeded") else None
    # The official document lets these be null; the reference requires strings.
    if isinstance(corr.get("externalReferences"), list):
        corr["externalReferences"] = [
            r
            for r in corr["externalReferences"]
            if isinstance(r, dict) and isinstance(r.get("referenceValue"), str)
        ]
    if isinstance(corr.get("replyOptions"), list):
        for option in corr["replyOptions"]:
            if isinstance(option, dict) and not isinstance(option.get("linkURL"), str):
                option["linkURL"] = "https://example.no/svar"
    notification = corr.get("notification")
    if isinstance(notification, dict):
        notification.pop("requestedSendTime", None)
        for key, text in NOTIFICATION_TEXT.items():
            if not isinstance(notification.get(key), str):
                notification[key] = text
    return body


FRESH_ADDRESSES = itertools.count()  # drawn numbers shrink to a few, and each address works once


def _aim_forward(body: Any, level: int, fresh: bool, text: str | None) -> Any:
    """0: as generated. 1: an e-mail address, mostly a fresh one (a correspondence is forwarded to an
    address once; the repeated one earns 1064). 2: also a forwarding text that passes (or none)."""
    if level == 0 or not isinstance(body, dict):
        return body
    address = f"fuzz-{next(FRESH_ADDRESSES)}@example.no" if fresh else "fuzz@example.no"
    body = {**body, "forwardTo": address}
    if level == 2:
        body["forwardingText"] = text
    return body


@schema.hook
def flatmap_body(context: schemathesis.HookContext, body: Any) -> Any:
    if _operation(context) == FORWARD:
        return st.builds(
            _aim_forward,
            st.just(body),
            st.sampled_from([2, 2, 1, 0]),
            st.sampled_from([True, True, True, False]),
            st.sampled_from(["Til orientering.", None, ""]),
        )
    return st.builds(
        _aim,
        st.just(body),
        st.sampled_from(AIM_LEVELS),
        st.lists(st.sampled_from(VALID_RECIPIENTS), min_size=1, max_size=3, unique=True),
        st.sampled_from(["nb", "nn", "en", "NB", None]),
    )


def _operation(context: schemathesis.HookContext) -> Operation:
    assert context.operation is not None
    return context.operation.method.lower(), context.operation.path


@schema.hook
def flatmap_path_parameters(context: schemathesis.HookContext, path_parameters: Any) -> Any:
    pool = POOLS.get(_operation(context))
    if not pool or not isinstance(path_parameters, dict) or "correspondenceId" not in path_parameters:
        return st.just(path_parameters)
    known = st.sampled_from(pool).map(lambda cid: {**path_parameters, "correspondenceId": cid})
    return st.one_of(st.just(path_parameters), known)


@schema.hook
def flatmap_headers(context: schemathesis.HookContext, headers: Any) -> Any:
    callers = CALLERS.get(_operation(context))
    if not callers or not AUTHORIZATION or not (headers is None or isinstance(headers, dict)):
        return st.just(headers)
    return st.sampled_from(callers).map(lambda c: {**(headers or {}), "Authorization": AUTHORIZATION[c]})


ON_BEHALF_OF = [None, None, "0192:" + RECIPIENT_ORG, ORG_PARTY, PERSON_PARTY, RECIPIENT_PERSON]


ROLES = ["Recipient", "Sender", "RecipientAndSender"]


def _aim_search(query: Any, level: int, on_behalf_of: str | None, offset: int, limit: int, role: str) -> Any:
    """0: as generated. 1: the sender's resource, a role (both required) and a party some callers may
    act for (or none). 2: also no time window and a small page, so that pages with ids come back."""
    if level == 0 or not isinstance(query, dict):
        return query
    query = {**query, "resourceId": RESOURCE_ID}
    if query.get("role") not in ROLES:
        query["role"] = role
    query.pop("onBehalfOf", None)
    if on_behalf_of is not None:
        query["onBehalfOf"] = on_behalf_of
    if level == 2:
        query.pop("from", None)
        query.pop("to", None)
        query.update(offset=offset, limit=limit)
    return query


@schema.hook
def flatmap_query(context: schemathesis.HookContext, query: Any) -> Any:
    if _operation(context) != SEARCH:
        return st.just(query)
    return st.builds(
        _aim_search,
        st.just(query),
        st.sampled_from([2, 2, 1, 0]),
        st.sampled_from(ON_BEHALF_OF),
        st.integers(0, 3),
        st.integers(1, 4),
        st.sampled_from(["RecipientAndSender", *ROLES]),  # the one every caller may use, more often
    )


attachment_fuzz.register(
    schema, resource_id=RESOURCE_ID, recipients=["0192:" + RECIPIENT_ORG, RECIPIENT_PERSON]
)


# --- the running service ----------------------------------------------------------------------------


@dataclass
class Live:
    base_url: str
    headers: dict[str, str]
    log: Path
    session: requests.Session = field(default_factory=requests.Session)

    def log_tail(self, lines: int = 60) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _cli(*args: str, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-m", "correspondence", *args], env=env, check=True, capture_output=True)


@pytest.fixture(scope="module")
def live(database_url: str, data_dir: Path, dev_issuer: DevIssuer) -> Iterator[Live]:
    env = {
        **os.environ,
        "CORRESPONDENCE_MODE": "development",
        "CORRESPONDENCE_DATABASE_URL": database_url,
        "CORRESPONDENCE_DATA_DIR": str(data_dir),
        "CORRESPONDENCE_LOG_LEVEL": "warning",
    }
    _cli("resource", "add", RESOURCE_ID, "--owner", SENDER_ORG, env=env)
    _cli("resource", "add", OTHER_RESOURCE, "--owner", OTHER_ORG, env=env)
    _cli("access", "grant", RECIPIENT_PERSON, "--party", RECIPIENT_ORG, env=env)
    port = _free_port()
    log = data_dir / f"schemathesis-server-{port}.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "correspondence", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(base_url, server, log)
        AUTHORIZATION.update(
            sender="Bearer " + dev_issuer.mint(scope=SENDER_SCOPES, org=SENDER_ORG),
            org="Bearer " + dev_issuer.mint(scope=READ_SCOPE, org=RECIPIENT_ORG),
            person="Bearer " + dev_issuer.mint(scope=READ_SCOPE, pid=RECIPIENT_PERSON),
            stranger="Bearer " + dev_issuer.mint(scope=READ_SCOPE, pid=STRANGER),
            notifications="Bearer " + dev_issuer.mint(scope=CONDITION_CHECK, org=NOTIFICATIONS_ORG),
            platform="Bearer " + dev_issuer.mint(scope=FORWARD_CHECK_SCOPE, org=NOTIFICATIONS_ORG),
        )
        headers = {"Authorization": AUTHORIZATION["sender"]}
        KNOWN_IDS[:] = _seed_correspondences(base_url, headers, dev_issuer)
        POOLS.update(_seed_recipient_pools(base_url))
        with_attachments = attachment_fuzz.seed(
            base_url,
            AUTHORIZATION,
            resource_id=RESOURCE_ID,
            recipients=["0192:" + RECIPIENT_ORG, RECIPIENT_PERSON],
        )
        POOLS[OVERVIEW] += with_attachments
        POOLS[DETAILS] += with_attachments
        yield Live(base_url, headers, log)
    finally:
        KNOWN_IDS.clear()
        POOLS.clear()
        AUTHORIZATION.clear()
        attachment_fuzz.clear()
        server.terminate()
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)


def _wait_until_healthy(base_url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"`correspondence serve` exited with {server.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(base_url + "/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"`correspondence serve` did not become healthy within 60 s:\n{log.read_text()}")


def _seed_correspondences(base_url: str, headers: dict[str, str], dev_issuer: DevIssuer) -> list[str]:
    """A few correspondences for the GET operations: plain, with notification, with a due date, and one
    of another service owner (the caller has no access to it)."""
    bodies = [
        builders.initialize_body(RESOURCE_ID, [builders.national_id(), "0192:910753614"]),
        builders.initialize_body(
            RESOURCE_ID, [builders.national_id()], notification_block=builders.notification()
        ),
        builders.initialize_body(
            RESOURCE_ID,
            ["urn:altinn:person:idporten-email:someone@example.no"],
            dueDateTime=builders.future(10),
            isConfirmationNeeded=True,
            messageSender="Fuzz AS",
            propertyList={"a": "b"},
            replyOptions=[{"linkURL": "https://example.no/reply", "linkText": "Svar"}],
            externalReferences=[{"referenceValue": "x", "referenceType": "Generic"}],
        ),
        builders.initialize_body(
            RESOURCE_ID,
            ["urn:altinn:person:legacy-selfidentified:fuzzer"],
            requestedPublishTime=builders.future(5),
        ),
    ]
    ids: list[str] = []
    with httpx.Client(base_url=base_url, headers=headers, timeout=10) as client:
        for body in bodies:
            response = client.post(INITIALIZE, json=body)
            assert response.status_code == 200, response.text
            ids += [item["correspondenceId"] for item in response.json()["correspondences"]]
    # Another service owner's correspondence, to reach the no-access branch.
    other = {"Authorization": "Bearer " + dev_issuer.mint(scope=SENDER_SCOPES, org=OTHER_ORG)}
    response = httpx.post(
        base_url + INITIALIZE,
        json=builders.initialize_body(OTHER_RESOURCE, [builders.national_id()]),
        headers=other,
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return [*ids, response.json()["correspondences"][0]["correspondenceId"]]


def _seed_recipient_pools(base_url: str) -> dict[Operation, list[str]]:
    """Correspondences for the recipients' operations, one pool per operation so that one
    operation's fuzzing does not use up another's states. Each request goes to the organisation
    and to the person (who may act for both). All but the sender's purge pool are published; the
    mark-as-read and confirm pools are fetched by the person, the forward pool read by the person
    (some forwardable, one not, one forwardable but unread)."""
    sender = {"Authorization": AUTHORIZATION["sender"]}
    both = ["0192:" + RECIPIENT_ORG, RECIPIENT_PERSON]
    needs_confirmation = {"isConfirmationNeeded": True, "dueDateTime": builders.future(10)}

    def create(client: httpx.Client, count: int, recipients: list[str], **kw: Any) -> list[str]:
        ids: list[str] = []
        for _ in range(count):
            response = client.post(INITIALIZE, json=builders.initialize_body(RESOURCE_ID, recipients, **kw))
            assert response.status_code == 200, response.text
            ids += [item["correspondenceId"] for item in response.json()["correspondences"]]
        return ids

    with httpx.Client(base_url=base_url, headers=sender, timeout=10) as client:
        # Mostly the organisation's, which both recipients may see; more than three reply options.
        options = [{"linkURL": f"https://example.no/{i}", "linkText": "Svar"} for i in range(4)]
        view = create(client, 2, both, replyOptions=options) + create(
            client, 2, both[:1], replyOptions=options
        )
        mark = create(client, 3, both)
        confirm = create(client, 2, both, **needs_confirmation)
        archive = create(client, 1, both) + create(client, 1, [RECIPIENT_PERSON], **needs_confirmation)
        purge = create(client, 2, both) + create(client, 1, [RECIPIENT_PERSON], **needs_confirmation)
        unpublished = create(client, 2, ["0192:" + RECIPIENT_ORG], requestedPublishTime=builders.future(5))
        # The sender's purge succeeds once per unpublished id: enough of them that a fuzz run drawing
        # the sender for purge (one call in ten or so) is all but sure to meet one still there.
        sender_purge = create(client, 6, ["0192:" + RECIPIENT_ORG], requestedPublishTime=builders.future(5))
        forwardable = create(client, 2, both, allowForwarding=True)
        not_forwardable = create(client, 1, both[:1])
        unread = create(client, 1, both[:1], allowForwarding=True)
        published = view + mark + confirm + archive + purge + forwardable + not_forwardable + unread
        deadline = time.monotonic() + 60
        pending = set(published)
        while pending and time.monotonic() < deadline:  # the server's worker publishes them
            pending = {
                cid for cid in pending if client.get(f"{INITIALIZE}/{cid}").json()["status"] != "Published"
            }
            time.sleep(0.2 if pending else 0)
        assert not pending, f"not published within 60 s: {sorted(pending)}"
        person = {"Authorization": AUTHORIZATION["person"]}
        for cid in mark + confirm:
            fetched = client.get(f"{INITIALIZE}/{cid}", headers=person)
            assert fetched.status_code == 200, fetched.text
        for cid in forwardable + not_forwardable:
            read = client.get(f"{INITIALIZE}/{cid}/content", headers=person)
            assert read.status_code == 200, read.text
    foreign = KNOWN_IDS[-1:]  # another service owner's, for the no-access branches
    return {
        OVERVIEW: [*KNOWN_IDS, *view, *view, *unpublished],  # a repeat weighs double
        DETAILS: [*KNOWN_IDS, *view, *view, *unpublished],
        CONTENT: [*view, *unpublished, *foreign],
        MARK_AS_READ: [*mark, *foreign],
        CONFIRM: [*confirm, *foreign],
        ARCHIVE: [*archive, *foreign],
        PURGE: [*purge, *unpublished, *sender_purge, *sender_purge, *foreign],
        CHECK_REMINDER: [*KNOWN_IDS, *view, *mark, *unpublished],
        CHECK_MAIN: [*KNOWN_IDS, *view, *mark, *unpublished],
        FORWARD: [*forwardable, *forwardable, *not_forwardable, *unread, *foreign],
        FORWARD_CHECK: [*KNOWN_IDS, *forwardable, *view],
    }


# --- the test ---------------------------------------------------------------------------------------------


@schema.parametrize()
@hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_official_contract_holds_against_the_running_service(case: schemathesis.Case, live: Live) -> None:
    operation = (case.operation.method.lower(), case.operation.path)
    authorization = case.headers.get("Authorization") if case.headers else None
    caller = next((c for c, value in AUTHORIZATION.items() if authorization == value), None)
    extra = None
    if caller is None:  # not steered (coverage phase): the operation's default caller
        caller = CALLERS[operation][0]
        extra = {"Authorization": AUTHORIZATION[caller]}
    response = case.call(base_url=live.base_url, headers=extra, session=live.session, timeout=30)
    REACHED[(*operation, response.status_code)] += 1
    REACHED_BY[(*operation, caller, response.status_code)] += 1
    if response.status_code >= 500:  # pytest shows captured output of a failed test: the traceback
        print(f"Service log (tail) after {response.status_code}:\n{live.log_tail()}")
    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])


def test_the_deep_paths_were_reached() -> None:
    """Guards the steering: a fuzz run that only ever earned 400s would pass while proving little."""
    ran = {(method, path) for method, path, _ in REACHED}
    if not ran:
        pytest.skip("the fuzzing test did not run in this session")
    succeeded = {(method, path) for method, path, status in REACHED if 200 <= status < 300}
    missing = sorted(f"{method.upper()} {path}" for method, path in ran - succeeded)
    assert not missing, f"no 2xx response for {missing}; statuses seen: {dict(REACHED)}"
    # The operations open to both sides succeeded for each side.
    sides = {"sender": {"sender"}, "a recipient": {"org", "person"}}
    one_sided = sorted(
        f"{method.upper()} {path} (never for {side})"
        for method, path in ran & TWO_SIDED
        for side, callers in sides.items()
        if not any(
            200 <= status < 300 and (m, p) == (method, path) and c in callers
            for m, p, c, status in REACHED_BY
        )
    )
    assert not one_sided, f"no 2xx response for {one_sided}; statuses seen: {dict(REACHED_BY)}"
