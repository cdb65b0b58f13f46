"""A fast local webhook subscriber for bench/events.py: keep-alive HTTP/1.1, answers every POST with
200, counts them, checks the signature of every 100th; `GET /count` answers the count as JSON.

Run: python bench/webhook_sink.py PORT SECRET
"""

from __future__ import annotations

import asyncio
import sys

import orjson

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent.parent / "src"))
from correspondence.events import signing

OK = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"


class Sink:
    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.count = 0
        self.bad_signatures = 0
        self.ids: set[str] = set()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path = lines[0].split(" ")[:2]
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                if method == "GET":
                    payload = orjson.dumps(
                        {"count": self.count, "unique": len(self.ids), "badSignatures": self.bad_signatures}
                    )
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % len(payload) + payload)
                else:
                    self.count += 1
                    self.ids.add(headers.get("webhook-id", ""))
                    if self.count % 100 == 1 and not signing.verify(
                        self.secret,
                        headers["webhook-id"],
                        int(headers["webhook-timestamp"]),
                        body,
                        headers["webhook-signature"],
                    ):
                        self.bad_signatures += 1
                    writer.write(OK)
                del path
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def main() -> None:
    port, secret = int(sys.argv[1]), sys.argv[2]
    sink = Sink(secret)
    server = await asyncio.start_server(sink.handle, "127.0.0.1", port, backlog=1024)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main())
