"""Initialize: success paths, every validation rule and error code (api.md §3.1, §6, §8)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from correspondence.registry import repository as registry
from tests import builders
from tests.conftest import INITIALIZE, Sender


async def post(client: httpx.AsyncClient, sender: Sender, body: Any, **kwargs: Any) -> httpx.Response:
    return await client.post(INITIALIZE, json=body, headers=sender.headers, **kwargs)


def error_code(response: httpx.Response) -> int:
    return int(response.json()["errorCode"])


def validation_messages(response: httpx.Response) -> list[str]:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "STD-00000"
    return [item["title"] for item in body["validationErrors"]]


# --- success ------------------------------------------------------------------------------------


async def test_initialize_creates_one_correspondence_per_recipient(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection
) -> None:
    person, org = builders.national_id(), builders.org_number()
    response = await post(
        client, sender, builders.initialize_body(sender.resource_id, [person, f"0192:{org}"])
    )
    assert response.status_code == 200, response.text
    items = response.json()["correspondences"]
    assert [i["recipient"] for i in items] == [
        f"urn:altinn:person:identifier-no:{person}",
        f"urn:altinn:organization:identifier-no:{org}",
    ]
    assert all(i["status"] == "ReadyForPublish" for i in items)
    assert response.json()["attachmentIds"] == []
    ids = [uuid.UUID(i["correspondenceId"]) for i in items]
    rows = await db.fetch("SELECT id, sender, resource_id FROM correspondences WHERE id = ANY($1)", ids)
    assert {r["id"] for r in rows} == set(ids)
    assert {r["sender"] for r in rows} == {f"urn:altinn:organization:identifier-no:{sender.org}"}


async def test_recipient_formats_are_normalised(client: httpx.AsyncClient, sender: Sender) -> None:
    person, org = builders.national_id(), builders.org_number()
    recipients = [
        f"urn:altinn:person:identifier-no:{person}",
        f"urn:altinn:organization:identifier-no:{org}",
        "urn:altinn:person:idporten-email:Someone@Example.no",
    ]
    response = await post(client, sender, builders.initialize_body(sender.resource_id, recipients))
    assert response.status_code == 200, response.text
    assert [i["recipient"] for i in response.json()["correspondences"]] == [
        f"urn:altinn:person:identifier-no:{person}",
        f"urn:altinn:organization:identifier-no:{org}",
        "urn:altinn:person:idporten-email:someone@example.no",
    ]


async def test_property_names_match_case_insensitively(client: httpx.AsyncClient, sender: Sender) -> None:
    body = {
        "Correspondence": {
            "ResourceId": sender.resource_id,
            "SendersReference": "ref",
            "Content": {"Language": "nb", "MessageTitle": "Tittel", "MessageBody": "Tekst"},
            "Notification": {"NotificationTemplate": 1, "NotificationChannel": "email", "SendReminder": True},
            "VisibleFrom": "ignored",
        },
        "Recipients": [builders.national_id()],
    }
    response = await post(client, sender, body)
    assert response.status_code == 200, response.text
    assert len(response.json()["correspondences"][0]["notifications"]) == 2


async def test_the_resource_urn_prefix_is_stripped(client: httpx.AsyncClient, sender: Sender) -> None:
    body = builders.initialize_body(f"urn:altinn:resource:{sender.resource_id}", [builders.national_id()])
    response = await post(client, sender, body)
    assert response.status_code == 200, response.text
    cid = response.json()["correspondences"][0]["correspondenceId"]
    overview = await client.get(f"{INITIALIZE}/{cid}", headers=sender.headers)
    assert overview.json()["resourceId"] == sender.resource_id


async def test_content_type_other_than_json_is_415(client: httpx.AsyncClient, sender: Sender) -> None:
    response = await client.post(
        INITIALIZE, content=b"<x/>", headers={**sender.headers, "Content-Type": "text/xml"}
    )
    assert response.status_code == 415


async def test_unacceptable_accept_header_is_406(client: httpx.AsyncClient, sender: Sender) -> None:
    body = builders.initialize_body(sender.resource_id, [builders.national_id()])
    response = await client.post(INITIALIZE, json=body, headers={**sender.headers, "Accept": "text/html"})
    assert response.status_code == 406
    for accept in ("*/*", "application/*", "application/problem+json", "application/json; q=0.5"):
        ok = await client.post(
            INITIALIZE,
            json=builders.initialize_body(sender.resource_id, [builders.national_id()]),
            headers={**sender.headers, "Accept": accept},
        )
        assert ok.status_code == 200, (accept, ok.text)


async def test_malformed_json_is_a_validation_problem(client: httpx.AsyncClient, sender: Sender) -> None:
    response = await client.post(
        INITIALIZE,
        content=b'{"correspondence": ',
        headers={**sender.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["code"] == "STD-00000"


async def test_an_empty_body_is_400(client: httpx.AsyncClient, sender: Sender) -> None:
    response = await client.post(
        INITIALIZE, content=b"", headers={**sender.headers, "Content-Type": "application/json"}
    )
    assert response.status_code == 400


# --- model validation (400 validation problem) ---------------------------------------------------


@pytest.mark.parametrize(
    ("recipient", "message"),
    [
        ("910753614", "Recipient should be an organization number"),
        ("12345678901", "The given Recipient national identity number is not valid"),
        ("urn:altinn:person:idporten-email:no-at-sign", "The given Recipient email address is not valid"),
        ("", "Recipients can not contain null or empty values"),
    ],
)
async def test_invalid_recipients_are_rejected(
    client: httpx.AsyncClient, sender: Sender, recipient: str, message: str
) -> None:
    response = await post(client, sender, builders.initialize_body(sender.resource_id, [recipient]))
    assert any(m.startswith(message) for m in validation_messages(response)), response.text


async def test_recipients_must_not_be_empty(client: httpx.AsyncClient, sender: Sender) -> None:
    response = await post(client, sender, builders.initialize_body(sender.resource_id, []))
    assert "Recipients can not be empty" in validation_messages(response)


async def test_more_than_500_recipients_are_rejected(client: httpx.AsyncClient, sender: Sender) -> None:
    recipients = [f"0192:{400000000 + i}" for i in range(501)]
    response = await post(client, sender, builders.initialize_body(sender.resource_id, recipients))
    assert "Recipients can contain at most 500 recipients" in validation_messages(response)


async def test_missing_required_fields_name_the_field(client: httpx.AsyncClient, sender: Sender) -> None:
    body = builders.initialize_body(sender.resource_id, [builders.national_id()])
    del body["correspondence"]["sendersReference"]
    response = await post(client, sender, body)
    assert "The SendersReference field is required." in validation_messages(response)
    assert response.json()["errors"]["Correspondence.SendersReference"]


async def test_title_longer_than_255_is_a_validation_problem(
    client: httpx.AsyncClient, sender: Sender
) -> None:
    body = builders.initialize_body(
        sender.resource_id, [builders.national_id()], content={"messageTitle": "x" * 256}
    )
    messages = validation_messages(await post(client, sender, body))
    assert (
        "The field MessageTitle must be a string with a minimum length of 1 and a maximum length of 255."
        in messages
    )


async def test_body_longer_than_30000_is_a_validation_problem(
    client: httpx.AsyncClient, sender: Sender
) -> None:
    body = builders.initialize_body(
        sender.resource_id, [builders.national_id()], content={"messageBody": "x" * 30001}
    )
    messages = validation_messages(await post(client, sender, body))
    assert any("MessageBody" in m for m in messages)


async def test_summary_longer_than_255_is_a_validation_problem(
    client: httpx.AsyncClient, sender: Sender
) -> None:
    body = builders.initialize_body(
        sender.resource_id, [builders.national_id()], content={"messageSummary": "x" * 256}
    )
    messages = validation_messages(await post(client, sender, body))
    assert "The field MessageSummary must be a string with a maximum length of 255." in messages


@pytest.mark.parametrize(
    ("language", "message"),
    [
        ("nob", "The ISO6391 field must be exactly 2 characters long!"),
        ("iv", "The language code must be ISO6391 compliant!"),
    ],
)
async def test_language_attribute_rules(
    client: httpx.AsyncClient, sender: Sender, language: str, message: str
) -> None:
    body = builders.initialize_body(
        sender.resource_id, [builders.national_id()], content={"language": language}
    )
    assert message in validation_messages(await post(client, sender, body))


async def test_resource_id_with_colon_is_rejected(client: httpx.AsyncClient, sender: Sender) -> None:
    body = builders.initialize_body("urn:other:thing", [builders.national_id()])
    assert "Invalid Resource identifier format" in validation_messages(await post(client, sender, body))


async def test_property_list_limits(client: httpx.AsyncClient, sender: Sender) -> None:
    many = {f"k{i}": "v" for i in range(11)}
    body = builders.initialize_body(sender.resource_id, [builders.national_id()], propertyList=many)
    assert "propertyList can contain at most 10 properties" in validation_messages(
        await post(client, sender, body)
    )
    long_key = {"k" * 51: "v"}
    body = builders.initialize_body(sender.resource_id, [builders.national_id()], propertyList=long_key)
    assert any(
        m.startswith("propertyList Key can not be longer than 50")
        for m in validation_messages(await post(client, sender, body))
    )
    long_value = {"k": "v" * 301}
    body = builders.initialize_body(sender.resource_id, [builders.national_id()], propertyList=long_value)
    assert any(
        m.startswith("propertyList Value can not be longer than 300")
        for m in validation_messages(await post(client, sender, body))
    )


async def test_external_reference_limits(client: httpx.AsyncClient, sender: Sender) -> None:
    refs = [{"referenceType": "Generic", "referenceValue": str(i)} for i in range(11)]
    body = builders.initialize_body(sender.resource_id, [builders.national_id()], externalReferences=refs)
    assert "externalReferences can contain at most 10 references" in validation_messages(
        await post(client, sender, body)
    )
    refs = [{"referenceType": "DialogportenTransmissionId", "referenceValue": str(uuid.uuid4())}]
    body = builders.initialize_body(sender.resource_id, [builders.national_id()], externalReferences=refs)
    assert "Cannot initialize a correspondence with pre-existing transmission defined" in validation_messages(
        await post(client, sender, body)
    )
    refs = [{"referenceType": 6, "referenceValue": "NotAType"}]
    body = builders.initialize_body(sender.resource_id, [builders.national_id()], externalReferences=refs)
    assert (
        "DialogportenTransmissionType referenceValue must be a valid transmission type"
        in validation_messages(await post(client, sender, body))
    )


async def test_all_zero_idempotency_key_is_rejected(client: httpx.AsyncClient, sender: Sender) -> None:
    body = builders.initialize_body(
        sender.resource_id, [builders.national_id()], idempotent_key="00000000-0000-0000-0000-000000000000"
    )
    assert "The idempotency key must be a valid non-empty GUID" in validation_messages(
        await post(client, sender, body)
    )


async def test_checksum_rules(client: httpx.AsyncClient, sender: Sender) -> None:
    attachment = {"fileName": "a.pdf", "sendersReference": "r", "checksum": "ABC"}
    body = builders.initialize_body(
        sender.resource_id, [builders.national_id()], content={"attachments": [attachment]}
    )
    assert "The checksum, if used, must be a MD5 hash with a length of 32 characters" in validation_messages(
        await post(client, sender, body)
    )


async def test_undefined_enum_value_is_a_validation_problem(
    client: httpx.AsyncClient, sender: Sender
) -> None:
    body = builders.initialize_body(
        sender.resource_id,
        [builders.national_id()],
        notification_block=builders.notification(notificationChannel=9),
    )
    response = await post(client, sender, body)
    assert response.status_code == 400 and response.json()["code"] == "STD-00000"


async def test_undefined_notification_template_answers_a_bare_string(
    client: httpx.AsyncClient, sender: Sender
) -> None:
    body = builders.initialize_body(
        sender.resource_id,
        [builders.national_id()],
        notification_block=builders.notification(notificationTemplate=7),
    )
    response = await post(client, sender, body)
    assert response.status_code == 400
    assert response.json() == "Invalid notification template"


# --- domain errors ---------------------------------------------------------------------------


def future(days: float) -> str:
    return (datetime.now(UTC) + timedelta(days=days)).isoformat()


CASES: list[tuple[str, dict[str, Any], int, int]] = [
    ("1002 title not plain", {"content": {"messageTitle": "# heading"}}, 400, 1002),
    ("1002 title html", {"content": {"messageTitle": "<h1>test</h1>"}}, 400, 1002),
    ("1003 body html", {"content": {"messageBody": "<h1>x</h1>"}}, 400, 1003),
    (
        "1005 attachments on json",
        {"content": {"attachments": [{"fileName": "a.pdf", "sendersReference": "r"}]}},
        400,
        1005,
    ),
    ("1007 unknown existing attachment", {"__existing": [str(uuid.uuid4())]}, 400, 1007),
    ("1008 due in the past", {"dueDateTime": future(-1)}, 400, 1008),
    ("1009 due before publish", {"dueDateTime": future(2), "requestedPublishTime": future(3)}, 400, 1009),
    ("1016 confirmation needs due", {"isConfirmationNeeded": True}, 400, 1016),
    ("1020 blank title", {"content": {"messageTitle": "   "}}, 400, 1020),
    ("1021 blank body", {"content": {"messageBody": "   "}}, 400, 1021),
    ("1023 language", {"content": {"language": "sv"}}, 400, 1023),
    (
        "1035 reply option http",
        {"replyOptions": [{"linkURL": "http://example.no", "linkText": "x"}]},
        400,
        1035,
    ),
    ("1035 reply option relative", {"replyOptions": [{"linkURL": "https:/x"}]}, 400, 1035),
    ("1035 reply option too long", {"replyOptions": [{"linkURL": "https://e.no/" + "a" * 250}]}, 400, 1035),
    ("1036 unknown resource", {"resourceId": "no-such-resource"}, 400, 1036),
    ("1039 message sender", {"messageSender": "<b>x</b>"}, 400, 1039),
    (
        "1048 dialog id not guid",
        {"externalReferences": [{"referenceType": "DialogportenDialogId", "referenceValue": "x"}]},
        400,
        1048,
    ),
    (
        "1052 two transmission types",
        {
            "externalReferences": [
                {"referenceType": "DialogportenTransmissionType", "referenceValue": "Information"},
                {"referenceType": "DialogportenTransmissionType", "referenceValue": "Alert"},
                {"referenceType": "DialogportenDialogId", "referenceValue": str(uuid.uuid4())},
            ]
        },
        400,
        1052,
    ),
    (
        "1053 transmission type without dialog",
        {"externalReferences": [{"referenceType": "DialogportenTransmissionType", "referenceValue": "1"}]},
        400,
        1053,
    ),
    (
        "1054 no dialogporten here",
        {
            "externalReferences": [
                {"referenceType": "DialogportenDialogId", "referenceValue": str(uuid.uuid4())}
            ]
        },
        404,
        1054,
    ),
    ("1061 confidential flag on plain resource", {"isConfidential": True}, 400, 1061),
]


@pytest.mark.parametrize(("name", "changes", "status", "code"), CASES, ids=[c[0] for c in CASES])
async def test_domain_rules(
    client: httpx.AsyncClient, sender: Sender, name: str, changes: dict[str, Any], status: int, code: int
) -> None:
    changes = dict(changes)
    existing = changes.pop("__existing", None)
    body = builders.initialize_body(sender.resource_id, [builders.national_id()], **changes)
    if existing:
        body["existingAttachments"] = existing
    response = await post(client, sender, body)
    assert response.status_code == status, response.text
    problem = response.json()
    assert problem["errorCode"] == code
    assert problem["code"] == f"CORR-{code:05d}"
    assert problem["status"] == status
    assert problem["detail"]
    assert problem["traceId"].startswith("00-")
    assert response.headers["content-type"].startswith("application/problem+json")


async def test_duplicate_recipients_after_normalisation_are_1006(
    client: httpx.AsyncClient, sender: Sender
) -> None:
    org = builders.org_number()
    body = builders.initialize_body(
        sender.resource_id, [f"0192:{org}", f"urn:altinn:organization:identifier-no:{org}"]
    )
    response = await post(client, sender, body)
    assert response.status_code == 400 and error_code(response) == 1006


async def test_transmission_rules_1045_and_1051(client: httpx.AsyncClient, sender: Sender) -> None:
    dialog = [{"referenceType": "DialogportenDialogId", "referenceValue": str(uuid.uuid4())}]
    two = builders.initialize_body(
        sender.resource_id, [builders.national_id(), builders.national_id()], externalReferences=dialog
    )
    response = await post(client, sender, two)
    assert response.status_code == 400 and error_code(response) == 1045
    with_reply = builders.initialize_body(
        sender.resource_id,
        [builders.national_id()],
        externalReferences=dialog,
        replyOptions=[{"linkURL": "https://example.no"}],
    )
    response = await post(client, sender, with_reply)
    assert response.status_code == 400 and error_code(response) == 1051


async def _resource(db: asyncpg.Connection, owner: str, **kw: Any) -> str:
    rid = f"res-{uuid.uuid4().hex[:10]}"
    values = {
        "title": None,
        "resource_type": "CorrespondenceService",
        "confidential": "NotConfidential",
        "min_auth_level": 0,
    }
    values.update(kw)
    await registry.upsert_resource(db, resource_id=rid, owner_org=owner, **values)
    return rid


async def test_wrong_resource_type_is_4010(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection
) -> None:
    rid = await _resource(db, sender.org, resource_type="GenericAccessResource")
    response = await post(client, sender, builders.initialize_body(rid, [builders.national_id()]))
    assert response.status_code == 400 and error_code(response) == 4010


async def test_confidential_resource_needs_the_flag_1060(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection
) -> None:
    rid = await _resource(db, sender.org, confidential="Confidential")
    response = await post(client, sender, builders.initialize_body(rid, [builders.national_id()]))
    assert response.status_code == 400 and error_code(response) == 1060
    ok = await post(
        client, sender, builders.initialize_body(rid, [builders.national_id()], isConfidential=True)
    )
    assert ok.status_code == 200, ok.text


async def test_forwarding_needs_auth_level_zero_1068(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection
) -> None:
    rid = await _resource(db, sender.org, min_auth_level=3)
    response = await post(
        client, sender, builders.initialize_body(rid, [builders.national_id()], allowForwarding=True)
    )
    assert response.status_code == 400 and error_code(response) == 1068


async def test_more_than_100_attachments_is_1038(client: httpx.AsyncClient, sender: Sender) -> None:
    attachments = [{"fileName": f"a{i}.pdf", "sendersReference": "r"} for i in range(101)]
    body = builders.initialize_body(
        sender.resource_id, [builders.national_id()], content={"attachments": attachments}
    )
    response = await post(client, sender, body)
    assert response.status_code == 400 and error_code(response) == 1038


async def test_plain_text_title_accepts_ordinary_punctuation(
    client: httpx.AsyncClient, sender: Sender
) -> None:
    for title in (
        "Error #404 not found.",
        "1.234 is a number",
        "This *is not* markdown and _should_ be fine",
        "`inline code`",
        "TEST\\'S",
    ):
        body = builders.initialize_body(
            sender.resource_id, [builders.national_id()], content={"messageTitle": title}
        )
        response = await post(client, sender, body)
        assert response.status_code == 200, (title, response.text)


async def test_markdown_body_accepts_markdown_and_code_spans(
    client: httpx.AsyncClient, sender: Sender
) -> None:
    body_text = "# Vedtak\n\nDette er **viktig**.\n\n- punkt\n- <https://example.no>\n\n`<b>kode</b>`"
    body = builders.initialize_body(
        sender.resource_id, [builders.national_id()], content={"messageBody": body_text}
    )
    assert (await post(client, sender, body)).status_code == 200
