"""A real SMTP server (aiosmtpd) for the notification tests and benchmark, run as its own
process: `python tests/smtp_server.py LOG_FILE` prints `READY <port>` once it listens on
127.0.0.1, then appends one JSON line per accepted message (`{"kind": "message", "to", "from",
"data"}`) and per refused recipient (`{"kind": "refused", "to", "code"}`) to LOG_FILE.

Options: `--port N` listens on that port (0, the default: any free one; a fixed port lets a
test stop the server and start it again where the service expects it); `--starttls CERT KEY`
offers STARTTLS and requires it; `--tls CERT KEY` speaks TLS from the first byte (implicit TLS);
`--auth USER PASSWORD` requires AUTH (after STARTTLS).

How it answers depends on the recipient's local part, so each test picks a behaviour by address:
`fail451-…` is refused with 451 (transient) every time, `fail550-…` with 550 (permanent), and
`flakyN-…` with 451 for its first N attempts, then accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import ssl
from typing import IO, Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

_FLAKY = re.compile(r"^flaky(\d+)-")


class Recorder:
    def __init__(self, log: IO[str], *, flush: bool = True) -> None:
        self.log = log
        self.flush = flush
        self.tries: dict[str, int] = {}

    def _write(self, record: dict[str, Any]) -> None:
        self.log.write(json.dumps(record) + "\n")
        if self.flush:
            self.log.flush()

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        local = address.split("@", 1)[0].lower()
        self.tries[address] = self.tries.get(address, 0) + 1
        code = 0
        if local.startswith("fail451-"):
            code = 451
        elif local.startswith("fail550-"):
            code = 550
        elif (m := _FLAKY.match(local)) and self.tries[address] <= int(m.group(1)):
            code = 451
        if code:
            self._write({"kind": "refused", "to": address, "code": code})
            text = "4.3.0 Try again later" if code == 451 else "5.1.1 No such user"
            return f"{code} {text}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        data = envelope.content.decode("utf-8", "replace") if isinstance(envelope.content, bytes) else ""
        for to in envelope.rcpt_tos:
            self._write({"kind": "message", "to": to, "from": envelope.mail_from, "data": data})
        return "250 Message accepted for delivery"


def _context(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def _authenticator(user: str, password: str) -> Any:
    def check(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            user.encode(),
            password.encode(),
        )
        return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535 itself

    return check


async def main(args: argparse.Namespace) -> None:
    with open(args.log, "a", encoding="utf-8") as log:
        recorder = Recorder(log, flush=not args.no_flush)
        starttls = _context(*args.starttls) if args.starttls else None
        implicit = _context(*args.tls) if args.tls else None
        auth: dict[str, Any] = {}
        if args.auth:
            auth = {"auth_required": True, "authenticator": _authenticator(*args.auth)}

        def session() -> SMTP:
            return SMTP(
                recorder,
                hostname="smtp.test",
                enable_SMTPUTF8=True,
                tls_context=starttls,
                require_starttls=starttls is not None,
                **auth,
            )

        loop = asyncio.get_running_loop()
        server = await loop.create_server(session, "127.0.0.1", args.port, ssl=implicit)
        port = server.sockets[0].getsockname()[1]
        print(f"READY {port}", flush=True)
        try:
            await asyncio.Event().wait()  # until the test (or benchmark) ends the process
        finally:
            log.flush()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("log")
    parser.add_argument("--no-flush", action="store_true")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--starttls", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    parser.add_argument("--auth", nargs=2, metavar=("USER", "PASSWORD"))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main(parser.parse_args()))
