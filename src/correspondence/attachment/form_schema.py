"""The form of POST /correspondence/upload, as the official document names its fields (.NET model
binding: dotted C# property names, any case; `[i]` indexes or repeated names for lists; api.md §3.2).
Each file is a part named `attachments` whose filename equals its entry's `fileName`. A field name
may carry the prefix `request.` (the reference's parameter name), as its load test sends them."""

from typing import Any

FORM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": (
        "Field names match in any case and may be prefixed `request.` (the bound parameter's name, "
        "as in `request.Correspondence.ResourceId`, `request.Recipients[0]`); files are parts named "
        "`attachments`."
    ),
    "required": [
        "Correspondence.ResourceId",
        "Correspondence.SendersReference",
        "Correspondence.Content.MessageTitle",
        "Correspondence.Content.MessageBody",
        "Recipients",
    ],
    "properties": {
        "Correspondence.ResourceId": {"type": "string"},
        "Correspondence.Sender": {"type": "string"},
        "Correspondence.SendersReference": {"type": "string"},
        "Correspondence.MessageSender": {"type": "string"},
        "Correspondence.Content.Language": {"type": "string"},
        "Correspondence.Content.MessageTitle": {"type": "string"},
        "Correspondence.Content.MessageSummary": {"type": "string"},
        "Correspondence.Content.MessageBody": {"type": "string"},
        "Correspondence.Content.Attachments": {
            "type": "array",
            "items": {"$ref": "#/components/schemas/InitializeCorrespondenceAttachmentExt"},
        },
        "Correspondence.RequestedPublishTime": {"type": "string", "format": "date-time"},
        "Correspondence.AllowSystemDeleteAfter": {"type": "string", "format": "date-time"},
        "Correspondence.DueDateTime": {"type": "string", "format": "date-time"},
        "Correspondence.ExternalReferences": {
            "type": "array",
            "items": {"$ref": "#/components/schemas/ExternalReferenceExt"},
        },
        "Correspondence.PropertyList": {"type": "object", "additionalProperties": {"type": "string"}},
        "Correspondence.ReplyOptions": {
            "type": "array",
            "items": {"$ref": "#/components/schemas/CorrespondenceReplyOptionExt"},
        },
        "Correspondence.Notification.NotificationTemplate": {
            "$ref": "#/components/schemas/NotificationTemplateExt"
        },
        "Correspondence.Notification.EmailSubject": {"type": "string"},
        "Correspondence.Notification.EmailBody": {"type": "string"},
        "Correspondence.Notification.SmsBody": {"type": "string"},
        "Correspondence.Notification.SendReminder": {"type": "boolean"},
        "Correspondence.Notification.ReminderEmailSubject": {"type": "string"},
        "Correspondence.Notification.ReminderEmailBody": {"type": "string"},
        "Correspondence.Notification.ReminderSmsBody": {"type": "string"},
        "Correspondence.Notification.NotificationChannel": {
            "$ref": "#/components/schemas/NotificationChannelExt"
        },
        "Correspondence.Notification.ReminderNotificationChannel": {
            "$ref": "#/components/schemas/NotificationChannelExt"
        },
        "Correspondence.Notification.SendersReference": {"type": "string"},
        "Correspondence.Notification.RequestedSendTime": {"type": "string", "format": "date-time"},
        "Correspondence.IgnoreReservation": {"type": "boolean"},
        "Correspondence.Published": {"type": "string", "format": "date-time"},
        "Correspondence.IsConfirmationNeeded": {"type": "boolean"},
        "Recipients": {"type": "array", "items": {"type": "string"}},
        "ExistingAttachments": {"type": "array", "items": {"type": "string", "format": "uuid"}},
        "attachments": {"type": "array", "items": {"type": "string", "format": "binary"}},
        "Correspondence.IsConfidential": {"type": "boolean"},
        "Correspondence.AllowForwarding": {"type": "boolean"},
        "IdempotentKey": {"type": "string", "format": "uuid"},
    },
}
