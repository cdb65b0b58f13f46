"""Shared attachments (api.md §3.12–§3.17): initialize, streamed upload with MD5, overview,
details, purge and the sender's download, with the reference's rules and error codes."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import asyncpg
import httpx
import pytest

from correspondence.adapters.blobs import FileBlobStore, S3BlobStore
from correspondence.auth.tokens import DevIssuer
from correspondence.registry import repository as registry
from correspondence.services import Services
from tests import builders
from tests.attachment_fixtures import (
    ATTACHMENT,
    S3_KEY_ID,
    S3_SECRET,
    attachment_blobs,
    blob_files,
    drain,
    free_port,
    md5,
    new_attachment,
    published_attachment,
    s3_keys,
    upload,
)
from tests.conftest import INITIALIZE, Sender

PDF = b"%PDF-1.7\n" + b"vedtak " * 1000


def error_code(response: httpx.Response) -> int:
    code: int = response.json()["errorCode"]
    return code


async def overview(client: httpx.AsyncClient, sender: Sender, attachment_id: str) -> dict[str, object]:
    response = await client.get(f"{ATTACHMENT}/{attachment_id}", headers=sender.headers)
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


async def history(client: httpx.AsyncClient, sender: Sender, attachment_id: str) -> list[tuple[str, str]]:
    response = await client.get(f"{ATTACHMENT}/{attachment_id}/details", headers=sender.headers)
    assert response.status_code == 200, response.text
    return [(h["status"], h["statusText"]) for h in response.json()["statusHistory"]]


@pytest.fixture
async def other_sender(db: asyncpg.Connection, dev_issuer: DevIssuer) -> Sender:
    org = builders.org_number()
    resource_id = f"other-resource-{uuid.uuid4().hex[:10]}"
    await registry.upsert_resource(
        db,
        resource_id=resource_id,
        owner_org=org,
        title=None,
        resource_type="CorrespondenceService",
        confidential="NotConfidential",
        min_auth_level=0,
    )
    return Sender(org, resource_id, dev_issuer.mint(scope="altinn:correspondence.write", org=org))


def file_store(services: Services) -> FileBlobStore:
    store = services.blob_store()
    assert isinstance(store, FileBlobStore)
    return store


def stored(services: Services, attachment_id: str) -> bool:
    return bool(attachment_blobs(file_store(services), attachment_id))


# --- initialize -------------------------------------------------------------------------------------


async def test_initialize_returns_the_id_of_an_initialized_attachment(
    client: httpx.AsyncClient, sender: Sender
) -> None:
    attachment_id = await new_attachment(
        client, sender, fileName="Vedtak 2026.PDF", displayName="Vedtaket", isEncrypted=True
    )
    body = await overview(client, sender, attachment_id)
    assert body == {
        "attachmentId": attachment_id,
        "resourceId": sender.resource_id,
        "sender": f"urn:altinn:organization:identifier-no:{sender.org}",
        "fileName": "Vedtak 2026.PDF",
        "name": "Vedtaket",
        "displayName": "Vedtaket",
        "isEncrypted": False,  # as the reference writes it (api.md §6.9)
        "checksum": "",  # not given, not uploaded yet (api.md §3.14)
        "sendersReference": body["sendersReference"],
        "dataType": "application/pdf",
        "status": "Initialized",
        "statusText": "Initialized",
        "statusChanged": body["statusChanged"],
        "correspondenceIds": [],
    }


async def test_initialize_takes_the_official_documents_name_field(
    client: httpx.AsyncClient, sender: Sender
) -> None:
    body = {
        "resourceId": sender.resource_id,
        "name": "brev.txt",
        "sendersReference": "x",
        "dataType": "text/plain",
    }
    response = await client.post(ATTACHMENT, json=body, headers=sender.headers)
    assert response.status_code == 200, response.text
    attachment = await overview(client, sender, response.json())
    assert (attachment["fileName"], attachment["name"], attachment["dataType"]) == (
        "brev.txt",
        "brev.txt",
        "text/plain",
    )


async def test_initialize_rejects_an_unknown_resource(client: httpx.AsyncClient, sender: Sender) -> None:
    body = {"resourceId": "no-such-resource", "fileName": "a.pdf", "sendersReference": "x"}
    response = await client.post(ATTACHMENT, json=body, headers=sender.headers)
    assert response.status_code == 400 and error_code(response) == 1036


async def test_initialize_refuses_a_resource_of_another_owner(
    client: httpx.AsyncClient, sender: Sender, other_sender: Sender
) -> None:
    body = {"resourceId": other_sender.resource_id, "fileName": "a.pdf", "sendersReference": "x"}
    response = await client.post(ATTACHMENT, json=body, headers=sender.headers)
    assert response.status_code == 403 and error_code(response) == 4001


async def test_initialize_refuses_a_resource_of_another_type(
    client: httpx.AsyncClient, sender: Sender, db: asyncpg.Connection
) -> None:
    resource_id = f"app-{uuid.uuid4().hex[:10]}"
    await registry.upsert_resource(
        db,
        resource_id=resource_id,
        owner_org=sender.org,
        title=None,
        resource_type="AltinnApp",
        confidential="NotConfidential",
        min_auth_level=0,
    )
    body = {"resourceId": resource_id, "fileName": "a.pdf", "sendersReference": "x"}
    response = await client.post(ATTACHMENT, json=body, headers=sender.headers)
    assert response.status_code == 400 and error_code(response) == 4009


@pytest.mark.parametrize(
    ("file_name", "code"),
    [
        ("   ", 2010),
        ("program.exe", 2013),
        ("no-extension", 2013),
        ("what?.pdf", 2012),
        ("tab\there.pdf", 2012),
        ("CON.txt", 2021),
        ("lpt1.pdf", 2021),
    ],
)
async def test_initialize_applies_the_file_name_rules(
    client: httpx.AsyncClient, sender: Sender, file_name: str, code: int
) -> None:
    body = {"resourceId": sender.resource_id, "fileName": file_name, "sendersReference": "x"}
    response = await client.post(ATTACHMENT, json=body, headers=sender.headers)
    assert response.status_code == 400, response.text
    assert error_code(response) == code


async def test_a_file_name_over_255_is_refused_by_the_model(
    client: httpx.AsyncClient, sender: Sender
) -> None:
    """As in the reference, the length attribute answers before the handler's 2011 could."""
    body = {"resourceId": sender.resource_id, "fileName": "a" * 252 + ".pdf", "sendersReference": "x"}
    response = await client.post(ATTACHMENT, json=body, headers=sender.headers)
    assert response.status_code == 400
    assert response.json()["errors"]["FileName"] == [
        "The field FileName must be a string with a maximum length of 255."
    ]


async def test_initialize_accepts_names_that_only_look_reserved(
    client: httpx.AsyncClient, sender: Sender
) -> None:
    await new_attachment(client, sender, fileName="CONSOLE.txt")


async def test_initialize_rejects_an_expiry_below_the_minimum(
    client: httpx.AsyncClient, sender: Sender
) -> None:
    body = {
        "resourceId": sender.resource_id,
        "fileName": "a.pdf",
        "sendersReference": "x",
        "expirationInDays": 0,
    }
    response = await client.post(ATTACHMENT, json=body, headers=sender.headers)
    assert response.status_code == 400 and error_code(response) == 2017
    assert response.json()["detail"] == "Attachment expirationTime must be at least 1 days from now"


async def test_initialize_validates_the_model(client: httpx.AsyncClient, sender: Sender) -> None:
    body = {"resourceId": sender.resource_id, "fileName": "a.pdf", "checksum": "ABC"}
    response = await client.post(ATTACHMENT, json=body, headers=sender.headers)
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert errors["SendersReference"] == ["The SendersReference field is required."]
    assert errors["Checksum"] == ["The checksum, if used, must be a MD5 hash with a length of 32 characters"]


async def test_initialize_needs_json(client: httpx.AsyncClient, sender: Sender) -> None:
    response = await client.post(
        ATTACHMENT, content=b"resourceId=x", headers={**sender.headers, "Content-Type": "text/plain"}
    )
    assert response.status_code == 415


async def test_initialize_needs_the_sender_scope(
    client: httpx.AsyncClient, sender: Sender, dev_issuer: DevIssuer
) -> None:
    token = dev_issuer.mint(scope="altinn:correspondence.read", org=sender.org)
    body = {"resourceId": sender.resource_id, "fileName": "a.pdf", "sendersReference": "x"}
    response = await client.post(ATTACHMENT, json=body, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403


# --- upload -----------------------------------------------------------------------------------------


async def test_upload_stores_the_file_and_publishes_it_without_a_scanner(
    client: httpx.AsyncClient, sender: Sender, services: Services
) -> None:
    attachment_id = await new_attachment(client, sender)
    response = await upload(client, sender, attachment_id, PDF)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["statusText"]) == ("Published", "Bypassed malware scan")
    assert body["checksum"] == md5(PDF)  # computed while streaming, stored when none was given
    assert await history(client, sender, attachment_id) == [
        ("Initialized", "Initialized"),
        ("UploadProcessing", "UploadProcessing"),
        ("Published", "Bypassed malware scan"),
    ]
    [blob] = attachment_blobs(file_store(services), attachment_id)
    assert blob.read_bytes() == PDF
    download = await client.get(f"{ATTACHMENT}/{attachment_id}/download", headers=sender.headers)
    assert download.status_code == 200 and download.content == PDF
    assert download.headers["content-type"] == "application/octet-stream"
    assert "content-disposition" not in download.headers


async def test_upload_verifies_the_given_checksum(
    client: httpx.AsyncClient, sender: Sender, services: Services
) -> None:
    attachment_id = await new_attachment(client, sender, checksum=md5(PDF))
    response = await upload(client, sender, attachment_id, PDF + b"tampered")
    assert response.status_code == 400 and error_code(response) == 2008
    assert response.json()["detail"] == "Checksum mismatch"
    body = await overview(client, sender, attachment_id)
    assert (body["status"], body["statusText"]) == ("Failed", "Checksum mismatch")
    assert not stored(services, attachment_id)
    assert [p for p in blob_files(file_store(services)) if attachment_id in p.name] == []
    # A retry with the right bytes works.
    retry = await upload(client, sender, attachment_id, PDF)
    assert retry.status_code == 200, retry.text
    assert retry.json()["status"] == "Published"
    assert stored(services, attachment_id)


async def test_upload_of_an_unknown_attachment_is_2001(client: httpx.AsyncClient, sender: Sender) -> None:
    response = await upload(client, sender, str(uuid.uuid4()), PDF)
    assert response.status_code == 404 and error_code(response) == 2001


async def test_upload_to_another_senders_attachment_is_refused(
    client: httpx.AsyncClient, sender: Sender, other_sender: Sender
) -> None:
    attachment_id = await new_attachment(client, sender)
    response = await upload(client, other_sender, attachment_id, PDF)
    assert response.status_code == 403 and error_code(response) == 4001


async def test_an_empty_upload_is_2004(client: httpx.AsyncClient, sender: Sender) -> None:
    attachment_id = await new_attachment(client, sender)
    response = await upload(client, sender, attachment_id, b"")
    assert response.status_code == 400 and error_code(response) == 2004
    assert response.json()["detail"] == "File must have content and has a max file size of 50GB"
    assert (await overview(client, sender, attachment_id))[
        "status"
    ] == "Initialized"  # refused before reading


async def test_an_upload_over_the_limit_is_2004(
    client: httpx.AsyncClient, sender: Sender, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services.settings, "max_upload_bytes", 1000)
    declared = await new_attachment(client, sender)
    response = await upload(client, sender, declared, b"x" * 1001)
    assert response.status_code == 400 and error_code(response) == 2004
    assert response.json()["detail"] == "File must have content and has a max file size of 1KB"

    async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: counted while streaming
        for _ in range(3):
            yield b"x" * 600

    streamed = await new_attachment(client, sender)
    headers = {**sender.headers, "Content-Type": "application/octet-stream"}
    response = await client.post(f"{ATTACHMENT}/{streamed}/upload", content=chunked(), headers=headers)
    assert response.status_code == 400 and error_code(response) == 2004
    assert (await overview(client, sender, streamed))["status"] == "Failed"
    assert not stored(services, streamed)


async def test_a_second_upload_is_2005(client: httpx.AsyncClient, sender: Sender) -> None:
    attachment_id = await new_attachment(client, sender)
    assert (await upload(client, sender, attachment_id, PDF)).status_code == 200
    response = await upload(client, sender, attachment_id, PDF)
    assert response.status_code == 400 and error_code(response) == 2005


async def test_upload_needs_octet_stream(client: httpx.AsyncClient, sender: Sender) -> None:
    attachment_id = await new_attachment(client, sender)
    response = await client.post(
        f"{ATTACHMENT}/{attachment_id}/upload", json={"a": 1}, headers=sender.headers
    )
    assert response.status_code == 415


async def test_an_upload_that_stalls_is_2022(
    client: httpx.AsyncClient, sender: Sender, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    monkeypatch.setattr(services.settings, "upload_idle_timeout_seconds", 0.2)

    async def stalls() -> AsyncIterator[bytes]:
        yield b"%PDF-1.7 first part"
        await asyncio.sleep(1.5)
        yield b"too late"

    attachment_id = await new_attachment(client, sender)
    headers = {**sender.headers, "Content-Type": "application/octet-stream"}
    response = await client.post(f"{ATTACHMENT}/{attachment_id}/upload", content=stalls(), headers=headers)
    assert response.status_code == 408 and error_code(response) == 2022
    body = await overview(client, sender, attachment_id)
    assert (body["status"], body["statusText"]) == (
        "Failed",
        "Upload request timed out due to data arriving too slowly",
    )
    assert not stored(services, attachment_id)


async def test_upload_to_s3_round_trips(
    client: httpx.AsyncClient, sender: Sender, use_s3: S3BlobStore, moto_endpoint: str, s3_bucket: str
) -> None:
    data = os.urandom(9 * 1024 * 1024)
    attachment_id = await new_attachment(client, sender, checksum=md5(data), fileName="data.zip")
    response = await upload(client, sender, attachment_id, data)
    assert response.status_code == 200, response.text
    [key] = s3_keys(moto_endpoint, s3_bucket)
    assert key.startswith(f"attachments/{attachment_id}.")
    download = await client.get(f"{ATTACHMENT}/{attachment_id}/download", headers=sender.headers)
    assert download.status_code == 200 and download.content == data
    ranged = await client.get(
        f"{ATTACHMENT}/{attachment_id}/download", headers={**sender.headers, "Range": "bytes=100-199"}
    )
    assert ranged.status_code == 206 and ranged.content == data[100:200]


async def test_a_checksum_mismatch_on_s3_leaves_no_object(
    client: httpx.AsyncClient, sender: Sender, use_s3: S3BlobStore, moto_endpoint: str, s3_bucket: str
) -> None:
    attachment_id = await new_attachment(client, sender, checksum=md5(b"other"))
    response = await upload(client, sender, attachment_id, os.urandom(6 * 1024 * 1024))
    assert response.status_code == 400 and error_code(response) == 2008
    assert s3_keys(moto_endpoint, s3_bucket) == []


async def test_a_missing_bucket_is_2009(
    client: httpx.AsyncClient,
    sender: Sender,
    services: Services,
    moto_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = S3BlobStore(
        "bucket-that-is-not", endpoint=moto_endpoint, access_key_id=S3_KEY_ID, secret_access_key=S3_SECRET
    )
    monkeypatch.setattr(services, "blobs", store)
    attachment_id = await new_attachment(client, sender)
    response = await upload(client, sender, attachment_id, PDF)
    assert response.status_code == 400 and error_code(response) == 2009
    body = await overview(client, sender, attachment_id)
    assert (body["status"], body["statusText"]) == ("Failed", "Could not get data location url")


async def test_a_storage_failure_is_2002(
    client: httpx.AsyncClient, sender: Sender, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = S3BlobStore(
        "bucket",
        endpoint=f"http://127.0.0.1:{free_port()}",  # nothing listens there
        access_key_id=S3_KEY_ID,
        secret_access_key=S3_SECRET,
        retry_config={"max_retries": 0, "retry_timeout": timedelta(seconds=2)},
    )
    monkeypatch.setattr(services, "blobs", store)
    attachment_id = await new_attachment(client, sender)
    response = await upload(client, sender, attachment_id, PDF)
    assert response.status_code == 502 and error_code(response) == 2002
    body = await overview(client, sender, attachment_id)
    assert (body["status"], body["statusText"]) == ("Failed", "Upload failed")


# --- overview and details ---------------------------------------------------------------------------


async def test_details_carry_the_status_history(client: httpx.AsyncClient, sender: Sender) -> None:
    attachment_id = await new_attachment(client, sender, displayName=None)
    response = await client.get(f"{ATTACHMENT}/{attachment_id}/details", headers=sender.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["checksum"] == ""  # "" when unset, in details only (api.md §6.10)
    assert body["name"] == "vedtak.pdf"  # falls back to the file name
    assert [h["status"] for h in body["statusHistory"]] == ["Initialized"]


@pytest.mark.parametrize("suffix", ["", "/details"])
async def test_overview_and_details_answer_2001_and_4001(
    client: httpx.AsyncClient, sender: Sender, other_sender: Sender, suffix: str
) -> None:
    missing = await client.get(f"{ATTACHMENT}/{uuid.uuid4()}{suffix}", headers=sender.headers)
    assert missing.status_code == 404 and error_code(missing) == 2001
    attachment_id = await new_attachment(client, sender)
    foreign = await client.get(f"{ATTACHMENT}/{attachment_id}{suffix}", headers=other_sender.headers)
    assert foreign.status_code == 403 and error_code(foreign) == 4001


async def test_a_malformed_id_is_a_validation_problem(client: httpx.AsyncClient, sender: Sender) -> None:
    response = await client.get(f"{ATTACHMENT}/not-a-guid", headers=sender.headers)
    assert response.status_code == 400 and response.json()["code"] == "STD-00000"


# --- purge ------------------------------------------------------------------------------------------


async def test_purge_deletes_the_bytes(client: httpx.AsyncClient, sender: Sender, services: Services) -> None:
    attachment_id = await published_attachment(client, sender, services, PDF)
    assert stored(services, attachment_id)
    response = await client.delete(f"{ATTACHMENT}/{attachment_id}", headers=sender.headers)
    assert response.status_code == 204 and response.content == b""
    body = await overview(client, sender, attachment_id)
    assert (body["status"], body["statusText"]) == ("Purged", "Attachment has been purged")
    assert not stored(services, attachment_id)
    again = await client.delete(f"{ATTACHMENT}/{attachment_id}", headers=sender.headers)
    assert again.status_code == 400 and error_code(again) == 2006
    download = await client.get(f"{ATTACHMENT}/{attachment_id}/download", headers=sender.headers)
    assert download.status_code == 400 and error_code(download) == 2019


async def test_purge_answers_2001_and_4001(
    client: httpx.AsyncClient, sender: Sender, other_sender: Sender
) -> None:
    missing = await client.delete(f"{ATTACHMENT}/{uuid.uuid4()}", headers=sender.headers)
    assert missing.status_code == 404 and error_code(missing) == 2001
    attachment_id = await new_attachment(client, sender)
    foreign = await client.delete(f"{ATTACHMENT}/{attachment_id}", headers=other_sender.headers)
    assert foreign.status_code == 403 and error_code(foreign) == 4001


async def test_an_attachment_in_use_cannot_be_purged(
    client: httpx.AsyncClient, sender: Sender, services: Services
) -> None:
    attachment_id = await published_attachment(client, sender, services)
    body = builders.initialize_body(sender.resource_id, [builders.national_id()])
    body["existingAttachments"] = [attachment_id]
    assert (await client.post(INITIALIZE, json=body, headers=sender.headers)).status_code == 200
    response = await client.delete(f"{ATTACHMENT}/{attachment_id}", headers=sender.headers)
    assert response.status_code == 400 and error_code(response) == 2007


# --- sender download --------------------------------------------------------------------------------


async def test_sender_download_answers_2001_and_4001(
    client: httpx.AsyncClient, sender: Sender, other_sender: Sender, services: Services
) -> None:
    never_uploaded = await new_attachment(client, sender)
    response = await client.get(f"{ATTACHMENT}/{never_uploaded}/download", headers=sender.headers)
    assert response.status_code == 404 and error_code(response) == 2001
    attachment_id = await published_attachment(client, sender, services)
    foreign = await client.get(f"{ATTACHMENT}/{attachment_id}/download", headers=other_sender.headers)
    assert foreign.status_code == 403 and error_code(foreign) == 4001


async def test_sender_download_ends_when_a_correspondence_using_it_is_published(
    client: httpx.AsyncClient, sender: Sender, services: Services
) -> None:
    attachment_id = await published_attachment(client, sender, services, PDF)
    body = builders.initialize_body(sender.resource_id, [builders.national_id()])
    body["existingAttachments"] = [attachment_id]
    assert (await client.post(INITIALIZE, json=body, headers=sender.headers)).status_code == 200
    before = await client.get(f"{ATTACHMENT}/{attachment_id}/download", headers=sender.headers)
    assert before.status_code == 200 and before.content == PDF  # linked, not yet published
    await drain(services)
    after = await client.get(f"{ATTACHMENT}/{attachment_id}/download", headers=sender.headers)
    assert after.status_code == 400 and error_code(after) == 2016


async def test_sender_download_serves_ranges(
    client: httpx.AsyncClient, sender: Sender, services: Services
) -> None:
    attachment_id = await published_attachment(client, sender, services, PDF)
    url = f"{ATTACHMENT}/{attachment_id}/download"
    tail = await client.get(url, headers={**sender.headers, "Range": "bytes=-100"})
    assert tail.status_code == 206 and tail.content == PDF[-100:]
    assert tail.headers["content-range"] == f"bytes {len(PDF) - 100}-{len(PDF) - 1}/{len(PDF)}"
    beyond = await client.get(url, headers={**sender.headers, "Range": f"bytes={len(PDF)}-"})
    assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{len(PDF)}"
    several = await client.get(url, headers={**sender.headers, "Range": "bytes=0-1,5-6"})
    assert several.status_code == 200 and several.content == PDF  # one range per request, else all
