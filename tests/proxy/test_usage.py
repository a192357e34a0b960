"""The per-connection fold, driven with made-up times (no network): formats, totals, gaps, reports, ids."""

from __future__ import annotations

import doctest
import importlib
import json
import struct
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.fakes import records_of
from talktime.proxy.audio import StreamFormat
from talktime.proxy.dialects import ASSEMBLYAI, DEEPGRAM, GENERIC, Dialect
from talktime.proxy.events import CloudEvent, Labels
from talktime.proxy.usage import ConnectionUsage, refused_attempt

MS = 1_000_000
ANCHOR = (1_740_823_200_000_000_000, 0)  # 2025-03-01T10:00:00Z at monotonic 0
LABELS = Labels("conn-1", "conn-1", None, "talktime-proxy", customer="acme", provider="deepgram")


def fold(
    fmt: StreamFormat | None, dialect: Dialect = DEEPGRAM, **kw: Any
) -> tuple[ConnectionUsage, list[CloudEvent]]:
    events: list[CloudEvent] = []
    usage = ConnectionUsage(LABELS, dialect, fmt, events.append, anchor=ANCHOR, **kw)
    usage.opened(0)
    return usage, events


def wav(rate: int, channels: int, bits: int, code: int = 1) -> bytes:
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", code, channels, rate, rate * block, block, bits)
    return b"RIFF" + bytes(4) + b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + bytes(4)


@pytest.mark.parametrize(
    ("fmt", "size", "seconds"),
    [
        (StreamFormat("linear16", 16000, 1), 32000, "1"),
        (StreamFormat("pcm_s16le", 16000, 1), 8000, "0.25"),
        (StreamFormat("linear16", 48000, 2), 192000, "1"),
        (StreamFormat("mulaw", 8000, 1), 4000, "0.5"),
        (StreamFormat("alaw", 8000, 2), 4000, "0.25"),
        (StreamFormat("linear32", 16000, 1), 64000, "1"),
        (StreamFormat("linear16", 44100, 1), 1000, "0.011338"),  # 0.01133786... to the microsecond
    ],
    ids=lambda v: str(v),
)
def test_audio_seconds_are_bytes_over_the_byte_rate(fmt: StreamFormat, size: int, seconds: str) -> None:
    usage, _ = fold(fmt)
    usage.from_client(bytes(size), 10 * MS)
    assert usage.audio_seconds() == Decimal(seconds)


def test_the_running_total_is_sent_in_increments_that_add_up_exactly() -> None:
    usage, events = fold(StreamFormat("linear16", 44100, 1), report_every_ns=100 * MS)
    for step in range(50):
        usage.from_client(bytes(882 + step), step * 20 * MS)
    usage.closed(1000 * MS, "completed")
    sent = [e for e in events if e["type"] == "talktime.audio.sent"]
    assert len(sent) > 5
    assert [e["id"] for e in sent] == [f"conn-1/audio.sent/{n}" for n in range(1, len(sent) + 1)]
    total = sum(Decimal(e["data"]["seconds"]) for e in sent)
    assert total == StreamFormat("linear16", 44100, 1).seconds(sum(882 + s for s in range(50)))
    assert records_of(events)["conn-1"].audio_seconds == total


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 5000), min_size=1, max_size=40),
    rate=st.sampled_from([8000, 16000, 22050, 24000, 44100, 48000]),
    every=st.integers(1, 200),
)
def test_increments_always_add_up_to_the_total_of_all_bytes(sizes: list[int], rate: int, every: int) -> None:
    fmt = StreamFormat("linear16", rate, 1)
    usage, events = fold(fmt, report_every_ns=every * MS)
    for step, size in enumerate(sizes):
        usage.from_client(bytes(size), step * 7 * MS)
    usage.closed(len(sizes) * 7 * MS, "completed")
    sent = [Decimal(e["data"]["seconds"]) for e in events if e["type"] == "talktime.audio.sent"]
    assert all(part >= 0 for part in sent)
    assert sum(sent) == fmt.seconds(sum(sizes))


def test_a_wav_header_gives_the_format_and_is_not_counted_as_audio() -> None:
    usage, events = fold(None)
    usage.from_client(wav(8000, 1, 16) + bytes(16000), 1 * MS)
    usage.from_client(bytes(16000), 2 * MS)
    usage.closed(3 * MS, "completed")
    record = records_of(events)["conn-1"]
    assert record.audio_seconds == Decimal(2)
    assert record.attrs["audio_format"] == "wav linear 8000 Hz x1"
    assert record.attrs["audio_bytes"] == "32000"


def test_a_compressed_stream_is_counted_in_bytes_but_not_in_seconds() -> None:
    usage, events = fold(StreamFormat("opus", 48000, 1))
    usage.from_client(bytes(1234), 1 * MS)
    usage.closed(2 * MS, "completed")
    record = records_of(events)["conn-1"]
    assert record.audio_seconds is None
    assert record.attrs["unmeasured_audio_bytes"] == "1234"


def test_a_voice_agent_settings_message_sets_the_format() -> None:
    usage, events = fold(None)
    settings_message = {
        "type": "Settings",
        "audio": {"input": {"encoding": "linear16", "sample_rate": 24000}},
    }
    usage.from_client(json.dumps(settings_message), 1 * MS)
    usage.from_client(bytes(48000), 2 * MS)
    usage.closed(3 * MS, "completed")
    assert records_of(events)["conn-1"].audio_seconds == Decimal(1)


def test_keepalives_and_gaps_are_measured() -> None:
    usage, events = fold(StreamFormat("linear16", 16000, 1), gap_ns=1000 * MS)
    usage.from_client(bytes(640), 0)
    usage.from_client(bytes(640), 20 * MS)
    for second in range(1, 4):
        usage.from_client('{"type": "KeepAlive"}', second * 1000 * MS)
    usage.from_client('{"type":"Finalize"}', 3500 * MS)
    usage.from_client(bytes(640), 4020 * MS)  # 4 s after the last audio
    usage.from_client(bytes(640), 4040 * MS)
    usage.from_client(bytes(640), 5540 * MS)  # 1.5 s
    usage.closed(6000 * MS, "completed")
    attrs = records_of(events)["conn-1"].attrs
    assert attrs["keepalive_messages"] == "3"
    assert (attrs["audio_gaps"], attrs["audio_gap_seconds"], attrs["longest_audio_gap_seconds"]) == (
        "2",
        "5.5",
        "4",
    )


def test_provider_reports_are_kept_untouched_and_bad_ones_ignored() -> None:
    usage, events = fold(StreamFormat("linear16", 16000, 1))
    usage.from_upstream('{"type": "Results", "metadata": {"request_id": "r"}}', 1 * MS)
    usage.from_upstream('{"type": "Metadata", "duration": "soon"}', 2 * MS)
    usage.from_upstream('{"type": "Metadata", "duration": -1}', 2 * MS)
    usage.from_upstream(
        '{"type": "Metadata", "duration": 25.933313, "request_id": "r-9", "channels": 1}', 3 * MS
    )
    usage.from_upstream(b"\x00" * 10, 4 * MS)
    usage.closed(5 * MS, "completed")
    reported = [e for e in events if e["type"] == "talktime.provider.reported"]
    assert [e["data"]["seconds"] for e in reported] == ["25.933313"]
    record = records_of(events)["conn-1"]
    assert record.provider_reported_seconds == Decimal("25.933313")
    assert record.attrs["provider_request_id"] == "r-9" and record.attrs["downstream_bytes"] == "10"


def test_the_same_connection_gives_the_same_events() -> None:
    def once() -> list[CloudEvent]:
        usage, events = fold(StreamFormat("mulaw", 8000, 1))
        usage.from_client(bytes(800), 5 * MS)
        usage.from_upstream('{"type": "Metadata", "duration": 0.1}', 6 * MS)
        usage.closed(7 * MS, "completed")
        return events

    first = once()
    assert first == once()
    assert len({e["id"] for e in first}) == len(first)
    assert first[0]["time"] == "2025-03-01T10:00:00Z"


def test_a_refused_attempt_is_a_failed_record_over_the_attempt() -> None:
    events: list[CloudEvent] = []
    refused_attempt(
        LABELS, events.append, anchor=ANCHOR, started=0, ended=12 * MS, attrs={"refusal": "HTTP 401"}
    )
    record = records_of(events)["conn-1"]
    assert record.status == "failed" and record.attrs == {"refusal": "HTTP 401"}
    assert record.ended_at is not None and (record.ended_at - record.started_at).total_seconds() == 0.012


def test_dialects_are_data() -> None:
    assert ASSEMBLYAI.default_format == StreamFormat("pcm_s16le", 16000, 1)
    assert set(GENERIC.reports) == {"Metadata", "Begin", "Termination"}


@pytest.mark.parametrize(
    "module",
    ["audio", "dialects", "events", "handshake", "sinks"],
)
def test_doctests(module: str) -> None:
    found = importlib.import_module(f"talktime.proxy.{module}")
    result = doctest.testmod(found, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0
