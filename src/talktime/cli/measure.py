"""``talktime measure``: audio files in, one ``batch`` usage record each out (duration, channels, speech)."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import typer

from talktime.app.measure import DEFAULT_VAD, MIN_SILENCE_MS, check_out, csv_rows, measure_files, write_file
from talktime.cli.guard import guarded

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
            check_out(out)  # an unknown extension is refused before any file is measured
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
            columns, rows = csv_rows(records)
            writer = csv.DictWriter(sys.stdout, columns)
            writer.writeheader()
            writer.writerows(rows)
        else:
            write_file(out, records)

    guarded(run)
