"""Blob storage: a port with two adapters, the local file system (default) and any S3-compatible
store (through obstore's S3Store).

Writes are atomic. The file store writes into a temporary file under `<root>/.incoming` and
renames it into place only when the whole stream has been written and synced; the S3 store uses a
multipart upload, which S3 commits (makes visible) only on completion and which is aborted when
the stream fails. Either way a stream that raises — the client went away, the checksum is wrong,
the storage failed — leaves no object behind, and the exception reaches the caller unchanged.

A process killed mid-write cannot clean up: it leaves a temporary file, or an incomplete multipart
upload (stored parts no object shows). `sweep_incomplete` removes those of writers long silent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger("correspondence.blobs")

READ_CHUNK = 1024 * 1024
_WRITE_BATCH = 1024 * 1024
_MAX_IOV = 512  # well under IOV_MAX (1024 on Linux)
# Start writing to disk as we go (16 MiB at a time), so the final fsync has little left to do: the
# kernel would otherwise hold a whole file in the page cache until then.
_FLUSH_EVERY = 16 * 1024 * 1024
# A file store writer touches its temporary file this often, bytes arriving or not, so the
# sweeper (which takes files untouched for 10 minutes) never takes a live writer's file.
TOUCH_SECONDS = 60.0

InUse = Callable[[list[str]], Awaitable[set[str]]]


class BlobError(Exception):
    """The storage failed while reading or writing."""


class BlobLocationError(BlobError):
    """The storage location itself is unusable (missing bucket, directory that cannot be made)."""


class BlobNotFound(BlobError):
    pass


class BlobStore(Protocol):
    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        """Store the stream under `key` atomically and return its size."""
        ...

    def get(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Bytes [start, end) of the object (end None: to its end). Raises BlobNotFound."""
        ...

    async def size(self, key: str) -> int | None:
        """The object's size, or None when there is none."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object; removing a missing object is not an error."""
        ...

    async def sweep_incomplete(self, *, older_than: datetime, under: str, in_use: InUse) -> int:
        """Remove what writers killed mid-write left behind outside any object (a temporary
        file, an incomplete multipart upload) for keys starting with `under`, when it was last
        written (file) or begun (multipart upload) before `older_than` and `in_use(keys)` does
        not name its key as still being written. Several sweepers may run at once. Returns how
        many were removed."""
        ...


async def _batched(chunks: AsyncIterable[bytes], size: int) -> AsyncIterator[list[bytes]]:
    """Group small network chunks into batches of about `size` bytes (fewer thread hops; written
    with one writev, without copying them into one buffer first)."""
    parts: list[bytes] = []
    held = 0
    async for chunk in chunks:
        if not chunk:
            continue
        parts.append(chunk)
        held += len(chunk)
        if held >= size or len(parts) >= _MAX_IOV:
            yield parts
            parts, held = [], 0
    if parts:
        yield parts


class FileBlobStore:
    """Objects are files under `root`; keys are relative paths made by the service."""

    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self.root = root.resolve()
        self.incoming = self.root / ".incoming"
        self._fsync = fsync

    def path(self, key: str) -> Path:
        parts = key.split("/")
        if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"invalid blob key {key!r}")
        return self.root.joinpath(*parts)

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        final = self.path(key)
        try:
            self.incoming.mkdir(parents=True, exist_ok=True)
            final.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BlobLocationError(f"cannot use {self.root}: {exc}") from exc
        temp = self.incoming / f"{uuid.uuid4().hex}.part"
        loop = asyncio.get_running_loop()
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        except OSError as exc:
            raise BlobLocationError(f"cannot write under {self.incoming}: {exc}") from exc
        size = 0
        flushed = 0
        pending: asyncio.Future[None] | None = None
        committed = False
        toucher = asyncio.create_task(_touch_every(temp, TOUCH_SECONDS))
        try:
            # Double buffering: the next block is received while the previous one is written.
            # Exceptions of the stream itself pass through unchanged; only our file I/O is wrapped.
            async for block in _batched(chunks, _WRITE_BATCH):
                if pending is not None:
                    await _io(pending, key)
                size += sum(len(part) for part in block)
                flush_from = -1
                if self._fsync and size - flushed >= _FLUSH_EVERY:
                    flush_from, flushed = flushed, size
                pending = loop.run_in_executor(None, _write_all, fd, block, flush_from, size)
            if pending is not None:
                await _io(pending, key)
                pending = None
            await _io(loop.run_in_executor(None, self._commit, fd, temp, final), key)
            committed = True
            return size
        finally:
            toucher.cancel()
            if pending is not None:
                # Never leave a write running against a closed descriptor.
                with contextlib.suppress(BaseException):
                    await asyncio.shield(pending)
            with contextlib.suppress(OSError):
                os.close(fd)
            if not committed:
                with contextlib.suppress(OSError):
                    temp.unlink()

    def _commit(self, fd: int, temp: Path, final: Path) -> None:
        if self._fsync:
            os.fsync(fd)
        os.replace(temp, final)
        if self._fsync:
            dir_fd = os.open(final.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)

    async def get(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        try:
            fd = os.open(self.path(key), os.O_RDONLY)
        except FileNotFoundError:
            raise BlobNotFound(key) from None
        except OSError as exc:
            raise BlobError(f"reading {key} failed: {exc}") from exc
        try:
            stop = os.fstat(fd).st_size if end is None else end
            position = start
            # Read-ahead of one block: the next read runs while the current block is sent.
            ahead: asyncio.Future[bytes] | None = None
            if position < stop:
                ahead = loop.run_in_executor(None, os.pread, fd, min(READ_CHUNK, stop - position), position)
            while ahead is not None:
                block = await ahead
                ahead = None
                if not block:
                    break
                position += len(block)
                if position < stop:
                    ahead = loop.run_in_executor(
                        None, os.pread, fd, min(READ_CHUNK, stop - position), position
                    )
                yield block
        finally:
            if ahead is not None:
                with contextlib.suppress(BaseException):
                    await asyncio.shield(ahead)
            os.close(fd)

    async def size(self, key: str) -> int | None:
        try:
            return os.stat(self.path(key)).st_size
        except FileNotFoundError:
            return None

    async def delete(self, key: str) -> None:
        try:
            self.path(key).unlink(missing_ok=True)
        except OSError as exc:
            raise BlobError(f"deleting {key} failed: {exc}") from exc

    async def sweep_incomplete(self, *, older_than: datetime, under: str, in_use: InUse) -> int:
        """Temporary files under `.incoming` untouched since `older_than` (a live writer touches
        its file every TOUCH_SECONDS). They carry no key, so `under` and `in_use` do not apply."""
        return await asyncio.get_running_loop().run_in_executor(
            None, _delete_untouched, self.incoming, older_than.timestamp()
        )


def _delete_untouched(directory: Path, before: float) -> int:
    deleted = 0
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return 0
    except OSError as exc:
        raise BlobError(f"listing {directory} failed: {exc}") from exc
    for entry in entries:
        if not entry.name.endswith(".part"):
            continue
        try:
            if entry.stat(follow_symlinks=False).st_mtime >= before:
                continue
            os.unlink(entry.path)
        except FileNotFoundError:
            continue  # its writer finished, or another sweeper took it
        except OSError as exc:
            raise BlobError(f"deleting {entry.path} failed: {exc}") from exc
        deleted += 1
    if deleted:
        log.info("deleted %s temporary files of writers killed mid-upload", deleted)
    return deleted


async def _touch_every(path: Path, seconds: float) -> None:
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(seconds)
        with contextlib.suppress(OSError):
            await loop.run_in_executor(None, os.utime, path)


async def _io(future: asyncio.Future[None], key: str) -> None:
    try:
        await future
    except OSError as exc:
        raise BlobError(f"writing {key} failed: {exc}") from exc


def _write_all(fd: int, block: list[bytes], flush_from: int, end: int) -> None:
    written = os.writev(fd, block)
    total = sum(len(part) for part in block)
    if written < total:  # a short write: finish it piece by piece
        view = memoryview(b"".join(block))[written:]
        while view:
            view = view[os.write(fd, view) :]
    if flush_from >= 0:
        if hasattr(os, "posix_fadvise"):
            # Linux: start writing [flush_from, end) back without waiting for it (and let the
            # cache drop what is already on disk); durability comes from the fsync at commit.
            os.posix_fadvise(fd, flush_from, end - flush_from, os.POSIX_FADV_DONTNEED)
        else:
            os.fdatasync(fd)


class S3BlobStore:
    """Objects in an S3-compatible bucket (AWS, MinIO, Ceph, moto). Build it inside the running
    event loop: an obstore store created at import time aborted the process at exit."""

    PART_SIZE = 8 * 1024 * 1024
    PARTS_IN_FLIGHT = 2  # memory held per upload ≈ PART_SIZE × (PARTS_IN_FLIGHT + 1)

    def __init__(
        self,
        bucket: str,
        *,
        endpoint: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        region: str = "us-east-1",
        prefix: str = "",
        retry_config: dict[str, Any] | None = None,
    ) -> None:
        from obstore.store import S3Store

        asyncio.get_running_loop()  # fail loudly when built outside the event loop
        config: dict[str, Any] = {"region": region}
        if endpoint:
            config["endpoint"] = endpoint
        if access_key_id:
            config["access_key_id"] = access_key_id
        if secret_access_key:
            config["secret_access_key"] = secret_access_key
        client_options = {"allow_http": True} if endpoint and endpoint.startswith("http://") else None
        self._store = S3Store(
            bucket,
            client_options=client_options,  # type: ignore[arg-type]
            retry_config=retry_config,  # type: ignore[arg-type]
            **config,
        )
        self._prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self._bucket, self._endpoint, self._region = bucket, endpoint, region
        self._keys = (access_key_id, secret_access_key)
        self._told_no_credentials = False

    def _key(self, key: str) -> str:
        return self._prefix + key

    async def put(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        import obstore
        from obstore.exceptions import BaseError, NotFoundError

        size = 0

        async def counted() -> AsyncIterator[bytes]:
            nonlocal size
            async for chunk in chunks:
                size += len(chunk)
                yield chunk

        try:
            await obstore.put_async(
                self._store,
                self._key(key),
                counted(),
                use_multipart=True,
                chunk_size=self.PART_SIZE,
                max_concurrency=self.PARTS_IN_FLIGHT,
            )
        except (NotFoundError, FileNotFoundError) as exc:
            if "NoSuchUpload" in str(exc):  # the sweeper aborted it, taking its writer for dead
                raise BlobError(f"writing {key} failed, its upload was aborted: {exc}") from exc
            raise BlobLocationError(f"the bucket is not there: {exc}") from exc
        except BaseError as exc:
            raise BlobError(f"writing {key} failed: {exc}") from exc
        return size

    async def get(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        import obstore
        from obstore.exceptions import BaseError, NotFoundError

        options: dict[str, Any] = {}
        if end is not None:
            if end <= start:
                return
            options["range"] = (start, end)
        elif start > 0:
            options["range"] = {"offset": start}
        try:
            response = await obstore.get_async(self._store, self._key(key), options=options or None)  # type: ignore[arg-type]
            async for chunk in response.stream(min_chunk_size=READ_CHUNK):
                yield bytes(chunk)
        except (NotFoundError, FileNotFoundError):
            raise BlobNotFound(key) from None
        except BaseError as exc:
            raise BlobError(f"reading {key} failed: {exc}") from exc

    async def size(self, key: str) -> int | None:
        import obstore
        from obstore.exceptions import BaseError, NotFoundError

        try:
            meta = await obstore.head_async(self._store, self._key(key))
        except (NotFoundError, FileNotFoundError):
            return None
        except BaseError as exc:
            raise BlobError(f"reading {key} failed: {exc}") from exc
        return int(meta["size"])

    async def delete(self, key: str) -> None:
        import obstore
        from obstore.exceptions import BaseError, NotFoundError

        try:
            await obstore.delete_async(self._store, self._key(key))
        except (NotFoundError, FileNotFoundError):
            return
        except BaseError as exc:
            raise BlobError(f"deleting {key} failed: {exc}") from exc

    async def sweep_incomplete(self, *, older_than: datetime, under: str, in_use: InUse) -> int:
        """Abort the incomplete multipart uploads begun before `older_than` whose key has no live
        writer. Needs keys (configured, or AWS_* variables): without them the bucket's lifecycle
        rule (AbortIncompleteMultipartUpload) is left to do it."""
        from correspondence.adapters.s3_uploads import Credentials, MultipartUploads, S3RequestError

        credentials = Credentials.find(*self._keys)
        if credentials is None:
            if not self._told_no_credentials:
                self._told_no_credentials = True
                log.warning(
                    "no S3 keys (configured or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY): incomplete"
                    " multipart uploads of killed writers are left to the bucket's lifecycle rule"
                )
            return 0
        uploads = MultipartUploads(
            self._bucket, endpoint=self._endpoint, region=self._region, credentials=credentials
        )
        try:
            found = [u for u in await uploads.find(self._key(under)) if u.initiated < older_than]
            if not found:
                return 0
            live = await in_use(sorted({u.key[len(self._prefix) :] for u in found}))
            dead = [u for u in found if u.key[len(self._prefix) :] not in live]
            aborted = await uploads.abort(dead)
        except S3RequestError as exc:
            raise BlobError(f"sweeping incomplete uploads failed: {exc}") from exc
        if aborted:
            log.info("aborted %s incomplete multipart uploads of writers killed mid-upload", aborted)
        return aborted
