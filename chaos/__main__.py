"""Run the fault-injection scenarios and print (and with --report, write) the table.

    .venv/bin/python -m chaos                      # full size (make chaos); writes docs/RELIABILITY.md
    .venv/bin/python -m chaos --size short --no-report --only kill-serve,outages

PostgreSQL: --database-url, else CORRESPONDENCE_TEST_DATABASE_URL, else a server of its own in a
temporary directory (the PostgreSQL-restart scenario always starts its own).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from chaos import harness as h
from chaos.scenarios import FULL, SCENARIOS, SHORT, Row, skip_reason

REPORT = h.ROOT / "docs" / "RELIABILITY.md"
BEGIN = "<!-- chaos:begin (written by `make chaos`) -->"
END = "<!-- chaos:end -->"
HEADER = (
    "| scenario | acknowledged | lost | duplicated | seconds to recover | details |\n"
    "|---|---|---|---|---|---|"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--size", choices=["short", "full"], default="full")
    parser.add_argument("--only", help="comma-separated scenario names: " + ", ".join(SCENARIOS))
    parser.add_argument("--database-url")
    parser.add_argument("--no-report", action="store_true")
    args = parser.parse_args()
    size = FULL if args.size == "full" else SHORT
    names = args.only.split(",") if args.only else list(SCENARIOS)
    work = Path(tempfile.mkdtemp(prefix="chaos-"))
    own = None
    url = args.database_url or os.environ.get("CORRESPONDENCE_TEST_DATABASE_URL")
    if not url:
        own = h.PostgresServer()
        own.init()
        own.start()
        url = own.url
    rows: list[Row] = []
    skipped: list[str] = []
    started = time.monotonic()
    print(HEADER, flush=True)
    try:
        for name in names:
            reason = skip_reason(name)
            if reason:
                skipped.append(f"{name}: skipped, {reason}")
                print(f"| {name} | skipped: {reason} |||||", flush=True)
                continue
            t0 = time.monotonic()
            try:
                row = SCENARIOS[name](url, work, size)
            except Exception as exc:  # one scenario's crash must not hide the others' numbers
                traceback.print_exc()
                row = Row(name, 0, -1, -1, None, notes=[f"scenario failed: {type(exc).__name__}: {exc}"])
            row.details["run s"] = round(time.monotonic() - t0)
            rows.append(row)
            print(row.line(), flush=True)
            for note in row.notes:
                print(f"    note: {note}", flush=True)
            if row.pending:
                print(f"    waits for: {row.pending}", flush=True)
    finally:
        if own is not None:
            own.remove()
    total = time.monotonic() - started
    if not args.no_report:
        write_report(rows, skipped, size.name, total, " ".join(sys.argv[1:]))
    bad = [r for r in rows if r.lost or r.duplicated]
    sys.exit(1 if bad else 0)


def write_report(rows: list[Row], skipped: list[str], size: str, total: float, argv: str) -> None:
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=h.ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    lines = [
        BEGIN,
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()} × {os.cpu_count()} vCPU "
        f"(shared), commit `{commit}`, {size} size, {total / 60:.1f} min in all. Command: `make chaos` "
        f"(= `.venv/bin/python -m chaos{(' ' + argv) if argv else ''}`).",
        "",
        HEADER,
        *(r.line() for r in rows),
        "",
    ]
    for r in rows:
        for note in r.notes:
            lines.append(f"- *{r.scenario}*: {note}")
        if r.pending:
            lines.append(f"- *{r.scenario}* — **waits for**: {r.pending}")
    lines += [f"- {s}" for s in skipped]
    lines.append(END)
    text = REPORT.read_text(encoding="utf-8") if REPORT.exists() else "# Reliability\n"
    section = "\n".join(lines) + "\n"
    if BEGIN in text and END in text:
        before, rest = text.split(BEGIN, 1)
        text = before + section + rest.split(END, 1)[1].lstrip("\n")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    REPORT.write_text(text, encoding="utf-8")
    print(f"wrote {REPORT.relative_to(h.ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
