"""The message adapters for developers (outbox files) and the e-mail rendering they share with
SMTP."""

from __future__ import annotations

import email
import email.policy
import json
from pathlib import Path

from correspondence.adapters import open_email_sender, open_sms_gateway
from correspondence.adapters.email import Email, OutboxEmailSender, render
from correspondence.adapters.sms import OutboxSmsGateway, Sms
from correspondence.config import Settings


async def test_without_smtp_or_gateway_messages_are_written_to_the_outbox(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, smtp_from="noreply@etat.example", sandbox=False)
    mailer, gateway = open_email_sender(settings), open_sms_gateway(settings)
    assert isinstance(mailer, OutboxEmailSender)
    assert isinstance(gateway, OutboxSmsGateway)

    await mailer.send(Email("kari@example.no", "Melding frå Skatteetaten", "Hei. Sjå meldinga."))
    await gateway.send(Sms("+4791234567", "Hei"))

    [eml] = list((tmp_path / "outbox" / "email").glob("*.eml"))
    message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
    assert (message["From"], message["To"]) == ("noreply@etat.example", "kari@example.no")
    assert message["Subject"] == "Melding frå Skatteetaten"
    assert message.get_content().strip() == "Hei. Sjå meldinga."
    [line] = (tmp_path / "outbox" / "sms.jsonl").read_text().splitlines()
    assert json.loads(line) | {"at": None} == {
        "to": "+4791234567",
        "from": "Altinn",
        "body": "Hei",
        "at": None,
    }


def test_a_subject_cannot_add_headers() -> None:
    raw = render(Email("a@example.no", "Hei\r\nBcc: spy@example.org", "x"), "noreply@example.no")
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["Bcc"] is None
    assert message["Subject"] == "Hei Bcc: spy@example.org"


def test_long_non_ascii_subjects_are_encoded_in_short_words() -> None:
    subject = "Påminnelse - en melding har blitt mottatt i Altinn " + "æøå " * 40
    raw = render(Email("a@example.no", subject, "x"), "noreply@example.no")
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    assert all(len(line) <= 78 for line in head.split("\r\n"))
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["Subject"] == subject.strip()
