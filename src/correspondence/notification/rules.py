"""Validation of a correspondence's `notification` block at initialize (behaviour.md §5.2)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from correspondence.correspondence.schemas import (
    CHANNEL_NAMES,
    InitializeCorrespondenceNotificationExt,
    NotificationChannelExt,
)
from correspondence.kit.numbers import parse_int
from correspondence.kit.text import (
    is_valid_email,
    is_valid_mobile,
    normalise_mobile,
)
from correspondence.notification import errors
from correspondence.notification.templates import (
    ALTINN2_MESSAGE,
    CUSTOM_MESSAGE,
    GENERIC_ALTINN_MESSAGE,
    find_template,
)


class InvalidTemplate(Exception):
    """An undefined template number: the reference answers a bare JSON string."""


_TEMPLATE_NAMES = {"custommessage": CUSTOM_MESSAGE, "genericaltinnmessage": GENERIC_ALTINN_MESSAGE}


def parse_template(value: int | str | None) -> int:
    if value is None:
        return CUSTOM_MESSAGE
    if isinstance(value, bool):
        raise InvalidTemplate
    if isinstance(value, int):
        if value in (CUSTOM_MESSAGE, GENERIC_ALTINN_MESSAGE, ALTINN2_MESSAGE):
            return value
        raise InvalidTemplate
    key = value.strip().lower()
    if key in _TEMPLATE_NAMES:
        return _TEMPLATE_NAMES[key]
    number = parse_int(key)
    if number is not None:
        return parse_template(number)
    raise InvalidTemplate


@dataclass(frozen=True)
class NotificationPlan:
    """What the orders need: template, channels, texts and any custom recipients."""

    template: int
    channel: int
    reminder_channel: int
    send_reminder: bool
    override_registered: bool
    custom_recipients: list[dict[str, str]]
    stored: dict[str, Any]  # the validated request, kept with the content for sending


def _blank(value: str | None) -> bool:
    return value is None or not value.strip()


def validate_notification(
    notification: InitializeCorrespondenceNotificationExt, *, language: str, recipient_count: int
) -> NotificationPlan:
    template = parse_template(notification.notificationTemplate)
    if find_template(template, language) is None:
        raise errors.TEMPLATE_NOT_FOUND()
    custom = notification.effective_custom_recipients()
    if notification.overrideRegisteredContactInformation and not custom:
        raise errors.OVERRIDE_WITHOUT_CUSTOM()
    plans: list[dict[str, str]] = []
    if custom:
        if recipient_count > 1:
            raise errors.CUSTOM_WITH_MULTIPLE()
        texts = [
            notification.emailSubject,
            notification.emailBody,
            notification.smsBody,
            notification.reminderEmailSubject,
            notification.reminderEmailBody,
            notification.reminderSmsBody,
        ]
        uses_name = any(t is not None and "$recipientname$" in t.lower() for t in texts)
        for r in custom:
            given = {
                k: v
                for k, v in (
                    ("organizationNumber", r.organizationNumber),
                    ("nationalIdentityNumber", r.nationalIdentityNumber),
                    ("emailAddress", r.emailAddress),
                    ("mobileNumber", r.mobileNumber),
                )
                if not _blank(v)
            }
            if not given:
                raise errors.CUSTOM_NO_ID()
            if len(given) > 1:
                raise errors.CUSTOM_MULTIPLE_IDS()
            if uses_name and ("emailAddress" in given or "mobileNumber" in given):
                raise errors.RECIPIENT_NAME_WITH_OVERRIDE()
            kind, given_value = next(iter(given.items()))
            value = (given_value or "").strip()
            if kind == "emailAddress" and not is_valid_email(value):
                raise errors.INVALID_EMAIL()
            if kind == "mobileNumber":
                if not is_valid_mobile(value):
                    raise errors.INVALID_MOBILE()
                value = normalise_mobile(value)
            plans.append({kind: value})
    channel = notification.notificationChannel
    reminder_channel = notification.reminderNotificationChannel or channel
    if template == CUSTOM_MESSAGE:
        _check_texts(notification, channel, reminder_channel)
    stored = notification.model_dump(mode="json", by_alias=True, exclude_none=True)
    stored["notificationTemplate"] = template
    stored["reminderNotificationChannel"] = reminder_channel.name
    stored.pop("customRecipient", None)
    stored.pop("customNotificationRecipients", None)
    stored["customRecipients"] = plans
    return NotificationPlan(
        template=template,
        channel=CHANNEL_NAMES.index(channel.name),
        reminder_channel=CHANNEL_NAMES.index(reminder_channel.name),
        send_reminder=notification.sendReminder,
        override_registered=notification.overrideRegisteredContactInformation,
        custom_recipients=plans,
        stored=stored,
    )


def _check_texts(
    n: InitializeCorrespondenceNotificationExt,
    channel: NotificationChannelExt,
    reminder: NotificationChannelExt,
) -> None:
    email = not _blank(n.emailBody) and not _blank(n.emailSubject)
    sms = not _blank(n.smsBody)
    r_email = not _blank(n.reminderEmailBody) and not _blank(n.reminderEmailSubject)
    r_sms = not _blank(n.reminderSmsBody)
    C = NotificationChannelExt
    if channel is C.Email and not email:
        raise errors.EMAIL_TEXTS()
    if n.sendReminder and reminder is C.Email and not r_email:
        raise errors.REMINDER_EMAIL_TEXTS()
    if channel is C.Sms and not sms:
        raise errors.SMS_TEXT()
    if n.sendReminder and reminder is C.Sms and not r_sms:
        raise errors.REMINDER_SMS_TEXT()
    if channel in (C.EmailPreferred, C.SmsPreferred) and not (email and sms):
        raise errors.PREFERRED_TEXTS()
    if n.sendReminder and reminder in (C.EmailPreferred, C.SmsPreferred) and not (r_email and r_sms):
        raise errors.REMINDER_PREFERRED_TEXTS()
    if channel is C.EmailAndSms and not (email and sms):
        raise errors.EMAIL_AND_SMS_TEXTS()
    if n.sendReminder and reminder is C.EmailAndSms and not (r_email and r_sms):
        raise errors.REMINDER_EMAIL_AND_SMS_TEXTS()
