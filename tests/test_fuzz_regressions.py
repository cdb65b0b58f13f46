"""Server errors found by tests/test_schemathesis.py, pinned as plain examples (each was a 500)."""

from __future__ import annotations

import httpx

from tests import builders
from tests.conftest import INITIALIZE, Sender


def validation_errors(response: httpx.Response) -> dict[str, list[str]]:
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "STD-00000", response.text
    errors: dict[str, list[str]] = response.json()["errors"]
    return errors


async def test_a_date_time_whose_utc_instant_is_before_year_1_is_a_validation_problem(
    client: httpx.AsyncClient, sender: Sender
) -> None:
    for value in ("0001-01-01T03:02:02.0+04:05", "0001-01-01T00:00:00+00:01"):
        body = builders.initialize_body(sender.resource_id, [builders.national_id()], published=value)
        response = await client.post(INITIALIZE, json=body, headers=sender.headers)
        assert list(validation_errors(response)) == ["Correspondence.Published"]


async def test_nul_characters_are_a_validation_problem(client: httpx.AsyncClient, sender: Sender) -> None:
    body = builders.initialize_body(
        sender.resource_id,
        [builders.national_id()],
        notification_block=builders.notification(emailSubject="Melding\x00"),
        content={"messageTitle": "Tit\x00tel"},
        propertyList={"key\x00": "value"},
    )
    response = await client.post(INITIALIZE, json=body, headers=sender.headers)
    errors = validation_errors(response)
    assert set(errors) == {
        "Correspondence.Notification.EmailSubject",
        "Correspondence.Content.MessageTitle",
        "Correspondence.PropertyList",
    }
    assert errors["Correspondence.PropertyList"] == ["The value cannot contain the NUL character (\\u0000)."]


async def test_a_publish_time_at_the_end_of_time_does_not_overflow_the_reminder(
    client: httpx.AsyncClient, sender: Sender
) -> None:
    body = builders.initialize_body(
        sender.resource_id,
        [builders.national_id()],
        notification_block=builders.notification(),
        requestedPublishTime="9999-12-31T23:59:59Z",
    )
    response = await client.post(INITIALIZE, json=body, headers=sender.headers)
    assert response.status_code == 200, response.text
    cid = response.json()["correspondences"][0]["correspondenceId"]
    details = await client.get(f"{INITIALIZE}/{cid}/details", headers=sender.headers)
    assert details.status_code == 200, details.text
    assert details.json()["requestedPublishTime"].startswith("9999-12-31T23:59:59")


async def test_search_parameters_out_of_range_are_validation_problems(
    client: httpx.AsyncClient, sender: Sender
) -> None:
    cases = {
        "to": "0001-01-01T00:00:00+09:00",  # the UTC instant is before year 1
        "from": "9999-12-31T23:00:00-09:00",  # ... after year 9999
        "offset": "99999999999999999999",  # beyond int32 (the official type), and beyond PostgreSQL's bigint
        "resourceId": "fuzz\x00resource",  # PostgreSQL text cannot hold NUL
        "sendersReference": "ref\x00",
    }
    for name, value in cases.items():
        params = {"resourceId": sender.resource_id, "role": "Sender", name: value}
        response = await client.get(INITIALIZE, params=params, headers=sender.headers)
        assert list(validation_errors(response)) == [name], (name, response.text)
