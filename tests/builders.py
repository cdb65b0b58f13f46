"""Builders for payloads, identifiers and tokens used across the tests."""

from __future__ import annotations

import itertools
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

_W1 = (3, 7, 6, 1, 8, 9, 4, 5, 2)
_W2 = (5, 4, 3, 2, 7, 6, 5, 4, 3, 2)
_rng = random.Random(20261127)
_org_counter = itertools.count(310_000_001)


def _control(digits: str, weights: tuple[int, ...]) -> int | None:
    c = 11 - sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11
    return 0 if c == 11 else (None if c == 10 else c)


def national_id() -> str:
    """A fresh valid Norwegian national identity number (mod-11)."""
    while True:
        day, month, year = _rng.randint(1, 28), _rng.randint(1, 12), _rng.randint(0, 99)
        base = f"{day:02d}{month:02d}{year:02d}{_rng.randint(0, 999):03d}"
        k1 = _control(base, _W1)
        if k1 is None:
            continue
        k2 = _control(base + str(k1), _W2)
        if k2 is None:
            continue
        return base + str(k1) + str(k2)


def org_number() -> str:
    """A fresh 9-digit organisation number (no checksum is required by the reference)."""
    return str(next(_org_counter))


def iso(dt: datetime) -> str:
    return dt.isoformat()


def future(days: float = 30) -> str:
    return iso(datetime.now(UTC) + timedelta(days=days))


def notification(**overrides: Any) -> dict[str, Any]:
    """The real service's load-test notification: template 0, channel 3, reminder, custom texts."""
    body: dict[str, Any] = {
        "notificationTemplate": 0,
        "emailSubject": "Melding",
        "emailBody": "Du har mottatt en melding",
        "smsBody": "Du har mottatt en melding",
        "sendReminder": True,
        "reminderEmailSubject": "Påminnelse",
        "reminderEmailBody": "Påminnelse om melding",
        "reminderSmsBody": "Påminnelse om melding",
        "notificationChannel": 3,
    }
    body.update(overrides)
    return body


def initialize_body(
    resource_id: str,
    recipients: list[str],
    *,
    notification_block: dict[str, Any] | None = None,
    idempotent_key: str | None = None,
    **correspondence: Any,
) -> dict[str, Any]:
    corr: dict[str, Any] = {
        "resourceId": resource_id,
        "sendersReference": "ref-" + uuid.uuid4().hex[:8],
        "content": {
            "language": "nb",
            "messageTitle": "Meldingstittel",
            "messageSummary": "Ett sammendrag for meldingen",
            "messageBody": "# meldingsteksten. Som kan være plain text eller markdown ",
        },
    }
    content = correspondence.pop("content", None)
    if content:
        corr["content"].update(content)
    corr.update(correspondence)
    if notification_block is not None:
        corr["notification"] = notification_block
    body: dict[str, Any] = {"correspondence": corr, "recipients": recipients}
    if idempotent_key is not None:
        body["idempotentKey"] = idempotent_key
    return body
