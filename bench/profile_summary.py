"""Summarise a py-spy `raw` (collapsed stacks) profile of the API server into buckets.

    .venv/bin/python bench/profile_summary.py bench/out/pyspy-a-1.txt

Each sample is put in the bucket of its innermost frame that belongs to a known package or module
(self time), and the most frequent functions are also listed inclusively (share of samples whose stack
contains them). `initialize.py --py-spy` records the profiles and calls this.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

# (bucket, pattern on the frame's file path); the first match from the innermost frame outwards wins.
BUCKETS: list[tuple[str, re.Pattern[str]]] = [
    ("JWT (PyJWT, cryptography)", re.compile(r"(^|/)(jwt|cryptography)/")),
    ("asyncpg (encode, execute, decode, pool)", re.compile(r"(^|/)asyncpg/")),
    ("validation (pydantic)", re.compile(r"(^|/)pydantic(_core)?/")),
    ("FastAPI / Starlette (routing, dependencies, requests)", re.compile(r"(^|/)(fastapi|starlette)/")),
    ("uvicorn / httptools (HTTP parse, send)", re.compile(r"(^|/)(uvicorn|httptools)/")),
    ("markdown (markdown-it)", re.compile(r"(^|/)markdown_it/")),
    ("ids (uuid, uuid_utils)", re.compile(r"(^|/)(uuid\.py|uuid_utils/)")),
    ("JSON (json, orjson)", re.compile(r"(^|/)(json/|orjson)")),
    ("service: auth", re.compile(r"(^|/)correspondence/auth/")),
    ("service: request-context middleware", re.compile(r"(^|/)correspondence/kit/middleware\.py")),
    ("service: wire models and validators", re.compile(r"(^|/)correspondence/(kit/wire|\w+/schemas)\.py")),
    ("service: text rules (recipients, markdown, urls)", re.compile(r"(^|/)correspondence/kit/text\.py")),
    ("service: notification rules", re.compile(r"(^|/)correspondence/notification/")),
    ("service: Initialize use case", re.compile(r"(^|/)correspondence/\w+/use_cases/initialize\.py")),
    ("service: endpoint and repository", re.compile(r"(^|/)correspondence/\w+/(endpoints|repository)\.py")),
    ("service: other", re.compile(r"(^|/)correspondence/")),
    ("event loop (asyncio, uvloop)", re.compile(r"(^|/)(asyncio|uvloop)/")),
]

# Functions listed inclusively: the service's own code (but not the CLI around the server) and the
# framework and driver entry points that say where the rest of the time goes.
_SERVICE = re.compile(r"(^|/)correspondence/(?!cli\.py)")
_KEY = re.compile(
    r"^(solve_dependencies|run_in_threadpool|run_endpoint_function|serialize_response|BaseModel\.model_validate_json"
    r"|Pool\.(fetch|acquire|release)|Connection\.(fetch|execute)|PyJWT\.decode|PyJWS\._verify_signature"
    r"|RequestResponseCycle\.send|HttpToolsProtocol\.data_received|Request\.(body|stream))$"
)

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _parse(line: str) -> tuple[list[tuple[str, str]], int] | None:
    stack, _, count = line.rstrip("\n").rpartition(" ")
    if not stack or not count.isdigit():
        return None
    frames: list[tuple[str, str]] = []
    for raw in stack.split(";"):
        m = _FRAME.match(raw)
        frames.append((m.group("func"), m.group("file")) if m else (raw, ""))
    return frames, int(count)


def summarize(path: Path, cpu_us_per_request: float | None = None, top: int = 25) -> str:
    """Markdown: self time per bucket (and µs per request when the server's CPU per request is known),
    then the functions most often on the stack."""
    buckets: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        parsed = _parse(line)
        if parsed is None:
            continue
        frames, count = parsed
        total += count
        bucket = "other"
        for _, file in reversed(frames):
            hit = next((name for name, pattern in BUCKETS if pattern.search(file)), None)
            if hit is not None:
                bucket = hit
                break
        buckets[bucket] += count
        seen = {
            f"{func} ({Path(file).parent.name}/{Path(file).name})"
            for func, file in frames
            if _SERVICE.search(file) or _KEY.match(func)
        }
        for key in seen:
            inclusive[key] += count
    if total == 0:
        return f"{path}: no samples\n"
    out = [f"{total:,} samples (active time only) from `{path.name}`", ""]
    head = "| Bucket (innermost known frame) | share |" + (" µs / request |" if cpu_us_per_request else "")
    out += [head, "|---|---|" + ("---|" if cpu_us_per_request else "")]
    for name, count in buckets.most_common():
        share = count / total
        row = f"| {name} | {100 * share:.1f} % |"
        if cpu_us_per_request:
            row += f" {share * cpu_us_per_request:,.0f} |"
        out.append(row)
    out += [
        "",
        "| Function on the stack (inclusive: service code and key entry points) | share |",
        "|---|---|",
    ]
    for name, count in inclusive.most_common(top):
        out.append(f"| `{name}` | {100 * count / total:.1f} % |")
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("profile", type=Path, help="py-spy record --format raw output")
    parser.add_argument("--us-per-request", type=float, default=None, help="server CPU µs per request")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    print(summarize(args.profile, args.us_per_request, args.top))


if __name__ == "__main__":
    main()
