"""Wire models of the attachment slice, named and shaped as the official OpenAPI document.

Responses are written as dicts with the official members plus those the service has today
(api.md §6.9–6.11: `displayName`); the `_Out` models below document them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from correspondence.correspondence.schemas import AttachmentStatusExt, _checksum
from correspondence.kit.text import is_valid_resource_id
from correspondence.kit.wire import Text, WireModel


class InitializeAttachmentExt(WireModel):
    """Body of POST /attachment. The official document still names the display name `name` (and
    requires `dataType` and `sender`); the current service reads `fileName`, `displayName` and
    `expirationInDays`. Both are accepted: `name` stands in for a missing `displayName`, and for a
    missing `fileName`. `sender` and `dataType` are ignored (api.md §2.6, §6.9)."""

    resourceId: str = Text("resourceId", 1, 255)
    sender: str | None = Field(None, alias="sender")
    fileName: str | None = Text("fileName", 0, 255)
    name: str | None = Text("name", 0, 255)
    displayName: str | None = Text("displayName", 0, 255)
    isEncrypted: bool = Field(False, alias="isEncrypted")
    checksum: Annotated[str | None, AfterValidator(_checksum)] = Field(None, alias="checksum")
    sendersReference: str = Text("sendersReference", 1, 4096)
    dataType: str | None = Field(None, alias="dataType")
    expirationInDays: int | None = Field(None, alias="expirationInDays", ge=-(2**31), lt=2**31)

    @field_validator("resourceId")
    @classmethod
    def _resource_format(cls, value: str) -> str:
        if not is_valid_resource_id(value):
            raise PydanticCustomError("custom", "Invalid Resource identifier format")
        return value

    def nul_checked_elsewhere(self) -> frozenset[str]:
        # The file name (`name` stands in for a missing one) is checked by the naming rules: 2012.
        return frozenset({"fileName" if self.fileName is not None else "name"})

    @property
    def file_name(self) -> str | None:
        return self.fileName if self.fileName is not None else self.name

    @property
    def display_name(self) -> str | None:
        return self.displayName if self.displayName is not None else self.name


# --- responses (documentation models) ------------------------------------------------------------


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AttachmentStatusEvent(_Out):
    status: AttachmentStatusExt
    statusText: str | None
    statusChanged: datetime
    partyUuid: uuid.UUID | None = None  # in the official document; not written


class AttachmentOverviewExt(_Out):
    attachmentId: uuid.UUID
    resourceId: str
    sender: str
    fileName: str | None
    name: str = Field(description="The display name, or the file name when none was given.")
    displayName: str | None = Field(
        description="The display name given; null when none was (details: the file name then)."
    )
    isEncrypted: bool
    checksum: str | None = Field(description='The MD5 (lower-case hex); "" until known.')
    sendersReference: str
    dataType: str
    status: AttachmentStatusExt
    statusText: str | None
    statusChanged: datetime
    correspondenceIds: list[uuid.UUID] | None


class AttachmentDetailsExt(AttachmentOverviewExt):
    statusHistory: list[AttachmentStatusEvent] | None
