"""``measure``: audio files in, one ``batch`` usage record each out (duration, channels, speech), and the
records written whole to a record file, or given as the record format's CSV rows for a face to write.

The measuring itself is :mod:`talktime.measure`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from talktime.errors import InputError
from talktime.measure import DEFAULT_VAD, MIN_SILENCE_MS, measure_file, measured_record, parse_vad
from talktime.measure.audio import modified_at

if TYPE_CHECKING:
    from talktime.core.records import UsageRecord

__all__ = ["DEFAULT_VAD", "MIN_SILENCE_MS", "check_out", "csv_rows", "measure_files", "write_file"]


def check_out(path: Path) -> None:
    """Refuse a record file whose extension names no record format, before any file is measured."""
    from talktime.io.records_io import file_format

    file_format(path)


def measure_files(
    files: Sequence[Path],
    *,
    vad: str,
    min_silence_ms: int,
    start: str | None,
    customer: str | None,
    provider: str | None,
    product: str | None,
) -> list[UsageRecord]:
    """Every file measured; if any cannot be, one error listing each of them (and nothing written).

    ``start`` is every file's start time as typed (ISO 8601 with an offset); without it each file's
    modification time is taken as the moment it ends. A record's id is its file's name without the
    extension."""
    spec = parse_vad(vad)
    start_at = _start_time(start)
    _check_ids(files)
    records: list[UsageRecord] = []
    problems: list[str] = []
    for path in files:
        try:
            measurement = measure_file(path, spec, min_silence_ms=min_silence_ms)
            end_at = None if start_at is not None else modified_at(path)
            records.append(
                measured_record(
                    measurement,
                    record_id=path.stem,
                    start=start_at,
                    end=end_at,
                    customer=customer,
                    provider=provider,
                    product=product,
                )
            )
        except InputError as error:
            problems.append(str(error))
    if problems:
        raise InputError("; ".join(problems))
    return records


def _start_time(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"--start {text!r}: not an ISO 8601 time (e.g. 2025-03-01T10:00:00Z)") from None
    if value.utcoffset() is None:
        raise InputError(f"--start {text!r}: has no UTC offset; write e.g. 2025-03-01T10:00:00Z or +02:00")
    return value


def _check_ids(files: Sequence[Path]) -> None:
    """Record ids are file names without their extension: two files may not share one."""
    seen: dict[str, Path] = {}
    for path in files:
        if path.stem in seen and seen[path.stem] != path:
            raise InputError(
                f"{seen[path.stem]} and {path} would both be record {path.stem!r}; rename one "
                "(record ids are file names without their extension)"
            )
        if path.stem in seen:
            raise InputError(f"{path} is given twice")
        seen[path.stem] = path


def csv_rows(records: Sequence[UsageRecord]) -> tuple[list[str], list[dict[str, str]]]:
    """The records as the record format's CSV: its columns (each free attribute's too) and one row each."""
    from talktime.core.records import ATTR_PREFIX, RECORD_FIELDS, record_to_row

    attrs = sorted({key for record in records for key in record.attrs})
    return [*RECORD_FIELDS, *(ATTR_PREFIX + a for a in attrs)], [record_to_row(r) for r in records]


def write_file(path: Path, records: Sequence[UsageRecord]) -> None:
    """Records in the format the extension names; the file appears only once written whole."""
    from talktime.io.records_io import write_records

    partial = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        write_records(partial, records)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
