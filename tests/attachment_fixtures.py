"""Real external components for the attachment tests: an S3 API server (moto in server mode, its
own process on 127.0.0.1) and ClamAV's clamd (Debian's clamav-daemon, in the foreground with its
own configuration and a signature database written here, since the official one cannot be
downloaded). Plus helpers to drive the attachment API."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from correspondence.adapters.blobs import BlobStore, S3BlobStore
from correspondence.adapters.scanner import ClamdScanner
from correspondence.app import build_worker
from correspondence.services import Services
from tests.conftest import Sender

API = "/correspondence/api/v1"
ATTACHMENT = f"{API}/attachment"
# The EICAR test file: every scanner reports it, none is harmed by it.
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
SIGNATURE = "Correspondence.Test.EICAR"
S3_KEY_ID, S3_SECRET = "test-key", "test-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- S3: moto in server mode --------------------------------------------------------------------


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    port = free_port()
    log = Path(tempfile.gettempdir()) / f"corr-moto-{port}.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if server.poll() is not None:
                pytest.fail(f"moto_server exited with {server.returncode}:\n{log.read_text()}")
            try:
                httpx.get(endpoint + "/moto-api/", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    pytest.fail(f"moto_server did not start:\n{log.read_text()}")
                time.sleep(0.1)
        yield endpoint
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)
        log.unlink(missing_ok=True)


def s3_client(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=S3_KEY_ID,
        aws_secret_access_key=S3_SECRET,
        region_name="us-east-1",
    )


@pytest.fixture
def s3_bucket(moto_endpoint: str) -> str:
    name = f"corr-{uuid.uuid4().hex[:12]}"
    s3_client(moto_endpoint).create_bucket(Bucket=name)
    return name


@pytest.fixture
async def s3_store(moto_endpoint: str, s3_bucket: str) -> S3BlobStore:
    return S3BlobStore(
        s3_bucket,
        endpoint=moto_endpoint,
        access_key_id=S3_KEY_ID,
        secret_access_key=S3_SECRET,
        region="us-east-1",
    )


def s3_keys(endpoint: str, bucket: str) -> list[str]:
    listing = s3_client(endpoint).list_objects_v2(Bucket=bucket)
    return sorted(o["Key"] for o in listing.get("Contents", []))


def s3_pending_uploads(endpoint: str, bucket: str) -> list[str]:
    listing = s3_client(endpoint).list_multipart_uploads(Bucket=bucket)
    return [u["Key"] for u in listing.get("Uploads", [])]


@pytest.fixture
async def use_s3(services: Services, s3_store: S3BlobStore) -> AsyncIterator[S3BlobStore]:
    """The running service stores its attachments in the S3 bucket for this test."""
    before = services.blobs
    services.blobs = s3_store
    try:
        yield s3_store
    finally:
        services.blobs = before


# --- ClamAV ---------------------------------------------------------------------------------------


def _clamd_binary() -> str:
    found = shutil.which("clamd") or ("/usr/sbin/clamd" if os.path.exists("/usr/sbin/clamd") else None)
    if found is None:
        pytest.fail("clamd is not installed: `make test` installs Debian's clamav-daemon (as root)")
    return found


@pytest.fixture(scope="session")
def clamd_address() -> Iterator[str]:
    """clamd in the foreground on a Unix socket, with a signature database of our own: an .ndb
    body signature for the EICAR string (the official databases need network access)."""
    binary = _clamd_binary()
    root = Path(tempfile.mkdtemp(prefix="corr-clamd-"))
    db = root / "db"
    db.mkdir()
    (db / "correspondence.ndb").write_text(f"{SIGNATURE}:0:*:{EICAR.hex()}\n")
    sock = root / "clamd.sock"
    conf = root / "clamd.conf"
    conf.write_text(
        "\n".join(
            [
                "Foreground yes",
                f"DatabaseDirectory {db}",
                f"LocalSocket {sock}",
                f"TemporaryDirectory {root}",
                f"LogFile {root / 'clamd.log'}",
                "StreamMaxLength 2M",
                "MaxThreads 4",
                "",
            ]
        )
    )
    log = root / "clamd.out"
    with log.open("wb") as sink:
        process = subprocess.Popen([binary, "-c", str(conf)], stdout=sink, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not _pong(sock):
            if process.poll() is not None:
                pytest.fail(f"clamd exited with {process.returncode}:\n{log.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"clamd did not answer within 60 s:\n{log.read_text()}")
            time.sleep(0.1)
        yield str(sock)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        shutil.rmtree(root, ignore_errors=True)


def _pong(sock: Path) -> bool:
    if not sock.exists():
        return False
    try:
        with socket.socket(socket.AF_UNIX) as client:
            client.settimeout(2)
            client.connect(str(sock))
            client.sendall(b"zPING\0")
            return client.recv(16) == b"PONG\0"
    except OSError:
        return False


@pytest.fixture
def use_clamd(services: Services, clamd_address: str) -> Iterator[ClamdScanner]:
    """The running service scans uploads with clamd for this test."""
    scanner = ClamdScanner(clamd_address, timeout=30)
    before = services.scanner
    services.scanner = scanner
    try:
        yield scanner
    finally:
        services.scanner = before


# --- driving the API ------------------------------------------------------------------------------


async def drain(services: Services) -> None:
    worker = build_worker(services)
    while await worker.run_once():
        pass


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


async def new_attachment(client: httpx.AsyncClient, sender: Sender, **fields: Any) -> str:
    body: dict[str, Any] = {
        "resourceId": sender.resource_id,
        "fileName": "vedtak.pdf",
        "sendersReference": "ref-" + uuid.uuid4().hex[:8],
    }
    body.update(fields)
    response = await client.post(ATTACHMENT, json=body, headers=sender.headers)
    assert response.status_code == 200, response.text
    return str(response.json())


async def upload(
    client: httpx.AsyncClient, sender: Sender, attachment_id: str, data: bytes
) -> httpx.Response:
    headers = {**sender.headers, "Content-Type": "application/octet-stream"}
    return await client.post(f"{ATTACHMENT}/{attachment_id}/upload", content=data, headers=headers)


async def published_attachment(
    client: httpx.AsyncClient,
    sender: Sender,
    services: Services,
    data: bytes = b"%PDF-1.7 hello",
    **fields: Any,
) -> str:
    attachment_id = await new_attachment(client, sender, **fields)
    response = await upload(client, sender, attachment_id, data)
    assert response.status_code == 200, response.text
    await drain(services)
    overview = await client.get(f"{ATTACHMENT}/{attachment_id}", headers=sender.headers)
    assert overview.json()["status"] == "Published", overview.text
    return attachment_id


async def wait_for(predicate: Any, *, timeout: float = 30.0) -> None:
    """Poll an async predicate until it holds (for effects of another task or process)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


def attachment_blobs(store: BlobStore, attachment_id: str) -> list[Path]:
    """The objects a file store holds for an attachment (each upload writes a key of its own:
    attachments/{id}.{uploadId}; rows from before that used attachments/{id})."""
    root = getattr(store, "root", None)
    assert isinstance(root, Path)
    return sorted(p for p in (root / "attachments").glob(f"{attachment_id}*") if p.is_file())


def blob_files(store: BlobStore) -> list[Path]:
    """Every file under a file store's root (finished objects and unfinished temporary files)."""
    root = getattr(store, "root", None)
    assert isinstance(root, Path)
    return sorted(p for p in root.rglob("*") if p.is_file())
