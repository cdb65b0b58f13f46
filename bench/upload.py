"""Attachment throughput: upload and download of a 1 GB file through `correspondence serve` on
127.0.0.1, on the file store, and the server's peak memory growth while it happens.

The file is sent and received by curl (C, streaming: `-T file`, `-o /dev/null`), so the client's
CPU is small and the numbers are the service's. The server verifies the file's MD5 while it
streams it (the checksum is given when the attachment is initialized), writes it to
`<data dir>/blobs` (fsync'ed before it is renamed into place), and a recipient downloads it
through its correspondence. The server's RSS is sampled every 10 ms; growth is its peak minus its
RSS before the transfer (after a warm-up transfer).

    .venv/bin/python bench/upload.py                # 3 runs of 1 GiB, appends its section to RESULTS.md
    .venv/bin/python bench/upload.py --size-mb 64 --runs 1 --no-report   # a quick smoke run

Everything goes under bench/out/upload (gitignored) and is removed at the end, except the test
file, which is kept for the next run. Targets: ≥ 200 MB/s each way, growth ≤ 64 MB.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import replace_section

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out" / "upload"
RESULTS = BENCH / "RESULTS.md"
BEGIN = "<!-- upload:begin (written by bench/upload.py) -->"
END = "<!-- upload:end -->"
API = "/correspondence/api/v1"
OWNER, RESOURCE = "991825827", "bench-upload"
MB = 1_000_000
TARGET_MBPS, TARGET_GROWTH_MB = 200.0, 64.0
SETUP = """
- Server: `correspondence serve` (uvloop + httptools, job worker in-process) on 127.0.0.1 with the
  **file store** (`<data dir>/blobs`; each upload made durable: writeback started every 16 MiB,
  `fsync` before the rename), no malware scanner, embedded PostgreSQL.
- Upload: `POST …/attachment/{id}/upload` with `curl -T file` (Content-Length, streamed). The
  attachment was initialized with the file's MD5, so the server verifies it while streaming.
- Download: the recipient's `GET …/correspondence/{id}/attachment/{id}/download` with
  `curl -o /dev/null`, twice: *cold* after the stored file was dropped from the page cache
  (`posix_fadvise(DONTNEED)` on that file only), so it is read from disk, then *warm*. One more
  download, not timed, checks the bytes' MD5. MB = 10⁶ bytes.
- Memory: the `serve` process's RSS, sampled every 10 ms; growth = its peak during the transfer
  minus its RSS before it (after a warm-up transfer of the same file).
"""


def log(message: str) -> None:
    print(f"[{datetime.now().strftime('%H:%M:%S')}] {message}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_file(size: int) -> tuple[Path, str]:
    """A file of random bytes (kept between runs) and its MD5."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / f"file-{size}.bin"
    digest_path = path.with_suffix(".md5")
    if path.exists() and path.stat().st_size == size and digest_path.exists():
        return path, digest_path.read_text().strip()
    log(f"writing {size / MB:,.0f} MB of random bytes to {path}")
    digest = hashlib.md5(usedforsecurity=False)
    block = 8 * 1024 * 1024
    with path.open("wb") as out:
        left = size
        while left:
            chunk = os.urandom(min(block, left))
            out.write(chunk)
            digest.update(chunk)
            left -= len(chunk)
    digest_path.write_text(digest.hexdigest())
    return path, digest.hexdigest()


@dataclass
class Sampler:
    """Peak RSS of one process, sampled on a thread."""

    pid: int
    interval: float = 0.01
    peak: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> Sampler:
        process = psutil.Process(self.pid)
        self.peak = process.memory_info().rss

        def run() -> None:
            while not self._stop.is_set():
                try:
                    self.peak = max(self.peak, process.memory_info().rss)
                except psutil.Error:
                    return
                time.sleep(self.interval)

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()


def rss(pid: int) -> int:
    return int(psutil.Process(pid).memory_info().rss)


def curl(*args: str) -> dict[str, Any]:
    """Run curl; return its write-out JSON (with the body, when small, under `body`)."""
    result = subprocess.run(
        ["curl", "-sS", "--fail-with-body", "-w", "\n%{json}", *args], capture_output=True, check=False
    )
    text = result.stdout.decode("utf-8", "replace")
    body, _, meta = text.rpartition("\n")
    if result.returncode != 0:
        raise RuntimeError(
            f"curl {' '.join(args[:3])}… failed ({result.returncode}): {text[-500:]} {result.stderr!r}"
        )
    info: dict[str, Any] = json.loads(meta)
    info["body"] = body
    return info


@dataclass
class Run:
    run: int
    upload_s: float
    upload_mbps: float
    upload_growth_mb: float
    download_s: float  # cold: read from disk
    download_mbps: float
    download_growth_mb: float
    warm_s: float  # warm: from the page cache
    warm_mbps: float
    baseline_rss_mb: float


class Service:
    def __init__(self, data: Path) -> None:
        self.data = data
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "CORRESPONDENCE_DATA_DIR": str(data),
            "CORRESPONDENCE_ACCESS_LOG": "false",
            "CORRESPONDENCE_LOG_LEVEL": "warning",
            "CORRESPONDENCE_MODE": "development",
        }
        for key in list(self.env):
            if key.startswith("CORRESPONDENCE_") and key not in (
                "CORRESPONDENCE_DATA_DIR",
                "CORRESPONDENCE_ACCESS_LOG",
                "CORRESPONDENCE_LOG_LEVEL",
                "CORRESPONDENCE_MODE",
            ):
                del self.env[key]  # the file store, no scanner, embedded PostgreSQL
        self.process: subprocess.Popen[bytes] | None = None

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "correspondence", *args], env=self.env, capture_output=True, check=True
        )
        return done.stdout.decode().strip()

    def start(self) -> None:
        self.cli("resource", "add", RESOURCE, "--owner", OWNER)
        log_file = (self.data / "serve.log").open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "correspondence",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            env=self.env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"serve exited:\n{(self.data / 'serve.log').read_text()}")
            try:
                if httpx.get(self.base + "/health", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError("serve did not become healthy")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


@dataclass
class Transfer:
    upload_s: float
    download_s: float  # cold
    warm_s: float
    upload_peak: int  # bytes of RSS
    download_peak: int  # over both downloads
    url: str  # the recipient's download


def evict(path: Path) -> None:
    """Drop one file's pages from the page cache (it is on disk: the store fsyncs it)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def transfer(service: Service, file: Path, md5: str, sender: str, recipient: str, person: str) -> Transfer:
    """One upload and one download of `file`, timed, with the server's peak RSS during each."""
    assert service.process is not None
    pid = service.process.pid
    auth = f"Authorization: Bearer {sender}"
    init = curl(
        "-X", "POST", f"{service.base}{API}/attachment", "-H", auth, "-H", "Content-Type: application/json",
        "--data", json.dumps({"resourceId": RESOURCE, "fileName": "bench.zip", "sendersReference": "bench",
                              "checksum": md5}),
    )  # fmt: skip
    attachment_id = json.loads(init["body"])
    with Sampler(pid) as up_rss:
        started = time.perf_counter()
        uploaded = curl(
            "-X", "POST", f"{service.base}{API}/attachment/{attachment_id}/upload", "-H", auth,
            "-H", "Content-Type: application/octet-stream", "-H", "Expect:", "-T", str(file),
        )  # fmt: skip
        upload_s = time.perf_counter() - started
    overview = json.loads(uploaded["body"])
    if overview["status"] != "Published" or overview["checksum"] != md5:
        raise RuntimeError(f"upload did not publish the file: {overview}")
    body = {
        "correspondence": {
            "resourceId": RESOURCE,
            "sendersReference": "bench",
            "content": {"language": "nb", "messageTitle": "Benchmark", "messageBody": "Vedlegg"},
        },
        "recipients": [person],
        "existingAttachments": [attachment_id],
    }
    created = curl(
        "-X", "POST", f"{service.base}{API}/correspondence", "-H", auth,
        "-H", "Content-Type: application/json", "--data", json.dumps(body),
    )  # fmt: skip
    cid = json.loads(created["body"])["correspondences"][0]["correspondenceId"]
    deadline = time.monotonic() + 60
    while True:  # the worker in `serve` publishes it
        status = json.loads(curl(f"{service.base}{API}/correspondence/{cid}", "-H", auth)["body"])["status"]
        if status == "Published":
            break
        if time.monotonic() > deadline:
            raise RuntimeError(f"correspondence {cid} not published: {status}")
        time.sleep(0.1)
    url = f"{service.base}{API}/correspondence/{cid}/attachment/{attachment_id}/download"
    evict(service.data / "blobs" / "attachments" / attachment_id)
    seconds: list[float] = []
    with Sampler(pid) as down_rss:
        for _ in range(2):  # cold, then warm
            started = time.perf_counter()
            downloaded = curl(url, "-H", f"Authorization: Bearer {recipient}", "-o", "/dev/null")
            seconds.append(time.perf_counter() - started)
            if int(downloaded["size_download"]) != file.stat().st_size:
                raise RuntimeError(
                    f"downloaded {downloaded['size_download']} bytes, not {file.stat().st_size}"
                )
    return Transfer(upload_s, seconds[0], seconds[1], up_rss.peak, down_rss.peak, url)


def verify_download(recipient: str, url: str, md5: str) -> None:
    digest = hashlib.md5(usedforsecurity=False)
    with httpx.stream("GET", url, headers={"Authorization": f"Bearer {recipient}"}, timeout=120) as response:
        for chunk in response.iter_bytes(1024 * 1024):
            digest.update(chunk)
    if digest.hexdigest() != md5:
        raise RuntimeError("the downloaded bytes differ from the uploaded ones")


def machine() -> dict[str, str]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": str(os.cpu_count()),
        "cpu": cpu,
        "ram_gib": f"{psutil.virtual_memory().total / 2**30:.1f}",
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def revision() -> str:
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, check=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "src"], cwd=ROOT, capture_output=True, check=True
        )
        return rev.stdout.decode().strip() + (
            " + uncommitted changes in src/" if dirty.stdout.strip() else ""
        )
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def report(
    runs: list[Run], size: int, argv: list[str], info: dict[str, str], rev: str, when: datetime
) -> str:
    best_up = max(r.upload_mbps for r in runs)
    best_down = max(r.download_mbps for r in runs)
    med_up = statistics.median(r.upload_mbps for r in runs)
    med_down = statistics.median(r.download_mbps for r in runs)
    growth = max(max(r.upload_growth_mb, r.download_growth_mb) for r in runs)

    def verdict(ok: bool) -> str:
        return "**met**" if ok else "**not met**"

    lines = [
        BEGIN,
        "## Attachments: upload and download of a 1 GB file",
        "",
        "```bash",
        " ".join([".venv/bin/python", "bench/upload.py", *argv]),
        "```",
        "",
        f"- Date: {when:%Y-%m-%d %H:%M} UTC. Code: `{rev}`.",
        f"- Machine: {info['cpus']} vCPU ({info['cpu']}), {info['ram_gib']} GiB RAM, Linux {info['kernel']}, "
        f"Python {info['python']}; load average at the start {info['load']}. curl, the API and PostgreSQL "
        "share the cores.",
        f"- File: {size:,} bytes of random data.",
        *SETUP.strip("\n").splitlines(),
        "",
        "| Run | upload s | upload MB/s | upload RSS growth MB | download (cold) s | download (cold) MB/s "
        "| download (warm) MB/s | download RSS growth MB | RSS before MB |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        lines.append(
            f"| {r.run} | {r.upload_s:.2f} | {r.upload_mbps:,.0f} | {r.upload_growth_mb:.1f} "
            f"| {r.download_s:.2f} | {r.download_mbps:,.0f} | {r.warm_mbps:,.0f} "
            f"| {r.download_growth_mb:.1f} | {r.baseline_rss_mb:.0f} |"
        )
    lines += [
        "",
        f"- Upload: median {med_up:,.0f} MB/s, best {best_up:,.0f} MB/s — target ≥ {TARGET_MBPS:.0f} MB/s "
        f"{verdict(med_up >= TARGET_MBPS)} (median).",
        f"- Download from disk (cold): median {med_down:,.0f} MB/s, best {best_down:,.0f} MB/s — "
        f"target ≥ {TARGET_MBPS:.0f} MB/s {verdict(med_down >= TARGET_MBPS)} (median); from the page "
        f"cache (warm): median {statistics.median(r.warm_mbps for r in runs):,.0f} MB/s.",
        f"- Peak RSS growth: {growth:.1f} MB at most — target ≤ {TARGET_GROWTH_MB:.0f} MB "
        f"{verdict(growth <= TARGET_GROWTH_MB)}.",
        END,
    ]
    return "\n".join(lines) + "\n"


def write_section(section: str) -> None:
    """Replace this script's section of RESULTS.md, or append it; the rest is left alone."""
    replace_section(RESULTS, BEGIN, END, section)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="file size in MiB (default 1024 = 1 GiB)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-report", action="store_true", help="leave bench/RESULTS.md alone")
    opts = parser.parse_args()
    if shutil.which("curl") is None:
        sys.exit("curl is needed (apt-get install curl)")
    size = opts.size_mb * 1024 * 1024
    file, md5 = test_file(size)
    data = OUT / "data"
    shutil.rmtree(data, ignore_errors=True)
    data.mkdir(parents=True)
    info, rev, when = machine(), revision(), datetime.now(UTC)
    service = Service(data)
    runs: list[Run] = []
    try:
        log(f"starting correspondence serve on {service.base} (data under {data})")
        service.start()
        sender = service.cli("token", "--org", OWNER, "--scope", "altinn:correspondence.write")
        person = "11035066626"
        recipient = service.cli("token", "--pid", person, "--scope", "altinn:correspondence.read")
        assert service.process is not None
        log("warm-up transfer")
        last = transfer(service, file, md5, sender, recipient, person)
        for run in range(1, opts.runs + 1):
            before = rss(service.process.pid)
            last = transfer(service, file, md5, sender, recipient, person)
            result = Run(
                run,
                last.upload_s,
                size / MB / last.upload_s,
                max(0, last.upload_peak - before) / MB,
                last.download_s,
                size / MB / last.download_s,
                max(0, last.download_peak - before) / MB,
                last.warm_s,
                size / MB / last.warm_s,
                before / MB,
            )
            runs.append(result)
            log(
                f"run {run}: upload {result.upload_mbps:,.0f} MB/s (+{result.upload_growth_mb:.1f} MB RSS), "
                f"download {result.download_mbps:,.0f} MB/s cold, {result.warm_mbps:,.0f} warm "
                f"(+{result.download_growth_mb:.1f} MB RSS)"
            )
        log("checking the downloaded bytes")
        verify_download(recipient, last.url, md5)
    finally:
        service.stop()
        shutil.rmtree(data, ignore_errors=True)
    section = report(runs, size, sys.argv[1:], info, rev, when)
    print(section)
    if not opts.no_report:
        write_section(section)
        log(f"wrote its section of {RESULTS}")


if __name__ == "__main__":
    main()
