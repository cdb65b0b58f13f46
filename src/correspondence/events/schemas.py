"""Wire models of the subscriptions API, shaped like Altinn Events' subscriptions
(`POST /events/api/v1/subscriptions`), so clients written for the platform need few changes."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from correspondence.kit.wire import WireModel


class SubscriptionRequestModel(WireModel):
    endPoint: str = Field(alias="endPoint", min_length=1, max_length=2000)
    resourceFilter: str | None = Field(None, alias="resourceFilter", max_length=300)
    typeFilter: str | None = Field(None, alias="typeFilter", max_length=300)
    subjectFilter: str | None = Field(None, alias="subjectFilter", max_length=300)


class Subscription(WireModel):
    id: int
    endPoint: str
    sourceFilter: str | None
    resourceFilter: str | None
    typeFilter: str | None
    subjectFilter: str | None
    consumer: str
    createdBy: str
    created: datetime
    validated: bool
    # Only in the answer to the create request: the key that signs every delivery.
    secret: str | None = None


class Delivery(WireModel):
    id: int
    eventId: str
    type: str
    resourceinstance: str
    subject: str | None
    time: datetime
    status: str
    attempts: int
    nextAttempt: datetime | None
    lastStatusCode: int | None
    lastError: str | None
    delivered: datetime | None
