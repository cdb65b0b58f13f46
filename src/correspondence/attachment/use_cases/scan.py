"""The malware scan of uploaded files (behaviour.md §3.4): UploadProcessing → Published, or
Failed "Malware scan failed: …" with every unsettled correspondence using the file Failed too."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from correspondence.adapters.blobs import BlobNotFound, BlobStore
from correspondence.adapters.scanner import MalwareScanner, ScanError
from correspondence.attachment import repository as repo
from correspondence.attachment.use_cases.lifecycle import (
    BYPASSED_SCAN,
    fail_attachments,
    publish_attachments,
)


async def scan_uploads(
    conn: asyncpg.Connection,
    *,
    blobs: BlobStore,
    scanner: MalwareScanner | None,
    ids: list[uuid.UUID],
    at: datetime,
) -> None:
    """Scan each file still awaiting its scan. A scanner that cannot be reached raises, so the
    job is retried; a file the scanner refuses (too large for it) fails permanently."""
    for attachment_id in ids:
        row = await repo.get(conn, attachment_id)
        if row is None or row["status"] != repo.UPLOAD_PROCESSING or not row["blob_key"]:
            continue  # purged meanwhile, or scanned already
        failure: str | None = None
        if scanner is None:  # the scanner was switched off after the upload
            verdict_text = BYPASSED_SCAN
        else:
            verdict_text = "Published"
            try:
                verdict = await scanner.scan(blobs.get(row["blob_key"]))
            except ScanError as exc:
                if not exc.permanent:
                    raise
                failure = f"Malware scan failed: {exc}"
            except BlobNotFound:
                failure = "Upload failed"
            else:
                if verdict.infected:
                    failure = f"Malware scan failed: {verdict.detail}"
        scanned_key = row["blob_key"]
        row = await repo.get(conn, attachment_id, lock=True)
        if row is None or row["status"] != repo.UPLOAD_PROCESSING or row["blob_key"] != scanned_key:
            continue  # purged, or failed and uploaded again, while it was scanned: not this verdict
        if failure is not None:
            await fail_attachments(conn, [row], failure, at)
        else:
            await publish_attachments(conn, [attachment_id], verdict_text, at)
