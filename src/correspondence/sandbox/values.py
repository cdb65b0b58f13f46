"""The reserved values, one table for the adapters, the registry rows, the API and the docs.

None of them can belong to anyone real:
- e-mail addresses are under `.invalid`, a top-level domain that never resolves (RFC 2606);
- mobile numbers are from the Swedish regulator's (PTS) series for fiction, +46 70-174 06 05…99;
- organisation numbers start with 2 (Brønnøysund gives real ones 8 or 9 first) and pass mod-11;
- national identity numbers are synthetic ones in the style of Skatteetaten's Tenor test data,
  the month plus 80 (no real person is born in month 81), and pass both mod-11 controls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Outcome = Literal["delivered", "permanent-failure", "temporary-failure"]

EMAIL_DELIVERED = "delivered@sandbox.correspondence.invalid"
EMAIL_PERMANENT_FAILURE = "permanent-failure@sandbox.correspondence.invalid"
EMAIL_TEMPORARY_FAILURE = "temporary-failure@sandbox.correspondence.invalid"
SMS_DELIVERED = "+46701740605"
SMS_PERMANENT_FAILURE = "+46701740606"
SMS_TEMPORARY_FAILURE = "+46701740607"

EMAILS: dict[str, Outcome] = {
    EMAIL_DELIVERED: "delivered",
    EMAIL_PERMANENT_FAILURE: "permanent-failure",
    EMAIL_TEMPORARY_FAILURE: "temporary-failure",
}
MOBILES: dict[str, Outcome] = {
    SMS_DELIVERED: "delivered",
    SMS_PERMANENT_FAILURE: "permanent-failure",
    SMS_TEMPORARY_FAILURE: "temporary-failure",
}
DESCRIPTIONS: dict[Outcome, str] = {
    "delivered": "accepted at once (Email_Succeeded / SMS_Accepted)",
    "permanent-failure": "refused for good at the first attempt (Email_Failed / SMS_Failed)",
    "temporary-failure": "refused as a transient error at the first attempt, accepted at the retry",
}

ORG = "urn:altinn:organization:identifier-no:"
PERSON = "urn:altinn:person:identifier-no:"


@dataclass(frozen=True, slots=True)
class SandboxParty:
    number: str
    kind: Literal["organization", "person"]
    email: str | None
    mobile: str | None
    reserved: bool
    behaviour: str

    @property
    def urn(self) -> str:
        return (ORG if self.kind == "organization" else PERSON) + self.number


PARTIES: tuple[SandboxParty, ...] = (
    SandboxParty(
        "200000005",
        "organization",
        EMAIL_DELIVERED,
        SMS_DELIVERED,
        False,
        "contact points that are delivered",
    ),
    SandboxParty(
        "200000013",
        "organization",
        EMAIL_PERMANENT_FAILURE,
        SMS_PERMANENT_FAILURE,
        False,
        "contact points that fail permanently",
    ),
    SandboxParty(
        "200000021",
        "organization",
        EMAIL_TEMPORARY_FAILURE,
        SMS_TEMPORARY_FAILURE,
        False,
        "contact points that fail once, then are delivered",
    ),
    SandboxParty(
        "200000048",
        "organization",
        None,
        None,
        False,
        "no contact points (the 'reserved organisation': organisations cannot reserve themselves)",
    ),
    SandboxParty(
        "01819040180",
        "person",
        EMAIL_DELIVERED,
        SMS_DELIVERED,
        True,
        "reserved in the contact registry (KRR); notified at the delivered addresses with ignoreReservation",
    ),
    SandboxParty(
        "01819040261",
        "person",
        None,
        None,
        False,
        "no contact points",
    ),
)
