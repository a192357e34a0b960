"""``talktime measure``: audio files in, one ``batch`` usage record each out (duration, channels, speech)."""

from __future__ import annotations

import csv
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import typer

from talktime.cli.guard import guarded
from talktime.core.records import ATTR_PREFIX, RECORD_FIELDS, UsageRecord, record_to_row
from talktime.errors import InputError
from talktime.io.records_io import file_format, write_records
from talktime.measure import DEFAULT_VAD, MIN_SILENCE_MS, measure_file, measured_record, parse_vad
from talktime.measure.audio import modified_at

_VAD_HELP = (
    "The voice activity detector: silero[:threshold] (Silero VAD v6 on ONNX Runtime, 32 ms windows; "
    "threshold 0.5 if not given) or webrtc[:0-3] (WebRTC, 30 ms frames; aggressiveness 3 if not given)."
)


def measure(
    files: list[Path] = typer.Argument(
        ..., help="Audio files: WAV (PCM or float, any rate, mono or more channels), FLAC, OGG."
    ),
    vad: str = typer.Option(DEFAULT_VAD, "--vad", help=_VAD_HELP),
    min_silence: int = typer.Option(
        MIN_SILENCE_MS,
        "--min-silence",
        min=0,
        help="Milliseconds: a pause shorter than this between speech frames counts as speech (0: none).",
    ),
    start: str | None = typer.Option(
        None,
        "--start",
        help="Start time of every file, ISO 8601 with offset (2025-03-01T10:00:00Z). Without it, each "
        "file's modification time is taken as the moment it ends.",
    ),
    customer: str | None = typer.Option(None, "--customer", help="Who the platform bills."),
    provider: str | None = typer.Option(None, "--provider", help="Provider the audio is for."),
    product: str | None = typer.Option(None, "--product", help="The provider's product."),
    out: Path | None = typer.Option(
        None,
        "--out",
        "-o",
        help="Write the records here (.csv, .jsonl or .parquet); else CSV to standard output.",
    ),
) -> None:
    """Measure audio files: one batch record each (id: the file name) with duration, channels and speech."""

    def run() -> None:
        if out is not None:
            file_format(out)  # an unknown extension is refused before any file is measured
        records = measure_files(
            files,
            vad=vad,
            min_silence_ms=min_silence,
            start=start,
            customer=customer,
            provider=provider,
            product=product,
        )
        if out is None:
            write_csv(records)
        else:
            write_file(out, records)

    guarded(run)


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
    """Every file measured; if any cannot be, one error listing each of them (and nothing written)."""
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


def write_csv(records: Sequence[UsageRecord]) -> None:
    """Records as CSV on standard output, in the record format's columns."""
    attrs = sorted({key for record in records for key in record.attrs})
    writer = csv.DictWriter(sys.stdout, [*RECORD_FIELDS, *(ATTR_PREFIX + a for a in attrs)])
    writer.writeheader()
    for record in records:
        writer.writerow(record_to_row(record))


def write_file(path: Path, records: Sequence[UsageRecord]) -> None:
    """Records in the format the extension names; the file appears only once written whole."""
    partial = path.with_name(f".{path.stem}.partial{path.suffix}")
    try:
        write_records(partial, records)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
