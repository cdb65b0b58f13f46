"""E-mail: a port with SMTP (aiosmtplib) as the real adapter, and an outbox directory of `.eml`
files as the local one (no mail server needed to see what would have been sent)."""

from __future__ import annotations

import asyncio
import email.policy
import email.utils
import os
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Literal, Protocol

import aiosmtplib

from correspondence.adapters.outbound import DeliveryError
from correspondence.kit import clock


@dataclass(frozen=True, slots=True)
class Email:
    to: str
    subject: str
    body: str
    html: bool = False


class EmailSender(Protocol):
    async def send(self, message: Email) -> None:
        """Hand one message over; raises DeliveryError when it was not accepted."""
        ...

    async def close(self) -> None: ...


def build_message(message: Email, sender: str) -> EmailMessage:
    out = EmailMessage(policy=email.policy.SMTP)
    out["From"] = sender
    out["To"] = message.to
    out["Subject"] = message.subject
    out["Date"] = email.utils.format_datetime(clock.now())
    # make_msgid() without a domain asks the resolver for our FQDN on every call.
    out["Message-ID"] = f"<{uuid.uuid4().hex}@{sender.rpartition('@')[2] or 'localhost'}>"
    out.set_content(message.body, subtype="html" if message.html else "plain", charset="utf-8")
    return out


TlsMode = Literal["none", "starttls", "tls"]


class SmtpEmailSender:
    """Keeps up to `connections` SMTP sessions open and sends over them concurrently: a session
    per message would spend most of its time on the greeting, EHLO and TLS handshake."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        tls: TlsMode,
        sender: str,
        username: str | None = None,
        password: str | None = None,
        connections: int = 16,
        timeout: float = 30.0,
        validate_certs: bool = True,
    ) -> None:
        self._host, self._port, self._tls = host, port, tls
        self._sender = sender
        self._username, self._password = username, password
        self._timeout = timeout
        self._validate_certs = validate_certs
        self._slots = asyncio.Semaphore(connections)
        self._idle: list[aiosmtplib.SMTP] = []

    async def _connect(self) -> aiosmtplib.SMTP:
        client = aiosmtplib.SMTP(
            hostname=self._host,
            port=self._port,
            username=self._username,
            password=self._password,
            timeout=self._timeout,
            use_tls=self._tls == "tls",
            start_tls=self._tls == "starttls",
            validate_certs=self._validate_certs,
        )
        await client.connect()
        return client

    async def send(self, message: Email) -> None:
        built = build_message(message, self._sender)
        async with self._slots:
            client = self._idle.pop() if self._idle else None
            try:
                if client is None or not client.is_connected:
                    client = await self._connect()
                await client.send_message(built)
            except (aiosmtplib.SMTPException, OSError) as exc:
                if client is not None:
                    client.close()  # a session that failed mid-transaction is not reused
                raise _delivery_error(exc) from exc
            self._idle.append(client)

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for client in idle:
            try:
                await asyncio.wait_for(client.quit(), 2)
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                client.close()


def _delivery_error(exc: Exception) -> DeliveryError:
    """SMTP's own rule: 4xx replies are transient, 5xx permanent. Connection trouble, time-outs
    and authentication or TLS set-up failures are the operator's to fix, so they are retried."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        first = exc.recipients[0]
        return DeliveryError(f"{first.code} {first.message}", permanent=500 <= first.code < 600)
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return DeliveryError(f"SMTP authentication failed: {exc.code} {exc.message}", permanent=False)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return DeliveryError(f"{exc.code} {exc.message}", permanent=500 <= exc.code < 600)
    return DeliveryError(f"{type(exc).__name__}: {exc}", permanent=False)


class OutboxEmailSender:
    """Writes each message as an `.eml` file (open it with any mail reader); written to a
    temporary name and renamed, so a reader never sees half a message."""

    def __init__(self, directory: Path, *, sender: str) -> None:
        self.directory = directory
        self._sender = sender

    async def send(self, message: Email) -> None:
        data = build_message(message, self._sender).as_bytes()
        name = f"{clock.now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:12]}.eml"
        try:
            await asyncio.to_thread(_write_atomically, self.directory, name, data)
        except OSError as exc:
            raise DeliveryError(f"outbox: {exc}", permanent=False) from exc

    async def close(self) -> None:
        return None


def _write_atomically(directory: Path, name: str, data: bytes) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{name}.tmp"
    tmp.write_bytes(data)
    os.replace(tmp, directory / name)
