"""Recall and resume at 100,000 correspondences: how long the set-based statements take.

1. 100,000 correspondences of one resource are initialized (200 requests of 500 recipients, each
   with an e-mail notification and a reminder: 200,000 orders), to be published tomorrow; then
   `POST /ext/api/v1/resources/{id}/recall` purges them all and cancels every order, in one request.
2. The resource is paused, 100,000 more are initialized to be published now (without notifications,
   so no e-mails are written), and the worker runs their publish jobs (they wait); then
   `POST …/resume` enqueues them again, and the worker publishes all of them.

The service runs in-process (ASGI, no HTTP server), on an embedded PostgreSQL under
bench/out/recall; the numbers are wall-clock times of the requests and of the worker's drain.

    .venv/bin/python bench/recall.py                      # 100,000; prints the results
    .venv/bin/python bench/recall.py --recipients 5000    # a quick smoke run
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from correspondence.app import build_worker, create_app
from correspondence.auth.tokens import DevIssuer
from correspondence.config import Settings
from correspondence.kit.db import create_database_sql
from correspondence.kit.migrate import upgrade
from correspondence.services import Services

sys.path.insert(0, str(Path(__file__).parent))
from common import EmbeddedPostgres, db_url, log

OUT = Path(__file__).resolve().parent / "out" / "recall"
OWNER = "991825827"
RESOURCE = "bench-recall"
PER_REQUEST = 500


async def seed(url: str, recipients: int) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            "INSERT INTO resources (resource_id, owner_org) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            RESOURCE,
            OWNER,
        )
        orgs = [str(310_000_000 + i) for i in range(recipients)]
        await conn.copy_records_to_table(
            "contacts",
            records=[(f"urn:altinn:organization:identifier-no:{o}", f"post{o}@example.no") for o in orgs],
            columns=["party", "email"],
        )
        return orgs
    finally:
        await conn.close()


def body(orgs: list[str], publish: datetime, notify: bool) -> dict[str, Any]:
    note = {
        "notificationTemplate": "GenericAltinnMessage",
        "notificationChannel": "Email",
        "sendReminder": True,
    }
    return {
        "correspondence": {
            "resourceId": RESOURCE,
            "sendersReference": f"bench-{uuid.uuid4().hex[:8]}",
            "requestedPublishTime": publish.isoformat(),
            "content": {"language": "nb", "messageTitle": "Vedtak", "messageBody": "Tekst"},
            **({"notification": note} if notify else {}),
        },
        "recipients": [f"0192:{o}" for o in orgs],
    }


async def initialize(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    orgs: list[str],
    publish: datetime,
    notify: bool = True,
) -> float:
    started = time.perf_counter()
    for i in range(0, len(orgs), PER_REQUEST):
        response = await client.post(
            "/correspondence/api/v1/correspondence",
            json=body(orgs[i : i + PER_REQUEST], publish, notify),
            headers=headers,
        )
        assert response.status_code == 200, response.text
    return time.perf_counter() - started


async def drain(services: Services) -> float:
    started = time.perf_counter()
    worker = build_worker(services)
    while await worker.run_once():
        pass
    return time.perf_counter() - started


async def run(url: str, recipients: int) -> dict[str, float]:
    orgs = await seed(url, recipients)
    settings = Settings(data_dir=OUT / "service", access_log=False, mode="development", metrics_enabled=False)
    app = create_app(settings, url, run_worker=False)
    issuer = DevIssuer(settings.dev_issuer, settings.data_dir, 3600)
    headers = {"Authorization": "Bearer " + issuer.mint(scope="altinn:correspondence.write", org=OWNER)}
    results: dict[str, float] = {}
    async with app.router.lifespan_context(app):
        services: Services = app.state.services
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench", timeout=600) as client:
            log(f"initializing {recipients:,} to be published tomorrow")
            await initialize(client, headers, orgs, datetime.now(UTC) + timedelta(days=1))
            log("recalling the resource")
            started = time.perf_counter()
            response = await client.post(f"/ext/api/v1/resources/{RESOURCE}/recall", headers=headers)
            results["recall_seconds"] = time.perf_counter() - started
            assert response.status_code == 200, response.text
            answer = response.json()
            assert answer["purged"] == recipients and answer["remindersCancelled"] == recipients, answer
            log(f"recall: {results['recall_seconds']:.2f} s, {answer}")
            log("recalling it again (nothing left to do)")
            started = time.perf_counter()
            response = await client.post(f"/ext/api/v1/resources/{RESOURCE}/recall", headers=headers)
            results["recall_again_seconds"] = time.perf_counter() - started
            assert response.json()["alreadyPurged"] == recipients

            assert (await client.post(f"/ext/api/v1/resources/{RESOURCE}/pause", headers=headers)).is_success
            log(f"paused; initializing {recipients:,} to be published now")
            await initialize(client, headers, orgs, datetime.now(UTC), notify=False)
            results["held_drain_seconds"] = await drain(services)
            waiting = (await client.get(f"/ext/api/v1/resources/{RESOURCE}", headers=headers)).json()
            assert waiting["waitingToPublish"] == recipients, waiting
            log(f"worker left them waiting in {results['held_drain_seconds']:.2f} s")
            started = time.perf_counter()
            response = await client.post(f"/ext/api/v1/resources/{RESOURCE}/resume", headers=headers)
            results["resume_seconds"] = time.perf_counter() - started
            assert response.status_code == 200, response.text
            log(f"resume: {results['resume_seconds']:.2f} s")
            conn = await asyncpg.connect(url)
            try:
                started = time.perf_counter()
                worker = build_worker(services)
                while await conn.fetchval(
                    "SELECT count(*) FROM correspondences WHERE resource_id = $1 AND status = 1", RESOURCE
                ):
                    await worker.run_once()
                results["publish_after_resume_seconds"] = time.perf_counter() - started
            finally:
                await conn.close()
            log(f"all published {results['publish_after_resume_seconds']:.2f} s after resume")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--recipients", type=int, default=100_000)
    args = parser.parse_args()
    shutil.rmtree(OUT, ignore_errors=True)
    (OUT / "data").mkdir(parents=True)
    pg = EmbeddedPostgres(OUT / "data" / "pgdata")
    try:
        base = pg.start()
        pg.hold()
        name = "bench_recall"

        async def create() -> None:
            conn = await asyncpg.connect(base)
            try:
                await conn.execute(create_database_sql(name))
            finally:
                await conn.close()

        asyncio.run(create())
        url = db_url(base, name)
        upgrade(url)
        results = asyncio.run(run(url, args.recipients))
        for key, value in results.items():
            print(f"{key}: {value:.2f}")
    finally:
        pg.stop()


if __name__ == "__main__":
    main()
