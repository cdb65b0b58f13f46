"""Download all: a zip of ≥ 2 GB of attachments streamed by `correspondence serve` from the file
store, its speed and the server's memory while it streams.

One file of random bytes is uploaded N times (N attachments, two of them with the same name, so
one entry is renamed), sent in one correspondence, and the recipient downloads
`GET …/correspondence/{id}/attachments/downloadall` with `curl -o /dev/null` (timed, the `serve`
process's RSS sampled every 10 ms); then once more into a file that Python's zipfile opens and
reads back entry by entry (each entry's CRC-32 checked and its MD5 compared with the source file).

    .venv/bin/python bench/download_all.py                       # 4 × 500 MB = 2.0 GB (the limit)
    .venv/bin/python bench/download_all.py --files 1 --file-mb 4400   # one 4.4 GB entry: ZIP64
    .venv/bin/python bench/download_all.py --files 2 --file-mb 50 --no-report   # a quick smoke run

Past the reference's 2,000,000,000-byte limit the script raises CORRESPONDENCE_DOWNLOAD_ALL_MAX_BYTES
for its server. Everything goes under bench/out/download_all (gitignored) and is deleted at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import time
import zipfile
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import upload as up
from common import replace_section

BENCH = Path(__file__).resolve().parent
OUT = BENCH / "out" / "download_all"
RESULTS = BENCH / "RESULTS.md"
MB = 1_000_000
REFERENCE_LIMIT = 2_000_000_000
ZIP64_NOTE = (
    "- Every entry is over 4 GiB: ZIP64 sizes in its headers and descriptor, ZIP64 offsets from the "
    "second entry on, and the ZIP64 end record."
)


def source_file(size: int) -> tuple[Path, str]:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / "source.bin"
    up.log(f"writing {size / MB:,.0f} MB of random bytes to {path}")
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("wb") as out:
        left = size
        while left:
            chunk = os.urandom(min(8 * 1024 * 1024, left))
            out.write(chunk)
            digest.update(chunk)
            left -= len(chunk)
    return path, digest.hexdigest()


def attach(service: up.Service, sender: str, file: Path, md5: str, name: str) -> str:
    auth = f"Authorization: Bearer {sender}"
    body = {"resourceId": up.RESOURCE, "fileName": name, "sendersReference": "bench", "checksum": md5}
    init = up.curl(
        "-X", "POST", f"{service.base}{up.API}/attachment", "-H", auth,
        "-H", "Content-Type: application/json", "--data", json.dumps(body),
    )  # fmt: skip
    attachment_id: str = json.loads(init["body"])
    uploaded = up.curl(
        "-X", "POST", f"{service.base}{up.API}/attachment/{attachment_id}/upload", "-H", auth,
        "-H", "Content-Type: application/octet-stream", "-H", "Expect:", "-T", str(file),
    )  # fmt: skip
    if json.loads(uploaded["body"])["status"] != "Published":
        raise RuntimeError(f"upload did not publish: {uploaded['body']}")
    return attachment_id


def send(service: up.Service, sender: str, person: str, attachments: list[str]) -> str:
    auth = f"Authorization: Bearer {sender}"
    body = {
        "correspondence": {
            "resourceId": up.RESOURCE,
            "sendersReference": "bench",
            "content": {"language": "nb", "messageTitle": "Alle vedlegg", "messageBody": "Vedlegg"},
        },
        "recipients": [person],
        "existingAttachments": attachments,
    }
    created = up.curl(
        "-X", "POST", f"{service.base}{up.API}/correspondence", "-H", auth,
        "-H", "Content-Type: application/json", "--data", json.dumps(body),
    )  # fmt: skip
    cid: str = json.loads(created["body"])["correspondences"][0]["correspondenceId"]
    deadline = time.monotonic() + 60
    while (
        json.loads(up.curl(f"{service.base}{up.API}/correspondence/{cid}", "-H", auth)["body"])["status"]
        != "Published"
    ):
        if time.monotonic() > deadline:
            raise RuntimeError(f"correspondence {cid} not published")
        time.sleep(0.1)
    return cid


def verify(path: Path, names: list[str], size: int, md5: str) -> None:
    """Every entry has the source's bytes: zipfile checks each CRC-32 at the entry's end."""
    with zipfile.ZipFile(path) as archive:
        found = [(i.filename, i.file_size, i.compress_type) for i in archive.infolist()]
        expected = [(n, size, zipfile.ZIP_STORED) for n in names]
        if found != expected:
            raise RuntimeError(f"entries {found}, expected {expected}")
        for name in names:
            digest = hashlib.md5(usedforsecurity=False)
            with archive.open(name) as entry:
                while block := entry.read(8 * 1024 * 1024):
                    digest.update(block)
            if digest.hexdigest() != md5:
                raise RuntimeError(f"{name} differs from the uploaded file")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--files", type=int, default=4)
    parser.add_argument("--file-mb", type=int, default=500, help="each file, MB = 10⁶ bytes")
    parser.add_argument("--runs", type=int, default=2, help="timed downloads")
    parser.add_argument("--no-report", action="store_true", help="leave bench/RESULTS.md alone")
    opts = parser.parse_args()
    size, count = opts.file_mb * MB, opts.files
    total = size * count
    shutil.rmtree(OUT, ignore_errors=True)
    file, md5 = source_file(size)
    data = OUT / "data"
    data.mkdir(parents=True)
    info, rev, when = up.machine(), up.revision(), datetime.now(UTC)
    service = up.Service(data)
    if total > REFERENCE_LIMIT:
        service.env["CORRESPONDENCE_DOWNLOAD_ALL_MAX_BYTES"] = str(total)
    names = [f"vedlegg-{i}.pdf" for i in range(count)]
    if count >= 2:
        names[1] = names[0]  # a duplicate: the zip names it vedlegg-0(1).pdf
    try:
        up.log(f"starting correspondence serve on {service.base}")
        service.start()
        assert service.process is not None
        pid = service.process.pid
        sender = service.cli("token", "--org", up.OWNER, "--scope", "altinn:correspondence.write")
        person = "11035066626"
        recipient = service.cli("token", "--pid", person, "--scope", "altinn:correspondence.read")
        up.log(f"uploading {count} × {size / MB:,.0f} MB")
        ids = [attach(service, sender, file, md5, name) for name in names]
        file.unlink()  # the store has its copies
        cid = send(service, sender, person, ids)
        url = f"{service.base}{up.API}/correspondence/{cid}/attachments/downloadall"
        auth = f"Authorization: Bearer {recipient}"
        rows: list[tuple[int, int, float, float, float, int]] = []
        for run in range(1, opts.runs + 1):
            before = up.rss(pid)
            with up.Sampler(pid) as sampled:
                started = time.perf_counter()
                got = up.curl(url, "-H", auth, "-o", "/dev/null")
                seconds = time.perf_counter() - started
            zip_bytes = int(got["size_download"])
            growth = max(0, sampled.peak - before) / MB
            mbps = zip_bytes / MB / seconds
            rows.append((run, zip_bytes, seconds, mbps, growth, before))
            up.log(
                f"run {run}: {zip_bytes:,} bytes in {seconds:.2f} s, {mbps:,.0f} MB/s, RSS +{growth:.1f} MB"
            )
        up.log("downloading once more into a file and reading it back with zipfile")
        check = OUT / "check.zip"
        up.curl(url, "-H", auth, "-o", str(check))
        entry_names = [names[0], f"{names[0][:-4]}(1).pdf", *names[2:]] if count >= 2 else names
        verify(check, entry_names, size, md5)
        check.unlink()
        up.log("the zip opens and holds each file's exact bytes")
    finally:
        service.stop()
        shutil.rmtree(OUT, ignore_errors=True)
    if opts.no_report:
        return
    argv = sys.argv[1:]
    key = "download-all-zip64" if total >= 2**32 else "download-all"  # one section each
    begin, end = f"<!-- {key}:begin (written by bench/download_all.py) -->", f"<!-- {key}:end -->"
    lines = [
        begin,
        f"## Download all: a zip of {total / MB:,.0f} MB ({count} × {size / MB:,.0f} MB) from the file store",
        "",
        "```bash",
        " ".join([".venv/bin/python", "bench/download_all.py", *argv]),
        "```",
        "",
        f"- Date: {when:%Y-%m-%d %H:%M} UTC. Code: `{rev}`.",
        f"- Machine: {info['cpus']} vCPU ({info['cpu']}), {info['ram_gib']} GiB RAM, Linux {info['kernel']}, "
        f"Python {info['python']}; load average at the start {info['load']} (other work shares the cores).",
        "- Server: `correspondence serve` on 127.0.0.1, file store, embedded PostgreSQL. The recipient's "
        "`GET …/attachments/downloadall` with `curl -o /dev/null`; the zip is written while it streams "
        "(STORE entries, CRC-32 computed on the way, data descriptors, ZIP64 past 4 GiB), each file read "
        "in 1 MiB blocks through the blob store. The files had just been uploaded (in the page cache "
        "as far as it holds them).",
        *([ZIP64_NOTE] if size >= 2**32 else []),
        "- Memory: the `serve` process's RSS sampled every 10 ms; growth = peak during the download minus "
        "the RSS before it. One more download went to a file that Python's zipfile read back: every "
        "entry's CRC-32 and MD5 matched.",
        "",
        "| Run | zip bytes | s | MB/s | RSS growth MB | RSS before MB |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {run} | {zip_bytes:,} | {s:.2f} | {mbps:,.0f} | {growth:.1f} | {before / MB:.0f} |"
        for run, zip_bytes, s, mbps, growth, before in rows
    ]
    lines.append(end)
    replace_section(RESULTS, begin, end, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
