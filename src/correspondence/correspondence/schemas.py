"""Wire models: the public contract, named and shaped as the official OpenAPI document."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
)
from pydantic_core import PydanticCustomError

from correspondence.kit.numbers import parse_int
from correspondence.kit.text import check_recipient, is_valid_resource_id
from correspondence.kit.wire import Text, UtcDateTime, WireModel, enum_name, enum_parser


class CorrespondenceStatusExt(StrEnum):
    Initialized = "Initialized"
    ReadyForPublish = "ReadyForPublish"
    Published = "Published"
    Fetched = "Fetched"
    Read = "Read"
    Replied = "Replied"
    Confirmed = "Confirmed"
    PurgedByRecipient = "PurgedByRecipient"
    PurgedByAltinn = "PurgedByAltinn"
    Archived = "Archived"
    Reserved = "Reserved"
    Failed = "Failed"
    AttachmentsDownloaded = "AttachmentsDownloaded"
    Forwarded = "Forwarded"


STATUS_NAMES = [s.name for s in CorrespondenceStatusExt]  # index = stored number


class NotificationTemplateExt(StrEnum):
    CustomMessage = "CustomMessage"
    GenericAltinnMessage = "GenericAltinnMessage"


class NotificationChannelExt(StrEnum):
    Email = "Email"
    Sms = "Sms"
    EmailPreferred = "EmailPreferred"
    SmsPreferred = "SmsPreferred"
    EmailAndSms = "EmailAndSms"


CHANNEL_NAMES = [c.name for c in NotificationChannelExt]


class EmailContentType(StrEnum):
    Plain = "Plain"
    Html = "Html"


class ReferenceTypeExt(StrEnum):
    Generic = "Generic"
    AltinnAppInstance = "AltinnAppInstance"
    AltinnBrokerFileTransfer = "AltinnBrokerFileTransfer"
    DialogportenDialogId = "DialogportenDialogId"
    DialogportenProcessId = "DialogportenProcessId"
    DialogportenTransmissionId = "DialogportenTransmissionId"
    DialogportenTransmissionType = "DialogportenTransmissionType"


class InitializeAttachmentDataLocationTypeExt(StrEnum):
    NewCorrespondenceAttachment = "NewCorrespondenceAttachment"
    ExistingCorrespondenceAttachment = "ExistingCorrespondenceAttachment"
    ExistingExternalStorage = "ExistingExternalStorage"


class AttachmentDataLocationTypeExt(StrEnum):
    AltinnCorrespondenceAttachment = "AltinnCorrespondenceAttachment"
    ExternalStorage = "ExternalStorage"


class AttachmentStatusExt(StrEnum):
    Initialized = "Initialized"
    UploadProcessing = "UploadProcessing"
    Published = "Published"
    Purged = "Purged"
    Failed = "Failed"
    Expired = "Expired"


class InitializedNotificationStatusExt(StrEnum):
    Success = "Success"
    MissingContact = "MissingContact"
    Failure = "Failure"


class SystemLabelExt(StrEnum):
    """Dialogporten's system label, as details writes it (api.md §6.7, §7.8)."""

    Default = "Default"
    Bin = "Bin"
    Archive = "Archive"
    MarkedAsUnopened = "MarkedAsUnopened"
    Sent = "Sent"


class CorrespondencesRoleType(StrEnum):
    Recipient = "Recipient"
    Sender = "Sender"
    RecipientAndSender = "RecipientAndSender"


Channel = Annotated[
    NotificationChannelExt, BeforeValidator(enum_parser(NotificationChannelExt)), PlainSerializer(enum_name)
]
ContentType = Annotated[
    EmailContentType, BeforeValidator(enum_parser(EmailContentType)), PlainSerializer(enum_name)
]
RefType = Annotated[
    ReferenceTypeExt, BeforeValidator(enum_parser(ReferenceTypeExt)), PlainSerializer(enum_name)
]
DataLocation = Annotated[
    InitializeAttachmentDataLocationTypeExt,
    BeforeValidator(enum_parser(InitializeAttachmentDataLocationTypeExt)),
    PlainSerializer(enum_name),
]


def _as_sent(value: Any) -> Any:
    return value


# The template is kept as sent (number or name) and checked by the use case, but documented as the
# official enum (the validator only changes the JSON schema, not what is accepted).
TemplateAsSent = Annotated[
    int | str | None, BeforeValidator(_as_sent, json_schema_input_type=NotificationTemplateExt | None)
]


# --- request -----------------------------------------------------------------------------------


class ExternalReferenceExt(WireModel):
    referenceValue: str = Field(alias="referenceValue")
    referenceType: RefType = Field(alias="referenceType")


class CorrespondenceReplyOptionExt(WireModel):
    linkURL: str = Field(alias="linkURL")
    linkText: str | None = Field(None, alias="linkText")


class NotificationRecipientExt(WireModel):
    emailAddress: str | None = Field(None, alias="emailAddress")
    mobileNumber: str | None = Field(None, alias="mobileNumber")
    organizationNumber: str | None = Field(None, alias="organizationNumber")
    nationalIdentityNumber: str | None = Field(None, alias="nationalIdentityNumber")
    isReserved: bool | None = Field(None, alias="isReserved")


# The reference sets no limit on custom notification recipients (api.md §6.5); each is a notification
# to send, so we bound them (a deliberate difference, like the body size limit).
MAX_CUSTOM_RECIPIENTS = 50


def _at_most_custom(value: list[Any] | None, info: Any) -> list[Any] | None:
    if value is not None and len(value) > MAX_CUSTOM_RECIPIENTS:
        raise PydanticCustomError(
            "custom",
            "{name} can contain at most {n} recipients",
            {"name": info.field_name, "n": MAX_CUSTOM_RECIPIENTS},
        )
    return value


class CustomNotificationRecipientExt(WireModel):
    recipientToOverride: str | None = Field(None, alias="recipientToOverride")
    recipients: list[NotificationRecipientExt] = Field(alias="recipients")

    _recipient_limit = field_validator("recipients")(_at_most_custom)


class InitializeCorrespondenceNotificationExt(WireModel):
    # The template is checked by the use case: an undefined number answers the reference's
    # bare JSON string "Invalid notification template", not a validation problem.
    notificationTemplate: TemplateAsSent = Field(None, alias="notificationTemplate")
    emailSubject: str | None = Text("emailSubject", 0, 512)
    emailBody: str | None = Text("emailBody", 0, 10000)
    emailContentType: ContentType = Field(EmailContentType.Plain, alias="emailContentType")
    smsBody: str | None = Text("smsBody", 0, 2144)
    sendReminder: bool = Field(False, alias="sendReminder")
    reminderEmailSubject: str | None = Text("reminderEmailSubject", 0, 512)
    reminderEmailBody: str | None = Text("reminderEmailBody", 0, 10000)
    reminderEmailContentType: ContentType | None = Field(None, alias="reminderEmailContentType")
    reminderSmsBody: str | None = Text("reminderSmsBody", 0, 2144)
    notificationChannel: Channel = Field(NotificationChannelExt.Email, alias="notificationChannel")
    reminderNotificationChannel: Channel | None = Field(None, alias="reminderNotificationChannel")
    sendersReference: str | None = Field(None, alias="sendersReference")
    requestedSendTime: UtcDateTime | None = Field(None, alias="requestedSendTime")
    customRecipients: list[NotificationRecipientExt] | None = Field(None, alias="customRecipients")
    customRecipient: NotificationRecipientExt | None = Field(None, alias="customRecipient")
    customNotificationRecipients: list[CustomNotificationRecipientExt] | None = Field(
        None, alias="customNotificationRecipients"
    )
    overrideRegisteredContactInformation: bool = Field(False, alias="overrideRegisteredContactInformation")

    _recipient_limits = field_validator("customRecipients", "customNotificationRecipients")(_at_most_custom)

    def effective_custom_recipients(self) -> list[NotificationRecipientExt]:
        if self.customRecipients:
            return self.customRecipients
        if self.customRecipient is not None:
            return [self.customRecipient]
        if self.customNotificationRecipients:
            return self.customNotificationRecipients[0].recipients
        return []


def _checksum(value: str | None) -> str | None:
    if value is None or not value.strip():
        return value
    if len(value) != 32:
        raise PydanticCustomError(
            "custom", "The checksum, if used, must be a MD5 hash with a length of 32 characters"
        )
    if value != value.lower():
        raise PydanticCustomError("custom", "The checksum, if used, must be a MD5 hash in lower case")
    return value


class InitializeCorrespondenceAttachmentExt(WireModel):
    fileName: str | None = Text("fileName", 0, 255)
    name: str | None = Field(None, alias="name")
    displayName: str | None = Text("displayName", 0, 255)
    isEncrypted: bool = Field(False, alias="isEncrypted")
    checksum: Annotated[str | None, AfterValidator(_checksum)] = Field(None, alias="checksum")
    sendersReference: str = Text("sendersReference", 1, 4096)
    dataType: str | None = Field(None, alias="dataType")
    id: uuid.UUID | None = Field(None, alias="id")
    dataLocationType: DataLocation = Field(
        InitializeAttachmentDataLocationTypeExt.NewCorrespondenceAttachment, alias="dataLocationType"
    )
    expirationInDays: int | None = Field(None, alias="expirationInDays")
    expirationTime: UtcDateTime | None = Field(None, alias="expirationTime")

    def nul_checked_elsewhere(self) -> frozenset[str]:
        # The file name (`name` stands in for a missing one) is checked by the naming rules: 2012.
        return frozenset({"fileName" if self.fileName is not None else "name"})


def _language(value: str | None) -> str | None:
    if value is None or not value.strip():
        return value
    if len(value) != 2:
        raise PydanticCustomError("custom", "The ISO6391 field must be exactly 2 characters long!")
    if value == "iv":
        raise PydanticCustomError("custom", "The language code must be ISO6391 compliant!")
    return value


class InitializeCorrespondenceContentExt(WireModel):
    language: Annotated[str | None, AfterValidator(_language)] = Field(None, alias="language")
    messageTitle: str = Text("messageTitle", 1, 255)
    messageSummary: str | None = Text("messageSummary", 0, 255)
    messageBody: str = Text("messageBody", 1, 30000)
    attachments: list[InitializeCorrespondenceAttachmentExt] = Field(
        default_factory=list, alias="attachments"
    )

    @field_validator("attachments", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value


class BaseCorrespondenceExt(WireModel):
    resourceId: str = Text("resourceId", 1, 255)
    sender: str | None = Field(None, alias="sender")  # deprecated and ignored (api.md §2.6)
    sendersReference: str = Text("sendersReference", 1, 4096)
    messageSender: str | None = Text("messageSender", 0, 255)
    content: InitializeCorrespondenceContentExt = Field(alias="content")
    requestedPublishTime: UtcDateTime | None = Field(None, alias="requestedPublishTime")
    allowSystemDeleteAfter: UtcDateTime | None = Field(None, alias="allowSystemDeleteAfter")
    dueDateTime: UtcDateTime | None = Field(None, alias="dueDateTime")
    externalReferences: list[ExternalReferenceExt] | None = Field(None, alias="externalReferences")
    propertyList: dict[str, str] = Field(default_factory=dict, alias="propertyList")
    replyOptions: list[CorrespondenceReplyOptionExt] = Field(default_factory=list, alias="replyOptions")
    notification: InitializeCorrespondenceNotificationExt | None = Field(None, alias="notification")
    ignoreReservation: bool | None = Field(None, alias="ignoreReservation")
    published: UtcDateTime | None = Field(None, alias="published")  # ignored on input
    isConfirmationNeeded: bool = Field(False, alias="isConfirmationNeeded")
    isConfidential: bool = Field(False, alias="isConfidential")
    allowForwarding: bool = Field(False, alias="allowForwarding")

    @field_validator("resourceId")
    @classmethod
    def _resource_format(cls, value: str) -> str:
        if not is_valid_resource_id(value):
            raise PydanticCustomError("custom", "Invalid Resource identifier format")
        return value

    @field_validator("propertyList", "replyOptions", mode="before")
    @classmethod
    def _null_is_empty(cls, value: Any, info: Any) -> Any:
        if value is None:
            return {} if info.field_name == "propertyList" else []
        return value

    @field_validator("propertyList")
    @classmethod
    def _property_limits(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > 10:
            raise PydanticCustomError("custom", "propertyList can contain at most 10 properties")
        for key, item in value.items():
            if len(key) > 50:
                raise PydanticCustomError(
                    "custom",
                    "propertyList Key can not be longer than 50. Length:{n}, KeyValue:{k}",
                    {"n": len(key), "k": key},
                )
            if len(item) > 300:
                raise PydanticCustomError(
                    "custom",
                    "propertyList Value can not be longer than 300. Length:{n}, Value:{v}",
                    {"n": len(item), "v": item},
                )
        return value

    @field_validator("externalReferences")
    @classmethod
    def _reference_limits(cls, value: list[ExternalReferenceExt] | None) -> Any:
        if value is None:
            return value
        if len(value) > 10:
            raise PydanticCustomError("custom", "externalReferences can contain at most 10 references")
        if any(r.referenceType is ReferenceTypeExt.DialogportenTransmissionId for r in value):
            raise PydanticCustomError(
                "custom", "Cannot initialize a correspondence with pre-existing transmission defined"
            )
        kinds = [r for r in value if r.referenceType is ReferenceTypeExt.DialogportenTransmissionType]
        if len(kinds) == 1 and not _is_transmission_type(kinds[0].referenceValue):
            raise PydanticCustomError(
                "custom", "DialogportenTransmissionType referenceValue must be a valid transmission type"
            )
        return value


_TRANSMISSION_TYPES = [
    "information",
    "acceptance",
    "rejection",
    "request",
    "alert",
    "decision",
    "submission",
    "correction",
]


def _is_transmission_type(value: str) -> bool:
    v = value.strip().lower()
    return v in _TRANSMISSION_TYPES or parse_int(v, 1, 8) is not None


def check_recipient_items(value: list[str]) -> None:
    """Each recipient non-empty and in a format Initialize accepts (its error messages)."""
    for item in value:
        if not item or not item.strip():
            raise PydanticCustomError("custom", "Recipients can not contain null or empty values")
        message = check_recipient(item)
        if message is not None:
            raise PydanticCustomError("custom", message)


class InitializeCorrespondencesExt(WireModel):
    correspondence: BaseCorrespondenceExt = Field(alias="correspondence")
    recipients: list[str] = Field(alias="recipients")
    existingAttachments: list[uuid.UUID] = Field(default_factory=list, alias="existingAttachments")
    idempotentKey: uuid.UUID | None = Field(None, alias="idempotentKey")

    @field_validator("existingAttachments", mode="before")
    @classmethod
    def _none_is_empty(cls, value: Any) -> Any:
        return [] if value is None else value

    @field_validator("recipients")
    @classmethod
    def _recipients(cls, value: list[str]) -> list[str]:
        if not value:
            raise PydanticCustomError("custom", "Recipients can not be empty")
        if len(value) > 500:
            raise PydanticCustomError("custom", "Recipients can contain at most 500 recipients")
        check_recipient_items(value)
        return value

    @field_validator("idempotentKey")
    @classmethod
    def _non_empty_key(cls, value: uuid.UUID | None) -> uuid.UUID | None:
        if value is not None and value.int == 0:
            raise PydanticCustomError("custom", "The idempotency key must be a valid non-empty GUID")
        return value


class ForwardCorrespondenceRequestExt(WireModel):
    """POST …/correspondence/{id}/forward (api.md §3.11); the rules are the use case's (errors)."""

    forwardTo: str = Field(alias="forwardTo")
    forwardingText: str | None = Field(None, alias="forwardingText")

    @field_validator("forwardTo", mode="before")
    @classmethod
    def _given(cls, value: Any) -> Any:
        if value is None or value == "":  # C# `required string`: null and "" are missing too
            raise PydanticCustomError("custom", "The ForwardTo field is required.")
        return value


# --- responses (documentation models; responses are written as dicts with orjson) -------------


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PaginationMetaDataExt(_Out):
    totalItems: int
    page: int
    pages: int


class CorrespondencesExt(_Out):
    ids: list[uuid.UUID] | None
    pagination: PaginationMetaDataExt


class InitializedCorrespondencesNotificationsExt(_Out):
    orderId: uuid.UUID | None = None
    isReminder: bool | None = None
    status: InitializedNotificationStatusExt


class InitializedCorrespondencesExt(_Out):
    correspondenceId: uuid.UUID
    status: CorrespondenceStatusExt
    recipient: str
    notifications: list[InitializedCorrespondencesNotificationsExt] | None


class InitializeCorrespondencesResponseExt(_Out):
    correspondences: list[InitializedCorrespondencesExt] | None
    attachmentIds: list[uuid.UUID] | None


class CorrespondenceAttachmentExt(_Out):
    """An item of `content.attachments`: the official members (`name` is the display name, falling
    back to the file name) and today's `displayName` (api.md §6.11); `expirationTime` is null for
    an attachment that does not expire."""

    id: uuid.UUID
    fileName: str | None
    name: str
    displayName: str | None
    isEncrypted: bool
    checksum: str | None
    sendersReference: str
    dataType: str
    dataLocationType: AttachmentDataLocationTypeExt
    created: datetime
    status: AttachmentStatusExt
    statusText: str | None
    statusChanged: datetime
    expirationTime: datetime | None


class CorrespondenceContentExt(_Out):
    language: str | None
    messageTitle: str | None
    messageSummary: str | None
    messageBody: str | None
    attachments: list[CorrespondenceAttachmentExt] | None


class CorrespondenceNotificationOverview(_Out):
    notificationOrderId: uuid.UUID | None
    isReminder: bool


class CorrespondenceStatusEventExt(_Out):
    status: CorrespondenceStatusExt
    statusText: str | None
    statusChanged: datetime
    partyUuid: uuid.UUID | None = None  # in the official document; not written (api.md §6.7)


class NotificationStatusExt(_Out):
    status: str | None
    description: str | None
    lastUpdate: datetime


class NotificationProcessStatusExt(NotificationStatusExt):
    pass


class NotificationDetailsExt(_Out):
    id: uuid.UUID
    succeeded: bool
    recipient: NotificationRecipientExt
    sendStatus: NotificationStatusExt


class NotificationStatusDetailsExt(_Out):
    """`email`/`sms`: the most recently updated address per channel; `emails`/`smses`: every
    address of the channel, newest first (api.md §6.7)."""

    email: NotificationDetailsExt | None = None
    sms: NotificationDetailsExt | None = None
    emails: list[NotificationDetailsExt] | None = None
    smses: list[NotificationDetailsExt] | None = None


class NotificationExt(_Out):
    id: str | None
    sendersReference: str | None
    requestedSendTime: datetime
    creator: str | None
    created: datetime
    isReminder: bool
    notificationChannel: NotificationChannelExt
    ignoreReservation: bool | None
    resourceId: str | None
    processingStatus: NotificationProcessStatusExt
    notificationStatusDetails: NotificationStatusDetailsExt


class _CorrespondenceOut(_Out):
    correspondenceId: uuid.UUID
    resourceId: str
    sender: str
    sendersReference: str
    messageSender: str | None
    recipient: str
    content: CorrespondenceContentExt
    created: datetime
    requestedPublishTime: datetime | None
    allowSystemDeleteAfter: datetime | None
    dueDateTime: datetime | None
    published: datetime | None
    read: datetime | None = Field(description="When it was first read; null until then.")
    status: CorrespondenceStatusExt
    statusText: str | None
    statusChanged: datetime
    externalReferences: list[dict[str, Any]] | None
    propertyList: dict[str, str] | None
    replyOptions: list[dict[str, Any]] | None
    notification: None
    ignoreReservation: bool | None
    isConfirmationNeeded: bool
    isConfidential: bool
    allowForwarding: bool
    altinn2CorrespondenceId: int | None = Field(description="Always null: no Altinn 2 here.")


class CorrespondenceOverviewExt(_CorrespondenceOut):
    notifications: list[CorrespondenceNotificationOverview] | None


class CorrespondenceDetailsExt(_CorrespondenceOut):
    notifications: list[NotificationExt] | None
    statusHistory: list[CorrespondenceStatusEventExt] | None
    systemLabel: SystemLabelExt


class CheckAllowForwardingExt(_Out):
    """GET …/correspondence/{id}/forward/check (api.md §4.3, hidden)."""

    allowForwarding: bool
