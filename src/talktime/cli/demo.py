"""``talktime demo``: the "same call, different minute" story on a synthetic month.

The same calls are metered under the profiles of providers that could have carried them (four carriers for
the phone legs, three streaming STT services for the audio, LiveKit's meters for the room), and each
profile's billable minutes are set beside the actual minutes it measured.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from rich.console import Console
from rich.table import Table

from talktime.core.decimals import quantize, text
from talktime.core.metering.describe import one_line
from talktime.core.metering.meter import MeteredRecord, meter_records
from talktime.core.records import UsageRecord, seconds_between
from talktime.io.records_io import read_records, write_records
from talktime.providers import builtin
from talktime.synth import seed_case, synthetic_month

CALLS = 3000
MINUTE = Decimal(60)


@dataclass(frozen=True)
class Lane:
    """Records of one kind, and the profiles that could bill them."""

    title: str
    kinds: frozenset[str]
    profiles: tuple[str, ...]


LANES = (
    Lane("phone legs", frozenset({"leg"}), ("twilio-voice", "telnyx-voice", "plivo-voice", "vonage-voice")),
    Lane(
        "streaming STT",
        frozenset({"stream"}),
        ("deepgram-streaming", "assemblyai-streaming", "rev-streaming", "aws-transcribe"),
    ),
    Lane(
        "rooms",
        frozenset({"participant", "sip", "agent"}),
        ("livekit-participant", "livekit-sip", "livekit-agent"),
    ),
)


def _minutes(seconds: Decimal) -> str:
    return f"{quantize(seconds / MINUTE, 1):,}"


def _lane_table(lane: Lane, records: list[UsageRecord]) -> Table:
    table = Table(title=f"{lane.title}: {len(records):,} records", title_justify="left")
    for column in (
        "profile",
        "what a minute is (version in force)",
        "billed records",
        "actual min",
        "billable min",
        "uplift",
    ):
        table.add_column(column, justify="right" if column.endswith(("min", "records", "uplift")) else "left")
    for profile_id in lane.profiles:
        policy = builtin(profile_id)
        metered = meter_records(records, policy)
        billed = [m for m in metered if m.billable_seconds > 0]
        actual = sum((m.actual_seconds for m in billed), Decimal(0))
        billable = sum((m.billable_seconds for m in metered), Decimal(0))
        uplift = f"{quantize((billable / actual - 1) * 100, 1):+}%" if actual else "-"
        in_force = policy.version_at(min(r.started_at for r in records)).params
        table.add_row(
            profile_id,
            one_line(in_force),
            f"{len(billed):,}",
            _minutes(actual),
            _minutes(billable),
            uplift,
        )
    return table


def _example(records: list[UsageRecord], console: Console) -> None:
    """One stereo STT stream and one short phone leg, with their explain trails."""
    stereo = next(r for r in records if r.kind == "stream" and r.channels == 2)
    short_leg = next(
        r
        for r in records
        if r.kind == "leg"
        and r.answered_at
        and r.ended_at
        and seconds_between(r.answered_at, r.ended_at) < 20
    )
    console.print("\nWhy: two records explained")
    for record, profile_id in (
        (short_leg, "twilio-voice"),
        (short_leg, "telnyx-voice"),
        (stereo, "deepgram-streaming"),
        (stereo, "assemblyai-streaming"),
    ):
        metered: MeteredRecord = meter_records([record], builtin(profile_id))[0]
        console.print(f"  {record.id} under {profile_id}: {metered.trail()}", markup=False)


def _seed_story(console: Console) -> None:
    records = seed_case()
    metered = meter_records(records, builtin("livekit-participant"))
    billed = sum((m.billable_seconds for m in metered), Decimal(0))
    sessions = {r.session for r in records}
    # The stopwatch: each call's own length (the first participant is connected for the whole call).
    tally = sum(
        (seconds_between(r.started_at, r.ended_at) for r in records if r.id.endswith("-user") and r.ended_at),
        Decimal(0),
    )
    console.print(
        f"\nThe support-thread case: {len(sessions)} calls of just under a minute, 2 participants each. "
        f"A stopwatch tally of the calls gives {_minutes(tally)} min; LiveKit bills "
        f"{text(billed / MINUTE)} participant-minutes (each connection rounded up to a minute, then summed)."
    )


def run_demo(out: Path, seed: int) -> None:
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 150)
    path = out / "month.csv"
    written = write_records(path, synthetic_month(CALLS, seed=seed))
    records = list(read_records(path))
    console.print(f"A synthetic month: {CALLS:,} calls, {written:,} usage records in {path}\n")
    for lane in LANES:
        console.print(_lane_table(lane, [r for r in records if r.kind in lane.kinds]))
    _example(records, console)
    _seed_story(console)
    console.print(f"\nMeter it yourself: talktime meter {path} --policy twilio-voice --summary")
