"""The Pipecat observer with the real pipecat-ai package: a pipeline of test services (no network) runs
under Pipecat's own test harness, the observer's events go to a real talktime server on loopback, and the
records that arrive are billed by ``talktime meter`` as the providers bill them."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("pipecat")

from openai.types.completion_usage import CompletionUsage, PromptTokensDetails
from pipecat.frames.frames import CancelFrame, DataFrame, Frame, MetricsFrame, StartFrame, TextFrame
from pipecat.metrics.metrics import LLMTokenUsage, LLMUsageMetricsData, MetricsData, STTUsage
from pipecat.observers.base_observer import FramePushed
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.tests.utils import SleepFrame, run_test

from capture.serving import KEY, Meter, Server
from talktime.capture.events import Tokens
from talktime.capture.pipecat import TalktimeObserver, tokens_of
from talktime.capture.sink import EventSink, HttpSink, MemoryTransport, Retry

USAGE = PipelineParams(enable_metrics=True, enable_usage_metrics=True)
FAST = {"flush_interval": 0.05, "retry": Retry(attempts=2, first=0.05, longest=0.2)}
SPOKEN = ("Hello! How can I help you today?", "Your order ships tomorrow.")


@dataclass
class Turn(DataFrame):
    """A test frame: one LLM request's usage as the OpenAI API reports it."""

    usage: CompletionUsage | None = None


@dataclass
class Heard(DataFrame):
    """A test frame: seconds of audio an STT service was sent."""

    audio_seconds: float = 0.0


class ScriptedOpenAILLM(OpenAILLMService):
    """Pipecat's real OpenAI LLM service (its own usage conversion, ``_token_usage``), answering from a
    script instead of the network."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        if isinstance(frame, Turn) and frame.usage is not None:
            await self.start_llm_usage_metrics(self._token_usage(frame.usage))
            return
        await super().process_frame(frame, direction)


class ScriptedAnthropicLLM(FrameProcessor):
    """Reports usage exactly as pipecat's AnthropicLLMService._report_usage_metrics does (pipecat-ai 1.14.0,
    services/anthropic/llm.py): ``prompt_tokens`` net of the cache, ``total_tokens`` gross."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.set_core_metrics_data(MetricsData(processor=self.name, model="claude-sonnet-4-5"))

    def can_generate_metrics(self) -> bool:
        return True

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TextFrame):  # input 1,648 uncached, 8,192 cache reads, 400 cache writes
            net, read, written, output = 1648, 8192, 400, 412
            await self.start_llm_usage_metrics(
                LLMTokenUsage(
                    prompt_tokens=net,
                    completion_tokens=output,
                    cache_creation_input_tokens=written,
                    cache_read_input_tokens=read,
                    total_tokens=net + written + read + output,
                )
            )
        await self.push_frame(frame, direction)


class FakeTTS(FrameProcessor):
    """A TTS service that reports usage the way Pipecat's TTSService does: ``len(text)`` of each text."""

    def __init__(self, model: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.set_core_metrics_data(MetricsData(processor=self.name, model=model))

    def can_generate_metrics(self) -> bool:
        return True

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TextFrame):
            await self.start_tts_usage_metrics(frame.text)
        await self.push_frame(frame, direction)


class FakeSTT(FrameProcessor):
    """A streaming STT service that reports the audio seconds it was sent (``STTUsageMetricsData``)."""

    def __init__(self, model: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.set_core_metrics_data(MetricsData(processor=self.name, model=model))

    def can_generate_metrics(self) -> bool:
        return True

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, Heard):
            await self.start_stt_usage_metrics(STTUsage(audio_seconds=frame.audio_seconds))
        await self.push_frame(frame, direction)


def usage(prompt: int, cached: int, completion: int) -> CompletionUsage:
    return CompletionUsage(
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=cached),
    )


def pipeline() -> Pipeline:
    return Pipeline(
        [
            FakeSTT("nova-3", name="stt"),
            ScriptedOpenAILLM(
                api_key="sk-test", settings=OpenAILLMService.Settings(model="gpt-4o-mini"), name="llm"
            ),
            FakeTTS("eleven_flash_v2_5", name="tts"),
        ]
    )


def frames() -> list[Frame]:
    """Two turns: the caller speaks (2.5 s, then 0.1 s + 0.2 s + 3.25 s), the LLM answers, TTS speaks."""
    return [
        Heard(audio_seconds=2.5),
        Turn(usage=usage(9840, 8192, 412)),
        TextFrame(SPOKEN[0]),
        Heard(audio_seconds=0.1),
        Heard(audio_seconds=0.2),
        Heard(audio_seconds=3.25),
        Turn(usage=usage(10300, 9728, 95)),
        TextFrame(SPOKEN[1]),
    ]


def observer(sink: EventSink) -> TalktimeObserver:
    return TalktimeObserver(
        sink, call_id="call-1", customer="acme", providers={"FakeSTT": "deepgram", "FakeTTS": "elevenlabs"}
    )


async def run(observer: TalktimeObserver, sent: list[Frame] | None = None) -> None:
    await run_test(pipeline(), frames_to_send=sent or frames(), observers=[observer], pipeline_params=USAGE)


def assert_the_call_is_billed(server: Server, meter: Meter) -> None:
    llm = server.record("call-1/llm/gpt-4o-mini", "openai-chat")
    fields = llm["fields"]
    assert (fields["kind"], fields["provider"], fields["product"], fields["attr.model"]) == (
        "llm",
        "openai",
        "chat",
        "gpt-4o-mini",
    )
    assert (fields["input_tokens"], fields["cached_input_tokens"], fields["output_tokens"]) == (
        "20140",
        "17920",
        "507",
    )
    assert llm["flags"] == [] and llm["status"] == "completed"
    tts = server.record("call-1/tts/eleven_flash_v2_5", "elevenlabs-tts")
    assert tts["fields"]["characters"] == str(sum(map(len, SPOKEN))) == "58"
    stt = server.record("call-1/stt/nova-3", "deepgram-streaming")
    assert (stt["fields"]["kind"], stt["fields"]["product"]) == ("stream", "stt-streaming")
    assert stt["fields"]["audio_seconds"] == "6.05"  # 2.5 + 0.1 + 0.2 + 3.25, exactly
    assert stt["billable_seconds"] == "6.05"
    call = server.record("call-1", "livekit-agent")
    assert (call["fields"]["kind"], call["status"], call["flags"]) == ("agent", "completed", [])

    rows = [
        server.record(i, "openai-chat")["fields"]
        for i in ("call-1", "call-1/llm/gpt-4o-mini", "call-1/tts/eleven_flash_v2_5", "call-1/stt/nova-3")
    ]
    # uncached input 1,648 + 572, cached 8,192 + 9,728, output 412 + 95
    assert meter(rows, "openai-chat") == {
        "openai-chat-tokens-input": "2220",
        "openai-chat-tokens-cached-input": "17920",
        "openai-chat-tokens-output": "507",
    }
    # Flash v2.5 costs 1 credit per 2 characters: 58 characters -> 29 credits
    assert meter(rows, "elevenlabs-tts") == {"elevenlabs-tts-credits": "29"}


def test_a_pipeline_s_usage_arrives_as_records_billed_like_the_providers(
    server: Server, meter: Meter, tmp_path: Path
) -> None:
    sink = HttpSink(server.url, KEY, outbox=tmp_path / "outbox.jsonl", **FAST)
    watcher = observer(sink)
    asyncio.run(run(watcher))
    assert sink.close(timeout=10)
    assert watcher.errors == 0
    # 1 call + 3 legs opened and closed, 2 token, 2 character and 4 audio reports: each frame counted
    # once although it passes every processor
    assert (sink.stats.emitted, sink.stats.delivered, sink.stats.duplicate, sink.stats.lost) == (16, 16, 0, 0)
    assert server.events() == 16
    assert_the_call_is_billed(server, meter)


def test_a_server_that_is_down_loses_nothing_and_never_slows_or_breaks_the_pipeline(
    down_server: Server, meter: Meter, tmp_path: Path
) -> None:
    outbox = tmp_path / "outbox.jsonl"
    sink = HttpSink(down_server.url, KEY, outbox=outbox, **FAST)
    watcher = observer(sink)
    started = time.monotonic()
    asyncio.run(run(watcher))
    took = time.monotonic() - started
    assert watcher.errors == 0
    assert took < 5, f"the pipeline took {took:.1f} s with the server down"
    assert sink.flush(timeout=10)
    assert sink.stats.buffered == 16 and sink.stats.delivered == 0 and sink.stats.failed_attempts > 0
    assert len(outbox.read_text().splitlines()) == 16

    down_server.start()  # the server comes back: the outbox is resent when the backoff allows
    for _ in range(200):
        if sink.stats.delivered == 16:
            break
        time.sleep(0.05)
    assert sink.close(timeout=10)
    assert (sink.stats.delivered, sink.stats.lost) == (16, 0)
    assert not outbox.exists()
    assert_the_call_is_billed(down_server, meter)


def test_anthropic_usage_net_of_the_cache_becomes_gross_input_tokens(server: Server, meter: Meter) -> None:
    sink = HttpSink(server.url, KEY, outbox=False, **FAST)
    watcher = TalktimeObserver(
        sink, call_id="call-2", customer="acme", providers={"ScriptedAnthropicLLM": "anthropic"}
    )
    sent: list[Frame] = [TextFrame("What is my balance?")]
    asyncio.run(
        run_test(
            ScriptedAnthropicLLM(name="claude"),
            frames_to_send=sent,
            observers=[watcher],
            pipeline_params=USAGE,
        )
    )
    assert sink.close(timeout=10)
    record = server.record("call-2/claude/claude-sonnet-4-5", "anthropic-messages")
    fields = record["fields"]
    assert (fields["provider"], fields["product"]) == ("anthropic", "messages")
    # input_tokens is every input token, the cache included: 1,648 + 8,192 + 400
    assert (fields["input_tokens"], fields["cached_input_tokens"], fields["cache_write_tokens"]) == (
        "10240",
        "8192",
        "400",
    )
    assert meter([fields], "anthropic-messages") == {
        "anthropic-messages-tokens-input": "1648",
        "anthropic-messages-tokens-cache-read": "8192",
        "anthropic-messages-tokens-cache-write": "400",
        "anthropic-messages-tokens-output": "412",
    }


@pytest.mark.parametrize(
    ("reported", "expected", "why"),
    [
        (
            LLMTokenUsage(
                prompt_tokens=9840, completion_tokens=412, total_tokens=10252, cache_read_input_tokens=8192
            ),
            Tokens(9840, 412, cached_input_tokens=8192),
            "OpenAI: prompt_tokens gross, cached a part of it",
        ),
        (
            LLMTokenUsage(
                prompt_tokens=1648,
                completion_tokens=412,
                total_tokens=10652,
                cache_read_input_tokens=8192,
                cache_creation_input_tokens=400,
            ),
            Tokens(10240, 412, cached_input_tokens=8192, cache_write_tokens=400),
            "Anthropic/Bedrock: prompt_tokens net, total_tokens gross",
        ),
        (
            LLMTokenUsage(
                prompt_tokens=1648, completion_tokens=412, total_tokens=0, cache_read_input_tokens=8192
            ),
            Tokens(9840, 412, cached_input_tokens=8192),
            "no total: the cache does not fit in prompt, so it was net",
        ),
        (
            LLMTokenUsage(
                prompt_tokens=900,
                completion_tokens=300,
                total_tokens=1200,
                cache_read_input_tokens=100,
                input_audio_tokens=600,
                cache_read_input_audio_tokens=50,
                output_audio_tokens=250,
            ),
            Tokens(900, 300, cached_input_tokens=100, audio_input_tokens=550, audio_output_tokens=250),
            "OpenAI Realtime: audio input net of the cached audio, audio output a part of output",
        ),
        (
            LLMTokenUsage(prompt_tokens=120, completion_tokens=80, total_tokens=200, reasoning_tokens=60),
            Tokens(120, 80),
            "reasoning tokens are already in completion_tokens",
        ),
    ],
)
def test_token_usage_follows_the_record_convention(
    reported: LLMTokenUsage, expected: Tokens, why: str
) -> None:
    assert tokens_of(reported) == expected, why


def test_each_frame_counts_once_and_errors_never_reach_the_pipeline() -> None:
    transport = MemoryTransport()
    sink = EventSink(transport, flush_interval=0.01)
    watcher = TalktimeObserver(sink, call_id="call-3")
    tokens = LLMTokenUsage(prompt_tokens=5, completion_tokens=1, total_tokens=6)
    report = MetricsFrame(data=[LLMUsageMetricsData(processor="llm#0", model="m", value=tokens)])

    class Broken:
        def emit(self, event: Any) -> None:
            raise RuntimeError("the sink is broken")

    broken = TalktimeObserver(Broken(), call_id="call-4")

    async def scenario() -> None:
        hop = pushed(report)
        for _ in range(3):  # the same frame seen at three hops
            await watcher.on_push_frame(hop)
        await broken.on_push_frame(hop)  # logged and counted, not raised

    asyncio.run(scenario())
    assert sink.close(timeout=5)
    assert broken.errors == 1
    sent = [e for e in transport.events if e["type"] == "talktime.tokens"]
    assert len(sent) == 1 and sent[0]["data"]["input_tokens"] == 5
    assert sent[0]["subject"] == "call-3" and sent[0]["data"]["leg"] == "llm-0/m"


def test_the_call_closes_at_teardown_when_no_end_frame_was_seen() -> None:
    transport = MemoryTransport()
    sink = EventSink(transport, flush_interval=0.01)
    watcher = TalktimeObserver(sink, call_id="call-5")

    async def scenario() -> None:
        await watcher.on_push_frame(pushed(StartFrame()))
        await watcher.cleanup()  # the pipeline torn down without an EndFrame or a CancelFrame

    asyncio.run(scenario())
    assert sink.close(timeout=5)
    seen = [(e["type"], e["data"].get("attrs", {}).get("pipecat_end")) for e in transport.events]
    assert seen == [("talktime.connection.opened", None), ("talktime.connection.closed", "teardown")]


def pushed(frame: Frame) -> FramePushed:
    processor = FakeTTS("m")
    return FramePushed(
        source=processor, destination=processor, frame=frame, direction=FrameDirection.DOWNSTREAM, timestamp=0
    )


def test_a_cancelled_pipeline_closes_the_call_and_keeps_its_usage() -> None:
    transport = MemoryTransport()
    sink = EventSink(transport, flush_interval=0.01)
    watcher = TalktimeObserver(sink, call_id="call-6", providers={"FakeTTS": "elevenlabs"})
    sent: list[Frame] = [
        TextFrame("Goodbye."),
        SleepFrame(sleep=0.05),
        CancelFrame(),
    ]  # cancel overtakes queued frames
    asyncio.run(
        run_test(
            FakeTTS("eleven_multilingual_v2", name="tts"),
            frames_to_send=sent,
            observers=[watcher],
            pipeline_params=USAGE,
            send_end_frame=False,
        )
    )
    assert sink.close(timeout=5)
    closed = [e["data"] for e in transport.events if e["type"] == "talktime.connection.closed"]
    assert [c.get("leg") for c in closed] == [None, "tts/eleven_multilingual_v2"]
    assert closed[0]["attrs"]["pipecat_end"] == "cancel" and "status" not in closed[0]  # completed
    characters = [e["data"]["characters"] for e in transport.events if e["type"] == "talktime.characters"]
    assert characters == [8]
