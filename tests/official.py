"""The official OpenAPI document of Altinn Correspondence API v1, vendored for the contract tests, and
that document with the members the real service has today (`current_document`).

`tests/reference/altinn-correspondence-v1.json` is an exact copy of Altinn/altinn-studio-docs
`static/swagger/altinn-correspondence-v1.json` (commit 02a872b11f5f2b1f5f02391362e5f927ba0b2adc).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OFFICIAL_DOCUMENT = Path(__file__).parent / "reference" / "altinn-correspondence-v1.json"


def official_document() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(OFFICIAL_DOCUMENT.read_text(encoding="utf-8"))
    return document


_COMPONENTS = "#/components/schemas/"
_NULLABLE_DATE_TIME = {"type": "string", "format": "date-time", "nullable": True}
_NULLABLE_TEXT = {"type": "string", "nullable": True}
_DETAILS_LIST = {"type": "array", "items": {"$ref": _COMPONENTS + "NotificationDetailsExt"}, "nullable": True}

# Members the service has today that the official document lacks (api.md §6.6, §6.7, §6.9-6.11 win
# over it: add what it lacks, never drop what it has), by component.
CURRENT_MEMBERS: dict[str, dict[str, Any]] = {
    **{
        name: {
            "read": _NULLABLE_DATE_TIME,
            "isConfidential": {"type": "boolean"},
            "allowForwarding": {"type": "boolean"},
            "altinn2CorrespondenceId": {"type": "integer", "format": "int32", "nullable": True},
        }
        for name in ("CorrespondenceOverviewExt", "CorrespondenceDetailsExt")
    },
    "NotificationStatusDetailsExt": {"emails": _DETAILS_LIST, "smses": _DETAILS_LIST},
    **{
        name: {"displayName": _NULLABLE_TEXT}
        for name in ("AttachmentOverviewExt", "AttachmentDetailsExt", "CorrespondenceAttachmentExt")
    },
}
SYSTEM_LABEL = {"type": "string", "enum": ["Default", "Bin", "Archive", "MarkedAsUnopened", "Sent"]}


def current_document() -> dict[str, Any]:
    """The official document with the members the service has today (CURRENT_MEMBERS, details'
    `systemLabel`), and `email`/`sms` of a notification's status details nullable, as the service
    writes a channel without addresses (api.md §6.7)."""
    document = official_document()
    components = document["components"]["schemas"]
    for name, members in CURRENT_MEMBERS.items():
        components[name]["properties"].update(members)
    components["CorrespondenceDetailsExt"]["properties"]["systemLabel"] = SYSTEM_LABEL
    details = components["NotificationStatusDetailsExt"]["properties"]
    for channel in ("email", "sms"):
        details[channel] = {"anyOf": [details[channel], {"type": "null"}]}
    return document
