"""The official OpenAPI document of Altinn Correspondence API v1, vendored for the contract tests.

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
