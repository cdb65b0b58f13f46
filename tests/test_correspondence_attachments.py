"""Attachments of correspondences: reuse of shared attachments (`existingAttachments`), Initialize
with files (multipart), `content.attachments` in overview and details, the recipient's download
with ranges, expiry, and purge of attachments no live correspondence uses."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from correspondence.adapters.blobs import FileBlobStore
from correspondence.auth.tokens import DevIssuer
from correspondence.kit import clock
from correspondence.services import Services
from tests import builders
from tests.attachment_fixtures import (
    API,
    ATTACHMENT,
    attachment_blobs,
    drain,
    md5,
    new_attachment,
    published_attachment,
    upload,
)
from tests.conftest import INITIALIZE, Sender

READ = "altinn:correspondence.read"
UPLOAD = f"{API}/correspondence/upload"
PDF = b"%PDF-1.7\n" + b"side " * 2000
CSV = "navn;beløp\nOla;100\n".encode()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def error_code(response: httpx.Response) -> int:
    code: int = response.json()["errorCode"]
    return code


async def initialize(
    client: httpx.AsyncClient, sender: Sender, recipients: list[str], existing: list[str], **kw: Any
) -> httpx.Response:
    body = builders.initialize_body(sender.resource_id, recipients, **kw)
    body["existingAttachments"] = existing
    return await client.post(INITIALIZE, json=body, headers=sender.headers)


async def status_of(client: httpx.AsyncClient, sender: Sender, cid: str) -> str:
    response = await client.get(f"{INITIALIZE}/{cid}", headers=sender.headers)
    assert response.status_code == 200, response.text
    return str(response.json()["status"])


async def attachment_status(client: httpx.AsyncClient, sender: Sender, attachment_id: str) -> tuple[str, str]:
    body = (await client.get(f"{ATTACHMENT}/{attachment_id}", headers=sender.headers)).json()
    return body["status"], body["statusText"]


def stored(services: Services, attachment_id: str) -> bool:
    store = services.blob_store()
    assert isinstance(store, FileBlobStore)
    return bool(attachment_blobs(store, attachment_id))


def form(
    sender: Sender, recipients: list[str], entries: list[dict[str, str]], **extra: Any
) -> dict[str, Any]:
    """Multipart fields with the .NET binding names the reference documents (api.md §3.2)."""
    fields: dict[str, Any] = {
        "Correspondence.ResourceId": sender.resource_id,
        "Correspondence.SendersReference": "ref-" + uuid.uuid4().hex[:8],
        "Correspondence.Content.Language": "nb",
        "Correspondence.Content.MessageTitle": "Vedtak med vedlegg",
        "Correspondence.Content.MessageSummary": "Sammendrag",
        "Correspondence.Content.MessageBody": "Se **vedleggene**.",
        "Recipients": recipients,
    }
    for i, entry in enumerate(entries):
        for key, value in entry.items():
            fields[f"Correspondence.Content.Attachments[{i}].{key}"] = value
    fields.update(extra)
    return fields


# --- reuse of shared attachments --------------------------------------------------------------------


async def test_a_published_attachment_is_reused_by_a_correspondence(
    client: httpx.AsyncClient, sender: Sender, services: Services
) -> None:
    attachment_id = await published_attachment(client, sender, services, PDF, displayName="Vedtaket")
    response = await initialize(client, sender, [builders.national_id()], [attachment_id])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["attachmentIds"] == [attachment_id]
    [item] = body["correspondences"]
    assert item["status"] == "ReadyForPublish"
    overview = (await client.get(f"{INITIALIZE}/{item['correspondenceId']}", headers=sender.headers)).json()
    [listed] = overview["content"]["attachments"]
    assert listed == {
        "id": attachment_id,
        "fileName": "vedtak.pdf",
        "name": "Vedtaket",
        "displayName": "Vedtaket",
        "isEncrypted": False,
        "checksum": md5(PDF),
        "sendersReference": listed["sendersReference"],
        "dataType": "application/pdf",
        "dataLocationType": "AltinnCorrespondenceAttachment",
        "created": listed["created"],
        "status": "Published",
        "statusText": "Bypassed malware scan",
        "statusChanged": listed["statusChanged"],
        "expirationTime": None,
    }
    attachment = (await client.get(f"{ATTACHMENT}/{attachment_id}", headers=sender.headers)).json()
    assert attachment["correspondenceIds"] == [item["correspondenceId"]]
    await drain(services)
    assert await status_of(client, sender, item["correspondenceId"]) == "Published"


async def test_an_unknown_existing_attachment_is_1007(client: httpx.AsyncClient, sender: Sender) -> None:
    response = await initialize(client, sender, [builders.national_id()], [str(uuid.uuid4())])
    assert response.status_code == 400 and error_code(response) == 1007


async def test_another_senders_attachment_is_1017(
    client: httpx.AsyncClient,
    sender: Sender,
    services: Services,
    db: asyncpg.Connection,
    dev_issuer: DevIssuer,
) -> None:
    from correspondence.registry import repository as registry

    other_org = builders.org_number()
    other_resource = f"other-{uuid.uuid4().hex[:8]}"
    await registry.upsert_resource(
        db,
        resource_id=other_resource,
        owner_org=other_org,
        title=None,
        resource_type="CorrespondenceService",
        confidential="NotConfidential",
        min_auth_level=0,
    )
    other = Sender(
        other_org, other_resource, dev_issuer.mint(scope="altinn:correspondence.write", org=other_org)
    )
    foreign = await published_attachment(client, other, services)
    response = await initialize(client, sender, [builders.national_id()], [foreign, str(uuid.uuid4())])
    assert response.status_code == 400 and error_code(response) == 1017  # checked before 1007


async def test_an_unpublished_attachment_is_1018(client: httpx.AsyncClient, sender: Sender) -> None:
    attachment_id = await new_attachment(client, sender)
    response = await initialize(client, sender, [builders.national_id()], [attachment_id])
    assert response.status_code == 400 and error_code(response) == 1018


async def test_more_than_100_attachments_is_1038(
    client: httpx.AsyncClient, sender: Sender, services: Services
) -> None:
    attachment_id = await published_attachment(client, sender, services)
    entries = [{"fileName": f"f{i}.pdf", "sendersReference": "x"} for i in range(100)]
    response = await initialize(
        client, sender, [builders.national_id()], [attachment_id], content={"attachments": entries}
    )
    assert response.status_code == 400 and error_code(response) == 1038


async def test_new_attachments_on_the_json_endpoint_are_1005(
    client: httpx.AsyncClient, sender: Sender
) -> None:
    entries = [{"fileName": "a.pdf", "sendersReference": "x"}]
    response = await initialize(
        client, sender, [builders.national_id()], [], content={"attachments": entries}
    )
    assert response.status_code == 400 and error_code(response) == 1005


async def test_forwarding_with_more_than_10_mb_of_attachments_is_1069(
    client: httpx.AsyncClient, sender: Sender, services: Services
) -> None:
    large = await published_attachment(client, sender, services, b"x" * 10_000_001, fileName="big.txt")
    response = await initialize(client, sender, [builders.national_id()], [large], allowForwarding=True)
    assert response.status_code == 400 and error_code(response) == 1069
    without = await initialize(client, sender, [builders.national_id()], [large])
    assert without.status_code == 200, without.text


async def test_an_attachment_expiring_within_6_hours_is_1055(
    client: httpx.AsyncClient, sender: Sender, services: Services
) -> None:
    attachment_id = await published_attachment(client, sender, services, expirationInDays=1)
    first = await initialize(client, sender, [builders.national_id()], [attachment_id])
    assert first.status_code == 200, first.text
    clock.shift(timedelta(hours=19))  # its link now expires in 5 hours
    again = await initialize(client, sender, [builders.national_id()], [attachment_id])
    assert again.status_code == 400 and error_code(again) == 1055


async def test_an_idempotent_replay_names_the_attachments(
    client: httpx.AsyncClient, sender: Sender, services: Services
) -> None:
    attachment_id = await published_attachment(client, sender, services)
    body = builders.initialize_body(
        sender.resource_id, [builders.national_id()], idempotent_key=str(uuid.uuid4())
    )
    body["existingAttachments"] = [attachment_id]
    first = await client.post(INITIALIZE, json=body, headers=sender.headers)
    second = await client.post(INITIALIZE, json=body, headers=sender.headers)
    assert first.status_code == second.status_code == 200
    assert second.headers["idempotent-replayed"] == "true"
    assert first.json()["attachmentIds"] == second.json()["attachmentIds"] == [attachment_id]


# --- sharing, purge and expiry ----------------------------------------------------------------------


async def test_a_shared_attachment_lives_until_no_correspondence_uses_it(
    client: httpx.AsyncClient, sender: Sender, services: Services
) -> None:
    attachment_id = await published_attachment(client, sender, services, PDF)
    later = builders.future(3)  # unpublished, so the sender may purge them
    first = (
        await initialize(
            client, sender, [builders.national_id()], [attachment_id], requestedPublishTime=later
        )
    ).json()
    people = [builders.national_id(), builders.national_id()]
    second = (await initialize(client, sender, people, [attachment_id], requestedPublishTime=later)).json()
    ids = [c["correspondenceId"] for c in first["correspondences"] + second["correspondences"]]
    assert len(ids) == 3
    attachment = (await client.get(f"{ATTACHMENT}/{attachment_id}", headers=sender.headers)).json()
    assert sorted(attachment["correspondenceIds"]) == sorted(ids)
    for cid in ids[:2]:  # the sender purges two of three before publication
        response = await client.delete(f"{INITIALIZE}/{cid}/purge", headers=sender.headers)
        assert response.status_code == 200, response.text
        await drain(services)
        assert await attachment_status(client, sender, attachment_id) == (
            "Published",
            "Bypassed malware scan",
        )
        assert stored(services, attachment_id)
    response = await client.delete(f"{INITIALIZE}/{ids[2]}/purge", headers=sender.headers)
    assert response.status_code == 200
    assert (await attachment_status(client, sender, attachment_id))[0] == "Purged"
    await drain(services)  # the bytes go with a job enqueued by the purge
    assert not stored(services, attachment_id)


async def test_an_attachment_expires_at_its_links_expiry(
    client: httpx.AsyncClient, sender: Sender, services: Services
) -> None:
    attachment_id = await published_attachment(client, sender, services, PDF, expirationInDays=2)
    [item] = (await initialize(client, sender, [builders.national_id()], [attachment_id])).json()[
        "correspondences"
    ]
    await drain(services)
    listed = (
        await client.get(f"{INITIALIZE}/{item['correspondenceId']}/details", headers=sender.headers)
    ).json()
    assert listed["status"] == "Published"
    clock.shift(timedelta(days=1))
    await drain(services)
    assert (await attachment_status(client, sender, attachment_id))[0] == "Published"
    clock.shift(timedelta(days=1, seconds=5))
    await drain(services)
    assert await attachment_status(client, sender, attachment_id) == ("Expired", "The attachment has expired")
    assert not stored(services, attachment_id)
    purge = await client.delete(f"{ATTACHMENT}/{attachment_id}", headers=sender.headers)
    assert purge.status_code == 400 and error_code(purge) == 2018
    download = await client.get(f"{ATTACHMENT}/{attachment_id}/download", headers=sender.headers)
    assert download.status_code == 400 and error_code(download) == 2020


async def test_a_later_link_keeps_a_shared_attachment_alive(
    client: httpx.AsyncClient, sender: Sender, services: Services
) -> None:
    attachment_id = await published_attachment(client, sender, services, expirationInDays=2)
    assert (await initialize(client, sender, [builders.national_id()], [attachment_id])).status_code == 200
    clock.shift(timedelta(days=1))
    assert (await initialize(client, sender, [builders.national_id()], [attachment_id])).status_code == 200
    clock.shift(timedelta(days=1, seconds=5))  # the first link has expired, the second has not
    await drain(services)
    assert (await attachment_status(client, sender, attachment_id))[0] == "Published"
    clock.shift(timedelta(days=1))
    await drain(services)
    assert (await attachment_status(client, sender, attachment_id))[0] == "Expired"


# --- multipart Initialize -----------------------------------------------------------------------------


async def test_multipart_initialize_with_two_files(
    client: httpx.AsyncClient, sender: Sender, services: Services, dev_issuer: DevIssuer
) -> None:
    people = [builders.national_id(), builders.national_id()]
    fields = form(
        sender,
        people,
        [
            {
                "FileName": "vedtak.pdf",
                "SendersReference": "doc-1",
                "DisplayName": "Vedtaket",
                "Checksum": md5(PDF),
            },
            {"fileName": "tall.csv", "sendersReference": "doc-2", "expirationInDays": "30"},
        ],
    )
    files = [
        ("attachments", ("vedtak.pdf", PDF, "application/pdf")),
        ("attachments", ("tall.csv", CSV, "text/csv")),
    ]
    response = await client.post(UPLOAD, data=fields, files=files, headers=sender.headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert [c["status"] for c in body["correspondences"]] == ["ReadyForPublish", "ReadyForPublish"]
    pdf_id, csv_id = body["attachmentIds"]
    for attachment_id in body["attachmentIds"]:
        attachment = (await client.get(f"{ATTACHMENT}/{attachment_id}", headers=sender.headers)).json()
        assert attachment["status"] == "Published"
        assert sorted(attachment["correspondenceIds"]) == sorted(
            c["correspondenceId"] for c in body["correspondences"]
        )
    assert (await client.get(f"{ATTACHMENT}/{csv_id}", headers=sender.headers)).json()["checksum"] == md5(CSV)
    await drain(services)
    for person, item in zip(people, body["correspondences"], strict=True):
        token = dev_issuer.mint(scope=READ, pid=person)
        overview = (
            await client.get(f"{INITIALIZE}/{item['correspondenceId']}", headers=bearer(token))
        ).json()
        assert [a["fileName"] for a in overview["content"]["attachments"]] == ["vedtak.pdf", "tall.csv"]
        assert overview["content"]["attachments"][0]["name"] == "Vedtaket"
        assert overview["content"]["attachments"][0]["expirationTime"] is None
        assert overview["content"]["attachments"][1]["expirationTime"] is not None
        url = f"{INITIALIZE}/{item['correspondenceId']}/attachment/{csv_id}/download"
        download = await client.get(url, headers=bearer(token))
        assert download.status_code == 200 and download.content == CSV
        assert download.headers["content-type"] == "text/csv; charset=utf-8"
        pdf = await client.get(
            f"{INITIALIZE}/{item['correspondenceId']}/attachment/{pdf_id}/download", headers=bearer(token)
        )
        assert pdf.content == PDF


async def test_multipart_binds_indexed_and_differently_cased_names(
    client: httpx.AsyncClient, sender: Sender, services: Services
) -> None:
    person = builders.national_id()
    fields = {
        "correspondence.resourceid": sender.resource_id,
        "CORRESPONDENCE.SENDERSREFERENCE": "case",
        "correspondence.content.messageTitle": "Tittel",
        "correspondence.content.messageBody": "Tekst",
        "recipients[0]": person,
        "correspondence.propertyList[CaseNo]": "123",
        "correspondence.content.attachments[0].fileName": "a.txt",
        "correspondence.content.attachments[0].sendersReference": "a",
    }
    response = await client.post(
        UPLOAD, data=fields, files=[("Attachments", ("a.txt", b"hei", "text/plain"))], headers=sender.headers
    )
    assert response.status_code == 200, response.text
    [item] = response.json()["correspondences"]
    overview = (await client.get(f"{INITIALIZE}/{item['correspondenceId']}", headers=sender.headers)).json()
    assert overview["propertyList"] == {"CaseNo": "123"}
    assert overview["recipient"] == f"urn:altinn:person:identifier-no:{person}"


def multipart_body(fields: dict[str, Any]) -> tuple[bytes, str]:
    """A multipart/form-data body of fields only (httpx sends such a form url-encoded)."""
    boundary = "form-" + uuid.uuid4().hex
    out = b""
    for key, value in fields.items():
        for item in value if isinstance(value, list) else [value]:
            out += f'--{boundary}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n{item}\r\n'.encode()
    out += f"--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


async def test_multipart_without_files_is_an_ordinary_initialize(
    client: httpx.AsyncClient, sender: Sender
) -> None:
    body, content_type = multipart_body(form(sender, [builders.national_id()], []))
    response = await client.post(
        UPLOAD, content=body, headers={**sender.headers, "Content-Type": content_type}
    )
    assert response.status_code == 200, response.text
    assert response.json()["attachmentIds"] == []
    assert response.json()["correspondences"][0]["status"] == "ReadyForPublish"


async def test_multipart_can_also_reuse_attachments(
    client: httpx.AsyncClient, sender: Sender, services: Services
) -> None:
    existing = await published_attachment(client, sender, services)
    fields = form(
        sender,
        [builders.national_id()],
        [{"fileName": "ny.txt", "sendersReference": "n"}],
        ExistingAttachments=[existing],
    )
    response = await client.post(
        UPLOAD,
        data=fields,
        files=[("attachments", ("ny.txt", b"ny fil", "text/plain"))],
        headers=sender.headers,
    )
    assert response.status_code == 200, response.text
    new_id, reused = response.json()["attachmentIds"]
    assert reused == existing and new_id != existing


@pytest.mark.parametrize(
    ("entries", "files"),
    [
        ([{"fileName": "a.pdf", "sendersReference": "a"}], [("b.pdf", PDF)]),  # name does not match
        ([{"fileName": "a.pdf", "sendersReference": "a"}], [("a.pdf", PDF), ("c.pdf", PDF)]),  # count
        (
            [{"fileName": "a.pdf", "sendersReference": "a"}, {"fileName": "a.pdf", "sendersReference": "b"}],
            [("x.pdf", PDF), ("a.pdf", PDF)],
        ),
    ],
)
async def test_files_that_do_not_match_their_entries_are_1005(
    client: httpx.AsyncClient,
    sender: Sender,
    services: Services,
    entries: list[dict[str, str]],
    files: list[tuple[str, bytes]],
) -> None:
    before = await _attachment_count(services)
    response = await client.post(
        UPLOAD,
        data=form(sender, [builders.national_id()], entries),
        files=[("attachments", (name, data, "application/pdf")) for name, data in files],
        headers=sender.headers,
    )
    assert response.status_code == 400 and error_code(response) == 1005
    assert await _attachment_count(services) == before
    assert await _stored_files(services) == []


async def test_a_multipart_checksum_mismatch_is_2008_and_leaves_nothing(
    client: httpx.AsyncClient, sender: Sender, services: Services
) -> None:
    before = await _attachment_count(services)
    fields = form(
        sender,
        [builders.national_id()],
        [{"fileName": "a.pdf", "sendersReference": "a", "checksum": md5(b"x")}],
    )
    response = await client.post(
        UPLOAD,
        data=fields,
        files=[("attachments", ("a.pdf", PDF, "application/pdf"))],
        headers=sender.headers,
    )
    assert response.status_code == 400 and error_code(response) == 2008
    assert await _attachment_count(services) == before
    assert await _stored_files(services) == []


async def test_an_empty_or_too_large_file_part_is_2004(
    client: httpx.AsyncClient, sender: Sender, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = [{"fileName": "a.pdf", "sendersReference": "a"}]
    empty = await client.post(
        UPLOAD,
        data=form(sender, [builders.national_id()], entries),
        files=[("attachments", ("a.pdf", b"", "application/pdf"))],
        headers=sender.headers,
    )
    assert empty.status_code == 400 and error_code(empty) == 2004
    assert empty.json()["detail"] == "File must have content and has a max file size of 2GB"
    monkeypatch.setattr(services.settings, "max_inline_file_bytes", 1000)
    large = await client.post(
        UPLOAD,
        data=form(sender, [builders.national_id()], entries),
        files=[("attachments", ("a.pdf", b"x" * 5000, "application/pdf"))],
        headers=sender.headers,
    )
    assert large.status_code == 400 and error_code(large) == 2004
    assert await _stored_files(services) == []


async def test_a_multipart_file_name_rule_applies(
    client: httpx.AsyncClient, sender: Sender, services: Services
) -> None:
    response = await client.post(
        UPLOAD,
        data=form(sender, [builders.national_id()], [{"fileName": "virus.exe", "sendersReference": "a"}]),
        files=[("attachments", ("virus.exe", b"MZ", "application/octet-stream"))],
        headers=sender.headers,
    )
    assert response.status_code == 400 and error_code(response) == 2013
    assert await _stored_files(services) == []


async def test_multipart_validation_problems_use_the_net_names(
    client: httpx.AsyncClient, sender: Sender, services: Services
) -> None:
    fields = form(sender, [builders.national_id()], [{"fileName": "a.pdf", "sendersReference": "a"}])
    del fields["Correspondence.Content.MessageTitle"]
    response = await client.post(
        UPLOAD,
        data=fields,
        files=[("attachments", ("a.pdf", PDF, "application/pdf"))],
        headers=sender.headers,
    )
    assert response.status_code == 400
    assert response.json()["errors"]["Correspondence.Content.MessageTitle"] == [
        "The MessageTitle field is required."
    ]
    assert await _stored_files(services) == []


async def test_multipart_needs_multipart(client: httpx.AsyncClient, sender: Sender) -> None:
    response = await client.post(UPLOAD, json={"correspondence": {}}, headers=sender.headers)
    assert response.status_code == 415


async def test_a_broken_multipart_body_is_400(
    client: httpx.AsyncClient, sender: Sender, services: Services
) -> None:
    body = (
        b'--b\r\nContent-Disposition: form-data; name="attachments"; filename="a.pdf"\r\n\r\n%PDF and no end'
    )
    headers = {**sender.headers, "Content-Type": "multipart/form-data; boundary=b"}
    response = await client.post(UPLOAD, content=body, headers=headers)
    assert response.status_code == 400
    assert await _stored_files(services) == []


async def _attachment_count(services: Services) -> int:
    count: int = await services.pool.fetchval("SELECT count(*) FROM attachments")
    return count


async def _stored_files(services: Services) -> list[str]:
    """Stored objects no attachment refers to (orphans), and unfinished temporary files."""
    store = services.blob_store()
    assert isinstance(store, FileBlobStore)
    known = {str(r["id"]) for r in await services.pool.fetch("SELECT id FROM attachments")}
    objects = store.root / "attachments"
    # Keys are attachments/{id}.{uploadId}
    orphans = [p for p in objects.glob("*") if p.name.split(".")[0] not in known] if objects.exists() else []
    unfinished = list(store.incoming.glob("*")) if store.incoming.exists() else []
    return sorted(str(p) for p in orphans + unfinished)


# --- the recipient's download -------------------------------------------------------------------------


async def _published_with_attachment(
    client: httpx.AsyncClient,
    sender: Sender,
    services: Services,
    dev_issuer: DevIssuer,
    data: bytes = PDF,
    **kw: Any,
) -> tuple[str, str, dict[str, str]]:
    person = builders.national_id()
    attachment_id = await published_attachment(client, sender, services, data, **kw)
    [item] = (await initialize(client, sender, [person], [attachment_id])).json()["correspondences"]
    await drain(services)
    return item["correspondenceId"], attachment_id, bearer(dev_issuer.mint(scope=READ, pid=person))


async def test_the_recipient_downloads_and_the_history_records_it(
    client: httpx.AsyncClient, sender: Sender, services: Services, dev_issuer: DevIssuer
) -> None:
    cid, attachment_id, headers = await _published_with_attachment(
        client, sender, services, dev_issuer, fileName="Vedtak æøå.pdf"
    )
    url = f"{INITIALIZE}/{cid}/attachment/{attachment_id}/download"
    response = await client.get(url, headers=headers)
    assert response.status_code == 200 and response.content == PDF
    assert response.headers["content-type"] == "application/pdf"
    assert (
        response.headers["content-disposition"] == "inline; filename*=UTF-8''Vedtak%20%C3%A6%C3%B8%C3%A5.pdf"
    )
    assert response.headers["accept-ranges"] == "bytes"
    details = (await client.get(f"{INITIALIZE}/{cid}/details", headers=headers)).json()
    assert details["status"] == "Published"  # DESIGN decision 3: never the current status
    downloaded = [h for h in details["statusHistory"] if h["status"] == "AttachmentsDownloaded"]
    assert [h["statusText"] for h in downloaded] == [f"Attachment {attachment_id} has been downloaded"]


async def test_a_text_file_is_offered_as_a_download(
    client: httpx.AsyncClient, sender: Sender, services: Services, dev_issuer: DevIssuer
) -> None:
    cid, attachment_id, headers = await _published_with_attachment(
        client, sender, services, dev_issuer, CSV, fileName="tall; ø 2026.csv"
    )
    response = await client.get(f"{INITIALIZE}/{cid}/attachment/{attachment_id}/download", headers=headers)
    assert response.headers["content-disposition"] == (
        "attachment; filename=\"tall; _ 2026.csv\"; filename*=UTF-8''tall%3B%20%C3%B8%202026.csv"
    )


async def test_the_recipient_downloads_a_range(
    client: httpx.AsyncClient, sender: Sender, services: Services, dev_issuer: DevIssuer
) -> None:
    cid, attachment_id, headers = await _published_with_attachment(client, sender, services, dev_issuer)
    url = f"{INITIALIZE}/{cid}/attachment/{attachment_id}/download"
    part = await client.get(url, headers={**headers, "Range": "bytes=100-4195"})
    assert part.status_code == 206
    assert part.content == PDF[100:4196]
    assert part.headers["content-range"] == f"bytes 100-4195/{len(PDF)}"
    assert part.headers["content-length"] == "4096"
    rest = await client.get(url, headers={**headers, "Range": "bytes=4196-"})
    assert part.content + rest.content == PDF[100:]
    etag = part.headers["etag"]
    stale = await client.get(url, headers={**headers, "Range": "bytes=0-9", "If-Range": '"other"'})
    assert stale.status_code == 200 and stale.content == PDF
    fresh = await client.get(url, headers={**headers, "Range": "bytes=0-9", "If-Range": etag})
    assert fresh.status_code == 206 and fresh.content == PDF[:10]
    beyond = await client.get(url, headers={**headers, "Range": f"bytes={len(PDF) + 5}-"})
    assert beyond.status_code == 416


async def test_recipient_download_errors(
    client: httpx.AsyncClient, sender: Sender, services: Services, dev_issuer: DevIssuer
) -> None:
    cid, attachment_id, headers = await _published_with_attachment(client, sender, services, dev_issuer)
    missing = await client.get(
        f"{INITIALIZE}/{uuid.uuid4()}/attachment/{attachment_id}/download", headers=headers
    )
    assert missing.status_code == 404 and error_code(missing) == 1001
    unlinked = await client.get(f"{INITIALIZE}/{cid}/attachment/{uuid.uuid4()}/download", headers=headers)
    assert unlinked.status_code == 404 and error_code(unlinked) == 2001
    stranger = bearer(dev_issuer.mint(scope=READ, pid=builders.national_id()))
    refused = await client.get(f"{INITIALIZE}/{cid}/attachment/{attachment_id}/download", headers=stranger)
    assert refused.status_code == 403 and error_code(refused) == 4001
    sender_only = await client.get(
        f"{INITIALIZE}/{cid}/attachment/{attachment_id}/download", headers=sender.headers
    )
    assert sender_only.status_code == 403  # the download needs the read scope


async def test_the_recipient_cannot_download_before_publication(
    client: httpx.AsyncClient, sender: Sender, services: Services, dev_issuer: DevIssuer
) -> None:
    person = builders.national_id()
    attachment_id = await published_attachment(client, sender, services)
    later = builders.future(3)
    [item] = (await initialize(client, sender, [person], [attachment_id], requestedPublishTime=later)).json()[
        "correspondences"
    ]
    headers = bearer(dev_issuer.mint(scope=READ, pid=person))
    response = await client.get(
        f"{INITIALIZE}/{item['correspondenceId']}/attachment/{attachment_id}/download", headers=headers
    )
    assert response.status_code == 404 and error_code(response) == 1001


async def test_a_passed_link_expiry_is_2020_and_a_purged_attachment_2019(
    client: httpx.AsyncClient, sender: Sender, services: Services, dev_issuer: DevIssuer
) -> None:
    cid, attachment_id, headers = await _published_with_attachment(
        client, sender, services, dev_issuer, expirationInDays=1
    )
    url = f"{INITIALIZE}/{cid}/attachment/{attachment_id}/download"
    clock.shift(timedelta(days=1, seconds=1))  # before the expiry job has run
    expired = await client.get(url, headers=headers)
    assert expired.status_code == 400 and error_code(expired) == 2020

    cid, attachment_id, headers = await _published_with_attachment(client, sender, services, dev_issuer)
    url = f"{INITIALIZE}/{cid}/attachment/{attachment_id}/download"
    await client.get(f"{INITIALIZE}/{cid}", headers=headers)  # fetched
    purged = await client.delete(f"{INITIALIZE}/{cid}/purge", headers=headers)
    assert purged.status_code == 200, purged.text
    gone = await client.get(url, headers=headers)
    assert gone.status_code == 400 and error_code(gone) == 2019


async def test_upload_to_a_linked_attachment_is_2003(
    client: httpx.AsyncClient, sender: Sender, services: Services, db: asyncpg.Connection
) -> None:
    fields = form(sender, [builders.national_id()], [{"fileName": "a.txt", "sendersReference": "a"}])
    response = await client.post(
        UPLOAD, data=fields, files=[("attachments", ("a.txt", b"abc", "text/plain"))], headers=sender.headers
    )
    [attachment_id] = response.json()["attachmentIds"]
    # Only an attachment whose upload failed may be uploaded again; this one is linked.
    await db.execute("UPDATE attachments SET status = 4 WHERE id = $1", uuid.UUID(attachment_id))
    retry = await upload(client, sender, attachment_id, b"abc")
    assert retry.status_code == 400 and error_code(retry) == 2003


async def test_a_multipart_expiry_below_the_minimum_is_2017(
    client: httpx.AsyncClient, sender: Sender, services: Services
) -> None:
    entries = [{"fileName": "a.pdf", "sendersReference": "a", "expirationInDays": "0"}]
    response = await client.post(
        UPLOAD,
        data=form(sender, [builders.national_id()], entries),
        files=[("attachments", ("a.pdf", PDF, "application/pdf"))],
        headers=sender.headers,
    )
    assert response.status_code == 400 and error_code(response) == 2017
    assert await _stored_files(services) == []
