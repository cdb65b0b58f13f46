"""Sandbox outcomes at the ports: wrappers around the e-mail and SMS adapters that answer for the
sandbox's reserved addresses exactly as the real transports do (adapters/email.py
`_delivery_error`, adapters/sms.py), so the same retry, failure, status and event code runs. Any
other address goes to the wrapped adapter; a reserved one never leaves the process."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from correspondence.adapters.email import Email, EmailSender
from correspondence.adapters.outbound import DeliveryError
from correspondence.adapters.sms import Sms, SmsGateway

Outcome = Literal["delivered", "permanent-failure", "temporary-failure"]


def _refusal(outcome: Outcome | None, attempt: int) -> Outcome | None:
    """None: accepted; else how this attempt is refused (a temporary failure only the first time)."""
    if outcome == "permanent-failure" or (outcome == "temporary-failure" and attempt <= 1):
        return outcome
    return None


class SandboxEmailSender:
    def __init__(self, inner: EmailSender, outcomes: Mapping[str, Outcome]) -> None:
        self.inner = inner
        self._outcomes = {address.lower(): outcome for address, outcome in outcomes.items()}

    async def send(self, message: Email) -> None:
        outcome = self._outcomes.get(message.to.strip().lower())
        if outcome is None:
            await self.inner.send(message)
            return
        refusal = _refusal(outcome, message.attempt)
        # As SmtpEmailSender reports an RCPT refusal: "<code> <server's text>", 5xx permanent.
        if refusal == "permanent-failure":
            raise DeliveryError("550 5.1.1 Mailbox unavailable (sandbox: always fails)", permanent=True)
        if refusal == "temporary-failure":
            raise DeliveryError("451 4.3.0 Try again later (sandbox: fails the first time)", permanent=False)

    async def close(self) -> None:
        await self.inner.close()


class SandboxSmsGateway:
    def __init__(self, inner: SmsGateway, outcomes: Mapping[str, Outcome]) -> None:
        self.inner = inner
        self._outcomes = dict(outcomes)

    async def send(self, message: Sms) -> None:
        outcome = self._outcomes.get(message.to.replace(" ", ""))
        if outcome is None:
            await self.inner.send(message)
            return
        refusal = _refusal(outcome, message.attempt)
        # As HttpSmsGateway reports a gateway's answer: 4xx permanent, 5xx transient.
        if refusal == "permanent-failure":
            raise DeliveryError(
                'SMS gateway answered 400: {"error": "invalid recipient (sandbox: always fails)"}',
                permanent=True,
            )
        if refusal == "temporary-failure":
            raise DeliveryError(
                'SMS gateway answered 503: {"error": "try again later (sandbox: fails the first time)"}',
                permanent=False,
            )

    async def close(self) -> None:
        await self.inner.close()
