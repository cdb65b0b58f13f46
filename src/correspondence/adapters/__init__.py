"""Ports to external systems and the one place that picks their adapters from the configuration."""

from __future__ import annotations

from correspondence.adapters.blobs import BlobStore, FileBlobStore, S3BlobStore
from correspondence.adapters.email import EmailSender, OutboxEmailSender, SmtpEmailSender
from correspondence.adapters.sandbox import SandboxEmailSender, SandboxSmsGateway
from correspondence.adapters.scanner import ClamdScanner, MalwareScanner
from correspondence.adapters.sms import HttpSmsGateway, OutboxSmsGateway, SmsGateway
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
    address = settings.scan_address
    if address is None:
        return None
    return ClamdScanner(address, timeout=settings.clamd_timeout_seconds)


def open_email_sender(settings: Settings) -> EmailSender:
    """SMTP when a host is configured; else `.eml` files under <data_dir>/outbox/email. In sandbox
    mode the sandbox's reserved addresses are answered in front of either."""
    sender = _email_sender(settings)
    if settings.sandbox_enabled:
        from correspondence.sandbox.values import EMAILS

        return SandboxEmailSender(sender, EMAILS)
    return sender


def _email_sender(settings: Settings) -> EmailSender:
    if not settings.smtp_host:
        return OutboxEmailSender(settings.data_dir / "outbox" / "email", sender=settings.smtp_from)
    return SmtpEmailSender(
        host=settings.smtp_host,
        port=settings.smtp_port,
        tls=settings.smtp_tls,
        sender=settings.smtp_from,
        username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        connections=settings.smtp_connections,
        timeout=settings.smtp_timeout_seconds,
        validate_certs=settings.smtp_validate_certs,
    )


def open_sms_gateway(settings: Settings) -> SmsGateway:
    """The HTTP gateway when a URL is configured; else lines in <data_dir>/outbox/sms.jsonl. In
    sandbox mode the sandbox's reserved numbers are answered in front of either."""
    gateway = _sms_gateway(settings)
    if settings.sandbox_enabled:
        from correspondence.sandbox.values import MOBILES

        return SandboxSmsGateway(gateway, MOBILES)
    return gateway


def _sms_gateway(settings: Settings) -> SmsGateway:
    if not settings.sms_gateway_url:
        return OutboxSmsGateway(settings.data_dir / "outbox", sender=settings.sms_sender)
    token = settings.sms_gateway_token.get_secret_value() if settings.sms_gateway_token else None
    return HttpSmsGateway(
        settings.sms_gateway_url,
        token=token,
        sender=settings.sms_sender,
        timeout=settings.sms_timeout_seconds,
    )
