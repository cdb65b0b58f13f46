"""The send condition of a notification order (api.md §4.2, behaviour.md §5.6): the one rule that
both the condition endpoints (asked by a notification service just before it sends) and our own
worker (`use_cases/process.py`) apply, so the two cannot disagree."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SendState:
    """What the rule looks at: whether the correspondence has *ever* had these statuses (its
    history, not only its current status), as the reference asks."""

    published: bool
    read: bool
    purged: bool  # PurgedByRecipient or PurgedByAltinn
    failed: bool


def send_condition_met(state: SendState | None, *, reminder: bool) -> bool:
    """Main notifications go out even when the correspondence was read; reminders only while it has
    never been read. Neither when it does not exist, was purged or failed, or was never published.
    Confirming does not stop a reminder (only Read does, as in the reference)."""
    if state is None:
        return False
    if reminder and state.read:
        return False
    if state.purged or state.failed:
        return False
    return state.published
