"""The running service's shared parts, wired once at start-up (the composition root's output)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import asyncpg

from correspondence.adapters.blobs import BlobStore
from correspondence.adapters.email import EmailSender
from correspondence.adapters.scanner import MalwareScanner
from correspondence.adapters.sms import SmsGateway
from correspondence.adapters.webhooks import HttpWebhookSender, WebhookSender
from correspondence.auth.tokens import DevIssuer, TokenValidator
from correspondence.config import Settings
from correspondence.correspondence.use_cases.group_write import InitializeWriter
from correspondence.kit.jobs import Worker
from correspondence.limits.setup import Limits, open_limits
from correspondence.registry.cache import ResourceCache

log = logging.getLogger("correspondence")


def log_scan_choice(settings: Settings) -> None:
    """Say at start whether uploads are scanned: an unscanned service must never be a surprise."""
    if settings.scan_address is not None:
        log.info("malware scan: clamd at %s", settings.scan_address)
    elif settings.malware_scan == "off":
        log.warning("malware scan OFF (CORRESPONDENCE_MALWARE_SCAN=off): uploads are published unscanned")
    else:
        log.warning("malware scan off: no CORRESPONDENCE_CLAMD_ADDRESS (development mode)")


@dataclass
class Services:
    settings: Settings
    pool: asyncpg.Pool
    validator: TokenValidator
    dev_issuer: DevIssuer | None
    resources: ResourceCache = field(default_factory=ResourceCache)
    worker: Worker | None = None
    blobs: BlobStore | None = None  # set by open_adapters (S3 stores are built in the event loop)
    scanner: MalwareScanner | None = None  # None: no malware scan configured
    email: EmailSender | None = None  # SMTP, or the outbox directory when no SMTP host is set
    sms: SmsGateway | None = None  # the HTTP gateway, or the outbox file when no URL is set
    webhooks: WebhookSender | None = None  # made on first use, inside the event loop
    # Per-owner limits, from the settings (made anew by dataclasses.replace with other settings).
    limits: Limits = field(init=False)
    _initialize_writer: InitializeWriter | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.limits = open_limits(self.settings)

    @property
    def initialize_writer(self) -> InitializeWriter:
        """Initialize's group commit (correspondence/use_cases/group_write.py), one per process."""
        if self._initialize_writer is None:
            self._initialize_writer = InitializeWriter(self.pool)
        return self._initialize_writer

    async def open_adapters(self) -> None:
        from correspondence.adapters import open_blob_store, open_email_sender, open_scanner, open_sms_gateway
        from correspondence.sandbox.use_cases.sync_registry import sync_registry

        self.blobs = await open_blob_store(self.settings)
        self.scanner = open_scanner(self.settings)
        log_scan_choice(self.settings)
        self.email = open_email_sender(self.settings)
        self.sms = open_sms_gateway(self.settings)
        # The contact registry is a port too: the sandbox's parties are in it exactly while it is on.
        await sync_registry(self.pool, enabled=self.settings.sandbox_enabled)
        if self.settings.sandbox_enabled and self.settings.mode == "production":
            log.warning("sandbox ON in production mode (CORRESPONDENCE_SANDBOX=true): reserved values act")

    def email_sender(self) -> EmailSender:
        if self.email is None:
            raise RuntimeError("e-mail is not open (Services.open_adapters was not called)")
        return self.email

    def sms_gateway(self) -> SmsGateway:
        if self.sms is None:
            raise RuntimeError("SMS is not open (Services.open_adapters was not called)")
        return self.sms

    async def close_messaging(self) -> None:
        """Say goodbye to the SMTP server and close the gateway's connections."""
        for adapter in (self.email, self.sms):
            if adapter is not None:
                await adapter.close()
        self.email = self.sms = None

    def blob_store(self) -> BlobStore:
        if self.blobs is None:
            raise RuntimeError("blob storage is not open (Services.open_adapters was not called)")
        return self.blobs

    def webhook_sender(self) -> WebhookSender:
        if self.webhooks is None:
            self.webhooks = HttpWebhookSender(
                timeout_seconds=self.settings.webhook_timeout_seconds,
                max_connections=self.settings.webhook_concurrency,
                guard=self.settings.mode == "production",
            )
        return self.webhooks

    async def close_webhooks(self) -> None:
        if self.webhooks is not None:
            await self.webhooks.close()
            self.webhooks = None

    def wake_worker(self) -> None:
        if self.worker is not None:
            self.worker.wake()
