"""The command-line contract: token and the registry verbs act on the configured database."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import jwt
import pytest
from typer.testing import CliRunner, Result

from correspondence.cli import app
from correspondence.config import get_settings
from tests import builders

runner = CliRunner()


async def cli(args: list[str]) -> Result:
    """Run a verb in a thread: the verbs start their own event loop."""
    return await asyncio.to_thread(runner.invoke, app, args)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, database_url: str, data_dir: Path) -> Iterator[None]:
    monkeypatch.setenv("CORRESPONDENCE_DATABASE_URL", database_url)
    monkeypatch.setenv("CORRESPONDENCE_DATA_DIR", str(data_dir))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_token_for_an_organisation_carries_altinn_claims(env: None) -> None:
    result = runner.invoke(app, ["token", "--org", "991825827", "--scope", "altinn:correspondence.write"])
    assert result.exit_code == 0, result.output
    claims = jwt.decode(result.output.strip(), options={"verify_signature": False})
    assert claims["scope"] == "altinn:correspondence.write"
    assert claims["consumer"] == {"authority": "iso6523-actorid-upis", "ID": "0192:991825827"}
    assert claims["urn:altinn:orgNumber"] == "991825827"
    assert claims["exp"] > claims["iat"]


def test_token_for_a_person_carries_pid(env: None) -> None:
    pid = builders.national_id()
    result = runner.invoke(app, ["token", "--pid", pid, "--scope", "altinn:correspondence.read"])
    claims = jwt.decode(result.output.strip(), options={"verify_signature": False})
    assert claims["pid"] == pid and "urn:altinn:authlevel" in claims


def test_token_rejects_bad_identifiers(env: None) -> None:
    assert runner.invoke(app, ["token", "--org", "123"]).exit_code == 2
    assert runner.invoke(app, ["token", "--pid", "12345678901"]).exit_code == 2
    assert runner.invoke(app, ["token"]).exit_code == 2


async def test_registry_verbs_write_the_registries(env: None, db: asyncpg.Connection) -> None:
    org, pid = builders.org_number(), builders.national_id()
    rid = f"cli-{org}"
    assert (await cli(["resource", "add", rid, "--owner", org, "--title", "T"])).exit_code == 0
    assert await db.fetchval("SELECT owner_org FROM resources WHERE resource_id = $1", rid) == org
    result = await cli(["contact", "set", pid, "--email", "p@example.no", "--reserved"])
    assert result.exit_code == 0, result.output
    row = await db.fetchrow(
        "SELECT email, reserved FROM contacts WHERE party = $1", f"urn:altinn:person:identifier-no:{pid}"
    )
    assert row["email"] == "p@example.no" and row["reserved"] is True
    assert (await cli(["contact", "set", pid, "--not-reserved"])).exit_code == 0
    assert (
        await db.fetchval(
            "SELECT reserved FROM contacts WHERE party = $1", f"urn:altinn:person:identifier-no:{pid}"
        )
        is False
    )
    assert (await cli(["access", "grant", pid, "--party", org])).exit_code == 0
    assert (
        await db.fetchval(
            "SELECT count(*) FROM delegations WHERE person = $1 AND party = $2",
            f"urn:altinn:person:identifier-no:{pid}",
            f"urn:altinn:organization:identifier-no:{org}",
        )
        == 1
    )


def test_registry_verbs_reject_bad_input(env: None) -> None:
    assert runner.invoke(app, ["resource", "add", "x", "--owner", "12"]).exit_code == 2
    assert runner.invoke(app, ["contact", "set", "12345678901", "--email", "a@b.no"]).exit_code == 2
    assert runner.invoke(app, ["contact", "set", "991825827", "--email", "not-an-email"]).exit_code == 2
    assert runner.invoke(app, ["access", "grant", "991825827", "--party", "991825827"]).exit_code == 2


def test_invalid_configuration_is_reported_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CORRESPONDENCE_PORT", "not-a-port")
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["migrate"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "port" in result.output
