"""Download all (api.md §3.10): the recipient gets a correspondence's attachments as one zip of
stored entries, streamed from the file store or S3; names follow the reference's rules; the
download is recorded once in the history; a setting turns the operation off; the web inbox offers
it for two or more attachments."""

from __future__ import annotations

import io
import uuid
import zipfile
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest

from correspondence.adapters.blobs import S3BlobStore
from correspondence.attachment.files import zip_entry_names, zip_file_name
from correspondence.auth.tokens import DevIssuer
from correspondence.kit import zipstream
from correspondence.registry import repository as registry
from correspondence.services import Services
from tests import builders
from tests.attachment_fixtures import drain, published_attachment
from tests.conftest import INITIALIZE, Sender

READ = "altinn:correspondence.read"
PDF = b"%PDF-1.7\n" + b"side " * 3000
CSV = b"navn;belop\nOla;100\n"
PNG = bytes(range(256)) * 40


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def url(cid: str) -> str:
    return f"{INITIALIZE}/{cid}/attachments/downloadall"


def error_code(response: httpx.Response) -> int:
    code: int = response.json()["errorCode"]
    return code


async def send(
    client: httpx.AsyncClient,
    sender: Sender,
    services: Services,
    files: list[tuple[str, bytes]],
    *,
    recipient: str | None = None,
    title: str = "Vedtak om støtte 2026",
) -> tuple[str, list[str], str]:
    """A published correspondence to a person with these files; its id, the attachment ids and
    the person."""
    person = recipient or builders.national_id()
    ids = [await published_attachment(client, sender, services, data, fileName=name) for name, data in files]
    content = {"messageTitle": title}
    body = builders.initialize_body(sender.resource_id, [person], content=content)
    if ids:
        body["existingAttachments"] = ids
    response = await client.post(INITIALIZE, json=body, headers=sender.headers)
    assert response.status_code == 200, response.text
    await drain(services)
    return response.json()["correspondences"][0]["correspondenceId"], ids, person


def opened(response: httpx.Response) -> zipfile.ZipFile:
    assert response.status_code == 200, response.text
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    assert archive.testzip() is None  # every CRC-32 matches
    return archive


async def _zip_holds_each_files_exact_bytes(
    client: httpx.AsyncClient, sender: Sender, services: Services, dev_issuer: DevIssuer
) -> None:
    files = [("vedtak.pdf", PDF), ("tall.csv", CSV), ("bilde.png", PNG)]
    cid, _, person = await send(client, sender, services, files)
    response = await client.get(url(cid), headers=bearer(dev_issuer.mint(scope=READ, pid=person)))
    archive = opened(response)
    assert [(i.filename, i.compress_type) for i in archive.infolist()] == [
        ("vedtak.pdf", zipfile.ZIP_STORED),
        ("tall.csv", zipfile.ZIP_STORED),
        ("bilde.png", zipfile.ZIP_STORED),
    ]
    assert [archive.read(name) for name, _ in files] == [data for _, data in files]
    assert response.headers["content-type"] == "application/zip"
    assert response.headers["content-length"] == str(len(response.content))
    assert response.headers["content-disposition"] == (
        "attachment; filename=vedtak-om-sttte-2026.zip; filename*=UTF-8''vedtak-om-sttte-2026.zip"
    )


async def test_the_zip_holds_each_files_exact_bytes_stored(
    client: httpx.AsyncClient, sender: Sender, services: Services, dev_issuer: DevIssuer
) -> None:
    await _zip_holds_each_files_exact_bytes(client, sender, services, dev_issuer)


async def test_the_zip_streams_from_s3_too(
    client: httpx.AsyncClient, sender: Sender, services: Services, dev_issuer: DevIssuer, use_s3: S3BlobStore
) -> None:
    await _zip_holds_each_files_exact_bytes(client, sender, services, dev_issuer)


async def test_long_names_are_cut_keeping_the_extension_and_duplicates_are_numbered(
    client: httpx.AsyncClient, sender: Sender, services: Services, dev_issuer: DevIssuer
) -> None:
    long_name = "æ" * 250 + ".pdf"  # 254 characters, 504 bytes of UTF-8
    files = [(long_name, b"1"), ("brev.pdf", b"2"), ("BREV.pdf", b"3"), ("brev.pdf", b"4"), (long_name, b"5")]
    cid, _, person = await send(client, sender, services, files)
    archive = opened(await client.get(url(cid), headers=bearer(dev_issuer.mint(scope=READ, pid=person))))
    names = [i.filename for i in archive.infolist()]
    assert names == ["æ" * 125 + ".pdf", "brev.pdf", "BREV(1).pdf", "brev(2).pdf", "æ" * 124 + "(1).pdf"]
    assert all(len(n.encode()) <= 255 for n in names)
    assert [archive.read(n) for n in names] == [b"1", b"2", b"3", b"4", b"5"]


def test_entry_names_never_take_a_name_already_given() -> None:
    assert zip_entry_names(["a.pdf", "a(1).pdf", "A.pdf", "b"]) == ["a.pdf", "a(1).pdf", "A(2).pdf", "b"]


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("Vedtak om  støtte -- 2026!", "vedtak-om-sttte-2026.zip"),
        ("  ---Årsoppgjør---  ", "rsoppgjr.zip"),
        ("ÆØÅ", "correspondence-attachments.zip"),
        ("", "correspondence-attachments.zip"),
        ("Con", "correspondence-attachments-con.zip"),
        ("x" * 99 + " y", "x" * 99 + ".zip"),
    ],
)
def test_the_zip_is_named_after_the_title(title: str, expected: str) -> None:
    assert zip_file_name(title) == expected


async def test_each_download_is_one_attachments_downloaded_row_and_an_event_per_file(
    client: httpx.AsyncClient,
    sender: Sender,
    services: Services,
    dev_issuer: DevIssuer,
    db: asyncpg.Connection,
) -> None:
    cid, ids, person = await send(client, sender, services, [("a.pdf", PDF), ("b.csv", CSV)])
    headers = bearer(dev_issuer.mint(scope=READ, pid=person))
    for _ in range(2):
        assert (await client.get(url(cid), headers=headers)).status_code == 200
    details = (await client.get(f"{INITIALIZE}/{cid}/details", headers=headers)).json()
    assert details["status"] == "Published"  # DESIGN decision 3: never the current status
    downloaded = [h["statusText"] for h in details["statusHistory"] if h["status"] == "AttachmentsDownloaded"]
    assert downloaded == ["All attachments downloaded"] * 2
    recorded = await db.fetch(
        """SELECT unnest(ids) AS id FROM event_outbox
           WHERE type = 'attachmentdownloaded' AND ids && $1::uuid[]""",
        [uuid.UUID(i) for i in ids],
    )
    assert sorted(str(r["id"]) for r in recorded) == sorted(ids * 2)


async def test_without_attachments_it_is_2001(
    client: httpx.AsyncClient, sender: Sender, services: Services, dev_issuer: DevIssuer
) -> None:
    cid, _, person = await send(client, sender, services, [])
    response = await client.get(url(cid), headers=bearer(dev_issuer.mint(scope=READ, pid=person)))
    assert response.status_code == 404 and error_code(response) == 2001


async def test_only_the_recipient_downloads_and_only_once_published(
    client: httpx.AsyncClient, sender: Sender, services: Services, dev_issuer: DevIssuer
) -> None:
    cid, _, person = await send(client, sender, services, [("a.pdf", PDF)])
    stranger = await client.get(
        url(cid), headers=bearer(dev_issuer.mint(scope=READ, pid=builders.national_id()))
    )
    assert stranger.status_code == 403 and error_code(stranger) == 4001
    as_sender = await client.get(url(cid), headers=sender.headers)
    assert as_sender.status_code == 403
    unknown = await client.get(
        url(str(uuid.uuid4())), headers=bearer(dev_issuer.mint(scope=READ, pid=person))
    )
    assert unknown.status_code == 404 and error_code(unknown) == 1001
    assert (await client.get(url(cid))).status_code == 401

    attachment_id = await published_attachment(client, sender, services, PDF)
    body = builders.initialize_body(sender.resource_id, [person], requestedPublishTime=builders.future(3))
    body["existingAttachments"] = [attachment_id]
    later = (await client.post(INITIALIZE, json=body, headers=sender.headers)).json()
    response = await client.get(
        url(later["correspondences"][0]["correspondenceId"]),
        headers=bearer(dev_issuer.mint(scope=READ, pid=person)),
    )
    assert response.status_code == 404 and error_code(response) == 1001


async def test_an_attachment_of_a_stricter_resource_needs_its_auth_level(
    client: httpx.AsyncClient,
    sender: Sender,
    services: Services,
    dev_issuer: DevIssuer,
    db: asyncpg.Connection,
) -> None:
    strict = f"strict-{uuid.uuid4().hex[:10]}"
    await registry.upsert_resource(
        db,
        resource_id=strict,
        owner_org=sender.org,
        title="Strict",
        resource_type="CorrespondenceService",
        confidential="NotConfidential",
        min_auth_level=4,
    )
    person = builders.national_id()
    shared = await published_attachment(client, sender, services, PDF, resourceId=strict)
    body = builders.initialize_body(sender.resource_id, [person])
    body["existingAttachments"] = [shared]
    response = await client.post(INITIALIZE, json=body, headers=sender.headers)
    assert response.status_code == 200, response.text
    await drain(services)
    cid = response.json()["correspondences"][0]["correspondenceId"]
    low = await client.get(url(cid), headers=bearer(dev_issuer.mint(scope=READ, pid=person, auth_level=3)))
    assert low.status_code == 403 and error_code(low) == 4001
    high = await client.get(url(cid), headers=bearer(dev_issuer.mint(scope=READ, pid=person, auth_level=4)))
    assert opened(high).read("vedtak.pdf") == PDF


async def test_a_purged_attachment_is_2019_and_too_many_bytes_2023(
    client: httpx.AsyncClient,
    sender: Sender,
    services: Services,
    dev_issuer: DevIssuer,
    db: asyncpg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cid, ids, person = await send(client, sender, services, [("a.pdf", PDF), ("b.csv", CSV)])
    headers = bearer(dev_issuer.mint(scope=READ, pid=person))
    monkeypatch.setattr(services.settings, "download_all_max_bytes", len(PDF) + len(CSV) - 1)
    too_big = await client.get(url(cid), headers=headers)
    assert too_big.status_code == 400 and error_code(too_big) == 2023
    monkeypatch.setattr(services.settings, "download_all_max_bytes", len(PDF) + len(CSV))
    assert (await client.get(url(cid), headers=headers)).status_code == 200
    await db.execute("UPDATE attachments SET status = 3 WHERE id = $1", uuid.UUID(ids[1]))
    purged = await client.get(url(cid), headers=headers)
    assert purged.status_code == 400 and error_code(purged) == 2019


async def test_a_setting_turns_download_all_off(
    client: httpx.AsyncClient,
    sender: Sender,
    services: Services,
    dev_issuer: DevIssuer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cid, _, person = await send(client, sender, services, [("a.pdf", PDF)])
    monkeypatch.setattr(services.settings, "download_all_enabled", False)
    response = await client.get(url(cid), headers=bearer(dev_issuer.mint(scope=READ, pid=person)))
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == "Download all attachments is not available in this environment."
    assert "errorCode" not in response.json()


# --- the zip writer beyond 4 GiB: the same code with ZIP64 from a low threshold -----------------------


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 1000):
        yield data[start : start + 1000]


def _entries(files: list[tuple[str, bytes]]) -> list[zipstream.Entry]:
    at = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)
    return [zipstream.Entry(name, len(data), at, lambda data=data: _chunks(data)) for name, data in files]


@pytest.mark.parametrize("zip64_from", [zipstream.ZIP64_FROM, 3000, 0])
async def test_zip64_entries_offsets_and_directory_open_with_zipfile(zip64_from: int) -> None:
    files = [("tom.txt", b""), ("a.bin", PNG), ("b.bin", PDF), ("c.txt", CSV)]
    entries = _entries(files)
    written = b"".join([block async for block in zipstream.stream(entries, zip64_from=zip64_from)])
    assert len(written) == zipstream.archive_size(entries, zip64_from=zip64_from)
    archive = zipfile.ZipFile(io.BytesIO(written))
    assert archive.testzip() is None
    assert [(i.filename, archive.read(i)) for i in archive.infolist()] == files
    assert (b"PK\x06\x06" in written) == (zip64_from < len(written))  # the ZIP64 end record


async def test_a_source_with_other_bytes_than_declared_stops_the_zip() -> None:
    [entry] = _entries([("a.bin", PDF)])
    short = zipstream.Entry("a.bin", len(PDF) + 1, entry.modified, entry.open)
    with pytest.raises(zipstream.SizeMismatch):
        async for _ in zipstream.stream([short]):
            pass


# --- the web inbox -----------------------------------------------------------------------------------


@asynccontextmanager
async def _browser(app: Any, token: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as b:
        b.cookies.set("corr_session", token)
        yield b


def browser(app: Any, token: str) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    return _browser(app, token)


async def test_the_inbox_offers_download_all_for_two_or_more_attachments(
    app: Any, client: httpx.AsyncClient, sender: Sender, services: Services, dev_issuer: DevIssuer
) -> None:
    two, _, me = await send(client, sender, services, [("a.pdf", PDF), ("b.csv", CSV)])
    one, _, _ = await send(client, sender, services, [("a.pdf", PDF)], recipient=me)
    async with browser(app, dev_issuer.mint(scope=READ, pid=me)) as b:
        page = (await b.get(f"/inbox/{two}", headers={"Accept-Language": "en"})).text
        assert f'href="/inbox/{two}/attachments.zip"' in page and "Download all" in page
        norsk = (await b.get(f"/inbox/{two}", headers={"Accept-Language": "nb"})).text
        assert "Last ned alle" in norsk
        assert "attachments.zip" not in (await b.get(f"/inbox/{one}")).text
        response = await b.get(f"/inbox/{two}/attachments.zip")
        archive = opened(response)
        assert [archive.read(n) for n in ("a.pdf", "b.csv")] == [PDF, CSV]
        assert response.headers["content-security-policy"] == "sandbox"
    async with browser(app, dev_issuer.mint(scope=READ, pid=builders.national_id())) as b:
        assert (await b.get(f"/inbox/{two}/attachments.zip")).status_code == 403
