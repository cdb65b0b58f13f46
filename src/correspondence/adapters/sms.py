"""SMS: a port with an HTTP gateway as the real adapter (POST `{to, from?, body}` as JSON with a
bearer token; most SMS operators' APIs or a small bridge take that shape), and a JSON-lines file as
the local one."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import httpx
import orjson

from correspondence.adapters.outbound import DeliveryError
from correspondence.kit import clock


@dataclass(frozen=True, slots=True)
class Sms:
    to: str  # E.164, with the leading +
    body: str
    attempt: int = 1  # which attempt at this number this is (1 = the first); not sent anywhere


class SmsGateway(Protocol):
    async def send(self, message: Sms) -> None:
        """Hand one message over; raises DeliveryError when it was not accepted."""
        ...

    async def close(self) -> None: ...


_TRANSIENT_STATUS = {408, 425, 429}


class HttpSmsGateway:
    """One pooled HTTP client for the process: connections to the gateway are reused."""

    def __init__(self, url: str, *, token: str | None, sender: str | None, timeout: float = 10.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._url = url
        self._sender = sender
        self._client = httpx.AsyncClient(headers=headers, timeout=timeout)

    async def send(self, message: Sms) -> None:
        payload: dict[str, str] = {"to": message.to, "body": message.body}
        if self._sender:
            payload["from"] = self._sender
        try:
            response = await self._client.post(
                self._url, content=orjson.dumps(payload), headers={"Content-Type": "application/json"}
            )
        except httpx.HTTPError as exc:  # connection refused, reset, time-outs
            raise DeliveryError(f"SMS gateway: {type(exc).__name__}: {exc}", permanent=False) from exc
        if response.is_success:
            return
        status = response.status_code
        detail = f"SMS gateway answered {status}: {response.text[:500]}"
        raise DeliveryError(detail, permanent=status < 500 and status not in _TRANSIENT_STATUS)

    async def close(self) -> None:
        await self._client.aclose()


class OutboxSmsGateway:
    """Appends one JSON line per message to `sms.jsonl` (each line written with one O_APPEND
    write, so concurrent writers never interleave). Written in the event loop, not in a thread:
    one small append costs less than the hop to a thread and back."""

    def __init__(self, directory: Path, *, sender: str | None) -> None:
        self.path = directory / "sms.jsonl"
        self._sender = sender

    async def send(self, message: Sms) -> None:
        line = orjson.dumps(
            {"to": message.to, "from": self._sender, "body": message.body, "at": clock.now().isoformat()}
        )
        try:
            _append(self.path, line + b"\n")
        except OSError as exc:
            raise DeliveryError(f"outbox: {exc}", permanent=False) from exc

    async def close(self) -> None:
        return None


def _append(path: Path, data: bytes) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except FileNotFoundError:  # the first message, or the directory was removed meanwhile
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
