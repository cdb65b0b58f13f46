"""Bearer JWT validation against trusted issuers, and the built-in development issuer.

Only asymmetric algorithms matching the key type are accepted (never `none`, never HMAC), `exp`
is required, and the lifetime is checked with zero clock skew, as the reference does.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from correspondence.auth.caller import Caller, caller_from_claims
from correspondence.config import Settings, TrustedIssuer

_ALGORITHMS_BY_KTY = {
    "RSA": ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"],
    "EC": ["ES256", "ES384", "ES512"],
    "OKP": ["EdDSA"],
}


class InvalidToken(Exception):
    pass


def _create_key(key_path: Path) -> None:
    """A new key, unless another process (an API process of `serve --workers N`, a `token`
    command) creates one at the same moment: the first one linked into place wins, and every
    process then reads that one, so all of them sign and verify with the same key."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    tmp = key_path.with_name(f".{key_path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    try:
        os.link(tmp, key_path)  # fails when the key exists: never replaces one in use
    except FileExistsError:
        pass
    finally:
        tmp.unlink()


class DevIssuer:
    """An RS256 issuer whose private key lives in the data directory (development mode only)."""

    def __init__(self, issuer: str, key_dir: Path, lifetime_seconds: int) -> None:
        self.issuer = issuer
        self.lifetime_seconds = lifetime_seconds
        key_dir.mkdir(parents=True, exist_ok=True)
        key_path = key_dir / "dev-issuer-key.pem"
        if not key_path.exists():
            _create_key(key_path)
        loaded = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        assert isinstance(loaded, rsa.RSAPrivateKey)
        self._key = loaded
        public_jwk = json.loads(RSAAlgorithm.to_jwk(self._key.public_key()))
        self.kid = jwt.PyJWK(public_jwk).key_id or _thumb(public_jwk)
        public_jwk.update({"kid": self.kid, "use": "sig", "alg": "RS256"})
        self._public_jwk = public_jwk

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self._public_jwk]}

    def public_key(self) -> Any:
        return self._key.public_key()

    def mint(
        self,
        *,
        scope: str,
        org: str | None = None,
        pid: str | None = None,
        auth_level: int = 3,
        lifetime_seconds: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "iat": now,
            "nbf": now,
            "exp": now + (lifetime_seconds or self.lifetime_seconds),
            "scope": scope,
            "urn:altinn:authlevel": auth_level,
        }
        if org is not None:
            claims["consumer"] = {"authority": "iso6523-actorid-upis", "ID": f"0192:{org}"}
            claims["urn:altinn:orgNumber"] = org
        if pid is not None:
            claims["pid"] = pid
        if extra:
            claims.update(extra)
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": self.kid})


def _thumb(jwk: dict[str, Any]) -> str:
    import base64
    import hashlib

    canonical = json.dumps({k: jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"))
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


@dataclass
class _IssuerKeys:
    config: TrustedIssuer | None
    kind: Literal["altinn", "maskinporten"]
    keys: dict[str | None, jwt.PyJWK] = field(default_factory=dict)
    fetched_at: float = 0.0


class TokenValidator:
    JWKS_TTL = 600.0
    JWKS_MIN_REFRESH = 30.0
    CACHE_MAX = 50_000

    def __init__(self, settings: Settings, dev_issuer: DevIssuer | None) -> None:
        self._issuers: dict[str, _IssuerKeys] = {}
        for trusted in settings.trusted_issuers:
            self._issuers[trusted.issuer] = _IssuerKeys(trusted, trusted.kind)
        if dev_issuer is not None:
            dev_key = jwt.PyJWK(dev_issuer.jwks()["keys"][0])
            self._issuers[dev_issuer.issuer] = _IssuerKeys(
                None, "altinn", {dev_issuer.kid: dev_key, None: dev_key}, fetched_at=float("inf")
            )
        # Verified tokens, until they expire: service owners reuse one token for many requests, and
        # a recipient's session its token. Keyed by a 128-bit digest of the token rather than the
        # token itself (~1 kB): with 50,000 entries that is tens of MB less for the server to hold.
        self._cache: dict[bytes, Caller] = {}
        self._scope_sets: dict[frozenset[str], frozenset[str]] = {}

    async def validate(self, token: str) -> Caller:
        cache_key = hashlib.blake2b(token.encode("utf-8", "surrogatepass"), digest_size=16).digest()
        cached = self._cache.get(cache_key)
        if cached is not None:
            if cached.expires > time.time():
                return cached
            self._cache.pop(cache_key, None)
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise InvalidToken("malformed token") from exc
        issuer = unverified.get("iss")
        entry = self._issuers.get(issuer) if isinstance(issuer, str) else None
        if entry is None:
            raise InvalidToken("untrusted issuer")
        key = await self._key_for(entry, header.get("kid"))
        algorithms = _ALGORITHMS_BY_KTY.get(key.key_type or "", [])
        if header.get("alg") not in algorithms:
            raise InvalidToken("algorithm not allowed for this key")
        audience = entry.config.audience if entry.config is not None else None
        try:
            claims = jwt.decode(
                token,
                key.key,
                algorithms=algorithms,
                issuer=issuer,
                audience=audience,
                leeway=0,
                options={
                    "require": ["exp", "iss", "aud"] if audience else ["exp", "iss"],
                    "verify_aud": audience is not None,
                },
            )
        except jwt.PyJWTError as exc:
            raise InvalidToken(str(exc)) from exc
        caller = self._shared(caller_from_claims(claims, entry.kind))
        if len(self._cache) >= self.CACHE_MAX:
            self._cache.clear()
        self._cache[cache_key] = caller
        return caller

    def _shared(self, caller: Caller) -> Caller:
        """The caller with its issuer and scope set shared with earlier callers' (a token's own
        copies would stay in the cache with it); the issuer is a trusted one, the scope sets few."""
        scope_set = self._scope_sets.get(caller.scopes)
        if scope_set is None:
            if len(self._scope_sets) >= 1000:
                self._scope_sets.clear()
            scope_set = self._scope_sets[caller.scopes] = caller.scopes
        return dataclasses.replace(caller, issuer=sys.intern(caller.issuer), scopes=scope_set)

    async def _key_for(self, entry: _IssuerKeys, kid: Any) -> jwt.PyJWK:
        key = entry.keys.get(kid)
        stale = time.monotonic() - entry.fetched_at > self.JWKS_TTL
        may_refresh = time.monotonic() - entry.fetched_at > self.JWKS_MIN_REFRESH
        if entry.config is not None and (stale or (key is None and may_refresh)):
            await self._load(entry)
            key = entry.keys.get(kid)
        if key is None and kid is None and len(entry.keys) == 1:
            key = next(iter(entry.keys.values()))
        if key is None:
            raise InvalidToken("unknown signing key")
        return key

    async def _load(self, entry: _IssuerKeys) -> None:
        config = entry.config
        assert config is not None
        try:
            if config.jwks_url is not None:
                async with httpx.AsyncClient(timeout=5.0) as client:
                    response = await client.get(config.jwks_url)
                    response.raise_for_status()
                    document = response.json()
            else:
                assert config.key_file is not None
                document = _read_key_file(config.key_file)
        except (httpx.HTTPError, OSError, ValueError) as exc:
            entry.fetched_at = time.monotonic()
            raise InvalidToken(f"could not load issuer keys: {exc}") from exc
        keys: dict[str | None, jwt.PyJWK] = {}
        for jwk in document.get("keys", []):
            if jwk.get("kty") == "oct":
                continue  # symmetric keys are never trusted
            try:
                parsed = jwt.PyJWK(jwk)
            except jwt.PyJWTError:
                continue
            keys[parsed.key_id] = parsed
        entry.keys = keys
        entry.fetched_at = time.monotonic()


def _read_key_file(path: Path) -> dict[str, Any]:
    text = path.read_text()
    if "BEGIN" in text:
        public = serialization.load_pem_public_key(text.encode())
        if isinstance(public, rsa.RSAPublicKey):
            jwk = json.loads(RSAAlgorithm.to_jwk(public))
        else:
            from jwt.algorithms import ECAlgorithm

            jwk = json.loads(ECAlgorithm.to_jwk(public))  # type: ignore[arg-type]
        return {"keys": [jwk]}
    document: dict[str, Any] = json.loads(text)
    return document
