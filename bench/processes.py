"""Initialize with one and with several API processes: runs bench/initialize.py once per
`serve --workers N` (short windows, a smaller pre-fill) and writes the side-by-side section
"API processes" of bench/RESULTS.md.

    .venv/bin/python bench/processes.py [--workers 1,2] [--only a,b] [--duration 10] [--prefill 100000]

Each run sets up its own embedded PostgreSQL (bench/initialize.py does), so the runs are
independent; raw measurements go to bench/out/processes-N.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import BENCH, OUT, ROOT, log, replace_section

BEGIN = "<!-- processes:begin (bench/processes.py rewrites this section) -->"
ANALYSIS = ("<!-- processes-analysis:begin -->", "<!-- processes-analysis:end -->")
END = "<!-- processes:end -->"


def run(workers: int, opts: argparse.Namespace) -> dict[str, Any]:
    out = OUT / f"processes-{workers}.json"
    out.unlink(missing_ok=True)
    cmd = [
        sys.executable,
        str(BENCH / "initialize.py"),
        "--no-report",
        "--api-workers",
        str(workers),
        "--json-out",
        str(out),
        "--runs",
        str(opts.runs),
        "--only",
        opts.only,
        "--duration",
        str(opts.duration),
        "--warmup",
        str(opts.warmup),
        "--prefill",
        str(opts.prefill),
        "--max-wait",
        str(opts.max_wait),
        "--retries",
        str(opts.retries),
    ]
    log(f"serve --workers {workers}: {' '.join(cmd[1:])}")
    subprocess.run(cmd, cwd=ROOT, check=True)
    data: dict[str, Any] = json.loads(out.read_text())
    return data


def section(results: dict[int, dict[str, Any]], argv: list[str], started: datetime) -> str:
    any_run = next(iter(results.values()))
    machine = any_run["machine"]
    lines = [
        BEGIN,
        "## API processes: `serve --workers 1` and `--workers 2` (bench/processes.py)",
        "",
        f"Run {started:%Y-%m-%d %H:%M} UTC with `{' '.join(argv)}`: bench/initialize.py's scenarios against "
        "`correspondence serve --no-worker --workers N` (N uvicorn processes sharing the port), the same "
        "embedded PostgreSQL set-up, a smaller pre-fill and short windows. "
        f"Machine: {machine.get('cpu', '?')}, {machine.get('nproc', '?')} cores; "
        f"{machine.get('source', '')}.",
        "",
        "| Scenario | API processes | Run | req/s | correspondences/s | p50 ms | p99 ms | non-2xx "
        "| server CPU % | PostgreSQL CPU % | wrk CPU % | others' CPU % |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    rows = [(m, n) for n, data in sorted(results.items()) for m in data["runs"]]
    rows.sort(key=lambda r: (r[0]["scenario"], r[1], r[0]["run"]))
    for m, n in rows:
        lines.append(
            f"| {m['label']} | {n} | {m['run']} | {m['rps']:,.0f} | {m['cps']:,.0f} | {m['p50_ms']:.1f} "
            f"| {m['p99_ms']:.1f} | {m['non2xx'] + m['socket_errors']} | {m['server_cpu']:.0f} "
            f"| {m['pg_cpu']:.0f} | {m['wrk_cpu']:.0f} | {m['other_cpu']:.0f} |"
        )
    lines += [
        "",
        "CPU % is of one core (200 % = both cores of this machine); server CPU counts every process of "
        "`serve` (parent and API processes). Others' CPU is what processes outside the benchmark used "
        "during the window: this machine is shared, so where it is high the numbers are noisy.",
        "",
        "<!-- processes-analysis:begin -->",
        "_(analysis to be written after looking at the numbers)_",
        "<!-- processes-analysis:end -->",
        END,
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--workers", default="1,2", help="API process counts to compare")
    parser.add_argument("--only", default="a,b", help="bench/initialize.py scenario keys")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--prefill", type=int, default=100_000)
    parser.add_argument("--max-wait", type=float, default=20, help="seconds to wait for a quiet machine")
    parser.add_argument("--retries", type=int, default=1)
    parser.add_argument("--report", type=Path, default=BENCH / "RESULTS.md")
    opts = parser.parse_args()
    argv = [".venv/bin/python", "bench/processes.py", *sys.argv[1:]]
    started = datetime.now(UTC)
    results = {n: run(n, opts) for n in (int(w) for w in opts.workers.split(","))}
    text = section(results, argv, started)
    current = opts.report.read_text(encoding="utf-8") if opts.report.exists() else ""
    if "<!-- processes-analysis:begin -->" in current:  # keep the analysis written by hand
        kept = current.split("<!-- processes-analysis:begin -->", 1)[1].split(
            "<!-- processes-analysis:end -->"
        )[0]
        text = text.replace("\n_(analysis to be written after looking at the numbers)_\n", kept)
    replace_section(opts.report, BEGIN, END, text)
    log(f"wrote {opts.report}")


if __name__ == "__main__":
    main()
