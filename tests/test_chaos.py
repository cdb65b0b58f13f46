"""Nothing lost, nothing sent twice, under crashes, outages and several processes: the scenarios
of chaos/ at a small size (`make chaos` runs them at full size and writes the measured table to
docs/RELIABILITY.md). Real processes are killed by signal at random points, against real
PostgreSQL, the S3 API server, clamd, an SMTP server, an SMS gateway and a webhook receiver.

Each asserts 0 lost (acknowledged but missing or unpublished; an e-mail, SMS, event or file that
never arrived) and 0 duplicated (published twice, an address mailed twice, a retried key answered
with a second copy). Webhook deliveries are at least once: repeats are counted, not failed.
Timings are printed, never asserted. A part that waits for a feature of another branch (503 while
PostgreSQL is down, `serve --workers`) is an xfail or a skip that names it, and passes as soon as
the feature is there."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
from chaos.scenarios import SCENARIOS, SHORT, Row, skip_reason

# Scenarios mostly wait (for leases to run out, for retries, for processes to start), so they run
# side by side; each test collects its own. Threads, not the event loop: a scenario runs event
# loops of its own (asyncio.run), which must not replace the test session's.
PARALLEL = int(os.environ.get("CORRESPONDENCE_CHAOS_PARALLEL", "3"))


@pytest.fixture(scope="module")
def runs(server_url: str) -> Iterator[dict[str, Future[Row]]]:
    with tempfile.TemporaryDirectory(prefix="chaos-test-") as tmp, ThreadPoolExecutor(PARALLEL) as pool:
        # The slowest first (they wait for a dead worker's leases), so the rest fill in beside them.
        order = sorted(SCENARIOS, key=lambda n: n not in ("kill-worker", "fleet"))
        yield {
            name: pool.submit(SCENARIOS[name], server_url, Path(tmp), SHORT)
            for name in order
            if skip_reason(name) is None
        }


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_nothing_is_lost_or_sent_twice(
    name: str, runs: dict[str, Future[Row]], capsys: pytest.CaptureFixture[str]
) -> None:
    reason = skip_reason(name)
    if reason:
        pytest.skip(reason)
    row = runs[name].result()
    with capsys.disabled():
        print("\n" + row.line())
        for note in row.notes:
            print(f"    note: {note}")
    assert row.acknowledged > 0, row
    assert row.lost == 0, row
    assert row.duplicated == 0, row
    # Uploads cut off or killed mid-write leave no bytes behind once the sweeps ran.
    assert row.details.get("orphan objects", 0) == 0, row.notes
    assert row.details.get("incomplete S3 multipart uploads", 0) == 0, row.notes
    if row.pending:
        pytest.xfail(row.pending)
