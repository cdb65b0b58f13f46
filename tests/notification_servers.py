"""Real servers for the notification tests and benchmark: the SMTP server process
(`tests/smtp_server.py`) and an HTTP SMS gateway receiver on a thread, both on 127.0.0.1."""

from __future__ import annotations

import email
import email.policy
import json
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

SMTP_SCRIPT = Path(__file__).with_name("smtp_server.py")


@dataclass
class SmtpServer:
    process: subprocess.Popen[str]
    port: int
    log: Path

    def records(self) -> list[dict[str, Any]]:
        if not self.log.exists():
            return []
        return [json.loads(line) for line in self.log.read_text(encoding="utf-8").splitlines() if line]

    def messages(self, to: str) -> list[EmailMessage]:
        out = []
        for r in self.records():
            if r["kind"] == "message" and r["to"] == to:
                parsed = email.message_from_string(r["data"], policy=email.policy.default)
                assert isinstance(parsed, EmailMessage)
                out.append(parsed)
        return out

    def refusals(self, to: str) -> int:
        return sum(1 for r in self.records() if r["kind"] == "refused" and r["to"] == to)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_smtp_server(log: Path, *extra: str) -> SmtpServer:
    process = subprocess.Popen(
        [sys.executable, str(SMTP_SCRIPT), str(log), *extra], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("READY "):
        process.kill()
        raise RuntimeError(f"SMTP server did not start: {line!r}")
    return SmtpServer(process, int(line.split()[1]), log)


def self_signed_certificate(directory: Path) -> tuple[str, str]:
    """A certificate for 127.0.0.1, for the SMTP server's TLS (the client is told not to verify)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smtp.test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp.crt", directory / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return str(cert_path), str(key_path)


def body_text(message: EmailMessage) -> str:
    part = message.get_body(("plain", "html"))
    assert part is not None
    return str(part.get_content()).strip()


@dataclass
class GatewayReceiver:
    """Records each POST (bearer token and JSON body). Numbers in `answers` get that status code
    instead of 202 — the operator behind a real gateway is the only thing faked here."""

    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    answers: dict[str, int] = field(default_factory=dict)
    server: ThreadingHTTPServer | None = None

    def to(self, number: str) -> list[dict[str, Any]]:
        return [r["json"] for r in self.requests if r["json"].get("to") == number]

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


def start_gateway() -> GatewayReceiver:
    receiver = GatewayReceiver()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"{}")
            with lock:
                receiver.requests.append(
                    {"path": self.path, "authorization": self.headers.get("Authorization"), "json": body}
                )
                status = receiver.answers.get(str(body.get("to")), 202)
            payload = b'{"id": "accepted"}' if status < 300 else b'{"error": "refused"}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    receiver.server = server
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/sms"
    return receiver
