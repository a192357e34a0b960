"""The proxy in front of a fake provider on loopback: what passes through, what is recorded, what is billed.

Each scenario runs a real websockets client, the proxy and the fake provider (``fakes.FakeProvider``) on one
event loop over loopback TCP.
"""

from __future__ import annotations

import asyncio
import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Subprotocol

from proxy.fakes import FakeProvider, Message, Running, drain, records_of, run, running_proxy
from talktime.cli.main import app
from talktime.core.records import UsageRecord
from talktime.proxy import ProxyOptions
from talktime.proxy.records import main as records_main

CHUNK = 640  # 20 ms of 16 kHz mono linear16
DEEPGRAM_QUERY = "/v1/listen?model=nova-3&encoding=linear16&sample_rate=16000&channels={channels}"


def options(upstream: str, **extra: Any) -> ProxyOptions:
    base: dict[str, Any] = {"provider": "deepgram", "product": "stt-streaming", "gap_seconds": 0.2}
    return ProxyOptions(upstream=upstream, **{**base, **extra})


def the_record(proxy: Running) -> UsageRecord:
    found = records_of(proxy.transport.events)
    assert len(found) == 1, found
    return next(iter(found.values()))


async def deepgram_call(channels: int) -> tuple[FakeProvider, Running, list[Message], list[Message], Any]:
    """A client streams 1.5 s of audio per channel with a KeepAlive and a pause, then CloseStream."""
    fake = FakeProvider()
    async with fake.running(), running_proxy(options(fake.url)) as proxy:
        sent: list[Message] = []
        url = proxy.url(DEEPGRAM_QUERY.format(channels=channels))
        headers = {"Authorization": "Token dg-secret", "X-Talktime-Customer": "acme"}
        async with connect(url, additional_headers=headers, compression=None) as client:
            reader = asyncio.create_task(drain(client))
            chunks = [os.urandom(CHUNK * channels) for _ in range(75)]
            for index, chunk in enumerate(chunks):
                if index == 40:
                    sent.append(json.dumps({"type": "KeepAlive"}))
                    await client.send(sent[-1])
                    await asyncio.sleep(0.3)  # a gap of more than gap_seconds with no audio
                sent.append(chunk)
                await client.send(chunk)
            sent.append(json.dumps({"type": "CloseStream"}))
            await client.send(sent[-1])
            received = await reader
            closed = (client.close_code, client.close_reason)
    return fake, proxy, sent, received, closed


def test_bytes_pass_unchanged_both_ways_and_the_record_matches_the_providers_clock() -> None:
    fake, proxy, sent, received, closed = run(deepgram_call(channels=1))
    seen = fake.seen[0]
    assert seen.received == sent  # text stays text, binary stays binary, in order, byte for byte
    assert received == seen.sent
    assert closed == (1000, "")
    assert seen.path == DEEPGRAM_QUERY.format(channels=1)
    assert seen.headers["Authorization"] == "Token dg-secret"
    assert "X-Talktime-Customer" not in seen.headers

    record = the_record(proxy)
    connection = record.ended_at - record.started_at  # type: ignore[operator]
    provider_clock = (seen.closed_ns - seen.opened_ns) / 1e9
    assert abs(connection.total_seconds() - provider_clock) <= 0.010
    assert abs(record.started_at.timestamp() - seen.opened_ns / 1e9) <= 0.010
    audio = sum(len(m) for m in sent if isinstance(m, bytes))
    assert record.audio_seconds == Decimal(audio) / Decimal(16000 * 2 * 1) == Decimal("1.5")
    assert record.provider_reported_seconds == Decimal("1.5")  # Metadata.duration, as sent
    assert (record.kind, record.provider, record.product, record.customer) == (
        "stream",
        "deepgram",
        "stt-streaming",
        "acme",
    )
    assert record.first_audio_at is not None and record.last_audio_at is not None
    assert record.started_at <= record.first_audio_at <= record.last_audio_at <= record.ended_at  # type: ignore[operator]
    attrs = record.attrs
    assert attrs["keepalive_messages"] == "1"
    assert attrs["audio_gaps"] == "1" and Decimal(attrs["audio_gap_seconds"]) > Decimal("0.2")
    assert attrs["provider_request_id"] == "req-fake-1"
    assert attrs["closed_by"] == "upstream" and attrs["close_code"] == "1000"
    assert attrs["audio_bytes"] == str(audio)


def test_talktime_meter_bills_the_recorded_stream_as_deepgram_does(tmp_path: Path) -> None:
    """Deepgram streaming bills the audio sent, each channel: 1.5 s of stereo is 3 billable seconds."""
    _, proxy, _, _, _ = run(deepgram_call(channels=2))
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(event) + "\n" for event in proxy.transport.events))
    records = tmp_path / "records.jsonl"
    assert records_main([str(events), str(records)]) == 0
    result = CliRunner().invoke(app, ["meter", str(records), "--policy", "deepgram-streaming", "-f", "json"])
    assert result.exit_code == 0, result.output
    [metered] = json.loads(result.stdout)["records"]
    assert Decimal(metered["actual_seconds"]) == Decimal("1.5")  # audio sent
    assert Decimal(metered["billable_seconds"]) == Decimal(3)  # x2 channels
    assert Decimal(metered["provider_reported_seconds"]) == Decimal("1.5")  # Metadata.duration


def test_an_events_file_with_a_bad_line_names_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text('{"specversion": "1.0", "id": "x", "source": "s", "type": "talktime.nope"}\n')
    assert records_main([str(events), str(tmp_path / "r.jsonl")]) == 2
    assert "line 1: type: 'talktime.nope' is not a known event type" in capsys.readouterr().err


def test_an_upstream_refusal_reaches_the_client_as_a_close_code_and_is_recorded_failed() -> None:
    async def scenario() -> tuple[Any, Running]:
        fake = FakeProvider(refuse=401)
        async with (
            fake.running(),
            running_proxy(options(fake.url)) as proxy,
            connect(proxy.url("/v1/listen?encoding=mulaw&sample_rate=8000")) as client,
        ):
            await drain(client)
            closed = (client.close_code, client.close_reason)
        return closed, proxy

    (code, reason), proxy = run(scenario())
    assert code == 4401  # 4000 + the upstream's HTTP status
    assert reason.startswith("upstream refused: HTTP 401 Unauthorized") and "INVALID_AUTH" in reason
    record = the_record(proxy)
    assert record.status == "failed"
    assert record.attrs["refusal"] == "HTTP 401 Unauthorized"


def test_with_refusal_http_the_client_gets_the_upstreams_own_answer() -> None:
    async def scenario() -> tuple[InvalidStatus, Running]:
        fake = FakeProvider(refuse=403)
        async with fake.running(), running_proxy(options(fake.url, refusal="http")) as proxy:
            with pytest.raises(InvalidStatus) as refused:
                async with connect(proxy.url("/v1/listen")):
                    pass
        return refused.value, proxy

    refused, proxy = run(scenario())
    assert refused.response.status_code == 403
    assert json.loads(refused.response.body)["err_code"] == "INVALID_AUTH"
    assert refused.response.headers["dg-error"] == "Invalid credentials."
    assert the_record(proxy).status == "failed"


def test_an_unreachable_upstream_closes_the_client_with_bad_gateway() -> None:
    async def scenario() -> tuple[Any, Running]:
        fake = FakeProvider()
        async with fake.running():
            dead = fake.url  # nothing listens there once the fake has stopped
        async with running_proxy(options(dead)) as proxy, connect(proxy.url("/v1/listen")) as client:
            await drain(client)
            return (client.close_code, client.close_reason), proxy

    (code, reason), proxy = run(scenario())
    assert code == 1014 and reason.startswith("upstream unreachable")
    record = the_record(proxy)
    assert record.status == "failed" and record.attrs["refusal"].startswith("unreachable")


def test_close_codes_cross_both_ways() -> None:
    async def scenario() -> tuple[Any, Any, FakeProvider]:
        fake = FakeProvider()
        async with fake.running(), running_proxy(options(fake.url)) as proxy:
            async with connect(proxy.url("/v1/listen")) as client:  # the upstream closes with its code
                await client.send(json.dumps({"type": "CloseWith", "code": 1011, "reason": "NET-0001"}))
                await drain(client)
                from_upstream = (client.close_code, client.close_reason)
            async with connect(proxy.url("/v1/listen")) as client:  # the client closes with its code
                await client.send(b"\x00" * CHUNK)
                await client.recv()
                await client.close(4321, "client done")
            await asyncio.sleep(0.05)
            for _ in range(100):  # the fake records its close once its TCP connection has ended
                if fake.seen[-1].closed_ns:
                    break
                await asyncio.sleep(0.01)
            events = proxy.transport
        return from_upstream, events, fake

    from_upstream, transport, fake = run(scenario())
    assert from_upstream == (1011, "NET-0001")
    assert (fake.seen[1].close_code, fake.seen[1].close_reason) == (4321, "client done")
    records = records_of(transport.events)
    by_closer = sorted((r.attrs["closed_by"], r.attrs["close_code"]) for r in records.values())
    assert by_closer == [("client", "4321"), ("upstream", "1011")]


def test_subprotocol_authentication_is_passed_on() -> None:
    """Browsers authenticate to Deepgram with the subprotocols ``token, KEY``; the upstream picks one."""

    async def scenario() -> tuple[str | None, FakeProvider]:
        fake = FakeProvider()
        offered = [Subprotocol("token"), Subprotocol("dg-key")]
        async with (
            fake.running(),
            running_proxy(options(fake.url)) as proxy,
            connect(proxy.url("/v1/listen"), subprotocols=offered) as client,
        ):
            chosen = client.subprotocol
            headers = client.response.headers if client.response else None
        assert headers is not None and headers["dg-request-id"] == "req-fake-1"
        return chosen, fake

    chosen, fake = run(scenario())
    assert chosen == "token"
    assert fake.seen[0].headers["Sec-WebSocket-Protocol"] == "token, dg-key"


def test_the_client_can_name_its_session_and_leg() -> None:
    async def scenario() -> Running:
        fake = FakeProvider()
        async with fake.running(), running_proxy(options(fake.url, customer="default-co")) as proxy:
            path = "/v1/listen?talktime_session=call-7&talktime_leg=caller&encoding=mulaw&sample_rate=8000"
            async with connect(proxy.url(path)) as client:
                await client.send(b"\xff" * 4000)
                await client.send(json.dumps({"type": "CloseStream"}))
                await drain(client)
            assert fake.seen[0].path == "/v1/listen?encoding=mulaw&sample_rate=8000"
        return proxy

    proxy = run(scenario())
    records = records_of(proxy.transport.events)
    assert list(records) == ["call-7/caller"]
    record = records["call-7/caller"]
    assert record.session == "call-7" and record.customer == "default-co"
    assert record.audio_seconds == Decimal("0.5")  # 4000 mu-law bytes at 8 kHz


def test_assemblyai_termination_is_kept_as_provider_reported_session_time() -> None:
    """AssemblyAI v3 defaults to pcm_s16le at 16 kHz and bills session time, reported in Termination."""

    async def scenario() -> tuple[Running, FakeProvider]:
        fake = FakeProvider(style="assemblyai")
        async with (
            fake.running(),
            running_proxy(options(fake.url, provider="assemblyai")) as proxy,
            connect(proxy.url("/v3/ws?speech_model=universal")) as client,
        ):
            for _ in range(50):
                await client.send(b"\x01\x00" * 1600)  # 100 ms each
            await client.send(json.dumps({"type": "Terminate"}))
            await drain(client)
        return proxy, fake

    proxy, fake = run(scenario())
    record = the_record(proxy)
    assert record.audio_seconds == Decimal(5)
    termination = json.loads(fake.seen[0].sent[-1])
    assert record.provider_reported_seconds == Decimal(str(termination["session_duration_seconds"]))
    assert record.attrs["provider_audio_seconds"] == "5"


def test_a_client_gone_before_the_upstream_answered_closes_the_upstream_at_once() -> None:
    """The provider bills an open connection: one whose client left during the handshake is closed now."""

    async def scenario() -> tuple[Running, FakeProvider, float]:
        fake = FakeProvider(delay=0.3)
        async with fake.running(), running_proxy(options(fake.url)) as proxy:
            _, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
            writer.write(
                b"GET /v1/listen HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
            )
            await writer.drain()
            await asyncio.sleep(0.1)
            writer.close()
            for _ in range(200):
                if fake.seen and fake.seen[0].closed_ns:
                    break
                await asyncio.sleep(0.01)
            held = (fake.seen[0].closed_ns - fake.seen[0].opened_ns) / 1e9
        return proxy, fake, held

    proxy, fake, held = run(scenario())
    assert fake.seen[0].close_code == 1001
    assert held < 1  # closed when the proxy saw the client gone, not at the 25 s safety net
    record = the_record(proxy)
    assert record.status == "canceled"


def test_no_code_and_no_close_frame_are_repeated_as_they_came() -> None:
    """An empty close frame (1005) goes on empty; a dropped connection (1006) drops the other side too."""

    async def scenario() -> tuple[Any, FakeProvider, Running]:
        fake = FakeProvider()
        async with fake.running(), running_proxy(options(fake.url)) as proxy:
            async with connect(proxy.url("/v1/listen")) as client:
                await client.send(json.dumps({"type": "Abort"}))
                await drain(client)
                dropped = (client.close_code, client.close_reason)
            async with connect(proxy.url("/v1/listen")) as client:
                await client.close(None)  # type: ignore[arg-type]  # websockets sends an empty close frame
            for _ in range(100):
                if fake.seen[-1].closed_ns:
                    break
                await asyncio.sleep(0.01)
        return dropped, fake, proxy

    dropped, fake, proxy = run(scenario())
    assert dropped == (1006, "")
    assert fake.seen[1].close_code == 1005
    closes = sorted(
        (r.attrs["closed_by"], r.attrs["close_code"]) for r in records_of(proxy.transport.events).values()
    )
    assert closes == [("client", "1005"), ("upstream", "1006")]
