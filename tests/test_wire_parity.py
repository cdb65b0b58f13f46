"""Wire parity with the real service as it is today (api.md wins over the older official document):
the overview's and details' newer members, the attachments' `displayName` and `checksum`, search's
required parameters and its "has had that status" filter, `request.`-prefixed multipart names, and
file names with forbidden characters answered 2012."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import httpx
import pytest

from correspondence.auth.tokens import DevIssuer
from correspondence.registry import repository as registry
from correspondence.services import Services
from tests import builders
from tests.attachment_fixtures import ATTACHMENT, drain, md5, new_attachment, published_attachment, upload
from tests.conftest import INITIALIZE, Sender

API = "/correspondence/api/v1"
UPLOAD = f"{API}/correspondence/upload"
READ = "altinn:correspondence.read"
PDF = b"%PDF-1.7\nparity\n"
FILENAME_INVALID = (
    "Filename contains invalid characters. The ruleset is based on Windows file naming convention which "
    "is defined here: https://learn.microsoft.com/en-us/windows/win32/fileio/naming-a-file"
    "#file-and-directory-names"
)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def send(client: httpx.AsyncClient, sender: Sender, recipients: list[str], **kw: Any) -> list[str]:
    body = builders.initialize_body(sender.resource_id, recipients, **kw)
    response = await client.post(INITIALIZE, json=body, headers=sender.headers)
    assert response.status_code == 200, response.text
    return [c["correspondenceId"] for c in response.json()["correspondences"]]


async def get(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> dict[str, Any]:
    response = await client.get(url, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def statuses(details: dict[str, Any]) -> list[str]:
    return [s["status"] for s in details["statusHistory"]]


# --- 1. overview and details members ----------------------------------------------------------------


async def test_overview_writes_published_read_and_altinn2_id(
    client: httpx.AsyncClient, sender: Sender, services: Services, dev_issuer: DevIssuer
) -> None:
    person = builders.national_id()
    [cid] = await send(client, sender, [person])
    before = await get(client, f"{INITIALIZE}/{cid}", sender.headers)
    assert (before["published"], before["read"], before["altinn2CorrespondenceId"]) == (None, None, None)
    assert (before["isConfidential"], before["allowForwarding"]) == (False, False)
    await drain(services)
    recipient = bearer(dev_issuer.mint(scope=READ, pid=person))

    seen = await get(client, f"{INITIALIZE}/{cid}", recipient)
    assert seen["published"] is not None and seen["read"] is None  # the overview only fetches
    assert "Read" not in statuses(await get(client, f"{INITIALIZE}/{cid}/details", sender.headers))
    assert "Fetched" in statuses(await get(client, f"{INITIALIZE}/{cid}/details", recipient))

    assert (await client.get(f"{INITIALIZE}/{cid}/content", headers=recipient)).status_code == 200
    read = (await get(client, f"{INITIALIZE}/{cid}", recipient))["read"]
    history = (await get(client, f"{INITIALIZE}/{cid}/details", recipient))["statusHistory"]
    assert read is not None and read == next(s["statusChanged"] for s in history if s["status"] == "Read")
    assert (await get(client, f"{INITIALIZE}/{cid}", sender.headers))["read"] == read


async def test_mark_as_read_sets_read(
    client: httpx.AsyncClient, sender: Sender, services: Services, dev_issuer: DevIssuer
) -> None:
    person = builders.national_id()
    [cid] = await send(client, sender, [person])
    await drain(services)
    recipient = bearer(dev_issuer.mint(scope=READ, pid=person))
    assert (await get(client, f"{INITIALIZE}/{cid}", recipient))["read"] is None
    assert (await client.post(f"{INITIALIZE}/{cid}/markasread", headers=recipient)).status_code == 200
    assert (await get(client, f"{INITIALIZE}/{cid}", recipient))["read"] is not None
    assert (await get(client, f"{INITIALIZE}/{cid}/details", recipient))["read"] is not None


async def test_details_write_the_system_label(
    client: httpx.AsyncClient, sender: Sender, services: Services, dev_issuer: DevIssuer
) -> None:
    person = builders.national_id()
    [cid] = await send(client, sender, [person])
    await drain(services)
    recipient = bearer(dev_issuer.mint(scope=READ, pid=person))
    assert (await get(client, f"{INITIALIZE}/{cid}/details", recipient))["systemLabel"] == "Default"
    assert (await client.post(f"{INITIALIZE}/{cid}/archive", headers=recipient)).status_code == 200
    assert (await get(client, f"{INITIALIZE}/{cid}/details", recipient))["systemLabel"] == "Archive"
    # The sender's history leaves Archived out, and so does its label.
    assert (await get(client, f"{INITIALIZE}/{cid}/details", sender.headers))["systemLabel"] == "Default"
    assert "systemLabel" not in await get(client, f"{INITIALIZE}/{cid}", recipient)


async def test_details_list_every_address_per_channel(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection
) -> None:
    org = builders.org_number()
    await registry.set_contact(
        db,
        party=f"urn:altinn:organization:identifier-no:{org}",
        email="post@example.no",
        mobile=None,
        reserved=None,
    )
    block = builders.notification(notificationChannel="Email", sendReminder=False)
    [cid] = await send(client, sender, [f"0192:{org}"], notification_block=block)
    [order] = (await get(client, f"{INITIALIZE}/{cid}/details", sender.headers))["notifications"]
    details = order["notificationStatusDetails"]
    assert set(details) == {"email", "sms", "emails", "smses"}
    assert details["sms"] is None and details["smses"] == []
    assert details["emails"] == [details["email"]]
    assert details["email"]["recipient"]["emailAddress"] == "post@example.no"
    # Several addresses per channel, once sent: tests/test_notification_sending.py
    # test_custom_recipients_are_notified_besides_the_recipient.


# --- 2. attachment members -----------------------------------------------------------------------------


async def test_attachment_overview_and_details_write_display_name_and_an_empty_checksum(
    client: httpx.AsyncClient, sender: Sender, services: Services
) -> None:
    named = await new_attachment(client, sender, fileName="vedtak.pdf", displayName="Vedtaket")
    plain = await new_attachment(client, sender, fileName="brev.pdf")
    overview = await get(client, f"{ATTACHMENT}/{named}", sender.headers)
    assert (overview["displayName"], overview["name"], overview["checksum"]) == ("Vedtaket", "Vedtaket", "")
    overview = await get(client, f"{ATTACHMENT}/{plain}", sender.headers)
    assert (overview["displayName"], overview["name"], overview["checksum"]) == (None, "brev.pdf", "")
    details = await get(client, f"{ATTACHMENT}/{plain}/details", sender.headers)
    assert (details["displayName"], details["checksum"]) == ("brev.pdf", "")  # falls back (§6.10)

    response = await upload(client, sender, plain, PDF)
    assert response.status_code == 200, response.text
    assert response.json()["checksum"] == md5(PDF) and response.json()["displayName"] is None


async def test_a_correspondence_lists_its_attachments_display_names(
    client: httpx.AsyncClient, sender: Sender, services: Services
) -> None:
    named = await published_attachment(client, sender, services, PDF, displayName="Vedtaket")
    plain = await published_attachment(client, sender, services, PDF, fileName="brev.pdf")
    body = builders.initialize_body(sender.resource_id, [builders.national_id()])
    body["existingAttachments"] = [named, plain]
    response = await client.post(INITIALIZE, json=body, headers=sender.headers)
    assert response.status_code == 200, response.text
    cid = response.json()["correspondences"][0]["correspondenceId"]
    listed = (await get(client, f"{INITIALIZE}/{cid}", sender.headers))["content"]["attachments"]
    assert [(a["id"], a["name"], a["displayName"]) for a in listed] == [
        (named, "Vedtaket", "Vedtaket"),
        (plain, "brev.pdf", None),
    ]
    assert all(a["checksum"] == md5(PDF) for a in listed)


# --- 6. search as the reference ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "missing"),
    [
        ({"role": "Sender"}, ["resourceId"]),
        ({"resourceId": "x"}, ["role"]),
        ({"resourceId": " ", "role": ""}, ["resourceId", "role"]),
        ({}, ["resourceId", "role"]),
    ],
)
async def test_search_requires_resource_and_role(
    client: httpx.AsyncClient, sender: Sender, params: dict[str, str], missing: list[str]
) -> None:
    response = await client.get(INITIALIZE, params=params, headers=sender.headers)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "STD-00000" and "errorCode" not in body
    assert body["errors"] == {name: [f"The {name} field is required."] for name in missing}
    assert [e["paths"] for e in body["validationErrors"]] == [[name] for name in missing]


async def test_search_documents_resource_and_role_as_required(client: httpx.AsyncClient) -> None:
    document = (await client.get(f"{API}/swagger/v1/swagger.json")).json()
    parameters = document["paths"][INITIALIZE]["get"]["parameters"]
    required = {p["name"] for p in parameters if p.get("required")}
    assert required == {"resourceId", "role"}


async def test_search_status_means_has_had_that_status(
    client: httpx.AsyncClient, sender: Sender, services: Services, dev_issuer: DevIssuer
) -> None:
    person = builders.national_id()
    [published] = await send(client, sender, [person])
    [read] = await send(client, sender, [person])
    [confirmed] = await send(
        client, sender, [person], isConfirmationNeeded=True, dueDateTime=builders.future()
    )
    unpublished = (await send(client, sender, [person], requestedPublishTime=builders.future()))[0]
    await drain(services)
    recipient = bearer(dev_issuer.mint(scope=READ, pid=person))
    for cid in (read, confirmed):
        await get(client, f"{INITIALIZE}/{cid}", recipient)
        assert (await client.post(f"{INITIALIZE}/{cid}/markasread", headers=recipient)).status_code == 200
    assert (await client.post(f"{INITIALIZE}/{confirmed}/confirm", headers=recipient)).status_code == 200

    async def ids(token_headers: dict[str, str], role: str, status: str) -> set[str]:
        params = {"resourceId": sender.resource_id, "role": role, "status": status}
        response = await client.get(INITIALIZE, params=params, headers=token_headers)
        assert response.status_code == 200, response.text
        return set(response.json()["ids"])

    everything = {published, read, confirmed}
    assert await ids(recipient, "Recipient", "Published") == everything
    assert await ids(recipient, "Recipient", "Read") == {read, confirmed}
    assert await ids(recipient, "Recipient", "Confirmed") == {confirmed}
    # What a recipient may see has moved past these: nothing, as the reference answers.
    assert await ids(recipient, "Recipient", "Initialized") == set()
    assert await ids(recipient, "Recipient", "ReadyForPublish") == set()
    # The sender's side: every one that has had the status, unpublished ones included.
    assert await ids(sender.headers, "Sender", "Initialized") == everything | {unpublished}
    assert await ids(sender.headers, "Sender", "ReadyForPublish") == everything | {unpublished}
    assert await ids(sender.headers, "Sender", "Published") == everything
    assert await ids(sender.headers, "Sender", "Read") == {read, confirmed}


# --- 7. multipart names prefixed `request.` --------------------------------------------------------------


async def test_multipart_accepts_names_prefixed_with_request(
    client: httpx.AsyncClient, sender: Sender
) -> None:
    people = [builders.national_id(), builders.national_id()]
    fields = {
        "request.Correspondence.ResourceId": sender.resource_id,
        "request.Correspondence.SendersReference": "ref-" + uuid.uuid4().hex[:8],
        "REQUEST.correspondence.content.language": "nb",
        "request.Correspondence.Content.MessageTitle": "Vedtak",
        "request.Correspondence.Content.MessageBody": "Se vedlegget.",
        "request.Correspondence.Content.Attachments[0].FileName": "vedtak.pdf",
        "request.Correspondence.Content.Attachments[0].SendersReference": "doc-1",
        "request.Correspondence.Content.Attachments[0].DisplayName": "Vedtaket",
        "request.Recipients[0]": people[0],
        "request.Recipients[1]": people[1],
        "request.Correspondence.PropertyList[CaseNo]": "7",
    }
    files = [("attachments", ("vedtak.pdf", PDF, "application/pdf"))]
    response = await client.post(UPLOAD, data=fields, files=files, headers=sender.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [c["recipient"][-11:] for c in body["correspondences"]] == people
    [attachment_id] = body["attachmentIds"]
    attachment = await get(client, f"{ATTACHMENT}/{attachment_id}", sender.headers)
    assert (attachment["fileName"], attachment["displayName"]) == ("vedtak.pdf", "Vedtaket")
    cid = body["correspondences"][0]["correspondenceId"]
    overview = await get(client, f"{INITIALIZE}/{cid}", sender.headers)
    assert (overview["content"]["language"], overview["propertyList"]) == ("nb", {"CaseNo": "7"})


# --- 8. forbidden characters in file names are 2012 ------------------------------------------------------


def assert_2012(response: httpx.Response) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert (body["errorCode"], body["code"], body["detail"]) == (2012, "CORR-02012", FILENAME_INVALID)


@pytest.mark.parametrize("file_name", ["a\x00b.pdf", "a<b.pdf", "a|b.pdf", "a\x1fb.pdf", "a/b.pdf"])
async def test_attachment_initialize_answers_2012_for_forbidden_characters(
    client: httpx.AsyncClient, sender: Sender, file_name: str
) -> None:
    body = {"resourceId": sender.resource_id, "fileName": file_name, "sendersReference": "x"}
    assert_2012(await client.post(ATTACHMENT, json=body, headers=sender.headers))


async def test_the_official_name_member_as_file_name_answers_2012_too(
    client: httpx.AsyncClient, sender: Sender
) -> None:
    body = {"resourceId": sender.resource_id, "name": "a\x00b.pdf", "sendersReference": "x"}
    assert_2012(await client.post(ATTACHMENT, json=body, headers=sender.headers))
    # A NUL elsewhere is still the validation problem it was.
    body = {
        "resourceId": sender.resource_id,
        "fileName": "a.pdf",
        "displayName": "a\x00",
        "sendersReference": "x",
    }
    response = await client.post(ATTACHMENT, json=body, headers=sender.headers)
    assert response.status_code == 400 and "DisplayName" in response.json()["errors"]


async def test_nul_in_a_file_name_is_checked_after_access(client: httpx.AsyncClient, sender: Sender) -> None:
    body = {"resourceId": "no-such-resource", "fileName": "a\x00b.pdf", "sendersReference": "x"}
    response = await client.post(ATTACHMENT, json=body, headers=sender.headers)
    assert response.status_code == 400 and response.json()["errorCode"] == 1036


async def test_multipart_initialize_answers_2012_for_a_nul_in_a_file_name(
    client: httpx.AsyncClient, sender: Sender
) -> None:
    boundary = "parity-" + uuid.uuid4().hex
    fields = {
        "Correspondence.ResourceId": sender.resource_id,
        "Correspondence.SendersReference": "ref",
        "Correspondence.Content.MessageTitle": "Vedtak",
        "Correspondence.Content.MessageBody": "Se vedlegget.",
        "Correspondence.Content.Attachments[0].FileName": "a\x00b.pdf",
        "Correspondence.Content.Attachments[0].SendersReference": "doc-1",
        "Recipients": builders.national_id(),
    }
    out = b""
    for key, value in fields.items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{value}\r\n'.encode()
    out += (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="attachments"; '
            f"filename*=UTF-8''a%00b.pdf\r\nContent-Type: application/pdf\r\n\r\n"
        ).encode()
        + PDF
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = {**sender.headers, "Content-Type": f"multipart/form-data; boundary={boundary}"}
    assert_2012(await client.post(UPLOAD, content=out, headers=headers))
