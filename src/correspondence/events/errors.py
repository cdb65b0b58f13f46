"""Errors of the subscriptions API (no upstream numbers: Altinn Events answers plain problems)."""

from __future__ import annotations

from correspondence.kit.errors import PlainError


def subscription_not_found() -> PlainError:
    return PlainError(404, "The subscription was not found.")


def not_your_subscription() -> PlainError:
    return PlainError(403, "The subscription belongs to another party.")


def invalid(detail: str) -> PlainError:
    return PlainError(400, detail)
