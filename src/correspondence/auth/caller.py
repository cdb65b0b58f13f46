"""Who is calling, derived from a validated token (api.md §2.5)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from correspondence.auth import scopes
from correspondence.kit.text import is_valid_org_number


@dataclass(frozen=True, slots=True)
class Caller:
    issuer: str
    kind: Literal["altinn", "maskinporten"]
    scopes: frozenset[str]
    org: str | None  # 9-digit organisation number, when the token names one
    pid: str | None  # national identity number of a person, when the token names one
    expires: float
    # Authentication level 0-4 (api.md §2.4): reading as recipient needs the resource's minimum.
    auth_level: int = 0

    @property
    def is_sender(self) -> bool:
        """Sender policy (api.md §2.3): write scope; raw Maskinporten tokens also need serviceowner."""
        if scopes.WRITE not in self.scopes:
            return False
        return self.kind == "altinn" or scopes.SERVICE_OWNER in self.scopes


def _after_last_colon(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    return value.rsplit(":", 1)[-1]


# ID-porten's acr values as levels (api.md §2.4), and the legacy ones.
ACR_LEVELS = {
    "idporten-loa-high": 4,
    "idporten-loa-substantial": 3,
    "idporten-loa-low": 2,
    "selfregistered-email": 0,
    "level4": 4,
    "level3": 3,
}


def auth_level_of(claims: dict[str, Any]) -> int:
    """`urn:altinn:authlevel` (an integer or a numeric string), else ID-porten's `acr`; else 0."""
    raw = claims.get("urn:altinn:authlevel")
    if isinstance(raw, str) and raw.strip().isascii() and raw.strip().isdigit():
        raw = int(raw.strip())
    if isinstance(raw, int) and not isinstance(raw, bool):
        return max(0, min(raw, 4))
    acr = claims.get("acr")
    if isinstance(acr, str):
        return ACR_LEVELS.get(acr.strip().lower(), 0)
    return 0


def caller_from_claims(claims: dict[str, Any], kind: Literal["altinn", "maskinporten"]) -> Caller:
    raw_scope = claims.get("scope", "")
    scope_set = frozenset(raw_scope.split()) if isinstance(raw_scope, str) else frozenset()
    org: str | None = None
    details = claims.get("authorization_details")
    if isinstance(details, list) and details:
        details = details[0]
    if isinstance(details, dict):
        system_org = details.get("systemuser_org")
        if isinstance(system_org, dict):
            org = _after_last_colon(system_org.get("ID"))
    if org is None:
        org = _after_last_colon(claims.get("urn:altinn:orgNumber"))
    if org is None:
        consumer = claims.get("consumer")
        if isinstance(consumer, dict):
            org = _after_last_colon(consumer.get("ID"))
    if org is not None and not is_valid_org_number(org):
        org = None
    pid = claims.get("pid")
    return Caller(
        issuer=str(claims.get("iss", "")),
        kind=kind,
        scopes=scope_set,
        org=org,
        pid=pid if isinstance(pid, str) and pid else None,
        expires=float(claims["exp"]),
        auth_level=auth_level_of(claims),
    )
