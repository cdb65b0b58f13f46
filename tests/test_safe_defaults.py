"""Safe by default: development mode stays on one machine, production refuses to start half
configured, tokens can be held to an audience, cookies are Secure in production, and anonymous
callers learn nothing from /health."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from pydantic import ValidationError
from typer.testing import CliRunner

from correspondence.app import create_app
from correspondence.auth.tokens import InvalidToken, TokenValidator
from correspondence.cli import app as cli_app
from correspondence.config import Settings, TrustedIssuer, get_settings, is_loopback
from tests import builders

ISSUER = "https://idp.example.no/"
READ = "altinn:correspondence.read"


@pytest.fixture(scope="module")
def issuer_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[rsa.RSAPrivateKey, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("issuer") / "key.pem"
    path.write_bytes(key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    return key, path


def mint(key: rsa.RSAPrivateKey, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "iat": now, "exp": now + 600, "scope": READ, **claims}
    return jwt.encode(body, key, algorithm="RS256")


def production(data_dir: Path, key_file: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "mode": "production",
        "data_dir": data_dir,
        "access_log": False,
        "trusted_issuers": [TrustedIssuer(issuer=ISSUER, key_file=key_file)],
        "malware_scan": "off",
        "metrics_enabled": False,
    }
    values.update(overrides)
    return Settings(**values)


# --- 1. development mode only on loopback, never beside trusted issuers -------------------------------


def test_development_mode_refuses_trusted_issuers(tmp_path: Path) -> None:
    issuers = [TrustedIssuer(issuer=ISSUER, key_file=tmp_path / "k.pem")]
    with pytest.raises(ValidationError, match="CORRESPONDENCE_MODE=production"):
        Settings(mode="development", trusted_issuers=issuers)
    # An explicit opt-in is accepted (and logged loudly at start).
    assert Settings(mode="development", trusted_issuers=issuers, allow_insecure_development=True)


def test_development_mode_refuses_to_listen_beyond_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CORRESPONDENCE_MODE", raising=False)
    monkeypatch.delenv("CORRESPONDENCE_ALLOW_INSECURE_DEVELOPMENT", raising=False)
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli_app, ["serve", "--host", "0.0.0.0", "--port", "1"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 2
    assert "refusing to start" in result.output and "CORRESPONDENCE_MODE=production" in result.output
    assert "CORRESPONDENCE_ALLOW_INSECURE_DEVELOPMENT" in result.output


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("example.no", False),
        ("", False),
    ],
)
def test_what_counts_as_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
    refusal = Settings(host=host).development_refusal()
    assert (refusal is None) is loopback
    assert Settings(host=host, allow_insecure_development=True).development_refusal() is None


async def test_the_development_sign_in_is_refused_to_a_remote_browser(app: Any) -> None:
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as b:
        page = await b.get("/signin")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        response = await b.post(
            "/signin", data={"csrf": csrf.group(1), "kind": "person", "pid": builders.national_id()}
        )
        assert response.status_code == 403
        assert "corr_session" not in b.cookies


# --- 4. production needs a malware scanner, or says it has none -----------------------------------------


def test_production_needs_a_scanner_or_an_explicit_off(tmp_path: Path) -> None:
    issuers = [TrustedIssuer(issuer=ISSUER, key_file=tmp_path / "k.pem")]
    common: dict[str, Any] = {"mode": "production", "trusted_issuers": issuers, "metrics_enabled": False}
    with pytest.raises(ValidationError, match="CORRESPONDENCE_MALWARE_SCAN=off"):
        Settings(**common)
    assert Settings(**common, clamd_address="/run/clamav/clamd.ctl").scan_address == "/run/clamav/clamd.ctl"
    off = Settings(**common, malware_scan="off", clamd_address="/run/clamav/clamd.ctl")
    assert off.scan_address is None
    with pytest.raises(ValidationError, match="CORRESPONDENCE_CLAMD_ADDRESS"):
        Settings(malware_scan="on")


async def test_an_unscanned_production_service_says_so_at_start(
    data_dir: Path,
    database_url: str,
    issuer_key: tuple[rsa.RSAPrivateKey, Path],
    caplog: pytest.LogCaptureFixture,
) -> None:
    application = create_app(production(data_dir, issuer_key[1]), database_url, run_worker=False)
    with caplog.at_level(logging.INFO, logger="correspondence"):
        async with application.router.lifespan_context(application):
            pass
    assert any(r.levelno == logging.WARNING and "malware scan OFF" in r.getMessage() for r in caplog.records)


# --- 11. audience, Secure cookies, /health --------------------------------------------------------------


async def test_an_issuer_with_an_audience_accepts_only_tokens_for_it(
    issuer_key: tuple[rsa.RSAPrivateKey, Path], tmp_path: Path
) -> None:
    key, key_file = issuer_key
    trusted = TrustedIssuer(issuer=ISSUER, key_file=key_file, audience="https://correspondence.example.no")
    validator = TokenValidator(production(tmp_path, key_file, trusted_issuers=[trusted]), None)
    assert (await validator.validate(mint(key, aud="https://correspondence.example.no"))).scopes == {READ}
    for token in (mint(key), mint(key, aud="https://other.example.no")):
        with pytest.raises(InvalidToken):
            await validator.validate(token)
    # Without an audience configured, none is required (as the reference).
    plain = TokenValidator(production(tmp_path, key_file), None)
    assert (await plain.validate(mint(key, aud="https://other.example.no"))).scopes == {READ}


@pytest.fixture
async def production_app(
    data_dir: Path, database_url: str, issuer_key: tuple[rsa.RSAPrivateKey, Path]
) -> AsyncIterator[Any]:
    application = create_app(production(data_dir, issuer_key[1]), database_url, run_worker=False)
    async with application.router.lifespan_context(application):
        yield application


async def test_production_cookies_are_secure_behind_a_plain_http_proxy(
    production_app: Any, issuer_key: tuple[rsa.RSAPrivateKey, Path]
) -> None:
    token = mint(issuer_key[0], pid=builders.national_id())
    transport = httpx.ASGITransport(app=production_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as b:
        page = await b.get("/signin")
        signin_cookie = next(c for c in page.headers.get_list("set-cookie") if c.startswith("corr_signin="))
        assert "Secure" in signin_cookie
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        response = await b.post(
            "/signin",
            data={"csrf": csrf.group(1), "kind": "token", "token": token},
            headers={"Cookie": f"corr_signin={page.cookies['corr_signin']}"},
        )
        assert response.status_code == 303
        session = next(c for c in response.headers.get_list("set-cookie") if c.startswith("corr_session="))
        assert "Secure" in session and "HttpOnly" in session


async def test_health_does_not_tell_why_the_database_is_down(production_app: Any) -> None:
    await production_app.state.services.pool.close()
    transport = httpx.ASGITransport(app=production_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as b:
        response = await b.get("/health")
    assert response.status_code == 503
    assert response.json() == {"status": "Unhealthy", "database": "unavailable"}
