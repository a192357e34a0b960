"""A throwaway PostgreSQL server for tests, reusable by any suite (stores, engines).

Uses Debian's postgresql binaries (``/usr/lib/postgresql/*/bin``, or ``$TALKTIME_PG_BIN``). initdb refuses to
run as root, so as root the server runs as the ``postgres`` user in a temp directory that user owns. The
server listens on 127.0.0.1 on a free port and is stopped by :meth:`PostgresServer.stop`.

Use the ``postgres_url`` fixture (session scope) from ``support.fixtures``; it skips, with the reason, when
no binaries are installed (``apt-get install postgresql``; CI installs it from ``.ci/apt-packages``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path


def find_bin() -> Path | None:
    """The folder with initdb and pg_ctl, or None."""
    explicit = os.environ.get("TALKTIME_PG_BIN")
    candidates = (
        [Path(explicit)] if explicit else sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    )
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresServer:
    bin: Path
    root: Path
    port: int
    user: str | None

    @property
    def data(self) -> Path:
        return self.root / "data"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(a) for a in args]
        if self.user:
            command = ["runuser", "-u", self.user, "--", *command]
        return subprocess.run(command, check=True, capture_output=True, text=True, cwd=self.root)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",
        )
        options = f"-h 127.0.0.1 -p {self.port} -k {self.root} -c fsync=off -c full_page_writes=off"
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    def create_database(self) -> str:
        """A fresh, empty database on this server; its URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url(), autocommit=True) as con:
            con.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def launch() -> PostgresServer:
    """Start a server (raises RuntimeError with the reason when it cannot)."""
    folder = find_bin()
    if folder is None:
        raise RuntimeError("no PostgreSQL binaries (apt-get install postgresql, or set TALKTIME_PG_BIN)")
    root = Path(tempfile.mkdtemp(prefix="talktime-pg-"))
    user = None
    if os.geteuid() == 0:
        user = "postgres"
        shutil.chown(root, user=user)
    server = PostgresServer(folder, root, free_port(), user)
    last: Exception | None = None
    for _ in range(3):  # the free port may be taken between probing and binding
        try:
            server.start()
            return server
        except subprocess.CalledProcessError as error:
            last = error
            shutil.rmtree(server.data, ignore_errors=True)
            server.port = free_port()
            time.sleep(0.1)
    shutil.rmtree(root, ignore_errors=True)
    detail = getattr(last, "stderr", "") or str(last)
    raise RuntimeError(f"PostgreSQL did not start: {detail}")
