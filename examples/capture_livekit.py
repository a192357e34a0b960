"""A LiveKit agent whose usage and room go to talktime: one line before session.start (talktime[livekit]).

    talktime serve --store events.duckdb --port 8080 &
    TALKTIME_URL=http://127.0.0.1:8080 TALKTIME_KEY=KEY python examples/capture_livekit.py dev

(needs a LiveKit project: LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET). Without TALKTIME_URL the events
are written to capture-livekit.jsonl.
"""

import asyncio
import functools
import os

from livekit.agents import Agent, AgentServer, AgentSession, JobContext, cli, inference

from talktime.capture.livekit import attach
from talktime.capture.sink import EventSink, open_sink

server = AgentServer()


@functools.cache
def sink() -> EventSink:
    """One sink per job process, made in it (its thread does not survive a fork)."""
    return open_sink(os.environ.get("TALKTIME_URL", "capture-livekit.jsonl"), os.environ.get("TALKTIME_KEY"))


@server.rtc_session()
async def entrypoint(ctx: JobContext) -> None:
    session: AgentSession[None] = AgentSession(
        stt=inference.STT("deepgram/nova-3"),
        llm=inference.LLM("openai/gpt-4.1-mini"),
        tts=inference.TTS("cartesia/sonic-3"),
    )
    attach(session, sink(), call_id=ctx.job.id, customer="acme", room=ctx.room)  # the one line

    async def flush() -> None:  # before the job process goes: send what is left (or keep it on disk)
        await asyncio.to_thread(sink().flush, 5.0)

    ctx.add_shutdown_callback(flush)
    await session.start(agent=Agent(instructions="You are a helpful voice assistant."), room=ctx.room)


if __name__ == "__main__":
    cli.run_app(server)
