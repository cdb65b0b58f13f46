"""Numbered notification errors (api.md §8.3)."""

from correspondence.kit.errors import ErrorSpec

TEMPLATE_NOT_FOUND = ErrorSpec(
    3001, 404, "The requested notification template with the given language was not found"
)
EMAIL_TEXTS = ErrorSpec(3002, 400, "Email body and subject must be provided when sending email notifications")
REMINDER_EMAIL_TEXTS = ErrorSpec(
    3003, 400, "Reminder email body and subject must be provided when sending reminder email notifications"
)
SMS_TEXT = ErrorSpec(3004, 400, "SMS body must be provided when sending SMS notifications")
REMINDER_SMS_TEXT = ErrorSpec(
    3005, 400, "Reminder SMS body must be provided when sending reminder SMS notifications"
)
PREFERRED_TEXTS = ErrorSpec(
    3006, 400, "Email body, subject and SMS body must be provided when sending preferred notifications"
)
REMINDER_PREFERRED_TEXTS = ErrorSpec(
    3007,
    400,
    "Reminder email body, subject and SMS body must be provided when sending reminder preferred "
    "notifications",
)
INVALID_EMAIL = ErrorSpec(3011, 400, "Invalid email provided for custom recipient.")
INVALID_MOBILE = ErrorSpec(
    3012,
    400,
    "Invalid mobile number provided. Mobile number can contain only '+' and numeric characters, "
    "and it must adhere to the E.164 standard.",
)
RECIPIENT_NAME_WITH_OVERRIDE = ErrorSpec(
    3015,
    400,
    "Recipient overrides with email or mobile number are not allowed when using notification "
    "recipient name because of name lookup",
)
CUSTOM_WITH_MULTIPLE = ErrorSpec(3017, 400, "Custom recipient with multiple recipients is not allowed")
CUSTOM_MULTIPLE_IDS = ErrorSpec(3018, 400, "Custom recipient with multiple identifiers is not allowed")
CUSTOM_NO_ID = ErrorSpec(3019, 400, "Custom recipient without identifier is not allowed")
OVERRIDE_WITHOUT_CUSTOM = ErrorSpec(
    3022,
    400,
    "OverrideRegisteredContactInformation flag can only be used when CustomRecipients is provided",
)
EMAIL_AND_SMS_TEXTS = ErrorSpec(
    3024, 400, "Email body, subject and SMS body must be provided when sending email and SMS notifications"
)
REMINDER_EMAIL_AND_SMS_TEXTS = ErrorSpec(
    3025,
    400,
    "Reminder email body, subject and SMS body must be provided when sending reminder email and SMS "
    "notifications",
)
INVALID_TEMPLATE_TEXT = "Invalid notification template"
