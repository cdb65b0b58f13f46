"""The validator's cache of verified tokens (auth/tokens.py): keyed by a digest of the token, each
token still gets its own caller, and callers share their issuer and scope set."""

from __future__ import annotations

import pytest

from correspondence.auth.tokens import DevIssuer, InvalidToken, TokenValidator
from correspondence.config import Settings

READ = "altinn:correspondence.read"


async def test_each_token_gets_its_own_cached_caller(settings: Settings, dev_issuer: DevIssuer) -> None:
    validator = TokenValidator(settings, dev_issuer)
    a = dev_issuer.mint(scope=READ, pid="11058831400")
    b = dev_issuer.mint(scope=READ, pid="02056401440", auth_level=2)
    first, again, other = (
        await validator.validate(a),
        await validator.validate(a),
        await validator.validate(b),
    )
    assert first is again  # from the cache
    assert (first.pid, first.auth_level) == ("11058831400", 3)
    assert (other.pid, other.auth_level) == ("02056401440", 2)
    assert other.scopes is first.scopes and other.issuer is first.issuer  # shared, not one per token


async def test_a_token_changed_after_it_was_cached_is_verified_again(
    settings: Settings, dev_issuer: DevIssuer
) -> None:
    validator = TokenValidator(settings, dev_issuer)
    token = dev_issuer.mint(scope=READ, pid="11058831400")
    await validator.validate(token)
    header, payload, signature = token.split(".")
    tampered = ".".join([header, payload, signature[:-4] + ("AAAA" if signature[-4:] != "AAAA" else "BBBB")])
    with pytest.raises(InvalidToken):
        await validator.validate(tampered)
