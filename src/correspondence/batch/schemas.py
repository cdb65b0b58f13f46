"""Wire models of the batch extension (README "Batches"); camelCase, like the official ones."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from correspondence.correspondence.schemas import BaseCorrespondenceExt, check_recipient_items
from correspondence.kit.wire import WireModel

# The most recipients one page may hold; a batch may hold any number of pages.
MAX_PAGE_RECIPIENTS = 10_000
MAX_PAGE_NUMBER = 1_000_000


class BatchStatusExt(StrEnum):
    Open = "Open"  # taking pages
    Committed = "Committed"  # its correspondences are being created and published
    Completed = "Completed"  # every recipient's correspondence was published, or failed
    Cancelled = "Cancelled"  # cancelled while open: nothing was created


STATUS_NAMES = [s.value for s in BatchStatusExt]
OPEN, COMMITTED, COMPLETED, CANCELLED = 0, 1, 2, 3


class InitializeBatchExt(WireModel):
    """The correspondence exactly as Initialize takes it, without recipients (they come in pages)."""

    correspondence: BaseCorrespondenceExt = Field(alias="correspondence")
    existingAttachments: list[uuid.UUID] = Field(default_factory=list, alias="existingAttachments")
    idempotentKey: uuid.UUID | None = Field(None, alias="idempotentKey")

    @field_validator("existingAttachments", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value

    @field_validator("idempotentKey")
    @classmethod
    def _non_empty_key(cls, value: uuid.UUID | None) -> uuid.UUID | None:
        if value is not None and value.int == 0:
            raise PydanticCustomError("custom", "The idempotency key must be a valid non-empty GUID")
        return value


class BatchRecipientsPageExt(WireModel):
    """One page of recipients, in Initialize's recipient formats."""

    recipients: list[str] = Field(alias="recipients")

    @field_validator("recipients")
    @classmethod
    def _recipients(cls, value: list[str]) -> list[str]:
        if not value:
            raise PydanticCustomError("custom", "Recipients can not be empty")
        if len(value) > MAX_PAGE_RECIPIENTS:
            raise PydanticCustomError(
                "custom", "A page can contain at most {n} recipients", {"n": MAX_PAGE_RECIPIENTS}
            )
        check_recipient_items(value)
        return value


# --- responses (documentation models; responses are written as dicts with orjson) -------------


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BatchCountsExt(_Out):
    pages: int
    recipients: int
    created: int = Field(description="Correspondences created so far.")
    published: int
    failed: int = Field(description="Not created (see the batch's recipients), or failed to publish.")
    purged: int = Field(description="Purged before they were published.")
    notified: int = Field(description="Published, and the first notification was sent.")
    notificationFailed: int = Field(
        description="Published, and no address of the first notification took it."
    )


class BatchExt(_Out):
    id: uuid.UUID
    resourceId: str
    sendersReference: str
    status: BatchStatusExt
    counts: BatchCountsExt
    created: datetime
    committed: datetime | None
    completed: datetime | None
    cancelled: datetime | None


class BatchListExt(_Out):
    batches: list[BatchExt]


class BatchPageExt(_Out):
    batchId: uuid.UUID
    page: int
    recipients: int
