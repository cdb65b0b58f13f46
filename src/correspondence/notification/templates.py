"""Notification templates (behaviour.md §1.11): CustomMessage uses the sender's texts whole;
GenericAltinnMessage wraps them in the standard nb/nn/en texts."""

from __future__ import annotations

from dataclasses import dataclass

CUSTOM_MESSAGE = 0
GENERIC_ALTINN_MESSAGE = 1
ALTINN2_MESSAGE = 2


@dataclass(frozen=True)
class TemplateTexts:
    email_subject: str
    email_body: str
    sms_body: str
    reminder_email_subject: str
    reminder_email_body: str
    reminder_sms_body: str


_TOKEN = "{textToken}"
_CUSTOM = TemplateTexts(_TOKEN, _TOKEN, _TOKEN, _TOKEN, _TOKEN, _TOKEN)

_GENERIC = {
    "nb": TemplateTexts(
        "En melding har blitt mottatt i Altinn {textToken}",
        "Hei. $correspondenceRecipientName$ har mottatt en ny melding fra $sendersName$. "
        "{textToken}Logg deg inn i Altinn for å se denne meldingen.",
        "Hei. $correspondenceRecipientName$ har mottatt en ny melding fra $sendersName$. "
        "{textToken}Logg deg inn i Altinn for å se denne meldingen.",
        "Påminnelse - en melding har blitt mottatt i Altinn {textToken}",
        "Hei. Dette er en påminnelse om at $correspondenceRecipientName$ har mottatt en ny melding fra "
        "$sendersName$. {textToken}Logg deg inn i Altinn for å se denne meldingen.",
        "Hei. Dette er en påminnelse om at $correspondenceRecipientName$ har mottatt en ny melding fra "
        "$sendersName$. {textToken}Logg deg inn i Altinn for å se denne meldingen.",
    ),
    "nn": TemplateTexts(
        "Ein melding har blitt motteke i Altinn {textToken}",
        "Hei. $correspondenceRecipientName$ har motteke ei ny melding frå $sendersName$. "
        "{textToken}Logg deg inn i Altinn for å sjå denne meldinga.",
        "Hei. $correspondenceRecipientName$ har motteke ei ny melding frå $sendersName$. "
        "{textToken}Logg deg inn i Altinn for å sjå denne meldinga.",
        "Påminning - ein melding har blitt motteke i Altinn {textToken}",
        "Hei. Dette er ei påminning om at $correspondenceRecipientName$ har motteke ei ny melding frå "
        "$sendersName$. {textToken}Logg deg inn i Altinn for å sjå denne meldinga.",
        "Hei. Dette er ei påminning om at $correspondenceRecipientName$ har motteke ei ny melding frå "
        "$sendersName$. {textToken}Logg deg inn i Altinn for å sjå denne meldinga.",
    ),
    "en": TemplateTexts(
        "A message has been received in Altinn {textToken}",
        "Hello. $correspondenceRecipientName$ has received a new message from $sendersName$. "
        "{textToken}Log in to Altinn to see this message.",
        "Hello. $correspondenceRecipientName$ has received a new message from $sendersName$. "
        "{textToken}Log in to Altinn to see this message.",
        "Reminder - a message has been received in Altinn {textToken}",
        "Hello. This is a reminder that $correspondenceRecipientName$ has received a new message from "
        "$sendersName$. {textToken}Log in to Altinn to see this message.",
        "Hello. This is a reminder that $correspondenceRecipientName$ has received a new message from "
        "$sendersName$. {textToken}Log in to Altinn to see this message.",
    ),
}


def find_template(template: int, language: str) -> TemplateTexts | None:
    """The template row for (template, language or language-neutral); None when there is none."""
    if template == CUSTOM_MESSAGE:
        return _CUSTOM
    if template == GENERIC_ALTINN_MESSAGE:
        return _GENERIC.get(language.lower())
    return None


def fill(template_text: str, sender_text: str | None) -> str:
    """Insert the sender's text where the template says `{textToken}` (behaviour.md §5.3)."""
    inserted = (sender_text + " ") if sender_text else ""
    return template_text.replace(_TOKEN, inserted).strip()
