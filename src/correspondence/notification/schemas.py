"""Wire models of the notification slice (documentation models; answers are written as dicts)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class CheckNotificationResponse(BaseModel):
    """The condition endpoints' answer (api.md §6.13), named as the reference's class."""

    model_config = ConfigDict(extra="forbid")

    sendNotification: bool
