"""What per-owner limits cost on the hot path (issue 13, part 4).

1. `caller_from_header` (every API request's token check, where the rate limit sits): limits off,
   rate limit on for the caller, and on for others but not the caller; µs per call, best of 5.
2. Initialize (one recipient, one notification) in-process through the ASGI app on the embedded
   PostgreSQL: daily cap off and on (a cap never reached), alternating rounds; µs per request.
   The cap adds one statement (the count's UPSERT) to an Initialize that orders notifications.

Run: `make bench-limits` (hold /tmp/bench.lock while measuring on a shared machine).
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from correspondence.app import create_app
from correspondence.auth.dependencies import caller_from_header
from correspondence.auth.tokens import DevIssuer, TokenValidator
from correspondence.config import Settings
from correspondence.kit.db import create_database_sql, embedded_server_url, with_database
from correspondence.kit.migrate import upgrade
from correspondence.registry import repository as registry
from correspondence.services import Services

ORG = "991825827"
WRITE = "altinn:correspondence.write altinn:serviceowner"


async def token_check(data_dir: Path, n: int = 100_000) -> dict[str, float]:
    base = Settings(data_dir=data_dir, access_log=False)
    issuer = DevIssuer(base.dev_issuer, data_dir, 3600)
    header = "Bearer " + issuer.mint(scope=WRITE, org=ORG)
    variants = {
        "off": base,
        "on": base.model_copy(update={"rate_limit_per_minute": 10**9}),
        "on, caller exempt": base.model_copy(
            update={"rate_limit_per_minute": 10**9, "rate_limit_overrides": {ORG: 0}}
        ),
    }
    out: dict[str, float] = {}
    services = {
        label: Services(s, None, TokenValidator(s, issuer), issuer)  # type: ignore[arg-type]
        for label, s in variants.items()
    }
    best = {label: float("inf") for label in variants}
    for _ in range(5):
        for label, svc in services.items():
            t0 = time.perf_counter()
            for _ in range(n):
                await caller_from_header(svc, header)
            best[label] = min(best[label], (time.perf_counter() - t0) / n)
    for label, seconds in best.items():
        out[label] = seconds * 1e6
        print(f"caller_from_header, rate limit {label}: {seconds * 1e6:.3f} µs", flush=True)
    return out


async def initialize(url: str, data_dir: Path, rounds: int = 6, n: int = 1000) -> dict[str, float]:
    base = Settings(data_dir=data_dir, access_log=False, metrics_enabled=False, sandbox=False)
    conn = await asyncpg.connect(url)
    resource = f"bench-limits-{uuid.uuid4().hex[:8]}"
    await registry.upsert_resource(
        conn,
        resource_id=resource,
        owner_org=ORG,
        title="Bench",
        resource_type="CorrespondenceService",
        confidential="NotConfidential",
        min_auth_level=0,
    )
    await conn.close()
    issuer = DevIssuer(base.dev_issuer, data_dir, 3600)
    headers = {"Authorization": "Bearer " + issuer.mint(scope=WRITE, org=ORG)}
    body: dict[str, Any] = {
        "correspondence": {
            "resourceId": resource,
            "sendersReference": "bench",
            "content": {"language": "nb", "messageTitle": "Tittel", "messageBody": "Tekst"},
            "notification": {"notificationTemplate": "GenericAltinnMessage", "notificationChannel": "Email"},
        },
        "recipients": ["0192:310000001"],
    }
    samples: dict[str, list[float]] = {"cap off": [], "cap on": []}
    apps = {
        "cap off": create_app(base, url, run_worker=False),
        "cap on": create_app(
            base.model_copy(update={"daily_notification_cap": 10**12}), url, run_worker=False
        ),
    }
    for app in apps.values():
        async with app.router.lifespan_context(app):
            pass  # warm the import paths once
    for r in range(rounds):
        for label in list(apps) if r % 2 == 0 else list(reversed(apps)):
            app = apps[label]
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                    for _ in range(50):
                        await client.post("/correspondence/api/v1/correspondence", json=body, headers=headers)
                    t0 = time.perf_counter()
                    for _ in range(n):
                        response = await client.post(
                            "/correspondence/api/v1/correspondence", json=body, headers=headers
                        )
                        assert response.status_code == 200, response.text
                    samples[label].append((time.perf_counter() - t0) / n * 1e6)
    out = {label: statistics.median(v) for label, v in samples.items()}
    for label, us in out.items():
        print(
            f"Initialize in-process, daily {label}: {us:.0f} µs per request "
            f"(median of {rounds} rounds of {n})"
        )
    print(f"difference: {out['cap on'] - out['cap off']:+.0f} µs", flush=True)
    return out


async def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-limits-") as tmp:
        data_dir = Path(tmp)
        await token_check(data_dir)
        server = embedded_server_url(data_dir, database="postgres")
        name = f"bench_limits_{uuid.uuid4().hex[:8]}"
        admin = await asyncpg.connect(server)
        await admin.execute(create_database_sql(name))
        await admin.close()
        url = with_database(server, name)
        await asyncio.to_thread(upgrade, url)
        await initialize(url, data_dir)


if __name__ == "__main__":
    asyncio.run(main())
