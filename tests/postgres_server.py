"""A PostgreSQL server of a test's own, to stop, start and kill: outage tests must not touch the
shared server other tests (and other people) use.

Binaries come from the pgserver package (a dependency already). As root, the server runs as the
`pgserver` system user, as pgserver itself does (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pgserver  # type: ignore[import-untyped]

_BIN = Path(pgserver.__file__).parent / "pginstall" / "bin"
_USER = "pgserver"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class ThrowawayPostgres:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="corr-outage-"))
        self.data = self.root / "data"
        self.port = free_port()
        self._as_root = os.geteuid() == 0
        if self._as_root:
            entry = pwd.getpwnam(_USER)
            os.chmod(self.root, 0o755)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [str(_BIN / tool), *args],
            check=True,
            capture_output=True,
            user=_USER if self._as_root else None,
            timeout=120,
        )

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.root} -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-o", options, "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        """`fast` ends sessions with 'terminating connection due to administrator command';
        `immediate` is a crash: no shutdown checkpoint, recovery on the next start."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    async def stop_async(self, mode: str = "fast") -> None:
        """stop() in a thread: the app's event loop keeps running (reading the connections the
        server closes), as it would in production."""
        await asyncio.to_thread(self.stop, mode)

    async def start_async(self) -> None:
        await asyncio.to_thread(self.start)

    def remove(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # not running
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)
