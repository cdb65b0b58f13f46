"""The malware scan of uploaded files (behaviour.md §3.4): UploadProcessing → Published, or Failed
"Malware scan failed: …" with every unsettled correspondence using the file Failed too.

A scan holds no transaction and no pooled connection while the bytes stream to clamd, which may
take minutes. Three short steps instead:
1. claim: files awaiting their scan get a token and a lease (`attachments.scan_due`);
2. scan, while a heartbeat extends the lease: no other worker takes the file as long as this one
   lives, however long the scan (the job lease plays no part). A worker that dies stops beating, and
   the file is claimed again once its lease has run out;
3. settle under the row lock, only if the file still awaits this very scan (same token, same bytes).

The files awaiting their scan are the queue, drained by a worker poller, so a scanner outage spends
no job attempts: a passing failure (clamd unreachable, timing out, the connection reset; the store
unreadable) makes the file wait with backoff (5 s, doubling to at most 5 minutes), and once its scan
has been failing for the operator's bound (`CORRESPONDENCE_SCAN_GIVE_UP_HOURS`) it is Failed
"Malware scan failed: scanner unavailable", so it may be uploaded again. A lasting failure (the
file is larger than clamd accepts) fails it at once. Logs say once per outage that scans wait, and
once that they pass again."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

import asyncpg

from correspondence.adapters.blobs import BlobError, BlobNotFound, BlobStore
from correspondence.adapters.scanner import MalwareScanner, ScanError
from correspondence.attachment import repository as repo
from correspondence.attachment.use_cases.lifecycle import (
    BYPASSED_SCAN,
    fail_attachments,
    publish_attachments,
)
from correspondence.kit import clock

log = logging.getLogger("correspondence.attachment.scan")

LEASE = timedelta(seconds=60)  # a claim not extended for this long belongs to a dead worker
HEARTBEAT_SECONDS = 15.0
FIRST_RETRY_SECONDS, MAX_RETRY_SECONDS = 5.0, 300.0
AT_ONCE = 4  # files one worker scans at the same time
UNAVAILABLE = "Malware scan failed: scanner unavailable"

_DB_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


def retry_delay(tries: int) -> timedelta:
    """The wait after the `tries`-th failed try: 5 s, 10 s, 20 s, … at most 5 minutes."""
    return timedelta(seconds=min(MAX_RETRY_SECONDS, FIRST_RETRY_SECONDS * 2 ** min(max(tries - 1, 0), 16)))


@dataclass(frozen=True, slots=True)
class Verdict:
    kind: Literal["publish", "fail", "retry"]
    text: str  # the status text; for "retry", why the scan could not be made


async def scan_file(scanner: MalwareScanner, blobs: BlobStore, key: str) -> Verdict:
    """Stream the stored bytes to the scanner and say what becomes of the file."""
    try:
        found = await scanner.scan(blobs.get(key))
    except ScanError as exc:
        if exc.permanent:
            return Verdict("fail", f"Malware scan failed: {exc}")
        return Verdict("retry", str(exc))
    except BlobNotFound:
        return Verdict("fail", "Upload failed")
    except BlobError as exc:
        return Verdict("retry", f"reading the file failed: {exc}")
    if found.infected:
        return Verdict("fail", f"Malware scan failed: {found.detail}")
    return Verdict("publish", "Published")


class Outage:
    """One warning when scans start failing, one when they pass again; not one per try."""

    def __init__(self) -> None:
        self.since: datetime | None = None

    def failed(self, reason: str, now: datetime) -> None:
        if self.since is None:
            self.since = now
            log.warning(
                "malware scans cannot be made (%s): files wait in UploadProcessing and are retried "
                "at least every %d s",
                reason,
                MAX_RETRY_SECONDS,
            )
        else:
            log.debug("malware scan still failing: %s", reason)

    def passed(self, now: datetime) -> None:
        if self.since is not None:
            log.warning("malware scans pass again, after failing for %s", now - self.since)
            self.since = None


@dataclass
class Scanning:
    """The scan poller of one worker: `run_once` each round claims the files whose scan is due."""

    pool: asyncpg.Pool
    blobs: Callable[[], BlobStore]
    scanner: Callable[[], MalwareScanner | None]  # read each time: None once scanning is off
    give_up: timedelta = timedelta(hours=24)
    lease: timedelta = LEASE
    heartbeat_seconds: float = HEARTBEAT_SECONDS
    at_once: int = AT_ONCE
    outage: Outage = field(default_factory=Outage)

    async def run_once(self) -> int:
        """Claim the files whose scan is due and scan them; returns how many were claimed."""
        now = clock.now()
        async with self.pool.acquire() as conn, conn.transaction():
            claims = await repo.claim_scans(conn, now, now + self.lease, self.at_once)
        results = await asyncio.gather(*(self._scan_one(c) for c in claims), return_exceptions=True)
        for claim, result in zip(claims, results, strict=True):
            if isinstance(result, BaseException):
                # Its claim stays; another round takes the file when the lease has run out.
                log.error("malware scan of attachment %s failed: %r", claim["id"], result)
        return len(claims)

    async def _scan_one(self, claim: asyncpg.Record) -> None:
        attachment_id, token, key = claim["id"], claim["scan_token"], claim["blob_key"]
        failing_since = claim["scan_failing_since"]  # set too when an earlier claim was abandoned
        scanner = self.scanner()
        if failing_since is not None and clock.now() - failing_since >= self.give_up:
            verdict = Verdict("retry", "no scan could be made in time")
        elif scanner is None:  # scanning was switched off after the upload
            verdict = Verdict("publish", BYPASSED_SCAN)
        else:
            scanned = await self._while_held(attachment_id, token, scan_file(scanner, self.blobs(), key))
            if scanned is None:
                log.info("attachment %s is no longer this scan's; its verdict is not recorded", attachment_id)
                return
            verdict = scanned
            if verdict.kind == "retry":
                self.outage.failed(verdict.text, clock.now())
            else:
                self.outage.passed(clock.now())
        await self._settle(attachment_id, token, key, verdict)

    async def _while_held(
        self, attachment_id: uuid.UUID, token: uuid.UUID, work: Awaitable[Verdict]
    ) -> Verdict | None:
        """`work` while a heartbeat extends the claim; None if the claim was lost meanwhile (the
        work is then stopped). Stopped from outside (shutdown), the claim is handed back."""
        scan = asyncio.ensure_future(work)
        beat = asyncio.ensure_future(self._heartbeat(attachment_id, token))
        try:
            await asyncio.wait({scan, beat}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            scan.cancel()
            beat.cancel()
            try:
                await asyncio.wait_for(repo.release_scan(self.pool, attachment_id, token), 5)
            except (TimeoutError, *_DB_ERRORS):
                pass  # then the lease runs out
            raise
        finally:
            beat.cancel()
        if not scan.done():  # the heartbeat found the claim gone
            scan.cancel()
            return None
        try:
            return scan.result()
        except Exception as exc:  # a fault of ours or an adapter's: retried, bounded by give_up
            log.exception("malware scan of attachment %s raised", attachment_id)
            return Verdict("retry", f"{type(exc).__name__}: {exc}")

    async def _heartbeat(self, attachment_id: uuid.UUID, token: uuid.UUID) -> None:
        """Extend the claim's lease until cancelled; returns when the claim is no longer held."""
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            try:
                if not await repo.extend_scan(self.pool, attachment_id, token, clock.now() + self.lease):
                    return
            except _DB_ERRORS as exc:  # the scan goes on; if the lease runs out meanwhile, so be it
                log.warning("scan heartbeat of attachment %s failed: %s", attachment_id, exc)

    async def _settle(self, attachment_id: uuid.UUID, token: uuid.UUID, key: str, verdict: Verdict) -> None:
        """Record the verdict under the row lock if the file still awaits this scan: not claimed by
        another worker after this one's lease ran out, not expired, not failed and uploaded again."""
        now = clock.now()
        async with self.pool.acquire() as conn, conn.transaction():
            row = await repo.get_scanned(conn, attachment_id, token)
            if row is None or row["blob_key"] != key:
                return
            if verdict.kind == "retry":
                since = row["scan_failing_since"] or now
                if now - since < self.give_up:
                    due = now + retry_delay(row["scan_tries"] + 1)
                    await repo.postpone_scan(conn, attachment_id, due, since)
                    return
                log.warning(
                    "attachment %s failed: no malware scan could be made since %s (%s)",
                    attachment_id,
                    since,
                    verdict.text,
                )
                verdict = Verdict("fail", UNAVAILABLE)
            # Sibling files of one correspondence settle one after the other, so the last one
            # published sees all the others and enqueues the correspondence's publish.
            await repo.lock_users(conn, [attachment_id])
            if verdict.kind == "fail":
                await fail_attachments(conn, [row], verdict.text, now)
            else:
                await publish_attachments(conn, [attachment_id], verdict.text, now)
            await repo.clear_scan(conn, [attachment_id])
