"""Real PostgreSQL for every test: CORRESPONDENCE_TEST_DATABASE_URL when set, else an embedded
server (pgserver). Each test session gets a fresh database with the migrations applied."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from correspondence.app import create_app
from correspondence.auth.tokens import DevIssuer
from correspondence.config import Settings
from correspondence.kit import clock
from correspondence.kit.db import create_database_sql, embedded_server_url, with_database
from correspondence.kit.migrate import upgrade
from correspondence.registry import repository as registry
from correspondence.services import Services
from tests import builders

# S3 (moto) and clamd, started by the tests themselves, and the attachment API helpers.
pytest_plugins = ["tests.attachment_fixtures"]


@pytest.fixture(scope="session")
def data_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="corr-test-") as tmp:
        yield Path(tmp)


@pytest.fixture(scope="session")
def server_url() -> str:
    url = os.environ.get("CORRESPONDENCE_TEST_DATABASE_URL")
    if url:
        return url
    # A short path keeps the Unix socket name within its length limit.
    root = Path(tempfile.gettempdir()) / f"corr-pg-{os.getuid()}"
    root.mkdir(exist_ok=True)
    return embedded_server_url(root, database="postgres")


@pytest.fixture(scope="session")
def database_url(server_url: str) -> Iterator[str]:
    import asyncio

    name = f"corr_test_{uuid.uuid4().hex[:10]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(server_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(create_database_sql(name)))  # as the service creates its own
    url = with_database(server_url, name)
    upgrade(url)
    yield url
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def settings(data_dir: Path) -> Settings:
    # metrics_cache_seconds=0: every scrape reads the database, so a test sees what it just did.
    return Settings(
        data_dir=data_dir, access_log=False, mode="development", job_lease_seconds=30, metrics_cache_seconds=0
    )


@pytest.fixture(scope="session")
def dev_issuer(settings: Settings) -> DevIssuer:
    return DevIssuer(settings.dev_issuer, settings.data_dir, 3600)


@pytest.fixture(scope="session")
async def app(settings: Settings, database_url: str) -> AsyncIterator[Any]:
    application = create_app(settings, database_url, run_worker=False)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture(scope="session")
def services(app: Any) -> Services:
    svc: Services = app.state.services
    return svc


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        yield c


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture(autouse=True)
def _reset_clock() -> Iterator[None]:
    clock.reset()
    yield
    clock.reset()


@dataclass
class Sender:
    """A service owner with its own resource, and a token to call as it."""

    org: str
    resource_id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
async def sender(db: asyncpg.Connection, dev_issuer: DevIssuer) -> Sender:
    org = builders.org_number()
    resource_id = f"test-resource-{uuid.uuid4().hex[:10]}"
    await registry.upsert_resource(
        db,
        resource_id=resource_id,
        owner_org=org,
        title="Test resource",
        resource_type="CorrespondenceService",
        confidential="NotConfidential",
        min_auth_level=0,
    )
    token = dev_issuer.mint(scope="altinn:correspondence.write altinn:serviceowner", org=org)
    return Sender(org, resource_id, token)


INITIALIZE = "/correspondence/api/v1/correspondence"
