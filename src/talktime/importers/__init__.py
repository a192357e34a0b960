"""Importers: a provider's own usage export (bytes) -> statement lines (one typed Arrow table). No network.

Owns: reading Twilio calls (JSON page, CSV), LiveKit participant sessions (CSV), Deepgram usage requests
(JSON), AssemblyAI transcripts (JSON) and any CSV with a TOML mapping, and refusing bad rows with an error
naming the file, line, field and why. Does not own: matching or explaining (``talktime.core.reconcile``).
The statement table's columns are described in ``base.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa

from talktime.errors import StatementError
from talktime.importers import assemblyai, deepgram, generic, livekit, twilio
from talktime.importers._text import first_line
from talktime.importers.base import STATEMENT_SCHEMA

Reader = Callable[[bytes, str], pa.Table]
#: Importers by source name (the ``--source`` option).
SOURCES: dict[str, Reader] = {
    "twilio-json": twilio.read_json,
    "twilio-csv": twilio.read_csv,
    "livekit-csv": livekit.read_csv,
    "deepgram-json": deepgram.read_json,
    "assemblyai-json": assemblyai.read_json,
}


def detect(data: bytes, where: str) -> str:
    """The source of an export from its shape: the JSON page's list key, or the CSV header."""
    head = data.lstrip()[:1]
    if head in (b"{", b"["):
        try:
            document = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise StatementError([f"{where}: not valid JSON: {error}"]) from None
        keys = set(document) if isinstance(document, dict) else set()
        for key, source in (
            ("calls", "twilio-json"),
            ("requests", "deepgram-json"),
            ("transcripts", "assemblyai-json"),
        ):
            if key in keys:
                return source
        raise StatementError(
            [f"{where}: a JSON page with none of calls, requests, transcripts; pass --source"]
        )
    header = first_line(data).decode("utf-8-sig", errors="replace")
    if "sid" in header.split(",") and "start_time" in header:
        return "twilio-csv"
    if "joinedAt" in header or "joined_at" in header:
        return "livekit-csv"
    raise StatementError(
        [f"{where} line 1: header {header.strip()!r} is not a known export; give a --mapping TOML file"]
    )


def read_statement(path: Path, source: str | None = None, mapping: Path | None = None) -> pa.Table:
    """Statement lines from a file: with a mapping (generic CSV), a named source, or the detected one."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise StatementError([f"{path}: cannot read: {error.strerror}"]) from None
    where = str(path)
    if mapping is not None:
        return generic.read_csv(data, where, generic.load_mapping(mapping))
    chosen = source or detect(data, where)
    if chosen not in SOURCES:
        raise StatementError([f"--source {chosen!r}: not one of {', '.join(SOURCES)}"])
    return SOURCES[chosen](data, where)


__all__ = ["SOURCES", "STATEMENT_SCHEMA", "detect", "read_statement"]
