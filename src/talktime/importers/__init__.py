"""Importers: a provider's own usage export (bytes) -> statement lines (one typed Arrow table). No network.

Owns: reading Twilio calls (JSON page; CSV with the API's field names or the console's call-log headers),
Telnyx CDR reports (CSV), Plivo CDRs (CSV, JSON page), Vonage call records (CSV, JSON page), LiveKit
participant sessions (CSV), Deepgram usage requests (JSON), AssemblyAI transcripts (JSON) and any CSV with a
TOML mapping (``generic.py``), each provider's call statuses mapped to talktime's as data; and refusing bad
rows with an error naming the file, line, field and why. Does not own: matching or explaining
(``talktime.core.reconcile``). The statement table's columns are described in ``base.py``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Final

import pyarrow as pa

from talktime.errors import StatementError
from talktime.importers import assemblyai, deepgram, generic, livekit, plivo, telnyx, twilio, vonage
from talktime.importers._text import first_line, header_key
from talktime.importers.base import STATEMENT_SCHEMA

Reader = Callable[[bytes, str], pa.Table]
#: Importers by source name (the ``--source`` option).
SOURCES: dict[str, Reader] = {
    "twilio-json": twilio.read_json,
    "twilio-csv": twilio.read_csv,
    "telnyx-csv": telnyx.read_csv,
    "plivo-csv": plivo.read_csv,
    "plivo-json": plivo.read_json,
    "vonage-csv": vonage.read_csv,
    "vonage-json": vonage.read_json,
    "livekit-csv": livekit.read_csv,
    "deepgram-json": deepgram.read_json,
    "assemblyai-json": assemblyai.read_json,
}
#: A JSON page's source by the key its list sits under.
JSON_KEYS: Final = (
    ("calls", "twilio-json"),
    ("objects", "plivo-json"),
    ("_embedded", "vonage-json"),
    ("requests", "deepgram-json"),
    ("transcripts", "assemblyai-json"),
)
#: A CSV's source by headers it has (compared as ``header_key``: no case, spaces or underscores); first wins.
CSV_HEADERS: Final = (
    (("callsid", "starttime"), "twilio-csv"),
    (("sid", "starttime"), "twilio-csv"),
    (("billabletime",), "telnyx-csv"),
    (("calllegid", "starttimestamputc"), "telnyx-csv"),
    (("calluuid", "billedduration"), "plivo-csv"),
    (("uuid", "starttime", "duration", "status"), "vonage-csv"),
    (("joinedat",), "livekit-csv"),
)


def detect(data: bytes, where: str) -> str:
    """The source of an export from its shape: the JSON page's list key, or the CSV header."""
    head = data.lstrip()[:1]
    if head in (b"{", b"["):
        try:
            document = json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise StatementError([f"{where}: not valid JSON: {error}"]) from None
        keys = set(document) if isinstance(document, dict) else set()
        for key, source in JSON_KEYS:
            if key in keys:
                return source
        listed = ", ".join(k for k, _ in JSON_KEYS)
        raise StatementError([f"{where}: a JSON page with none of {listed}; pass --source"])
    header = first_line(data).decode("utf-8-sig", errors="replace").strip("\r\n")
    names = {header_key(n.strip().strip('"')) for n in header.split(",")}
    for needed, source in CSV_HEADERS:
        if all(n in names for n in needed):
            return source
    raise StatementError(
        [
            f"{where} line 1: header {header.strip()!r} is not a known export ({', '.join(SOURCES)}); "
            "pass --source, or give a --mapping TOML file (docs/reconcile.md)"
        ]
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
