"""The sandbox's reserved values as a table (GET /ext/api/v1/sandbox, `correspondence sandbox show`)."""

from __future__ import annotations

from typing import Any

from correspondence.sandbox.values import DESCRIPTIONS, EMAILS, MOBILES, PARTIES


def describe(*, enabled: bool) -> dict[str, Any]:
    return {
        "enabled": enabled,
        "emails": [{"address": a, "outcome": o, "behaviour": DESCRIPTIONS[o]} for a, o in EMAILS.items()],
        "mobiles": [{"address": m, "outcome": o, "behaviour": DESCRIPTIONS[o]} for m, o in MOBILES.items()],
        "parties": [
            {
                "recipient": p.urn,
                "organizationNumber": p.number if p.kind == "organization" else None,
                "nationalIdentityNumber": p.number if p.kind == "person" else None,
                "emailAddress": p.email,
                "mobileNumber": p.mobile,
                "isReserved": p.reserved,
                "behaviour": p.behaviour,
            }
            for p in PARTIES
        ],
    }
