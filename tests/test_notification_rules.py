"""The rules behind notification sending that need no server: the SMS window, which channel
reaches whom, and the words."""

from __future__ import annotations

from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest

from correspondence.notification import statuses as st
from correspondence.notification.texts import order_texts, title_case
from correspondence.notification.use_cases.process import Target, normalise_mobile, routes
from correspondence.notification.window import next_sms_time

OSLO = ZoneInfo("Europe/Oslo")
DAY = (time(9, 0), time(17, 0))


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        # Winter (UTC+1): 07:30 UTC is 08:30 in Oslo, so wait for 09:00 Oslo = 08:00 UTC.
        (datetime(2026, 1, 15, 7, 30, tzinfo=UTC), datetime(2026, 1, 15, 8, 0, tzinfo=UTC)),
        (datetime(2026, 1, 15, 12, 0, tzinfo=UTC), datetime(2026, 1, 15, 12, 0, tzinfo=UTC)),
        # 16:00 UTC is 17:00 in Oslo: closed, so tomorrow morning.
        (datetime(2026, 1, 15, 16, 0, tzinfo=UTC), datetime(2026, 1, 16, 8, 0, tzinfo=UTC)),
        # Summer (UTC+2): 09:00 Oslo = 07:00 UTC.
        (datetime(2026, 7, 1, 2, 0, tzinfo=UTC), datetime(2026, 7, 1, 7, 0, tzinfo=UTC)),
        # The night the clocks go forward (29 March 2026): the next opening is 09:00 summer time.
        (datetime(2026, 3, 28, 22, 0, tzinfo=UTC), datetime(2026, 3, 29, 7, 0, tzinfo=UTC)),
    ],
)
def test_sms_wait_for_the_next_opening_in_oslo_time(at: datetime, expected: datetime) -> None:
    assert next_sms_time(at, *DAY, OSLO) == expected


def test_a_window_across_midnight_and_an_empty_window() -> None:
    night = (time(22, 0), time(6, 0))
    at_noon = datetime(2026, 1, 15, 11, 0, tzinfo=UTC)  # 12:00 Oslo
    assert next_sms_time(at_noon, *night, OSLO) == datetime(2026, 1, 15, 21, 0, tzinfo=UTC)
    assert next_sms_time(datetime(2026, 1, 15, 23, 0, tzinfo=UTC), *night, OSLO).hour == 23
    assert next_sms_time(at_noon, time(0, 0), time(0, 0), OSLO) == at_noon


def _party(email: str | None, mobile: str | None, *, reserved: bool = False) -> Target:
    return Target("12345678901", {}, email, mobile, reserved, "Kari")


@pytest.mark.parametrize(
    ("channel", "email", "mobile", "expected"),
    [
        ("Email", "a@b.no", "+4791234567", [(st.EMAIL, "a@b.no", st.EMAIL_NEW)]),
        ("Email", None, "+4791234567", [(st.EMAIL, "12345678901", st.EMAIL_NOT_IDENTIFIED)]),
        ("Sms", "a@b.no", None, [(st.SMS, "12345678901", st.SMS_NOT_IDENTIFIED)]),
        ("SmsPreferred", "a@b.no", None, [(st.EMAIL, "a@b.no", st.EMAIL_NEW)]),
        ("EmailPreferred", None, "+4791234567", [(st.SMS, "+4791234567", st.SMS_NEW)]),
        (
            "EmailAndSms",
            "a@b.no",
            "+4791234567",
            [(st.EMAIL, "a@b.no", st.EMAIL_NEW), (st.SMS, "+4791234567", st.SMS_NEW)],
        ),
    ],
)
def test_the_channel_and_contact_points_decide_the_routes(
    channel: str, email: str | None, mobile: str | None, expected: list[tuple[str, str, str]]
) -> None:
    assert routes(_party(email, mobile), channel) == expected


def test_a_reserved_person_is_recorded_on_the_orders_first_channel() -> None:
    assert routes(_party("a@b.no", "+4791234567", reserved=True), "SmsPreferred") == [
        (st.SMS, "12345678901", st.SMS_RESERVED)
    ]


def test_mobile_numbers_are_normalised_like_the_reference() -> None:
    assert normalise_mobile("004791234567") == "+4791234567"
    assert normalise_mobile("912 34 567") == "+4791234567"
    assert normalise_mobile("+46701234567") == "+46701234567"


def test_register_names_are_title_cased() -> None:
    assert title_case("BLÅBÆR OG SØNN AS") == "Blåbær Og Sønn As"


def test_custom_message_texts_are_the_senders_and_reminders_fall_back_to_the_main_content_type() -> None:
    request = {
        "emailSubject": "Emne",
        "emailBody": "<p>Kropp</p>",
        "emailContentType": "Html",
        "smsBody": "Sms",
        "reminderEmailSubject": "Husk",
        "reminderEmailBody": "<p>Husk</p>",
    }
    main = order_texts(request, template=0, language="nb", reminder=False)
    assert (main.email_subject, main.email_body, main.sms_body, main.html) == (
        "Emne",
        "<p>Kropp</p>",
        "Sms",
        True,
    )
    reminder = order_texts(request, template=0, language="nb", reminder=True)
    assert (reminder.email_subject, reminder.html, reminder.sms_body) == ("Husk", True, "")


def test_the_generic_template_in_nynorsk() -> None:
    texts = order_texts({"smsBody": "Sjå vedtaket."}, template=1, language="nn", reminder=False)
    assert texts.email_subject == "Ein melding har blitt motteke i Altinn"
    assert texts.sms_body == (
        "Hei. $correspondenceRecipientName$ har motteke ei ny melding frå $sendersName$. "
        "Sjå vedtaket. Logg deg inn i Altinn for å sjå denne meldinga."
    )
