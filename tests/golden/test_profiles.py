"""Golden cases for the built-in provider profiles: what each provider's published rule bills.

Each row is (profile id, record fields, expected billable quantity, expected meter, why), plus the words the
explain trail must contain where a rule made the number. The quantity is in the policy's base unit: seconds
for time units, else the count itself (tokens, characters, credits). Profiles that meter several parts of a
record (an LLM call's input, cached input and output tokens) have a table of their own, one expected
quantity per part. Every expected value was worked out by hand from the provider's published rule
(../shared/reference/provider-rules.md and the profile's sources), never copied from the meter's output.
Records are built with ``parse_record`` and metered with ``meter_records`` under ``builtin(id)``, the way the
CLI does it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from typer.testing import CliRunner

from talktime.cli.main import app
from talktime.core.metering import MeteredRecord, meter_records
from talktime.core.records import parse_record
from talktime.errors import RecordError
from talktime.providers import builtin, builtin_ids

REQUIRED_IDS = (
    "twilio-voice",
    "telnyx-voice",
    "plivo-voice",
    "vonage-voice",
    "livekit-participant",
    "livekit-sip",
    "livekit-agent",
    "deepgram-prerecorded",
    "deepgram-streaming",
    "deepgram-voice-agent",
    "assemblyai-prerecorded",
    "assemblyai-streaming",
    "rev-streaming",
    "aws-transcribe",
    "openai-whisper",
    "retell",
    "bland",
    "vapi",
    "elevenlabs-agents",
    "cartesia-stt",
    # quantities beyond time: tokens, characters, credits
    "openai-chat",
    "openai-realtime",
    "anthropic-messages",
    "google-gemini",
    "elevenlabs-tts",
    "deepgram-aura",
    "cartesia-tts",
    "azure-tts",
    "livekit-inference-stt",
    "livekit-inference-llm",
    "livekit-inference-tts",
)
#: Where in a call each product sits (the policy's ``modality``), for per-call cost stacks.
BY_MODALITY = {
    "telephony": ("twilio-voice", "telnyx-voice", "plivo-voice", "vonage-voice", "livekit-sip"),
    "stt": (
        "deepgram-prerecorded",
        "deepgram-streaming",
        "assemblyai-prerecorded",
        "assemblyai-streaming",
        "rev-streaming",
        "aws-transcribe",
        "openai-whisper",
        "cartesia-stt",
        "livekit-inference-stt",
    ),
    "llm": ("openai-chat", "openai-realtime", "anthropic-messages", "google-gemini", "livekit-inference-llm"),
    "tts": ("elevenlabs-tts", "deepgram-aura", "cartesia-tts", "azure-tts", "livekit-inference-tts"),
    "platform": (
        "livekit-participant",
        "livekit-agent",
        "deepgram-voice-agent",
        "retell",
        "bland",
        "vapi",
        "elevenlabs-agents",
    ),
}
MODALITIES = {profile: modality for modality, profiles in BY_MODALITY.items() for profile in profiles}

T0 = datetime.fromisoformat("2024-03-01T10:00:00+00:00")


def when(day: str) -> datetime:
    """10:00 UTC on ``day`` (YYYY-MM-DD): a start time that picks a profile version."""
    return datetime.fromisoformat(f"{day}T10:00:00+00:00")


def at(seconds: str | int, start: datetime = T0) -> str:
    """The ISO timestamp ``seconds`` after ``start`` (exact: the offset is a decimal string)."""
    micro = int(Decimal(str(seconds)).scaleb(6))
    return (start + timedelta(microseconds=micro)).isoformat()


def leg(talk: str | int, ring: str | int = 0, start: datetime = T0, **more: Any) -> dict[str, Any]:
    """An answered call leg: ``ring`` seconds of ringing, then ``talk`` seconds from answer to hang-up."""
    end = Decimal(str(ring)) + Decimal(str(talk))
    fields = {
        "kind": "leg",
        "started_at": start.isoformat(),
        "answered_at": at(ring, start),
        "ended_at": at(end, start),
    }
    return {**fields, **more}


def unanswered(ring: str | int, status: str = "unanswered", **more: Any) -> dict[str, Any]:
    """A leg that rang for ``ring`` seconds and was never answered."""
    return {"kind": "leg", "status": status, "started_at": T0.isoformat(), "ended_at": at(ring), **more}


def conn(seconds: str | int, start: datetime = T0, **more: Any) -> dict[str, Any]:
    """A connection (participant, session, call) from connect to disconnect."""
    return {"started_at": start.isoformat(), "ended_at": at(seconds, start), **more}


def audio(seconds: str, wall: str | int | None = None, start: datetime = T0, **more: Any) -> dict[str, Any]:
    """A request or stream that carried ``seconds`` of audio over ``wall`` seconds of connection."""
    return {**conn(wall if wall is not None else seconds, start), "audio_seconds": seconds, **more}


def req(**counts: Any) -> dict[str, Any]:
    """A 2-second request (LLM call, TTS request) carrying these counts: tokens, characters, attributes."""
    return conn(2, **counts)


def tts(characters: int, status: str = "completed", **attrs: str) -> dict[str, Any]:
    """A TTS request of ``characters`` characters; ``model="..."`` is the attribute ``attr.model``."""
    return req(characters=characters, status=status, **{f"attr.{k}": v for k, v in attrs.items()})


@dataclass(frozen=True)
class Case:
    profile: str
    fields: dict[str, Any]
    billable: str  # seconds for a time unit, else the count (tokens, characters, credits)
    meter: str
    why: str
    trail: tuple[str, ...] = field(default=())


def case(
    profile: str, name: str, fields: dict[str, Any], billable: str, meter: str, why: str, *trail: str
) -> Any:
    return pytest.param(Case(profile, fields, billable, meter, why, trail), id=f"{profile}: {name}")


def with_kind(profile: str, fields: dict[str, Any]) -> dict[str, Any]:
    """The fields, with the profile's first counted kind when the case does not name one."""
    counted = builtin(profile).versions[0].params.kinds
    return {"kind": counted[0], **fields} if counted and "kind" not in fields else fields


def meter_one(profile: str, fields: dict[str, Any]) -> MeteredRecord:
    (metered,) = meter_records([parse_record({"id": "r1", **with_kind(profile, fields)})], builtin(profile))
    return metered


TW = "twilio-voice-minutes"
TX = "telnyx-voice-minutes"
PL = "plivo-voice-minutes"
VO = "vonage-voice-minutes"
NOT_COUNTED = "not-counted"  # the meter of records whose kind a policy does not count
LK_WEBRTC = "livekit-webrtc-participant-minutes"
LK_SIP = "livekit-sip-minutes"
LK_AGENT = "livekit-agent-session-minutes"
LK_INF_STT = "livekit-inference-stt-seconds"
EL_TTS = "elevenlabs-tts-credits"
CT_TTS = "cartesia-tts-credits"
AZ_TTS = "azure-tts-characters"
DG_AURA = "deepgram-aura-characters"

# One row per case reads as a table; the formatter would spread each row over nine lines.
# fmt: off
CASES = [
    # --- Twilio: 60/60 per Call SID from answer; sub-second legs billed from 2021-07-08 ---------------------
    case("twilio-voice", "1:20 leg -> 2 min", leg(80), "120", TW,
         "Twilio 223132307: partial minutes round up, a 1:20 call bills 2 minutes", "60/60 up"),
    case("twilio-voice", "59 s -> 60", leg(59), "60", TW, "60/60: any part of a minute bills the minute",
         "60/60 up"),
    case("twilio-voice", "61 s -> 120", leg(61), "120", TW, "60/60: one second over bills a second minute",
         "60/60 up"),
    case("twilio-voice", "60 s -> 60", leg(60), "60", TW, "60/60: an exact minute is one minute"),
    case("twilio-voice", "ringing free", leg(50, ring=30), "60", TW,
         "billed from answer: 30 s ringing + 50 s talk bills 1 minute, not 2", "answered"),
    case("twilio-voice", "0.4 s after 2021-07-08 -> 60", leg("0.4", start=when("2021-07-09")), "60", TW,
         "Twilio changelog: from 2021-07-08 a completed sub-second call is 1 s, i.e. one minute", "60/60 up"),
    case("twilio-voice", "0.4 s before 2021-07-08 -> 0", leg("0.4", start=when("2021-07-07")), "0", TW,
         "Twilio changelog: before 2021-07-08 completed sub-second calls were not billed", "under 1 s"),
    case("twilio-voice", "1 s before 2021-07-08 -> 60", leg(1, start=when("2021-07-07")), "60", TW,
         "before 2021-07-08 only legs under one second went unbilled; 1 s bills a minute"),
    case("twilio-voice", "unanswered -> 0", unanswered(25), "0", TW,
         "Twilio: ringing and unanswered attempts are not billed", "status unanswered"),
    case("twilio-voice", "busy -> 0", unanswered(3, status="busy"), "0", TW,
         "Twilio: a busy attempt never connects and is not billed", "status busy"),
    case("twilio-voice", "China 30 s -> 2 min", leg(30, **{"attr.destination_country": "CN"}), "120", TW,
         "Twilio 223132307: calls to China billed differently from 2019-02-28 (2-minute minimum)",
         "china-2-minute-minimum", "minimum 120 s"),
    case("twilio-voice", "China 150 s -> 3 min", leg(150, **{"attr.destination_country": "CN"}), "180", TW,
         "above the China 2-minute minimum the 60/60 rounding rules: 150 s bills 3 minutes", "60/60 up"),
    case("twilio-voice", "China before 2019-02-28",
         leg(30, start=when("2019-01-15"), **{"attr.destination_country": "CN"}), "60", TW,
         "the China minimum applies from 2019-02-28 only; before, 30 s bills 1 minute"),
    # --- Telnyx: 6/6 (1/1 international) until the newer 60/60 page ----------------------------------------
    case("telnyx-voice", "6/6: 1 -> 6", leg(1), "6", TX, "Telnyx 1130666: a 1 second call is billed 6 s",
         "6/6 up"),
    case("telnyx-voice", "6/6: 7 -> 12", leg(7), "12", TX, "Telnyx 1130666: a 7 second call is billed 12 s",
         "6/6 up"),
    case("telnyx-voice", "6/6: 61 -> 66", leg(61), "66", TX, "Telnyx 1130659 (older text): 61 s bills 66 s",
         "6/6 up"),
    case("telnyx-voice", "6/6: 11 -> 12", leg(11, ring=9), "12", TX,
         "Telnyx 1130659 (older text): an 11 s call bills 12 s; the 9 s of ringing are free", "6/6 up"),
    case("telnyx-voice", "international 1/1", leg("61.2", **{"attr.international": "true"}), "62", TX,
         "Telnyx 1130659/1130666 (older text): international billed in 1 s increments", "1/1 up"),
    case("telnyx-voice", "Mexico 60/60",
         leg(7, **{"attr.international": "true", "attr.destination_country": "MX"}), "60", TX,
         "Telnyx 1130666: the international deck is 1/1 except Mexico (60/60)", "international-60-60-MX",
         "60/60 up"),
    case("telnyx-voice", "Gambia 60/1: 30 -> 60", leg(30, **{"attr.destination_country": "GM"}), "60", TX,
         "Telnyx 1130666: Gambia is billed 60/1, so anything up to 60 s bills 60 s", "60/1 up"),
    case("telnyx-voice", "Gambia 60/1: 61.5 -> 62", leg("61.5", **{"attr.destination_country": "GM"}), "62",
         TX, "Telnyx 1130666: Gambia 60/1, then whole seconds", "60/1 up"),
    case("telnyx-voice", "60/60: 11 -> 60", leg(11, start=when("2026-11-15")), "60", TX,
         "Telnyx 1130659 (newer text): an 11 s call is charged 60 s", "60/60 up"),
    case("telnyx-voice", "60/60: 96 -> 120", leg(96, start=when("2026-11-15")), "120", TX,
         "Telnyx 1130659 (newer text): a 96 s call is charged 120 s", "60/60 up"),
    case("telnyx-voice", "60/60 international",
         leg(61, start=when("2026-11-15"), **{"attr.international": "true"}), "120", TX,
         "Telnyx 1130659 (newer text): international is 60 s increments in most cases", "60/60 up"),
    case("telnyx-voice", "unanswered -> 0", unanswered(20), "0", TX, "only answered calls are billed",
         "status unanswered"),
    # --- Plivo: 60/60 from answer, 60 s minimum; Zentrunk 1/1 US --------------------------------------------
    case("plivo-voice", "30 s -> 60", leg(30), "60", PL, "Plivo billing concepts: 60/60 with a 60 s minimum",
         "60/60 up"),
    case("plivo-voice", "61 s -> 120", leg(61), "120", PL, "Plivo: 60/60, a started minute bills whole",
         "60/60 up"),
    case("plivo-voice", "ringing free", leg(45, ring=20), "60", PL, "Plivo: billed from answer", "answered"),
    case("plivo-voice", "Zentrunk US 1/1",
         leg("61.5", product="zentrunk", **{"attr.destination_country": "US"}), "62", PL,
         "Plivo: Zentrunk bills US traffic per second (1/1)", "zentrunk-us-per-second", "1/1 up"),
    case("plivo-voice", "Zentrunk India 60/60",
         leg(61, product="zentrunk", **{"attr.destination_country": "IN"}), "120", PL,
         "Plivo: Zentrunk bills India 60/60", "60/60 up"),
    case("plivo-voice", "busy -> 0", unanswered(5, status="busy"), "0", PL,
         "Plivo bills from answer: an attempt never answered bills nothing", "status busy"),
    # --- Vonage: per second from answer --------------------------------------------------------------------
    case("vonage-voice", "47.3 -> 48", leg("47.3"), "48", VO,
         "Vonage 204015203: billed per second (read as 1/1, a started second bills)", "1/1 up"),
    case("vonage-voice", "60 s -> 60", leg(60), "60", VO, "per second: no minute rounding"),
    case("vonage-voice", "ringing free", leg(30, ring=15), "30", VO, "Vonage: answer to hang-up", "answered"),
    case("vonage-voice", "unanswered -> 0", unanswered(30), "0", VO, "an unanswered leg is not billed",
         "status unanswered"),
    # --- LiveKit participant minutes -----------------------------------------------------------------------
    case("livekit-participant", "10 s -> 1 min", conn(10, kind="participant"), "60", LK_WEBRTC,
         "LiveKit billing: a connection lasting 10 seconds is billed as 1 connection minute", "60/60 up"),
    case("livekit-participant", "70 s -> 2 min", conn(70, kind="participant"), "120", LK_WEBRTC,
         "LiveKit billing: one lasting 70 seconds is billed as 2 connection minutes", "60/60 up"),
    case("livekit-participant", "60 s -> 1 min", conn(60, kind="participant"), "60", LK_WEBRTC,
         "1-minute increments: an exact minute is one minute"),
    case("livekit-participant", "SIP on its own meter", conn(10, kind="sip"), "60", LK_SIP,
         "LiveKit bills SIP participant minutes on a separate meter, not as WebRTC minutes", "60/60 up"),
    case("livekit-participant", "agent 55 s -> 1 min", conn(55, kind="agent"), "60", LK_WEBRTC,
         "seed 003: human and agent participants' connection minutes are billed; an agent is a participant",
         "60/60 up"),
    case("livekit-participant", "agent 70 s -> 2 min", conn(70, kind="agent"), "120", LK_WEBRTC,
         "an agent's connection rounds up per connection like a person's: 70 s bills 2 minutes", "60/60 up"),
    case("livekit-participant", "failed -> 0", conn(5, kind="participant", status="failed"), "0", LK_WEBRTC,
         "a connection that failed is not a billed participant", "status failed"),
    # --- LiveKit SIP ---------------------------------------------------------------------------------------
    case("livekit-sip", "10 s -> 1 min", conn(10, kind="sip"), "60", LK_SIP,
         "LiveKit: telephony time in 1-minute increments, rounded up per connection", "60/60 up"),
    case("livekit-sip", "70 s -> 2 min", conn(70, kind="sip"), "120", LK_SIP, "LiveKit: 70 s bills 2 minutes",
         "60/60 up"),
    case("livekit-sip", "WebRTC not counted", conn(70, kind="participant"), "0", NOT_COUNTED,
         "WebRTC participants are on the WebRTC meter, not the SIP one", "kind participant not counted"),
    case("livekit-sip", "canceled -> 0", conn(4, kind="sip", status="canceled"), "0", LK_SIP,
         "a SIP call canceled before connecting is not billed", "status canceled"),
    # --- LiveKit agent session minutes ---------------------------------------------------------------------
    case("livekit-agent", "10 s -> 1 min", conn(10, kind="agent"), "60", LK_AGENT,
         "LiveKit: agent session minutes in 1-minute increments, rounded up per session", "60/60 up"),
    case("livekit-agent", "61 s -> 2 min", conn(61, kind="agent"), "120", LK_AGENT,
         "a session one second over a minute bills two", "60/60 up"),
    case("livekit-agent", "never connected -> 0", conn(0, kind="agent", status="failed"), "0", LK_AGENT,
         "LiveKit: a job whose agent never connected is not billed", "status failed"),
    case("livekit-agent", "zero-length session -> 0", conn(0, kind="agent"), "0", LK_AGENT,
         "no connected time, nothing to round up", "nothing to bill"),
    case("livekit-agent", "participant not counted", conn(30, kind="participant"), "0", NOT_COUNTED,
         "human participants are not agent session minutes", "kind participant not counted"),
    # --- Deepgram pre-recorded -----------------------------------------------------------------------------
    case("deepgram-prerecorded", "47.3 s exact", audio("47.3"), "47.3", "deepgram-prerecorded-minutes",
         "Deepgram: file duration per second, no block rounding (a 47.3 s file is not rounded to a minute)",
         "audio sent"),
    case("deepgram-prerecorded", "2 channels x2", audio("300", channels=2), "600",
         "deepgram-prerecorded-minutes", "Deepgram multichannel=true: each channel billed, 5 min stereo = 10",
         "x2 channels"),
    case("deepgram-prerecorded", "3 channels x3", audio("10.5", channels=3), "31.5",
         "deepgram-prerecorded-minutes", "per channel: three channels bill three times the duration",
         "x3 channels"),
    case("deepgram-prerecorded", "failed -> 0", audio("30", status="failed"), "0",
         "deepgram-prerecorded-minutes", "a failed request is not billed", "status failed"),
    # --- Deepgram streaming --------------------------------------------------------------------------------
    case("deepgram-streaming", "KeepAlive gap free", audio("95.5", wall=120), "95.5",
         "deepgram-streaming-minutes", "Deepgram streaming: audio sent is billed, KeepAlive gaps are not",
         "audio sent"),
    case("deepgram-streaming", "about 1 s per connection", audio("0.4", wall=3), "1",
         "deepgram-streaming-minutes", "Deepgram streaming: about 1 s billed per connection", "minimum 1 s"),
    case("deepgram-streaming", "2 channels x2", audio("60", channels=2), "120", "deepgram-streaming-minutes",
         "channels billed each (assumed as for multichannel pre-recorded)", "x2 channels"),
    case("deepgram-streaming", "no audio -> 0", audio("0", wall=30), "0", "deepgram-streaming-minutes",
         "a connection kept alive without audio bills nothing", "nothing to bill"),
    # --- Deepgram Voice Agent ------------------------------------------------------------------------------
    case("deepgram-voice-agent", "connection time exact", conn("185.25"), "185.25",
         "deepgram-voice-agent-minutes",
         "Deepgram: usage is the time the WebSocket stays open, open to close", "connection"),
    case("deepgram-voice-agent", "no minimum", conn("0.5"), "0.5", "deepgram-voice-agent-minutes",
         "Deepgram states no minimum, so half a second bills half a second"),
    case("deepgram-voice-agent", "failed -> 0", conn(2, status="failed"), "0", "deepgram-voice-agent-minutes",
         "a connection that failed is not billed", "status failed"),
    # --- AssemblyAI pre-recorded ---------------------------------------------------------------------------
    case("assemblyai-prerecorded", "exact second pro-rating", audio("3661.5"), "3661.5",
         "assemblyai-prerecorded-hours", "AssemblyAI: priced per hour, pro-rated to the exact second"),
    case("assemblyai-prerecorded", "no minimum", audio("2"), "2", "assemblyai-prerecorded-hours",
         "AssemblyAI: no minimums"),
    case("assemblyai-prerecorded", "failed -> 0", audio("600", status="failed"), "0",
         "assemblyai-prerecorded-hours", "AssemblyAI: failed transcripts aren't charged", "status failed"),
    case("assemblyai-prerecorded", "channels billed once", audio("100", channels=2), "100",
         "assemblyai-prerecorded-hours", "AssemblyAI bills the file's duration (channels: our reading)",
         "billed once"),
    # --- AssemblyAI streaming ------------------------------------------------------------------------------
    case("assemblyai-streaming", "idle time billed", audio("120", wall=300), "300",
         "assemblyai-streaming-hours", "AssemblyAI: session time is billed, idle included, not audio sent",
         "connection"),
    case("assemblyai-streaming", "unclosed -> 3 h", {"started_at": T0.isoformat(), "status": "open"}, "10800",
         "assemblyai-streaming-hours",
         "AssemblyAI: a session not closed auto-closes after 3 hours and is charged the full 3 hours",
         "closed at the 10800 s cap"),
    case("assemblyai-streaming", "never over 3 h", conn(4 * 3600), "10800", "assemblyai-streaming-hours",
         "sessions are closed at 3 hours, so none bills more", "capped at 10800 s"),
    case("assemblyai-streaming", "failed -> 0", conn(2, status="failed"), "0", "assemblyai-streaming-hours",
         "a session that failed to open is not billed", "status failed"),
    case("assemblyai-streaming", "2 channels x2", conn(300, channels=2), "600", "assemblyai-streaming-hours",
         "AssemblyAI FAQ: each concurrent session is billed; a dual-streamed 5-minute call bills 10 minutes",
         "x2 channels"),
    # --- Rev.ai streaming ----------------------------------------------------------------------------------
    case("rev-streaming", "audio sent beats wall clock", audio("31.5", wall=20), "31.5",
         "rev-streaming-minutes",
         "Rev.ai: the larger of wall clock and audio sent (audio sent faster than real time)", "larger of",
         ": audio sent"),
    case("rev-streaming", "wall clock beats audio sent", audio("31.5", wall=40), "40",
         "rev-streaming-minutes",
         "Rev.ai: the larger of wall clock since the WebSocket opened and audio sent", "larger of",
         ": connection"),
    case("rev-streaming", "15 s minimum", audio("5", wall=8), "15", "rev-streaming-minutes",
         "Rev.ai: 15 second minimum per session", "minimum 15 s"),
    case("rev-streaming", "exactly 15 s", audio("15", wall=15), "15", "rev-streaming-minutes",
         "at the minimum, nothing is added"),
    case("rev-streaming", "failed -> 0", audio("5", wall=8, status="failed"), "0", "rev-streaming-minutes",
         "a failed session is not billed, so the minimum does not apply", "status failed"),
    # --- AWS Transcribe ------------------------------------------------------------------------------------
    case("aws-transcribe", "old page: 15 s minimum", audio("7"), "15", "aws-transcribe-seconds",
         "AWS (older pricing page): 1 s increments with a 15 s minimum per request", "minimum 15 s"),
    case("aws-transcribe", "1 s increments up", audio("20.2"), "21", "aws-transcribe-seconds",
         "AWS: billed in one-second increments", "1/1 up"),
    case("aws-transcribe", "new page: no minimum", audio("7", start=when("2026-10-01")), "7",
         "aws-transcribe-seconds", "AWS pricing page read 2026-09-22: no minimum"),
    case("aws-transcribe", "new page: 7.3 -> 8", audio("7.3", start=when("2026-10-01")), "8",
         "aws-transcribe-seconds", "per-second increments still round a started second up", "1/1 up"),
    case("aws-transcribe", "dual channel billed once", audio("20", channels=2), "20",
         "aws-transcribe-seconds", "AWS: dual-channel audio is billed once on its duration", "billed once"),
    # --- OpenAI Whisper ------------------------------------------------------------------------------------
    case("openai-whisper", "30.4 -> 30", audio("30.4"), "30", "openai-whisper-minutes",
         "OpenAI whisper-1: rounded to the nearest second", "1/1 nearest"),
    case("openai-whisper", "30.5 -> 31", audio("30.5"), "31", "openai-whisper-minutes",
         "nearest second: a half second rounds up", "1/1 nearest"),
    case("openai-whisper", "60 s -> 60", audio("60"), "60", "openai-whisper-minutes",
         "a whole number of seconds is billed as is"),
    case("openai-whisper", "0.3 s -> 0", audio("0.3"), "0", "openai-whisper-minutes",
         "nearest second with no minimum (none published) rounds 0.3 s to 0", "1/1 nearest"),
    # --- Retell --------------------------------------------------------------------------------------------
    case("retell", "dynamic opener 6 s -> 10", conn(6, **{"attr.dynamic_opener": "true"}), "10",
         "retell-minutes", "Retell rule 1: a 6 s call with a dynamic opening message bills 10 s",
         "dynamic-opener-10-s-minimum", "minimum 10 s"),
    case("retell", "no dynamic opener 6 s -> 6", conn(6), "6", "retell-minutes",
         "Retell bills actual call duration when no exception applies"),
    case("retell", "dynamic opener 12 s -> 12", conn(12, **{"attr.dynamic_opener": "true"}), "12",
         "retell-minutes", "Retell rule 1 applies only to calls shorter than 10 s"),
    case("retell", "4,200 tokens: 60 s -> 72", conn(60, input_tokens=4200), "72", "retell-minutes",
         "Retell rule 2 example: 60 s x 4,200/3,500 = 72 s", "x input_tokens 4200/3500"),
    case("retell", "3,500 tokens: not over", conn(60, input_tokens=3500), "60", "retell-minutes",
         "Retell rule 2 applies to prompts of more than 3,500 tokens only"),
    case("retell", "7,000 tokens: 2 min -> 4", conn(120, input_tokens=7000), "240", "retell-minutes",
         "Retell rule 2: a 2-minute call with 7,000 tokens bills 4 minutes", "x input_tokens 7000/3500"),
    case("retell", "scaled duration rounded up", conn("61.3", input_tokens=4200), "74", "retell-minutes",
         "Retell rule 2: 61.3 s x 1.2 = 73.56 s, rounded up to 74 s", "1 s up"),
    case("retell", "both rules", conn(6, input_tokens=7000, **{"attr.dynamic_opener": "true"}), "20",
         "retell-minutes", "the 10 s minimum first, then the token scaling: 10 s x 2 = 20 s", "minimum 10 s",
         "x input_tokens 7000/3500"),
    case("retell", "LLM component meter", conn(60, kind="llm", input_tokens=4200), "72", "retell-llm-minutes",
         "Retell support: the scaling is a surcharge on the LLM duration; an LLM record has its own meter",
         "x input_tokens 4200/3500"),
    case("retell", "failed -> 0", conn(3, status="failed"), "0", "retell-minutes",
         "a failed call is not billed", "status failed"),
    # --- Bland ---------------------------------------------------------------------------------------------
    case("bland", "exact seconds", leg("47.3", ring=8), "47.3", "bland-minutes",
         "Bland: active call time billed to the exact second", "answered"),
    case("bland", "3 s call -> 3 s", leg(3, ring=5), "3", "bland-minutes",
         "Bland's $0.015 per-call minimum is money (max(fee, usage)), applied by rating, not metering"),
    case("bland", "failed -> 0 s", unanswered(20, status="failed"), "0", "bland-minutes",
         "a failed call's $0.015 fee is a price; metered time is 0", "status failed"),
    case("bland", "no answer -> 0 s", unanswered(30), "0", "bland-minutes", "ringing is not active call time",
         "status unanswered"),
    # --- Vapi ----------------------------------------------------------------------------------------------
    case("vapi", "endedAt - startedAt", conn("95.5"), "95.5", "vapi-minutes",
         "Vapi: cost components on endedAt - startedAt, billed to the second", "connection"),
    case("vapi", "Azure transcriber dual-channel",
         conn("95.5", kind="stream", channels=2, **{"attr.transcriber": "azure"}), "191",
         "vapi-transcriber-minutes", "Vapi docs #963: Azure STT billed dual-channel, both streams",
         "azure-transcriber-dual-channel", "x2 channels"),
    case("vapi", "other transcriber once",
         conn("95.5", kind="stream", channels=2, **{"attr.transcriber": "deepgram"}), "95.5",
         "vapi-transcriber-minutes", "only the Azure transcriber is documented as dual-channel",
         "billed once"),
    case("vapi", "failed -> 0", conn(4, status="failed"), "0", "vapi-minutes", "a failed call is not billed",
         "status failed"),
    # --- ElevenLabs Agents ---------------------------------------------------------------------------------
    case("elevenlabs-agents", "connect to hang-up", conn(120), "120", "elevenlabs-agents-minutes",
         "ElevenLabs Agents: billed per minute from connect to hang-up", "connection"),
    case("elevenlabs-agents", "long silence at 5%", conn(120, **{"attr.long_silence_seconds": "30"}), "91.5",
         "elevenlabs-agents-minutes", "ElevenLabs: silence beyond 10 s at 5%: 90 s + 30 s x 0.05 = 91.5 s",
         "silence beyond 10 s 30 s at x0.05"),
    case("elevenlabs-agents", "test call half", conn(120, **{"attr.test_call": "true"}), "60",
         "elevenlabs-agents-minutes", "ElevenLabs: test calls are billed at half price",
         "test-call-half-price", "x0.5"),
    case("elevenlabs-agents", "burst double", conn(120, **{"attr.burst": "true"}), "240",
         "elevenlabs-agents-minutes", "ElevenLabs burst pricing: calls over the concurrency limit bill 2x",
         "burst-double", "x2"),
    case("elevenlabs-agents", "burst with silence",
         conn(120, **{"attr.burst": "true", "attr.long_silence_seconds": "30"}), "183",
         "elevenlabs-agents-minutes", "silence discount first, then burst: (90 + 1.5) x 2 = 183 s",
         "at x0.05", "x2"),
    case("elevenlabs-agents", "test call in burst",
         conn(120, **{"attr.test_call": "true", "attr.burst": "true"}), "120", "elevenlabs-agents-minutes",
         "half price and double price combine to x1 (our reading; the source does not say)",
         "test-call-in-burst"),
    case("elevenlabs-agents", "failed -> 0", conn(2, status="failed"), "0", "elevenlabs-agents-minutes",
         "a failed conversation is not billed", "status failed"),
    # --- Cartesia STT --------------------------------------------------------------------------------------
    case("cartesia-stt", "streaming seconds", audio("12.34", wall=15), "12.34",
         "cartesia-stt-streaming-seconds", "Cartesia: STT billed per second of audio", "audio sent"),
    case("cartesia-stt", "silence included", audio("60", speech_seconds="10"), "60",
         "cartesia-stt-streaming-seconds", "Cartesia: STT audio seconds include silence", "audio sent"),
    case("cartesia-stt", "batch on its own meter", audio("30", kind="batch"), "30",
         "cartesia-stt-batch-seconds",
         "Cartesia: batch has its own credit rate (1 per 2 s), so its own meter"),
    case("cartesia-stt", "errored -> 0", audio("30", status="failed"), "0", "cartesia-stt-streaming-seconds",
         "Cartesia: requests that error are free", "status failed"),
    # --- ElevenLabs TTS: credits = characters x the model's rate -------------------------------------------
    case("elevenlabs-tts", "Flash v2.5: 1,000 chars -> 500", tts(1000, model="eleven_flash_v2_5"), "500",
         EL_TTS, "ElevenLabs help: Flash and Turbo models cost 1 credit per 2 characters",
         "flash-v2-5-half-credit", "x0.5"),
    case("elevenlabs-tts", "Turbo v2: 1,000 chars -> 500", tts(1000, model="eleven_turbo_v2"), "500", EL_TTS,
         "ElevenLabs help: Turbo v2 costs 1 credit for every 2 characters", "turbo-v2-half-credit"),
    case("elevenlabs-tts", "Multilingual v2: 1,000 chars -> 1,000", tts(1000, model="eleven_multilingual_v2"),
         "1000", EL_TTS, "ElevenLabs help: models other than Flash and Turbo cost 1 credit per character",
         "characters, 1 credit each 1000 credits"),
    case("elevenlabs-tts", "v3: 1,000 chars -> 1,000", tts(1000, model="eleven_v3"), "1000", EL_TTS,
         "ElevenLabs: Eleven v3 costs 1 credit per character, like Multilingual v2"),
    case("elevenlabs-tts", "no model: 1 credit per char", tts(1000), "1000", EL_TTS,
         "a record that does not name its model is not assumed to be on a cheaper model"),
    case("elevenlabs-tts", "Flash odd count keeps the half", tts(1001, model="eleven_flash_v2"), "500.5",
         EL_TTS, "0.5 credit per character: 1,001 characters are 500.5 credits, kept exactly", "x0.5"),
    case("elevenlabs-tts", "failed -> 0", tts(1000, status="failed"), "0", EL_TTS,
         "a request that failed generated nothing and is not billed", "status failed"),
    # --- Deepgram Aura: characters of the input text -------------------------------------------------------
    case("deepgram-aura", "1,234 chars exact", tts(1234), "1234", DG_AURA,
         "Aura: priced per 1,000 characters, billed per character (no rounding to the 1,000)", "characters"),
    case("deepgram-aura", "short request, no minimum", tts(7), "7", DG_AURA,
         "no per-request minimum is published, so 7 characters bill 7"),
    case("deepgram-aura", "failed -> 0", tts(500, status="failed"), "0", DG_AURA,
         "a failed request is not billed", "status failed"),
    # --- Cartesia TTS: credits -----------------------------------------------------------------------------
    case("cartesia-tts", "200 chars -> 200 credits", tts(200), "200", CT_TTS,
         "Cartesia pricing: standard TTS costs about 1 credit per character",
         "characters, 1 credit each 200 credits"),
    case("cartesia-tts", "Pro Voice Clone x1.5", tts(200, voice_type="pro_clone"), "300", CT_TTS,
         "Cartesia pricing: a Pro Voice Clone costs about 1.5 credits per character", "pro-voice-clone",
         "x1.5"),
    case("cartesia-tts", "infill: 300 + chars", tts(200, endpoint="infill"), "500", CT_TTS,
         "Cartesia pricing: Infill costs 300 credits per request plus about 1 credit per character",
         "infill-request-fee", "300 x request 1 + characters 200 ="),
    case("cartesia-tts", "errored -> 0", tts(200, status="failed"), "0", CT_TTS,
         "Cartesia: credits are only used by successful requests", "status failed"),
    # --- Azure TTS: Han ideographs twice, <speak> and <voice> tags free -------------------------------------
    case("azure-tts", "plain text", req(characters=13), "13", AZ_TTS,
         "Azure: every character converted to speech is billed, punctuation and spaces included"),
    case("azure-tts", "Han characters twice", req(characters=9, cjk_characters=2), "11", AZ_TTS,
         "Azure pricing note: each Chinese character counts as two ('你好, world': 9 characters bill 11)",
         "+ cjk characters 2"),
    case("azure-tts", "speak and voice tags free",
         req(characters=39, cjk_characters=2, ssml_characters=30), "11", AZ_TTS,
         "Azure: <speak> and <voice> tags are free: '<speak><voice>你好, world</voice></speak>' bills 11",
         "characters 39 + cjk characters 2 - ssml characters 30 = 11"),
    case("azure-tts", "no SSML, no CJK fields", req(characters=5), "5", AZ_TTS,
         "a missing part counts 0 when its total is present: plain text bills its characters"),
    case("azure-tts", "failed -> 0", req(characters=40, status="failed"), "0", AZ_TTS,
         "a failed request is not billed", "status failed"),
    # --- LiveKit Inference STT and TTS ---------------------------------------------------------------------
    case("livekit-inference-stt", "12.3 s -> 13", audio("5", wall="12.3"), "13", LK_INF_STT,
         "LiveKit billing: Inference STT in seconds of connection time, rounded up to the 1 s increment",
         "connection", "1/1 up"),
    case("livekit-inference-stt", "0.4 s -> 1", conn("0.4"), "1", LK_INF_STT,
         "each usage is rounded up to the minimum increment before summing: 0.4 s bills 1 s", "1/1 up"),
    case("livekit-inference-stt", "60 s -> 60", conn(60), "60", LK_INF_STT,
         "a whole number of seconds bills as is: no minute rounding for Inference STT"),
    case("livekit-inference-tts", "250 chars", req(characters=250), "250", "livekit-inference-tts-characters",
         "LiveKit billing: Inference TTS in characters of text, 1-character increments", "characters"),
    case("livekit-inference-tts", "1 char", req(characters=1), "1", "livekit-inference-tts-characters",
         "a 1-character increment means no block rounding and no minimum"),
    case("livekit-inference-tts", "failed -> 0", req(characters=250, status="failed"), "0",
         "livekit-inference-tts-characters", "a failed request is not billed", "status failed"),
]
# fmt: on


@pytest.mark.parametrize("golden", CASES)
def test_profile_bills_the_published_rule(golden: Case) -> None:
    metered = meter_one(golden.profile, golden.fields)
    unit = metered.symbol
    assert metered.billable_seconds == Decimal(golden.billable), (
        f"{golden.why}: billed {metered.billable_seconds} {unit}, expected {golden.billable} {unit}\n"
        f"{metered.trail()}"
    )
    assert metered.meter == golden.meter
    trail = metered.trail()
    for words in golden.trail:
        assert words in trail, f"trail does not mention {words!r}: {trail}"


def test_every_required_profile_has_at_least_three_golden_cases() -> None:
    counts = dict.fromkeys(REQUIRED_IDS, 0)
    for param in [*CASES, *PART_CASES]:
        counts[param.values[0].profile] += 1
    assert {p: n for p, n in counts.items() if n < 3} == {}


def test_a_failed_record_bills_zero_and_says_why() -> None:
    metered = meter_one("deepgram-prerecorded", audio("30", status="failed"))
    assert metered.billable_seconds == 0
    assert metered.explain[-1].step == "status"
    assert metered.explain[-1].rule == "status failed: not billed by this policy"


# --- profiles with parts: several meters over one record ---------------------------------------------------


@dataclass(frozen=True)
class PartCase:
    profile: str
    fields: dict[str, Any]
    parts: dict[str, str]  # part name -> billable count on that part's meter
    why: str


def part_case(profile: str, name: str, fields: dict[str, Any], parts: dict[str, str], why: str) -> Any:
    return pytest.param(PartCase(profile, fields, parts, why), id=f"{profile}: {name}")


def meter_parts(profile: str, fields: dict[str, Any]) -> dict[str, MeteredRecord]:
    """One record metered by every part of the profile: part name -> that part's metered record."""
    policy = builtin(profile)
    part_of = {component.default_meter: component.part for component in policy.components()}
    rows = meter_records([parse_record({"id": "r1", **with_kind(profile, fields)})], policy)
    return {str(part_of[row.meter]): row for row in rows}


# fmt: off
PART_CASES = [
    # --- OpenAI text generation: input (uncached), cached input, output ------------------------------------
    part_case("openai-chat", "1,000 in incl. 200 cached + 50 out",
              req(input_tokens=1000, cached_input_tokens=200, output_tokens=50),
              {"input": "800", "cached_input": "200", "output": "50"},
              "OpenAI reports cached tokens as part of the input: 1,000 - 200 uncached, 200 cached, 50 out"),
    part_case("openai-chat", "no cache field", req(input_tokens=1000, output_tokens=50),
              {"input": "1000", "cached_input": "0", "output": "50"},
              "a record without cached_input_tokens had no cache hit: all input is uncached"),
    part_case("openai-chat", "all cached", req(input_tokens=2048, cached_input_tokens=2048, output_tokens=1),
              {"input": "0", "cached_input": "2048", "output": "1"},
              "a full cache hit bills every input token at the cached price, none at the full price"),
    part_case("openai-chat", "failed -> 0", req(input_tokens=1000, output_tokens=50, status="failed"),
              {"input": "0", "cached_input": "0", "output": "0"}, "a failed request is not metered"),
    # --- OpenAI Realtime: five parts by modality and caching ---------------------------------------------
    part_case("openai-realtime", "one Response",
              req(input_tokens=1000, cached_input_tokens=400, audio_input_tokens=400, output_tokens=300,
                  audio_output_tokens=240),
              {"text_input": "200", "cached_input": "400", "audio_input": "400", "text_output": "60",
               "audio_output": "240"},
              "input 1,000 = 200 uncached text + 400 cached + 400 uncached audio; "
              "output 300 = 60 text + 240 audio"),
    part_case("openai-realtime", "12 s of user audio, 6 s of assistant audio",
              req(input_tokens=150, audio_input_tokens=120, output_tokens=150, audio_output_tokens=120),
              {"text_input": "30", "cached_input": "0", "audio_input": "120", "text_output": "30",
               "audio_output": "120"},
              "OpenAI realtime-costs: user audio 1 token per 100 ms (12 s = 120), "
              "assistant audio 1 per 50 ms (6 s = 120)"),
    part_case("openai-realtime", "text only", req(input_tokens=500, output_tokens=80),
              {"text_input": "500", "cached_input": "0", "audio_input": "0", "text_output": "80",
               "audio_output": "0"},
              "a text-only Response has no audio parts: missing parts count 0 under their totals"),
    # --- Anthropic: input (uncached), cache reads, cache writes, output ------------------------------------
    part_case("anthropic-messages", "Anthropic's usage block, totals added up",
              req(input_tokens=1 + 287 + 30433, cached_input_tokens=30433, cache_write_tokens=287,
                  output_tokens=67),
              {"input": "1", "cache_read": "30433", "cache_write": "287", "output": "67"},
              "Anthropic reports input 1, cache reads 30,433, writes 287: the record input is their sum"),
    part_case("anthropic-messages", "no caching", req(input_tokens=1200, output_tokens=300),
              {"input": "1200", "cache_read": "0", "cache_write": "0", "output": "300"},
              "without caching every input token is uncached input"),
    part_case("anthropic-messages", "first request writes the cache",
              req(input_tokens=5000, cache_write_tokens=4000, output_tokens=10),
              {"input": "1000", "cache_read": "0", "cache_write": "4000", "output": "10"},
              "cache writes have their own price (above input), so they leave the input meter"),
    # --- Google Gemini: input, cached, audio input, output, audio output -----------------------------------
    part_case("google-gemini", "cached context",
              req(input_tokens=1000, cached_input_tokens=300, output_tokens=500),
              {"input": "700", "cached_input": "300", "audio_input": "0", "output": "500",
               "audio_output": "0"},
              "Gemini's promptTokenCount includes cachedContentTokenCount: 1,000 - 300 fresh, 300 cached"),
    part_case("google-gemini", "audio prompt", req(input_tokens=3384, audio_input_tokens=4, output_tokens=10),
              {"input": "3380", "cached_input": "0", "audio_input": "4", "output": "10", "audio_output": "0"},
              "Google forum: Live usage splits the prompt into TEXT 3,380 and AUDIO 4 tokens, priced apart"),
    part_case("google-gemini", "native audio answer",
              req(input_tokens=200, audio_input_tokens=150, output_tokens=400, audio_output_tokens=350),
              {"input": "50", "cached_input": "0", "audio_input": "150", "output": "50",
               "audio_output": "350"},
              "Live native-audio output is priced above text output: 350 audio, 50 text (thinking included)"),
    # --- LiveKit Inference LLM: input and output ------------------------------------------------------------
    part_case("livekit-inference-llm", "input and output", req(input_tokens=500, output_tokens=20),
              {"input": "500", "output": "20"}, "LiveKit billing: Inference LLM in tokens, input and output"),
    part_case("livekit-inference-llm", "cached tokens stay input",
              req(input_tokens=500, cached_input_tokens=100, output_tokens=20),
              {"input": "500", "output": "20"},
              "LiveKit documents no cached-input discount: cached tokens are billed as input"),
    part_case("livekit-inference-llm", "failed -> 0",
              req(input_tokens=500, output_tokens=20, status="failed"),
              {"input": "0", "output": "0"}, "a failed request is not metered"),
]
# fmt: on


@pytest.mark.parametrize("golden", PART_CASES)
def test_profile_bills_each_part_on_its_own_meter(golden: PartCase) -> None:
    metered = meter_parts(golden.profile, golden.fields)
    billed = {part: str(row.billable_seconds) for part, row in metered.items()}
    assert billed == golden.parts, golden.why
    assert len({row.meter for row in metered.values()}) == len(metered), "every part has a meter of its own"


PART_PROFILES = sorted({param.values[0].profile for param in PART_CASES})


@pytest.mark.parametrize("profile", PART_PROFILES)
def test_parts_add_up_to_the_tokens_of_the_record(profile: str) -> None:
    """Nothing billed twice, nothing dropped: the parts of a record sum to its input + output tokens."""
    fields = req(
        input_tokens=10_000,
        cached_input_tokens=3_000,
        cache_write_tokens=1_000,
        audio_input_tokens=2_500,
        output_tokens=900,
        audio_output_tokens=700,
    )
    metered = meter_parts(profile, fields)
    assert sum(row.billable_seconds for row in metered.values()) == Decimal(10_000 + 900)


def test_a_billed_llm_record_without_input_tokens_is_an_error_naming_the_field() -> None:
    with pytest.raises(RecordError, match=r"record 'r1': field 'input_tokens'"):
        meter_parts("openai-chat", req(output_tokens=50))


def test_cached_tokens_above_the_input_are_refused() -> None:
    refused = r"field 'cached_input_tokens': 1200 is more than input_tokens 1000"
    with pytest.raises(RecordError, match=refused):
        meter_parts("openai-chat", req(input_tokens=1000, cached_input_tokens=1200, output_tokens=5))


def test_anthropic_input_copied_without_the_cache_is_refused() -> None:
    # Anthropic's own input_tokens (10) excludes the cache; copied as is, the cache no longer fits in it.
    with pytest.raises(RecordError, match=r"field 'cached_input_tokens': .*leaves a negative count"):
        meter_parts(
            "anthropic-messages",
            req(input_tokens=1000, cached_input_tokens=700, cache_write_tokens=500, output_tokens=5),
        )


def test_realtime_audio_tokens_that_overlap_the_cache_are_refused() -> None:
    # 700 audio tokens of which 300 cached: recorded gross, they take the cached audio off the text twice.
    with pytest.raises(RecordError, match=r"leaves a negative count \(-100\)"):
        meter_parts(
            "openai-realtime",
            req(input_tokens=1000, cached_input_tokens=400, audio_input_tokens=700, output_tokens=10),
        )


def test_a_tts_request_without_characters_is_an_error_naming_the_field() -> None:
    with pytest.raises(RecordError, match=r"record 'r1': field 'characters'"):
        meter_one("azure-tts", req())


# --- cases that need several records ------------------------------------------------------------------------


def meter_many(profile: str, rows: list[dict[str, Any]]) -> list[MeteredRecord]:
    numbered = enumerate(rows, start=1)
    records = [parse_record({"id": f"r{i}", **with_kind(profile, row)}) for i, row in numbered]
    return meter_records(records, builtin(profile))


def total(metered: list[MeteredRecord], meter: str | None = None) -> Decimal:
    return sum((m.billable_seconds for m in metered if meter is None or m.meter == meter), Decimal(0))


def test_twilio_two_leg_call_of_1_20_bills_two_legs_of_two_minutes() -> None:
    # Twilio 223132307: "a two-way call connecting two different Call SIDs for 1 minute and 20 seconds would
    # bill you for two different calls of 2 minutes".
    metered = meter_many("twilio-voice", [leg(80), leg(80, ring=4)])
    assert [m.billable_seconds for m in metered] == [Decimal(120), Decimal(120)]
    assert total(metered) == Decimal(240)
    assert sum(m.billable_quantity for m in metered) == Decimal(4)


def test_vonage_forwarded_call_is_two_legs_inbound_to_an_app_is_one() -> None:
    # Vonage 204015203: an inbound call answered by an application bills once; forwarding it makes 2 legs.
    assert total(meter_many("vonage-voice", [leg(30)])) == Decimal(30)
    assert total(meter_many("vonage-voice", [leg(30), leg(30, ring=3)])) == Decimal(60)


def livekit_seed_calls() -> list[dict[str, Any]]:
    """Seed 003: 11 calls of about a minute, each with one person and the agent, each connected about 55 s.

    Each room runs 65 s: the person is connected from 0 to 55 s, the agent from 10 to 65 s.
    """
    rows = []
    for call in range(11):
        start = T0 + timedelta(minutes=5 * call)
        rows.append(conn(55, start=start, kind="participant", session=f"room-{call}"))
        rows.append(conn(55, start=start + timedelta(seconds=10), kind="agent", session=f"room-{call}"))
    return rows


def test_livekit_seed_11_calls_of_a_person_and_the_agent_bill_22_minutes_against_a_12_minute_tally() -> None:
    rows = livekit_seed_calls()
    metered = meter_many("livekit-participant", rows)
    room_tally = Decimal(11 * 65)  # the calls' own durations, what the customer added up: ~12 minutes
    assert room_tally / 60 == Decimal(715) / 60  # 11.9 minutes
    assert sum(m.actual_seconds for m in metered) == Decimal(22 * 55)
    assert total(metered, LK_WEBRTC) == Decimal(22 * 60)
    assert sum(m.billable_quantity for m in metered) == Decimal(22)
    assert all("60/60 up" in m.trail() for m in metered)


def test_livekit_cloud_agent_adds_agent_session_minutes_on_top_of_its_participant_minutes() -> None:
    # The same 11 rooms with the agent deployed to LiveKit Cloud: 22 participant-minutes and, in addition,
    # 11 agent session minutes (one per agent connection), not 11 participant-minutes and 11 agent minutes.
    rows = livekit_seed_calls()
    assert sum(m.billable_quantity for m in meter_many("livekit-participant", rows)) == Decimal(22)
    agent = meter_many("livekit-agent", rows)
    assert total(agent, LK_AGENT) == Decimal(11 * 60)
    assert total(agent, NOT_COUNTED) == Decimal(0)  # the people are not agent session minutes


def test_livekit_sip_participant_is_not_on_the_webrtc_meter() -> None:
    rows = [
        conn(55, kind="participant", session="room"),
        conn(70, kind="sip", session="room"),
        conn(70, kind="agent", session="room"),
    ]
    metered = meter_many("livekit-participant", rows)
    assert total(metered, LK_WEBRTC) == Decimal(60 + 120)  # the person and the agent
    assert total(metered, LK_SIP) == Decimal(120)
    assert total(metered) == Decimal(300)
    assert total(meter_many("livekit-sip", rows)) == Decimal(120)
    assert total(meter_many("livekit-agent", rows)) == Decimal(120)


def test_assemblyai_dual_streamed_5_minute_call_bills_10_minutes() -> None:
    # AssemblyAI FAQ: "a single call that is dual-streamed under two separate session IDs for 5 minutes
    # bills as 10 minutes of session time".
    metered = meter_many(
        "assemblyai-streaming", [conn(300, session="s-caller"), conn(300, session="s-agent")]
    )
    assert [m.billable_seconds for m in metered] == [Decimal(300), Decimal(300)]
    assert total(metered) == Decimal(10 * 60)
    # the same call as one record of two channels bills the same 10 minutes
    (both,) = meter_many("assemblyai-streaming", [conn(300, channels=2)])
    assert both.billable_seconds == Decimal(10 * 60)
    assert "x2 channels" in both.trail()


# --- every built-in profile: present, sourced, listed and explained ----------------------------------------


@pytest.mark.parametrize("profile", REQUIRED_IDS)
def test_required_profile_loads_with_source_confidence_and_versions(profile: str) -> None:
    assert profile in builtin_ids()
    policy = builtin(profile)
    assert policy.id == profile
    assert policy.name and policy.provider and policy.product
    assert policy.description.strip()
    assert policy.source and all(s.strip() for s in policy.source)
    assert policy.confidence in {"H", "M", "L"}
    assert policy.meter
    assert policy.modality == MODALITIES[profile]
    assert len(policy.versions) >= 1
    assert all(version.note.strip() for version in policy.versions)


def test_every_builtin_profile_is_required_and_has_a_modality() -> None:
    assert sorted(REQUIRED_IDS) == builtin_ids()
    assert sorted(MODALITIES) == builtin_ids()


def test_policies_lists_every_required_profile() -> None:
    result = CliRunner().invoke(app, ["policies"])
    assert result.exit_code == 0, result.output
    listed = set(re.findall(r"[a-z0-9][a-z0-9-]+", result.output))
    assert set(REQUIRED_IDS) - listed == set()


COUNT_PROFILES = [p for p in REQUIRED_IDS if builtin(p).is_count]


@pytest.mark.parametrize("profile", COUNT_PROFILES)
def test_policies_show_says_what_a_count_policy_counts_and_on_which_meters(profile: str) -> None:
    result = CliRunner().invoke(app, ["policies", "show", profile])
    assert result.exit_code == 0, result.output
    assert "the larger of ." not in result.output
    for meter in builtin(profile).meter_names:
        assert meter in result.output


@pytest.mark.parametrize("profile", REQUIRED_IDS)
def test_policies_show_prints_the_methodology(profile: str) -> None:
    result = CliRunner().invoke(app, ["policies", "show", profile])
    assert result.exit_code == 0, result.output
    policy = builtin(profile)
    assert result.output.startswith(f"{policy.name} ({profile})")
    assert policy.description.strip()[:60] in result.output
    assert "What counts:" in result.output
    assert "Rounding:" in result.output
    assert f"In force from {policy.current.effective_from.date().isoformat()}" in result.output
    assert "Sources:" in result.output
    for source in policy.source:
        assert source in result.output
