"""``talktime measure`` then ``talktime meter``, end to end: the third seed's 47-second file.

The seed: "That 47-second file might be metered as 31 seconds of billable audio" by Provider A, which
strips silence and bills per second; Provider B meters the whole file, 47 seconds; Provider C bills any file
under 60 seconds as a full minute. The test builds a file of exactly 47 s at 16 kHz holding 30.650125 s
of espeak-ng speech (11 utterances) between 12 pauses, measures it, and meters the records under the three
policies below (inline TOML, as a user would write them).
"""

from __future__ import annotations

import csv
import io
import json
import os
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from measure.audio_kit import AudioKit
from talktime.cli.main import app

pytestmark = pytest.mark.usefixtures("audio_packages")
runner = CliRunner()

RATE = 16_000
SEED_FRAMES = 47 * RATE
UTTERANCES = [0, 1, 2, 3, 4, 5, 6, 7, 0, 1, 2]

POLICIES = {
    "provider-a": 'basis = "speech"\nrounding = "up"\nincrement_seconds = 1',  # strips silence, per second
    "provider-b": 'basis = "audio_sent"',  # the whole file, exact
    "provider-c": 'basis = "audio_sent"\nrounding = "up"\nincrement_seconds = 60',  # a minute per file
}


def policy_file(folder: Path, policy_id: str) -> Path:
    path = folder / f"{policy_id}.toml"
    path.write_text(
        f'id = "{policy_id}"\nname = "{policy_id}"\nunit = "second"\n\n'
        f'[[versions]]\neffective_from = 2020-01-01\nkinds = ["batch"]\n{POLICIES[policy_id]}\n'
    )
    return path


def seed_call(kit: AudioKit) -> tuple[Path, int]:
    """47.000 s at 16 kHz: pause, utterance, pause, ..., pause; returns the file and its speech in samples."""
    spoken = [kit.utterance(index, RATE) for index in UTTERANCES]
    speech = sum(kit.frames(path) for path in spoken)
    quiet = SEED_FRAMES - speech
    pauses = [quiet // (len(spoken) + 1)] * len(spoken)
    pauses.append(quiet - sum(pauses))
    parts = [kit.silence(pauses[0], RATE)]
    for path, pause in zip(spoken, pauses[1:], strict=True):
        parts += [path, kit.silence(pause, RATE)]
    return kit.join("seed-call.wav", parts), speech


def invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def metered(records: Path, policy: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        invoke("meter", str(records), "--policy", str(policy), "--format", "json")
    )
    return data


def test_speech_only_bills_less_than_the_file(kit: AudioKit, tmp_path: Path) -> None:
    call, speech = seed_call(kit)
    assert kit.frames(call) == SEED_FRAMES
    records = tmp_path / "records.csv"
    invoke("measure", str(call), "--start", "2025-03-01T10:00:00Z", "--customer", "acme", "--provider",
           "example", "--product", "stt", "--out", str(records))  # fmt: skip

    [row] = list(csv.DictReader(records.open()))
    assert (row["id"], row["kind"], row["customer"], row["provider"], row["product"], row["channels"]) == (
        "seed-call", "batch", "acme", "example", "stt", "1")  # fmt: skip
    assert row["audio_seconds"] == "47"
    assert (row["started_at"], row["ended_at"]) == ("2025-03-01T10:00:00+00:00", "2025-03-01T10:00:47+00:00")
    assert (row["first_audio_at"], row["last_audio_at"]) == (row["started_at"], row["ended_at"])
    known = Decimal(speech) / RATE  # 30.6525 s
    measured = Decimal(row["speech_seconds"])
    assert abs(measured - known) <= len(UTTERANCES) * 2 * Decimal("0.032")  # a frame or two each end

    bills = {p: metered(records, policy_file(tmp_path, p))["records"][0] for p in POLICIES}
    a, b, c = (Decimal(bills[p]["billable_seconds"]) for p in POLICIES)
    assert Decimal(bills["provider-a"]["actual_seconds"]) == measured
    assert a == measured.to_integral_value(rounding="ROUND_CEILING")  # ~31 s, as the seed says
    assert 30 <= a <= 32
    assert (b, c) == (Decimal(47), Decimal(60))
    assert a < b < c
    assert "speech" in bills["provider-a"]["explain"][0]["rule"]


def test_the_file_time_is_its_modification_time_as_its_end(kit: AudioKit, tmp_path: Path) -> None:
    path, _ = kit.call("mtime-call.wav", 8_000, [0], [1.0, 1.0])
    end = datetime(2025, 3, 1, 10, 0, 47, 250_000, tzinfo=UTC)
    os.utime(path, ns=(int(end.timestamp()) * 10**9 + 250_000_000,) * 2)
    rows = list(csv.DictReader(io.StringIO(invoke("measure", str(path), "--vad", "webrtc"))))
    duration = Decimal(kit.frames(path)) / 8_000  # exact at 8 kHz
    assert rows[0]["audio_seconds"] == str(duration)
    assert rows[0]["ended_at"] == "2025-03-01T10:00:47.250000+00:00"
    assert rows[0]["attr.time_from"] == "mtime"
    started = datetime.fromisoformat(rows[0]["started_at"])
    assert Decimal((end - started).total_seconds()).quantize(Decimal("0.000001")) == duration
    assert rows[0]["attr.vad"].startswith("webrtc:3 at 8000 Hz, 240 samples a frame")


def test_several_files_one_record_each_and_bad_files_named(kit: AudioKit, tmp_path: Path) -> None:
    mono, _ = kit.call("several-mono.wav", 48_000, [0], [0.5, 0.5])
    stereo = kit.stereo("several-stereo.wav", mono, mono)
    out = tmp_path / "records.jsonl"
    invoke("measure", str(mono), str(stereo), "--start", "2025-03-01T10:00:00+02:00", "--out", str(out))
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["id"], r["channels"]) for r in lines] == [("several-mono", "1"), ("several-stereo", "2")]
    assert lines[0]["started_at"] == "2025-03-01T10:00:00+02:00"

    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"\x00\x01 not a riff header at all")
    out.unlink()
    result = runner.invoke(
        app, ["measure", str(mono), str(garbage), str(tmp_path / "gone.wav"), "--out", str(out)]
    )
    assert result.exit_code == 2
    message = " ".join(result.stderr.split())  # the one error line, unwrapped
    assert "garbage.wav: cannot read it as audio: Format not recognised" in message
    assert "gone.wav: no such file" in message
    assert not out.exists()  # nothing half written


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (["--vad", "webrtc:9"], "aggressiveness is 0, 1, 2 or 3"),
        (["--start", "2025-03-01T10:00:00"], "has no UTC offset"),
        (["--start", "yesterday"], "not an ISO 8601 time"),
        (["--out", "records.txt"], "unknown record file extension"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(
    kit: AudioKit, tmp_path: Path, args: list[str], error: str
) -> None:
    path, _ = kit.call("options.wav", 16_000, [0], [0.5, 0.5])
    result = runner.invoke(
        app, ["measure", str(path), *[a.replace("records", str(tmp_path / "r")) for a in args]]
    )
    assert result.exit_code == 2
    assert error in " ".join(result.stderr.split())


def test_two_files_with_one_name_are_refused(kit: AudioKit, tmp_path: Path) -> None:
    path, _ = kit.call("same.wav", 16_000, [0], [0.5, 0.5])
    other = tmp_path / "other"
    other.mkdir()
    copy = other / "same.wav"
    copy.write_bytes(path.read_bytes())
    result = runner.invoke(app, ["measure", str(path), str(copy)])
    assert result.exit_code == 2
    assert "would both be record 'same'" in " ".join(result.stderr.split())
