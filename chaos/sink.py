"""A counting HTTP receiver for the fault-injection scenarios, in its own process so it can be
stopped (a subscriber or gateway that is down) and started again on the same port, its counts
kept in a file: `python chaos/sink.py PORT LOG_FILE` prints `READY` once it listens on 127.0.0.1,
then answers every POST with 200 and appends one line per POST to LOG_FILE: `W <webhook-id>` for
a webhook delivery, `S <to>` for an SMS gateway request (`{"to", "from", "body"}`). The line is
written before the answer, so a delivery the service saw accepted is always counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys

import orjson

OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: application/json\r\n\r\n{}"


async def main(port: int, log_path: str) -> None:
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers = {}
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                if "webhook-id" in headers:
                    record = f"W {headers['webhook-id']}\n"
                else:
                    record = f"S {orjson.loads(body or b'{}').get('to')}\n"
                os.write(fd, record.encode())
                writer.write(OK)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024, reuse_address=True)
    print("READY", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(int(sys.argv[1]), sys.argv[2]))
