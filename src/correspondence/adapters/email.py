"""E-mail: a port with SMTP (aiosmtplib) as the real adapter, and an outbox directory of `.eml`
files as the local one (no mail server needed to see what would have been sent)."""

from __future__ import annotations

import asyncio
import base64
import email.utils
import os
import urllib.parse
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

import aiosmtplib

from correspondence.adapters.outbound import DeliveryError
from correspondence.kit import clock


@dataclass(frozen=True, slots=True)
class EmailAttachment:
    file_name: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Email:
    to: str
    subject: str
    body: str
    html: bool = False
    attachments: tuple[EmailAttachment, ...] = ()
    attempt: int = 1  # which attempt at this address this is (1 = the first); not sent anywhere


class EmailSender(Protocol):
    async def send(self, message: Email) -> None:
        """Hand one message over; raises DeliveryError when it was not accepted."""
        ...

    async def close(self) -> None: ...


def _one_line(value: str) -> str:
    """No CR or LF may reach a header: a sender's subject must not be able to add headers."""
    return " ".join(value.splitlines()).strip()


def _header_text(value: str) -> str:
    """ASCII as it is; anything else as RFC 2047 encoded words (UTF-8, base64), each at most 75
    characters and never splitting a character, folded onto continuation lines."""
    text = _one_line(value)
    if text.isascii():
        return text
    words: list[str] = []
    chunk = b""
    for char in text:
        encoded = char.encode()
        if len(chunk) + len(encoded) > 42:  # 56 base64 characters + 12 of framing, after "Subject: " ≤ 78
            words.append(chunk.decode())
            chunk = b""
        chunk += encoded
    words.append(chunk.decode())
    return "\r\n ".join(f"=?utf-8?b?{base64.b64encode(w.encode()).decode()}?=" for w in words)


def _base64_lines(raw: bytes) -> bytes:
    return b"\r\n".join(base64.b64encode(raw[i : i + 57]) for i in range(0, len(raw), 57))


def _file_name_params(name: str) -> str:
    """`filename` for a Content-Disposition: quoted ASCII, or RFC 2231 UTF-8 for anything else."""
    clean = _one_line(name).replace("\\", "_").replace('"', "_") or "attachment"
    if clean.isascii():
        return f'filename="{clean}"'
    return f"filename*=utf-8''{urllib.parse.quote(clean, safe='')}"


def _with_attachments(message: Email, text_type: str, body: bytes) -> tuple[str, bytes]:
    """multipart/mixed: the text part first, then each file base64-encoded."""
    boundary = f"=_{uuid.uuid4().hex}"
    parts = [
        f"--{boundary}\r\nContent-Type: {text_type}\r\nContent-Transfer-Encoding: base64\r\n\r\n".encode()
        + body
        + b"\r\n"
    ]
    for item in message.attachments:
        content_type = _one_line(item.content_type) or "application/octet-stream"
        parts.append(
            (
                f"--{boundary}\r\nContent-Type: {content_type}\r\n"
                f"Content-Disposition: attachment; {_file_name_params(item.file_name)}\r\n"
                "Content-Transfer-Encoding: base64\r\n\r\n"
            ).encode()
            + _base64_lines(item.data)
            + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return f'multipart/mixed; boundary="{boundary}"', b"".join(parts)


def render(message: Email, sender: str) -> bytes:
    """The message as MIME bytes: one text part, UTF-8, base64 (lines of 76), and with files a
    multipart/mixed around it. Written by hand: the standard library's `EmailMessage` spent more
    CPU per message than the whole SMTP exchange (bench/RESULTS.md, notifications)."""
    domain = sender.rpartition("@")[2] or "localhost"
    body = _base64_lines(message.body.encode())
    text_type = f"text/{'html' if message.html else 'plain'}; charset=utf-8"
    if message.attachments:
        content_type, body = _with_attachments(message, text_type, body)
        encoding = ""
    else:
        content_type, encoding = text_type, "Content-Transfer-Encoding: base64\r\n"
    head = (
        f"From: {_one_line(sender)}\r\n"
        f"To: {_one_line(message.to)}\r\n"
        f"Subject: {_header_text(message.subject)}\r\n"
        f"Date: {email.utils.format_datetime(clock.now())}\r\n"
        # make_msgid() would ask the resolver for our FQDN on every call.
        f"Message-ID: <{uuid.uuid4().hex}@{domain}>\r\n"
        "MIME-Version: 1.0\r\n"
        f"Content-Type: {content_type}\r\n"
        f"{encoding}\r\n"
    )
    return head.encode() + body + b"\r\n"


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
        data = render(message, self._sender)
        # An address with æøå in it (the reference's e-mail rule allows them) needs SMTPUTF8.
        options = [] if message.to.isascii() else ["SMTPUTF8"]
        async with self._slots:
            client = self._idle.pop() if self._idle else None
            try:
                if client is None or not client.is_connected:
                    client = await self._connect()
                await client.sendmail(self._sender, [message.to], data, mail_options=options)
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
    temporary name and renamed, so a reader never sees half a message.

    Written in the event loop, not in a thread: a small file into the page cache takes tens of
    microseconds, less than the hop to a thread and back (which, at a few hundred messages a
    second, cost the in-process worker a third of the server's samples: bench/RESULTS.md)."""

    def __init__(self, directory: Path, *, sender: str) -> None:
        self.directory = directory
        self._sender = sender

    async def send(self, message: Email) -> None:
        data = render(message, self._sender)
        name = f"{clock.now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:12]}.eml"
        try:
            _write_atomically(self.directory, name, data)
        except OSError as exc:
            raise DeliveryError(f"outbox: {exc}", permanent=False) from exc

    async def close(self) -> None:
        return None


def _write_atomically(directory: Path, name: str, data: bytes) -> None:
    tmp = directory / f".{name}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except FileNotFoundError:  # the first message, or the directory was removed meanwhile
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, directory / name)
