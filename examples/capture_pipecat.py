"""A Pipecat pipeline whose usage goes to talktime: one observer on the worker (talktime[pipecat]).

    talktime keys create acme-platform --store events.duckdb     # prints KEY
    talktime serve --store events.duckdb --port 8080 &
    TALKTIME_URL=http://127.0.0.1:8080 TALKTIME_KEY=KEY python examples/capture_pipecat.py

Without TALKTIME_URL the events are written to capture-pipecat.jsonl. The "TTS" below is a stand-in that
reports usage the way Pipecat's TTS services do, so the example runs without provider keys; in a real bot
the pipeline is transport.input(), STT, LLM, TTS, transport.output(), and the observer line is the same.
"""

import asyncio
import os
import uuid

from pipecat.frames.frames import EndFrame, Frame, TextFrame
from pipecat.metrics.metrics import MetricsData
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.runner import WorkerRunner
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from talktime.capture.pipecat import TalktimeObserver
from talktime.capture.sink import open_sink


class StandInTTS(FrameProcessor):
    def __init__(self) -> None:
        super().__init__(name="tts")
        self.set_core_metrics_data(MetricsData(processor=self.name, model="eleven_flash_v2_5"))

    def can_generate_metrics(self) -> bool:
        return True

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TextFrame):
            await self.start_tts_usage_metrics(frame.text)
        await self.push_frame(frame, direction)


async def main() -> None:
    sink = open_sink(os.environ.get("TALKTIME_URL", "capture-pipecat.jsonl"), os.environ.get("TALKTIME_KEY"))
    observer = TalktimeObserver(
        sink, call_id=f"call-{uuid.uuid4()}", customer="acme", providers={"StandInTTS": "elevenlabs"}
    )
    worker = PipelineWorker(
        Pipeline([StandInTTS()]),
        params=PipelineParams(enable_metrics=True, enable_usage_metrics=True),
        observers=[observer],  # the one line talktime needs
    )

    @worker.event_handler("on_pipeline_started")  # type: ignore[untyped-decorator]
    async def speak(worker: PipelineWorker, frame: object) -> None:
        await worker.queue_frames([TextFrame("Hello! How can I help you today?"), EndFrame()])

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    await runner.run()
    sink.close()  # sends what is left, or keeps it in the outbox for the next start
    stats = sink.stats
    print(f"talktime: {stats.emitted} events, {stats.delivered} delivered, {stats.buffered} buffered")


if __name__ == "__main__":
    asyncio.run(main())
