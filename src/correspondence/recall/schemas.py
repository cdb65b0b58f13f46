"""Wire models of the recall slice (camelCase, as the rest of the API)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class RecallResultExt(BaseModel):
    """What a recall did. Recalling again is harmless: what was done already counts as
    `alreadyPurged` or not at all."""

    correspondences: int = Field(description="Correspondences the recall looked at.")
    purged: int = Field(description="Not yet published: purged (PurgedByAltinn), never to be published.")
    alreadyPurged: int = Field(description="Purged before this recall (by the sender or the recipient).")
    published: int = Field(description="Already published: they stay as they are.")
    notificationsCancelled: int = Field(description="Main notification orders not yet sent: Order_Cancelled.")
    remindersCancelled: int = Field(description="Reminder orders not yet sent: Order_Cancelled.")


class ResourceStateExt(BaseModel):
    """A resource's pause state, and what waits while it is paused."""

    resourceId: str
    paused: bool
    pausedSince: datetime | None = Field(description="When the current pause began; null when not paused.")
    pausedBy: str | None = Field(description="Who paused it (a party URN), when known.")
    waitingToPublish: int = Field(
        description="Correspondences whose publish time has come but that are not published yet."
    )
