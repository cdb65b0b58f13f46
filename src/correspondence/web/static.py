"""The slice's few static files (stylesheet, a small script), served from the package.

Served by a route rather than a mount, so the slice stays one router to include; the set of names is
fixed at import, so no request can name a path outside the folder.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from fastapi.responses import Response

from correspondence.kit.errors import PlainError

FOLDER = Path(__file__).parent / "static"
_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
_FILES: dict[str, tuple[bytes, str]] = {
    p.name: (p.read_bytes(), _TYPES[p.suffix]) for p in FOLDER.iterdir() if p.suffix in _TYPES
}
# Appended to links (?v=…) so a changed file is fetched again.
VERSION = hashlib.sha256(b"".join(body for body, _ in sorted(_FILES.values()))).hexdigest()[:12]


def serve(name: str) -> Response:
    found = _FILES.get(name)
    if found is None:
        raise PlainError(404, "Not found.")
    body, media_type = found
    return Response(body, media_type=media_type)
