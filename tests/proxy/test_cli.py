"""``talktime proxy`` as a user runs it: a real process in front of the fake provider, events to a file."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner
from websockets.asyncio.client import connect

from proxy.fakes import FakeProvider, drain, records_of, run
from talktime.cli.main import app
from talktime.cli.proxy import parse_listen

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("loop", ["asyncio", "auto"])  # auto: uvloop where it is installed
def test_the_command_relays_records_to_a_file_and_stops_cleanly_on_sigterm(tmp_path: Path, loop: str) -> None:
    events_file = tmp_path / "events.jsonl"

    async def scenario() -> tuple[int, list[str | bytes]]:
        fake = FakeProvider()
        async with fake.running():
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "talktime",
                "proxy",
                "--listen",
                "127.0.0.1:0",
                "--upstream",
                fake.url,
                "--events",
                str(events_file),
                "--provider",
                "deepgram",
                "--product",
                "stt-streaming",
                "--customer",
                "acme",
                "--loop",
                loop,
                stderr=asyncio.subprocess.PIPE,
            )
            assert process.stderr is not None
            banner = (await process.stderr.readline()).decode()
            assert banner.startswith("talktime proxy: ws://127.0.0.1:"), banner
            address = banner.split()[2]
            async with connect(f"{address}/v1/listen?encoding=linear16&sample_rate=8000") as client:
                for _ in range(10):
                    await client.send(bytes(1600))  # 100 ms of 8 kHz linear16
                await client.send('{"type": "CloseStream"}')
                received = await drain(client)
            process.send_signal(signal.SIGTERM)
            return await process.wait(), received

    code, received = run(scenario())
    assert code == 0
    assert received[-1].startswith('{"type": "Metadata"')  # type: ignore[union-attr]
    events = [json.loads(line) for line in events_file.read_text().splitlines()]
    record = next(iter(records_of(events).values()))
    assert record.audio_seconds == Decimal(1) and record.customer == "acme"


def test_bad_options_are_one_line_and_exit_code_2() -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["proxy", "--upstream", "http://x", "--events", "e.jsonl"])
    assert result.exit_code == 2 and "must be a ws:// or wss:// URL" in result.output
    result = runner.invoke(
        app,
        ["proxy", "--upstream", "wss://x", "--events", "http://127.0.0.1:1"],
        env={"TALKTIME_API_KEY": ""},
    )
    assert result.exit_code == 2 and "needs --key" in result.output
    result = runner.invoke(app, ["proxy", "--upstream", "wss://x", "--events", "e", "--listen", "nope"])
    assert result.exit_code == 2 and "HOST:PORT" in result.output
    result = runner.invoke(app, ["proxy", "--upstream", "wss://x", "--events", "e", "--loop", "trio"])
    assert result.exit_code == 2 and "must be auto, asyncio or uvloop" in result.output


def test_listen_addresses() -> None:
    assert parse_listen("0.0.0.0:9000") == ("0.0.0.0", 9000)
    assert parse_listen("[::1]:8765") == ("::1", 8765)
    assert parse_listen(":8765") == ("127.0.0.1", 8765)
