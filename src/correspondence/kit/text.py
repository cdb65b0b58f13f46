"""Identifier and text rules shared by every slice (api.md §1.3, §6.3, §6.5)."""

from __future__ import annotations

import re
from functools import lru_cache
from urllib.parse import urlsplit

import phonenumbers
from markdown_it import MarkdownIt

from correspondence.kit.numbers import is_ascii_digits

ORG_URN = "urn:altinn:organization:identifier-no:"
PERSON_URN = "urn:altinn:person:identifier-no:"
EMAIL_URN = "urn:altinn:person:idporten-email:"
LEGACY_URN = "urn:altinn:person:legacy-selfidentified:"
RESOURCE_URN = "urn:altinn:resource:"

# An organisation (0192: or URN + 9 digits) or a person (URN optional + 11 digits) as a party.
ORG_PARTY_RE = re.compile(r"^(?:0192:|urn:altinn:organization:identifier-no:)\d{9}\Z")
PERSON_PARTY_RE = re.compile(r"^(?:urn:altinn:person:identifier-no:)?\d{11}\Z")
_EMAIL_URN_RE = re.compile(r"^urn:altinn:person:idporten-email:.+\Z", re.S)
_LEGACY_RE = re.compile(r"^urn:altinn:person:legacy-selfidentified:[^:]+\Z")
_RESOURCE_RE = re.compile(r"^(?:urn:altinn:resource:)?[^:]{1,255}\Z")

RECIPIENT_FORMAT_MESSAGE = (
    "Recipient should be an organization number in the format "
    "'urn:altinn:organization:identifier-no:organizationnumber' or the format "
    "countrycode:organizationnumber, for instance 0192:910753614, a national identity number, "
    "an idporten email URN in the format 'urn:altinn:person:idporten-email:email', or a legacy "
    "selfidentified URN in the format 'urn:altinn:person:legacy-selfidentified:username'"
)
RECIPIENT_SSN_MESSAGE = "The given Recipient national identity number is not valid"
RECIPIENT_EMAIL_MESSAGE = "The given Recipient email address is not valid"


def is_national_identity_number(value: str) -> bool:
    """Norwegian fødselsnummer / d-nummer: 11 digits with two mod-11 control digits."""
    if len(value) != 11 or not is_ascii_digits(value):
        return False
    d = [ord(c) - 48 for c in value]
    k1 = (
        11
        - (3 * d[0] + 7 * d[1] + 6 * d[2] + d[3] + 8 * d[4] + 9 * d[5] + 4 * d[6] + 5 * d[7] + 2 * d[8]) % 11
    )
    if k1 == 11:
        k1 = 0
    if k1 == 10 or k1 != d[9]:
        return False
    k2 = (
        11
        - (
            5 * d[0]
            + 4 * d[1]
            + 3 * d[2]
            + 2 * d[3]
            + 7 * d[4]
            + 6 * d[5]
            + 5 * d[6]
            + 4 * d[7]
            + 3 * d[8]
            + 2 * d[9]
        )
        % 11
    )
    if k2 == 11:
        k2 = 0
    return k2 != 10 and k2 == d[10]


def _valid_email_user(address: str) -> bool:
    return (
        address.count("@") == 1
        and ":" not in address
        and not address.startswith("@")
        and not address.endswith("@")
    )


def check_recipient(value: str) -> str | None:
    """None when `value` is an acceptable recipient, else the reference's validation message."""
    if ORG_PARTY_RE.match(value):
        return None
    if PERSON_PARTY_RE.match(value):
        return None if is_national_identity_number(value[-11:]) else RECIPIENT_SSN_MESSAGE
    if _EMAIL_URN_RE.match(value):
        return None if _valid_email_user(value[len(EMAIL_URN) :]) else RECIPIENT_EMAIL_MESSAGE
    if _LEGACY_RE.match(value):
        return None
    return RECIPIENT_FORMAT_MESSAGE


def normalise_recipient(value: str) -> str:
    """Lower-case and re-prefix as the canonical URN (api.md §1.3); assumes check_recipient passed."""
    lowered = value.lower()
    if lowered.startswith(LEGACY_URN):
        return lowered
    if lowered.startswith(EMAIL_URN):
        return lowered
    bare = lowered.rsplit(":", 1)[-1]
    if len(bare) == 9:
        return ORG_URN + bare
    return PERSON_URN + bare


def is_valid_org_number(value: str) -> bool:
    return len(value) == 9 and is_ascii_digits(value)


def party_urn(identifier: str) -> str | None:
    """An organisation number or national identity number, bare or prefixed, as a party URN."""
    bare = identifier.strip().rsplit(":", 1)[-1]
    if is_valid_org_number(bare):
        return ORG_URN + bare
    if is_national_identity_number(bare):
        return PERSON_URN + bare
    return None


def is_valid_resource_id(value: str) -> bool:
    return bool(_RESOURCE_RE.match(value))


def strip_resource_prefix(value: str) -> str:
    return value[len(RESOURCE_URN) :] if value.startswith(RESOURCE_URN) else value


# --- markdown and plain text ------------------------------------------------------------------


@lru_cache(maxsize=1)
def _md() -> MarkdownIt:
    return MarkdownIt("commonmark").enable(["table", "strikethrough"])


def _has_raw_html(text: str) -> bool:
    for token in _md().parse(text):
        if token.type == "html_block":
            return True
        if token.children and any(child.type == "html_inline" for child in token.children):
            return True
    return False


def is_markdown(text: str) -> bool:
    """The reference accepts ordinary Markdown and rejects raw HTML outside code spans/blocks."""
    if "<" not in text:  # no tag is possible without '<'
        return True
    return not _has_raw_html(text)


_HEADING_RE = re.compile(r"^[ ]{0,3}#{1,6}(?:[ \t]|$)", re.M)
_SETEXT_RE = re.compile(r"\S[^\n]*\n[ ]{0,3}(?:=+|-{2,})[ \t]*(?:\n|$)")


def is_plain_text(text: str) -> bool:
    """Plain text: no HTML markup and no block markup that renders away (headings).

    Emphasis characters, code spans and list markers are tolerated, as in the reference's
    round-trip check (api.md §6.3).
    """
    if "<" in text and _has_raw_html(text):
        return False
    if "#" in text and _HEADING_RE.search(text):
        return False
    return not ("\n" in text and _SETEXT_RE.search(text))


# --- e-mail and mobile numbers (custom notification recipients) ------------------------------

_ATOM = r"[A-Za-z0-9æøåÆØÅ!#$%&'*+\-=?^_`{|}~]+"
_LOCAL = rf'(?:"[^"\r\n]+"|{_ATOM}(?:\.{_ATOM})*)'
_LABEL = r"[A-Za-z0-9æøåÆØÅ](?:[A-Za-z0-9æøåÆØÅ\-]{0,61}[A-Za-z0-9æøåÆØÅ])?"
_DOMAIN = rf"(?:(?:{_LABEL}\.){{1,9}}[A-Za-z]{{2,14}}|\d{{1,3}}\.\d{{1,3}}\.\d{{1,3}}\.\d{{1,3}})"
_EMAIL_RE = re.compile(rf"^{_LOCAL}@{_DOMAIN}\Z")


def is_valid_email(value: str) -> bool:
    return ";" not in value and bool(_EMAIL_RE.match(value))


def normalise_mobile(value: str) -> str:
    v = value.replace(" ", "")
    if v.startswith("00"):
        v = "+" + v[2:]
    return v


def is_valid_mobile(value: str) -> bool:
    v = value.replace(" ", "")
    if not (v.startswith("+") or v.startswith("00")):
        return False
    v = normalise_mobile(v)
    if not is_ascii_digits(v[1:], 32):
        return False
    try:
        number = phonenumbers.parse(v, None)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(number)


def is_https_url(value: str) -> bool:
    """Reply-option links: absolute, well-formed, https, at most 255 characters."""
    if len(value) > 255 or not value.lower().startswith("https://"):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return bool(parts.netloc) and not any(c.isspace() for c in value)
