"""A real ``talktime serve`` process on loopback, its keys made with the real ``talktime keys`` command, and
its standard error (the server's log) kept for the tests to read."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from support.postgres import free_port

TALKTIME = [sys.executable, "-m", "talktime"]


def talktime(*args: str) -> str:
    """Run the talktime command line; its standard output (it must succeed)."""
    done = subprocess.run([*TALKTIME, *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def make_key(store: str, *args: str) -> str:
    """``talktime keys create ARGS --store STORE``: the key, the last line it prints."""
    return talktime("keys", "create", *args, "--store", store).strip().splitlines()[-1]


@dataclass
class Served:
    url: str
    log_path: Path
    process: subprocess.Popen[bytes]

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


@contextmanager
def serve(store: str, log_path: Path, *extra: str) -> Iterator[Served]:
    """``talktime serve --store STORE`` on a free port, stopped (by its own pid) at the end."""
    port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*TALKTIME, "serve", "--store", store, "--port", str(port), *extra],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    served = Served(f"http://127.0.0.1:{port}", log_path, process)
    try:
        for _ in range(600):  # up to 60 s for it to listen (not a timing assertion)
            if process.poll() is not None:
                raise AssertionError(f"talktime serve exited: {served.log()}")
            try:
                httpx.get(f"{served.url}/openapi.json", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            raise AssertionError("talktime serve did not start")
        yield served
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
