"""Usage records from a proxy's events file, without a server: the same validation and sessionization
``talktime serve`` applies, as of now.

    python -m talktime.proxy.records events.jsonl records.jsonl   # or records.csv, records.parquet

Then ``talktime meter records.jsonl --policy deepgram-streaming``. Flags (contradictions the sessionizer
found) are printed on stderr, one line per record.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from talktime.errors import InputError, TalktimeError
from talktime.ingest.events import Event, validate_event
from talktime.ingest.sessionize import SessionRecord, sessionize
from talktime.io.records_io import write_records


def read_events(lines: Iterable[str], where: str = "events") -> Iterator[Event]:
    """Valid events from JSON Lines; the first invalid one raises an InputError naming its line and field."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except ValueError as error:
            raise InputError(f"{where}, line {number}: not JSON: {error}") from None
        checked = validate_event(raw)
        if checked.event is None:
            said = "; ".join(f"{issue.field or 'event'}: {issue.reason}" for issue in checked.issues)
            raise InputError(f"{where}, line {number}: {said}")
        yield checked.event


def records_from(events: Iterable[Event], as_of: datetime | None = None) -> list[SessionRecord]:
    """The records the events make, sessionized as of ``as_of`` (now). Each (source, id) counts once, as
    the server's store counts it: a file holding a batch twice (a resent spill) bills it once."""
    return sessionize(_once(events), as_of=as_of or datetime.now(UTC))


def _once(events: Iterable[Event]) -> Iterator[Event]:
    seen: set[tuple[str, str]] = set()
    for event in events:
        key = (event.source, event.id)
        if key not in seen:
            seen.add(key)
            yield event


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print(
            "usage: python -m talktime.proxy.records EVENTS.jsonl RECORDS.(jsonl|csv|parquet)",
            file=sys.stderr,
        )
        return 2
    source, target = Path(args[0]), Path(args[1])
    try:
        with source.open(encoding="utf-8") as handle:
            found = records_from(read_events(handle, str(source)))
        written = write_records(target, [item.record for item in found])
    except (TalktimeError, OSError) as error:
        print(f"talktime: error: {error}", file=sys.stderr)
        return 2
    for item in found:
        if item.flags:
            print(f"{item.record.id}: {'; '.join(item.flags)}", file=sys.stderr)
    print(f"{written} record(s) written to {target}", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
