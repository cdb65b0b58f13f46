"""Numbered errors of the correspondence slice, with the upstream codes and messages (api.md §8)."""

from correspondence.kit.errors import ErrorSpec

NOT_FOUND = ErrorSpec(1001, 404, "The requested correspondence was not found")
TITLE_NOT_PLAIN = ErrorSpec(1002, 400, "Message title must be plain text")
BODY_NOT_MARKDOWN = ErrorSpec(1003, 400, "Message body must be markdown")
ATTACHMENT_MISMATCH = ErrorSpec(1005, 400, "Mismatch between uploaded files and attachment metadata")
RECIPIENTS_NOT_UNIQUE = ErrorSpec(1006, 400, "Recipients must be unique")
EXISTING_ATTACHMENT_NOT_FOUND = ErrorSpec(1007, 400, "Existing attachment not found")
DUE_BEFORE_TODAY = ErrorSpec(1008, 400, "DueDateTime cannot be prior to today")
DUE_BEFORE_PUBLISH = ErrorSpec(1009, 400, "DueDateTime cannot be prior to RequestedPublishTime")
DUE_REQUIRED = ErrorSpec(1016, 400, "DueDateTime is required when confirmation is needed")
ATTACHMENT_SENDER_MISMATCH = ErrorSpec(
    1017, 400, "The sender of the correspondence must be equal the sender of existing attachments"
)
ATTACHMENT_NOT_PUBLISHED = ErrorSpec(1018, 400, "Attachment is not published")
SENDER_CANNOT_PURGE_PUBLISHED = ErrorSpec(
    1013, 400, "Sender cannot delete correspondence that has been published"
)
ALREADY_PURGED = ErrorSpec(1014, 400, "Correspondence has already been purged")
TITLE_EMPTY = ErrorSpec(1020, 400, "Message title cannot be empty")
BODY_EMPTY = ErrorSpec(1021, 400, "Message body cannot be empty")
INVALID_LANGUAGE = ErrorSpec(
    1023,
    400,
    "Invalid language chosen. Supported languages is Norsk bokmål (nb), Nynorsk (nn) and English (en)",
)
NOT_FETCHED_BEFORE_READ = ErrorSpec(1024, 400, "Correspondence must be fetched before it can be read")
NOT_FETCHED_BEFORE_CONFIRM = ErrorSpec(1025, 400, "Correspondence must be fetched before it can be confirmed")
CONFIRMATION_REQUIRED = ErrorSpec(
    1026,
    400,
    "Cannot archive or delete a correspondence which has not been confirmed when confirmation is required",
)
FROM_AFTER_TO = ErrorSpec(1027, 400, "From date cannot be after to date")
NEGATIVE_PAGING = ErrorSpec(1028, 400, "Limit and offset must be greater than or equal to 0")
RECIPIENT_RESERVED = ErrorSpec(
    1030,
    422,
    "Recipient {recipient} has reserved themselves from public correspondences. "
    "Can be overridden using the 'IgnoreReservation' flag.",
)
ALREADY_READ = ErrorSpec(1040, 400, "Correspondence is already marked as read")
ALREADY_CONFIRMED = ErrorSpec(1041, 400, "Correspondence has already been confirmed")
IDEMPOTENT_KEY_USED = ErrorSpec(1034, 409, "A correspondence with the same idempotent key already exists")
REPLY_OPTIONS_INVALID = ErrorSpec(
    1035, 400, "Reply options must be well-formed URIs and HTTPS with a max length of 255 characters"
)
RESOURCE_UNKNOWN = ErrorSpec(1036, 400, "ResourceId must match an existing resource in the resource registry")
TOO_MANY_ATTACHMENTS = ErrorSpec(
    1038, 400, "A correspondence cannot contain more than 100 attachments in total"
)
MESSAGE_SENDER_NOT_PLAIN = ErrorSpec(1039, 400, "Message sender must be plain text")
TRANSMISSION_ONE_RECIPIENT = ErrorSpec(1045, 400, "Transmission correspondences only support one recipient")
TRANSMISSION_NO_GUI_ACTIONS = ErrorSpec(
    1051,
    400,
    "Correspondences with GUI actions (ReplyOptions or IsConfirmationNeeded) cannot be sent as transmissions",
)
# 1047 ("Idempotency key is not supported for requests with multiple recipients") is not used:
# a key works for any number of recipients here (DESIGN decision 2).
DIALOG_ID_INVALID = ErrorSpec(1048, 400, "DialogId must be a valid non-empty GUID")
ONE_TRANSMISSION_TYPE = ErrorSpec(
    1052, 400, "Only one DialogportenTransmissionType external reference is allowed"
)
TRANSMISSION_TYPE_NEEDS_DIALOG = ErrorSpec(
    1053,
    400,
    "DialogportenTransmissionType external reference requires a DialogportenDialogId external reference",
)
DIALOG_NOT_FOUND = ErrorSpec(1054, 404, "Dialogporten dialog with the given id was not found")
ATTACHMENT_EXPIRING = ErrorSpec(
    1055,
    400,
    "Existing attachment is expiring within 6 hour(s) and cannot be attached to a new correspondence",
)
CONFIDENTIAL_REQUIRED = ErrorSpec(
    1060,
    400,
    "Confidential correspondences (resources with the access package "
    "post-til-virksomheten-med-taushetsbelagt-innhold) cannot be initialized without setting the "
    "'IsConfidential' flag to true",
)
NOT_CONFIDENTIAL_RESOURCE = ErrorSpec(
    1061,
    400,
    "Correspondences cannot be initialized with 'IsConfidential' flag set to true if the resource is "
    "not confidential",
)
NO_FORWARDING = ErrorSpec(1063, 400, "Correspondence does not allow forwarding")
ALREADY_FORWARDED = ErrorSpec(
    1064, 400, "Correspondence has already been forwarded to the specified recipient"
)
NOT_READ_BEFORE_FORWARD = ErrorSpec(1065, 400, "Correspondence must be read before it can be forwarded")
FORWARDING_TEXT_TOO_LONG = ErrorSpec(1066, 400, "Forwarding text cannot exceed 200 characters")
FORWARDING_TEXT_NOT_PLAIN = ErrorSpec(1067, 400, "Forwarding text must be plain text")
FORWARDING_AUTH_LEVEL = ErrorSpec(
    1068,
    400,
    "Correspondence cannot allow forwarding if the resource for the correspondence has a required "
    "authorization level above 0",
)
FORWARDING_ATTACHMENTS_TOO_LARGE = ErrorSpec(
    1069, 400, "Correspondence cannot allow forwarding if the total size of attachments exceeds 10 MB"
)
FORWARD_ADDRESS_TOO_LONG = ErrorSpec(
    3027, 400, "Email address provided for forwarding correspondence exceeds 1000 characters"
)
NO_ACCESS = ErrorSpec(
    4001,
    403,
    "You must use an Altinn token, DialogToken or log in to IDPorten as someone with access to the "
    "resource and organization in Altinn Authorization",
)
PARTY_NOT_FOUND = ErrorSpec(4002, 400, "Could not retrieve party uuid from lookup in Altinn Register")
CALLER_UNKNOWN = ErrorSpec(4006, 401, "Could not determine caller")
RESOURCE_TYPE = ErrorSpec(
    4010,
    400,
    "Resource type is not supported. Resource must be of type CorrespondenceService. If creating a "
    "Correspondence as a transmission with reference to an existing DialogId AltinnApp is also allowed.",
)
