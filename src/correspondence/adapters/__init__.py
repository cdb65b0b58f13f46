"""Ports to external systems and the one place that picks their adapters from the configuration."""

from __future__ import annotations

from correspondence.adapters.blobs import BlobStore, FileBlobStore, S3BlobStore
from correspondence.adapters.scanner import ClamdScanner, MalwareScanner
from correspondence.config import Settings


async def open_blob_store(settings: Settings) -> BlobStore:
    """Async because the S3 store must be built inside the running event loop."""
    if settings.storage == "s3":
        assert settings.s3_bucket is not None  # checked by Settings
        return S3BlobStore(
            settings.s3_bucket,
            endpoint=settings.s3_endpoint,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key,
            region=settings.s3_region,
            prefix=settings.s3_prefix,
        )
    return FileBlobStore(settings.blob_dir)


def open_scanner(settings: Settings) -> MalwareScanner | None:
    if not settings.clamd_address:
        return None
    return ClamdScanner(settings.clamd_address, timeout=settings.clamd_timeout_seconds)
