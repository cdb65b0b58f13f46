"""What the message ports (e-mail, SMS) share: how a failed hand-over is reported."""

from __future__ import annotations


class DeliveryError(Exception):
    """A message was not accepted. A `permanent` failure will fail again (the server refused the
    address for good, the gateway rejected the number); any other may pass on a later attempt."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent
