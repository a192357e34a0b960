"""The LiveKit Agents hook with the real livekit-agents package and no LiveKit server: a real AgentSession
runs a scripted LLM (text in, text out) while its TTS and STT components report metrics the way their
metrics tasks do; the room is a real ``rtc.Room`` whose participants are built from LiveKit's own protocol
classes. The events go to a real talktime server on loopback and the records are billed by
``talktime meter``."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("livekit.agents")

from livekit import rtc
from livekit.agents import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN, Agent, AgentSession, stt, tts
from livekit.agents.llm import LLM, ChatChunk, ChoiceDelta, CompletionUsage, LLMStream
from livekit.agents.llm._realtime.openai import RealtimeModel
from livekit.agents.metrics import (
    AgentSessionUsage,
    ModelUsageCollector,
    RealtimeModelMetrics,
    STTMetrics,
    TTSMetrics,
)
from livekit.agents.metrics.base import Metadata
from livekit.agents.voice.events import CloseEvent, CloseReason, SessionUsageUpdatedEvent
from livekit.rtc._proto import handle_pb2, participant_pb2

from capture.serving import KEY, Meter, Server
from talktime.capture.livekit import attach
from talktime.capture.sink import EventSink, HttpSink, MemoryTransport, Retry

FAST = {"flush_interval": 0.05, "retry": Retry(attempts=2, first=0.05, longest=0.2)}
Kind = rtc.ParticipantKind


class ScriptedLLM(LLM):
    """An LLM that answers from a script and reports usage the way LiveKit's Anthropic plugin does:
    ``prompt_tokens`` gross (input + cache reads + cache writes), cache reads and writes beside it."""

    def __init__(self, turns: list[tuple[int, int, int, int]]) -> None:
        super().__init__()
        self.turns = list(turns)  # (uncached input, cache read, cache write, output) per request

    @property
    def model(self) -> str:
        return "claude-sonnet-4-5"

    @property
    def provider(self) -> str:
        return "api.anthropic.com"

    def chat(
        self,
        *,
        chat_ctx: Any,
        tools: Any = None,
        conn_options: Any = DEFAULT_API_CONNECT_OPTIONS,
        parallel_tool_calls: Any = NOT_GIVEN,
        tool_choice: Any = NOT_GIVEN,
        extra_kwargs: Any = NOT_GIVEN,
    ) -> LLMStream:
        return ScriptedStream(self, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options)


class ScriptedStream(LLMStream):
    async def _run(self) -> None:
        assert isinstance(self._llm, ScriptedLLM)
        fresh, read, written, output = self._llm.turns.pop(0)
        prompt = fresh + read + written
        self._event_ch.send_nowait(ChatChunk(id="c", delta=ChoiceDelta(role="assistant", content="Sure.")))
        usage = CompletionUsage(
            completion_tokens=output,
            prompt_tokens=prompt,
            prompt_cached_tokens=read,
            cache_creation_tokens=written,
            cache_read_tokens=read,
            total_tokens=prompt + output,
        )
        self._event_ch.send_nowait(ChatChunk(id="c", usage=usage))


class FakeTTS(tts.TTS):
    def __init__(self) -> None:
        super().__init__(capabilities=tts.TTSCapabilities(streaming=False), sample_rate=24000, num_channels=1)

    @property
    def model(self) -> str:
        return "eleven_flash_v2_5"

    @property
    def provider(self) -> str:
        return "ElevenLabs"

    def synthesize(self, text: str, *, conn_options: Any = DEFAULT_API_CONNECT_OPTIONS) -> Any:
        raise NotImplementedError  # text mode: never asked to speak

    def spoke(self, text: str) -> None:
        """What the TTS metrics task emits after a request."""
        self.emit(
            "metrics_collected",
            TTSMetrics(
                label="fake",
                request_id=text,
                timestamp=time.time(),
                ttfb=0.1,
                duration=0.3,
                audio_duration=1.5,
                cancelled=False,
                characters_count=len(text),
                streamed=False,
                metadata=Metadata(model_name=self.model, model_provider=self.provider),
            ),
        )


class FakeSTT(stt.STT):
    def __init__(self) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=True, interim_results=False))

    @property
    def model(self) -> str:
        return "nova-3"

    @property
    def provider(self) -> str:
        return "Deepgram"

    async def _recognize_impl(
        self, buffer: Any, *, language: Any = NOT_GIVEN, conn_options: Any = None
    ) -> Any:
        raise NotImplementedError

    def stream(self, *, language: Any = NOT_GIVEN, conn_options: Any = DEFAULT_API_CONNECT_OPTIONS) -> Any:
        return Silent(stt=self, conn_options=conn_options)

    def heard(self, seconds: float) -> None:
        """What a streaming STT's metrics task emits as audio is sent (``RECOGNITION_USAGE``)."""
        self.emit(
            "metrics_collected",
            STTMetrics(
                label="fake",
                request_id="s",
                timestamp=time.time(),
                duration=0.0,
                audio_duration=seconds,
                streamed=True,
                metadata=Metadata(model_name=self.model, model_provider=self.provider),
            ),
        )


class Silent(stt.RecognizeStream):
    async def _run(self) -> None:
        async for _ in self._input_ch:
            pass


def participant(identity: str, kind: int, joined: datetime) -> rtc.RemoteParticipant:
    """A participant as the LiveKit SDK builds it from the server's ParticipantInfo (no server here)."""
    info = participant_pb2.ParticipantInfo(
        sid=f"PA_{identity}",
        name=identity,
        identity=identity,
        state=participant_pb2.PARTICIPANT_STATE_ACTIVE,
        metadata="",
        kind=kind,
        disconnect_reason=0,
        joined_at=int(joined.timestamp() * 1000),
        client_protocol=0,
    )
    owned = participant_pb2.OwnedParticipant(handle=handle_pb2.FfiOwnedHandle(id=0), info=info)
    return rtc.RemoteParticipant(owned)


class ConnectedRoom(rtc.Room):
    """A real rtc.Room (its events, its emitter) that says it is connected, with the agent and one person
    already in it: what a job's room looks like when ``attach`` is called."""

    def __init__(self, agent: rtc.Participant, people: list[rtc.RemoteParticipant]) -> None:
        super().__init__()
        self._agent = agent
        self._people = {p.identity: p for p in people}

    @property
    def local_participant(self) -> Any:
        return self._agent

    @property
    def remote_participants(self) -> Any:
        return self._people

    def isconnected(self) -> bool:
        return True


def session(
    turns: list[tuple[int, int, int, int]], fake_tts: FakeTTS, fake_stt: FakeSTT
) -> AgentSession[Any]:
    return AgentSession(
        llm=ScriptedLLM(turns),
        tts=fake_tts,
        stt=fake_stt,
        turn_handling={"turn_detection": "manual"},
        session_close_transcript_timeout=0.1,
    )


def test_a_session_s_usage_and_room_arrive_as_records_billed_like_the_providers(
    server: Server, meter: Meter, tmp_path: Path
) -> None:
    now = datetime.now(UTC)
    sink = HttpSink(server.url, KEY, outbox=tmp_path / "outbox.jsonl", **FAST)
    fake_tts, fake_stt = FakeTTS(), FakeSTT()
    agent = participant("agent-7", Kind.PARTICIPANT_KIND_AGENT, now - timedelta(seconds=100))
    person = participant("web-ann", Kind.PARTICIPANT_KIND_STANDARD, now - timedelta(seconds=75))
    caller = participant("sip-bob", Kind.PARTICIPANT_KIND_SIP, now - timedelta(seconds=40))
    recorder = participant("EG_rec", Kind.PARTICIPANT_KIND_EGRESS, now - timedelta(seconds=30))

    async def call() -> Any:
        room = ConnectedRoom(agent, [person])  # a room belongs to the running loop
        voice = session([(1648, 8192, 400, 412), (572, 9728, 0, 95)], fake_tts, fake_stt)
        capture = attach(voice, sink, call_id="room-1", customer="acme", room=room)
        await voice.start(Agent(instructions="You are a bank."))
        room.emit("participant_connected", caller)
        room.emit("participant_connected", recorder)  # egress: LiveKit meters it apart, not recorded
        fake_stt.heard(2.5)
        await voice.run(user_input="What is my balance?")
        fake_tts.spoke("Hello! How can I help you today?")
        fake_stt.heard(0.1)
        fake_stt.heard(0.2)
        await voice.run(user_input="When does my order ship?")
        fake_tts.spoke("Your order ships tomorrow.")
        room.emit("participant_disconnected", caller)
        await voice.aclose()
        return capture

    capture = asyncio.run(call())
    assert sink.close(timeout=10)
    assert capture.errors == 0 and sink.stats.lost == 0

    llm = server.record("room-1/llm/anthropic/claude-sonnet-4-5", "anthropic-messages")
    fields = llm["fields"]
    assert (fields["kind"], fields["provider"], fields["product"]) == ("llm", "anthropic", "messages")
    # LiveKit's prompt_tokens is gross: 1,648 + 8,192 + 400 and 572 + 9,728
    assert (fields["input_tokens"], fields["cached_input_tokens"], fields["cache_write_tokens"]) == (
        "20540",
        "17920",
        "400",
    )
    assert llm["status"] == "completed" and llm["flags"] == []
    tts_fields = server.record("room-1/tts/elevenlabs/eleven_flash_v2_5", "elevenlabs-tts")["fields"]
    assert (tts_fields["characters"], tts_fields["product"]) == ("58", "tts")
    stt_record = server.record("room-1/stt/deepgram/nova-3", "deepgram-streaming")
    assert stt_record["fields"]["audio_seconds"] == "2.8"  # 2.5 + 0.1 + 0.2, exactly
    assert stt_record["fields"]["product"] == "stt-streaming"

    people = {
        i: server.record(f"room-1/{i}", "livekit-participant") for i in ("agent-7", "web-ann", "sip-bob")
    }
    assert {i: r["fields"]["kind"] for i, r in people.items()} == {
        "agent-7": "agent",
        "web-ann": "participant",
        "sip-bob": "sip",
    }
    assert agent.joined_at is not None  # the agent's record starts when LiveKit says it joined
    assert people["agent-7"]["fields"]["started_at"] == agent.joined_at.isoformat()
    assert people["agent-7"]["fields"]["attr.livekit_close"] == "user_initiated"

    rows = [
        server.record(i, "anthropic-messages")["fields"]
        for i in (
            "room-1/llm/anthropic/claude-sonnet-4-5",
            "room-1/tts/elevenlabs/eleven_flash_v2_5",
            "room-1/stt/deepgram/nova-3",
            "room-1/agent-7",
            "room-1/web-ann",
            "room-1/sip-bob",
        )
    ]
    assert meter(rows, "anthropic-messages") == {
        "anthropic-messages-tokens-input": "2220",
        "anthropic-messages-tokens-cache-read": "17920",
        "anthropic-messages-tokens-cache-write": "400",
        "anthropic-messages-tokens-output": "507",
    }
    assert meter(rows, "elevenlabs-tts") == {"elevenlabs-tts-credits": "29"}
    # each connection rounded up to a whole minute: the agent (100 s) and Ann (75 s) 2 minutes each on
    # the WebRTC meter, Bob's SIP call (40 s) 1 minute on the SIP meter; the egress recorder is not there
    assert meter(rows, "livekit-participant") == {
        "livekit-webrtc-participant-minutes": "4",
        "livekit-sip-minutes": "1",
    }


def realtime_usage(
    collector: ModelUsageCollector,
    audio_in: int,
    cached_audio: int,
    text_in: int,
    cached_text: int,
    audio_out: int,
    text_out: int,
) -> SessionUsageUpdatedEvent:
    """One response.done of OpenAI Realtime, as LiveKit's realtime model reports it, then the session's
    running totals as ``session_usage_updated`` carries them."""
    details = RealtimeModelMetrics.InputTokenDetails(
        audio_tokens=audio_in,
        text_tokens=text_in,
        cached_tokens=cached_audio + cached_text,
        cached_tokens_details=RealtimeModelMetrics.CachedTokenDetails(
            audio_tokens=cached_audio, text_tokens=cached_text
        ),
    )
    collector.collect(
        RealtimeModelMetrics(
            request_id="resp",
            timestamp=time.time(),
            input_tokens=audio_in + text_in,
            output_tokens=audio_out + text_out,
            total_tokens=audio_in + text_in + audio_out + text_out,
            input_token_details=details,
            output_token_details=RealtimeModelMetrics.OutputTokenDetails(
                audio_tokens=audio_out, text_tokens=text_out
            ),
            metadata=Metadata(model_name="gpt-realtime", model_provider="api.openai.com"),
        )
    )
    return SessionUsageUpdatedEvent(usage=AgentSessionUsage(model_usage=collector.flatten()))


def test_realtime_usage_is_added_once_per_update_with_its_audio_parts() -> None:
    transport = MemoryTransport()
    sink = EventSink(transport, flush_interval=0.01)

    async def call() -> int:
        voice: AgentSession[Any] = AgentSession(llm=RealtimeModel(api_key="sk-test"))
        capture = attach(voice, sink, call_id="rt-1", customer="acme")
        collector = ModelUsageCollector()
        first = realtime_usage(
            collector, audio_in=600, cached_audio=50, text_in=300, cached_text=50, audio_out=250, text_out=50
        )
        voice.emit("session_usage_updated", first)
        voice.emit("session_usage_updated", first)  # the same update seen twice: nothing added
        second = realtime_usage(
            collector,
            audio_in=400,
            cached_audio=300,
            text_in=100,
            cached_text=100,
            audio_out=120,
            text_out=30,
        )
        voice.emit("session_usage_updated", second)
        voice.emit("close", CloseEvent(reason=CloseReason.PARTICIPANT_DISCONNECTED))
        return capture.errors

    assert asyncio.run(call()) == 0
    assert sink.close(timeout=5)
    tokens = [e["data"] for e in transport.events if e["type"] == "talktime.tokens"]
    assert [
        (
            t["input_tokens"],
            t["cached_input_tokens"],
            t["audio_input_tokens"],
            t["output_tokens"],
            t["audio_output_tokens"],
        )
        for t in tokens
    ] == [(900, 100, 550, 300, 250), (500, 400, 100, 150, 120)]
    assert {(t["provider"], t["product"], t["kind"], t["attrs"]["model"]) for t in tokens} == {
        ("openai", "realtime", "llm", "gpt-realtime")
    }
    seen = [(e["type"], e["data"].get("leg") or e["data"].get("participant")) for e in transport.events]
    assert ("talktime.participant.joined", "agent") in seen and ("talktime.participant.left", "agent") in seen
    assert len({e["id"] for e in transport.events}) == len(transport.events)


def test_a_session_s_usage_is_kept_in_the_outbox_while_the_server_is_down(
    down_server: Server, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox.jsonl"
    sink = HttpSink(down_server.url, KEY, outbox=outbox, **FAST)

    async def call() -> int:
        voice: AgentSession[Any] = AgentSession(llm=RealtimeModel(api_key="sk-test"))
        capture = attach(voice, sink, call_id="rt-2", customer="acme")
        voice.emit("session_usage_updated", realtime_usage(ModelUsageCollector(), 600, 50, 300, 50, 250, 50))
        voice.emit("close", CloseEvent(reason=CloseReason.USER_INITIATED))
        return capture.errors

    assert asyncio.run(call()) == 0
    assert sink.close(timeout=10)  # the server never came up: all of it waits on disk
    # the LLM leg opened, its tokens and its close; the agent's session joined and left
    assert (sink.stats.buffered, sink.stats.lost) == (5, 0)

    down_server.start()
    again = HttpSink(down_server.url, KEY, outbox=outbox, **FAST)  # the next process sends it on start
    assert again.close(timeout=10)
    assert again.stats.resent == 5 and not outbox.exists()
    record = down_server.record("rt-2/llm/openai/gpt-realtime", "openai-realtime")
    assert (record["fields"]["input_tokens"], record["fields"]["audio_input_tokens"]) == ("900", "550")


def test_each_connection_of_a_participant_is_a_record_of_its_own() -> None:
    transport = MemoryTransport()
    sink = EventSink(transport, flush_interval=0.01)
    now = datetime.now(UTC)
    agent = participant("agent-1", Kind.PARTICIPANT_KIND_AGENT, now - timedelta(seconds=60))

    async def call() -> int:
        room = ConnectedRoom(agent, [])  # a room belongs to the running loop
        voice: AgentSession[Any] = AgentSession()
        capture = attach(voice, sink, call_id="room-2", room=room)
        for seconds_ago in (50, 20):  # Ann drops out and comes back: LiveKit bills two connections
            ann = participant("ann", Kind.PARTICIPANT_KIND_STANDARD, now - timedelta(seconds=seconds_ago))
            room.emit("participant_connected", ann)
            room.emit("participant_connected", ann)  # the same connection told twice
            if seconds_ago == 50:
                room.emit("participant_disconnected", ann)
        voice.emit("close", CloseEvent(reason=CloseReason.USER_INITIATED))
        return capture.errors

    assert asyncio.run(call()) == 0
    assert sink.close(timeout=5)
    seen = [(e["type"].rsplit(".", 1)[-1], e["data"]["participant"]) for e in transport.events]
    assert seen == [
        ("joined", "agent-1"),
        ("joined", "ann"),
        ("left", "ann"),
        ("joined", "ann/2"),
        ("left", "agent-1"),
        ("left", "ann/2"),
    ]
