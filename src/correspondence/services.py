"""The running service's shared parts, wired once at start-up (the composition root's output)."""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg

from correspondence.auth.tokens import DevIssuer, TokenValidator
from correspondence.config import Settings
from correspondence.kit.jobs import Worker
from correspondence.registry.cache import ResourceCache


@dataclass
class Services:
    settings: Settings
    pool: asyncpg.Pool
    validator: TokenValidator
    dev_issuer: DevIssuer | None
    resources: ResourceCache = field(default_factory=ResourceCache)
    worker: Worker | None = None

    def wake_worker(self) -> None:
        if self.worker is not None:
            self.worker.wake()
