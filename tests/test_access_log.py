"""The access log: one JSON line per request, buffered off the request path but never lost on a
normal exit, and silent when the operator turns it off or raises the log level."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from correspondence.kit.logs import AccessLog, trace_id_var


def _lines(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


@pytest.fixture
def pipe(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """The log's file and a descriptor writing to it, as stderr redirected to a file."""
    path = tmp_path / "access.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    yield path, fd
    os.close(fd)


def test_a_request_line_has_the_shape_of_every_log_line(pipe: tuple[Path, int]) -> None:
    r, w = pipe
    log = AccessLog(w)
    token = trace_id_var.set("00-abc-def-01")
    try:
        log.write("POST", "/correspondence/api/v1/correspondence", 200, 12.5)
    finally:
        trace_id_var.reset(token)
    log.flush()
    (line,) = _lines(r)
    assert (
        line["level"] == "info" and line["logger"] == "correspondence.access" and line["message"] == "request"
    )
    assert line["traceId"] == "00-abc-def-01"
    assert (line["method"], line["path"], line["status"], line["durationMs"]) == (
        "POST",
        "/correspondence/api/v1/correspondence",
        200,
        12.5,
    )
    assert isinstance(line["ts"], str) and line["ts"].endswith("Z") and len(line["ts"]) == 24


def test_lines_written_in_the_event_loop_reach_the_log_without_a_flush(
    pipe: tuple[Path, int],
) -> None:
    r, w = pipe
    log = AccessLog(w)

    async def serve() -> list[dict[str, object]]:
        for status in (200, 404, 500):
            log.write("GET", "/x", status, 1.0)
        assert _lines(r) == []  # buffered: not one write per request
        await asyncio.sleep(AccessLog.FLUSH_SECONDS * 4)
        return _lines(r)

    assert [line["status"] for line in asyncio.run(serve())] == [200, 404, 500]


def test_a_full_buffer_is_written_at_once(pipe: tuple[Path, int]) -> None:
    r, w = pipe
    log = AccessLog(w)

    async def serve() -> int:
        count = 0
        while not (lines := _lines(r)):
            log.write("GET", "/" + "x" * 200, 200, 1.0)
            count += 1
            assert count < 10_000
        return len(lines)

    assert asyncio.run(serve()) > 100


def test_the_log_level_turns_it_off() -> None:
    logger = logging.getLogger("correspondence.access")
    before = logger.level
    try:
        logger.setLevel(logging.WARNING)
        assert not AccessLog().enabled()
        logger.setLevel(logging.INFO)
        assert AccessLog().enabled()
    finally:
        logger.setLevel(before)
