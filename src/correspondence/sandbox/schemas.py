"""Wire models of the sandbox slice (ours: under /ext/api/v1, camelCase like the rest)."""

from __future__ import annotations

from pydantic import BaseModel


class SandboxAddressExt(BaseModel):
    address: str  # an e-mail address or a mobile number (E.164)
    outcome: str  # delivered | permanent-failure | temporary-failure
    behaviour: str


class SandboxPartyExt(BaseModel):
    recipient: str  # the party's URN, as Initialize takes it
    organizationNumber: str | None
    nationalIdentityNumber: str | None
    emailAddress: str | None
    mobileNumber: str | None
    isReserved: bool
    behaviour: str


class SandboxExt(BaseModel):
    enabled: bool  # false: these values are ordinary values here
    emails: list[SandboxAddressExt]
    mobiles: list[SandboxAddressExt]
    parties: list[SandboxPartyExt]
