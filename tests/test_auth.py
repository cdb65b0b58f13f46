"""401 for missing, malformed, expired or untrusted tokens; 403 for missing scope or ownership."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from correspondence.auth.tokens import DevIssuer
from tests import builders
from tests.conftest import INITIALIZE, Sender


def body(sender: Sender) -> dict[str, object]:
    return builders.initialize_body(sender.resource_id, [builders.national_id()])


async def call(client: httpx.AsyncClient, sender: Sender, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return await client.post(INITIALIZE, json=body(sender), headers=headers)


async def test_missing_token_is_401(client: httpx.AsyncClient, sender: Sender) -> None:
    response = await call(client, sender, None)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_malformed_token_is_401(client: httpx.AsyncClient, sender: Sender) -> None:
    assert (await call(client, sender, "not-a-jwt")).status_code == 401


async def test_expired_token_is_401(client: httpx.AsyncClient, sender: Sender, dev_issuer: DevIssuer) -> None:
    token = dev_issuer.mint(
        scope="altinn:correspondence.write", org=sender.org, extra={"exp": int(time.time()) - 1}
    )
    assert (await call(client, sender, token)).status_code == 401


async def test_token_without_exp_is_401(
    client: httpx.AsyncClient, sender: Sender, dev_issuer: DevIssuer
) -> None:
    claims = jwt.decode(
        dev_issuer.mint(scope="altinn:correspondence.write", org=sender.org),
        options={"verify_signature": False},
    )
    del claims["exp"]
    token = jwt.encode(claims, dev_issuer._key, algorithm="RS256", headers={"kid": dev_issuer.kid})
    assert (await call(client, sender, token)).status_code == 401


async def test_token_signed_by_another_key_is_401(
    client: httpx.AsyncClient, sender: Sender, dev_issuer: DevIssuer
) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    claims = {
        "iss": dev_issuer.issuer,
        "exp": int(time.time()) + 60,
        "scope": "altinn:correspondence.write",
        "urn:altinn:orgNumber": sender.org,
    }
    token = jwt.encode(claims, other, algorithm="RS256", headers={"kid": dev_issuer.kid})
    assert (await call(client, sender, token)).status_code == 401


async def test_untrusted_issuer_is_401(client: httpx.AsyncClient, sender: Sender) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    claims = {
        "iss": "https://evil.example/",
        "exp": int(time.time()) + 60,
        "scope": "altinn:correspondence.write",
        "urn:altinn:orgNumber": sender.org,
    }
    assert (await call(client, sender, jwt.encode(claims, key, algorithm="RS256"))).status_code == 401


async def test_unsigned_and_hmac_tokens_are_401(
    client: httpx.AsyncClient, sender: Sender, dev_issuer: DevIssuer
) -> None:
    claims = {
        "iss": dev_issuer.issuer,
        "exp": int(time.time()) + 60,
        "scope": "altinn:correspondence.write",
        "urn:altinn:orgNumber": sender.org,
    }
    unsigned = jwt.encode(claims, None, algorithm="none")
    assert (await call(client, sender, unsigned)).status_code == 401
    # HS256 keyed with the issuer's public key: the classic algorithm-confusion forgery.
    public_pem = dev_issuer.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": dev_issuer.kid}).encode())
    payload = _b64(json.dumps(claims).encode())
    signature = _b64(hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest())
    assert (await call(client, sender, f"{header}.{payload}.{signature}")).status_code == 401


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def test_token_without_write_scope_is_403(
    client: httpx.AsyncClient, sender: Sender, dev_issuer: DevIssuer
) -> None:
    token = dev_issuer.mint(scope="altinn:correspondence.read", org=sender.org)
    response = await call(client, sender, token)
    assert response.status_code == 403
    assert response.json()["status"] == 403


async def test_organisation_that_does_not_own_the_resource_is_403(
    client: httpx.AsyncClient, sender: Sender, dev_issuer: DevIssuer
) -> None:
    token = dev_issuer.mint(scope="altinn:correspondence.write", org=builders.org_number())
    response = await call(client, sender, token)
    assert response.status_code == 403
    problem = response.json()
    assert problem["errorCode"] == 4001 and problem["code"] == "CORR-04001"


async def test_person_token_with_write_scope_cannot_send(
    client: httpx.AsyncClient, sender: Sender, dev_issuer: DevIssuer
) -> None:
    token = dev_issuer.mint(scope="altinn:correspondence.write", pid=builders.national_id())
    assert (await call(client, sender, token)).status_code == 403


async def test_other_organisation_cannot_see_the_correspondence(
    client: httpx.AsyncClient, sender: Sender, dev_issuer: DevIssuer
) -> None:
    created = await client.post(INITIALIZE, json=body(sender), headers=sender.headers)
    cid = created.json()["correspondences"][0]["correspondenceId"]
    stranger = dev_issuer.mint(scope="altinn:correspondence.write", org=builders.org_number())
    for path in (f"{INITIALIZE}/{cid}", f"{INITIALIZE}/{cid}/details"):
        response = await client.get(path, headers={"Authorization": f"Bearer {stranger}"})
        assert response.status_code == 403
        assert "messageTitle" not in response.text


async def test_jwks_of_the_development_issuer_is_served(
    client: httpx.AsyncClient, dev_issuer: DevIssuer
) -> None:
    response = await client.get("/authentication/api/v1/openid/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.json()["keys"][0]["kid"] == dev_issuer.kid
