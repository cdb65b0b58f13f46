"""The words of a notification (behaviour.md §5.3): the template filled with the sender's texts,
then the tokens replaced. We are also the Notifications service, so `$recipientName$` is replaced
here too, per address actually notified."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from correspondence.notification.templates import fill, find_template


@dataclass(frozen=True, slots=True)
class Texts:
    email_subject: str
    email_body: str
    sms_body: str
    html: bool

    def replace(self, tokens: dict[str, str]) -> Texts:
        return Texts(
            replace_tokens(self.email_subject, tokens),
            replace_tokens(self.email_body, tokens),
            replace_tokens(self.sms_body, tokens),
            self.html,
        )


def replace_tokens(text: str, tokens: dict[str, str]) -> str:
    for token, value in tokens.items():
        if token in text:
            text = text.replace(token, value)
    return text


def title_case(name: str) -> str:
    """Register names come in capitals ("BLÅBÆR AS"); notifications show "Blåbær As" like the
    reference's title-casing."""
    return " ".join(word[:1].upper() + word[1:].lower() for word in name.split(" "))


def order_texts(request: dict[str, Any], *, template: int, language: str, reminder: bool) -> Texts:
    """The template row for the content language (nb when it has none), filled with the sender's
    main or reminder texts."""
    row = find_template(template, language) or find_template(template, "nb")
    if row is None:  # validated at Initialize; Altinn2Message has no texts of its own
        row = find_template(0, language)
    assert row is not None
    html_main = str(request.get("emailContentType") or "Plain").lower() == "html"
    if not reminder:
        return Texts(
            fill(row.email_subject, request.get("emailSubject")),
            fill(row.email_body, request.get("emailBody")),
            fill(row.sms_body, request.get("smsBody")),
            html_main,
        )
    reminder_type = request.get("reminderEmailContentType")
    return Texts(
        fill(row.reminder_email_subject, request.get("reminderEmailSubject")),
        fill(row.reminder_email_body, request.get("reminderEmailBody")),
        fill(row.reminder_sms_body, request.get("reminderSmsBody")),
        str(reminder_type).lower() == "html" if reminder_type else html_main,
    )


def correspondence_tokens(
    *,
    message_sender: str | None,
    sender: str,
    sender_name: str | None,
    recipient: str,
    recipient_name: str | None,
    resource_title: str | None,
    resource_id: str,
    message_title: str,
) -> dict[str, str]:
    """Tokens that are the same for every address of an order. Names come from the party
    registry; where it has none, the organisation or person number stands in (the reference's
    Register always knows a name, our local registry may not: "fra ." read badly)."""
    return {
        "$sendersName$": message_sender.strip()
        if message_sender and message_sender.strip()
        else (title_case(sender_name) if sender_name else sender.rsplit(":", 1)[-1]),
        "$correspondenceRecipientName$": title_case(recipient_name)
        if recipient_name
        else recipient.rsplit(":", 1)[-1],
        "$resourceName$": resource_title or resource_id,
        "$messageTitle$": message_title,
    }
