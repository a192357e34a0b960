"""A Twilio console call-log export written from our own legs, as Twilio would bill them (whole seconds from
the answer, each started minute at 0.0085 USD; the leg's start as the line's), with differences planted on
chosen legs: an overcharged price, or extra seconds."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path

from talktime.core.records import UsageRecord

RATE = Decimal("0.0085")
HEADER = "Call Sid,Date Created,Start Time,End Time,Duration,From,To,Direction,Status,Price,Price Unit\n"
STATUS = {"completed": "completed", "unanswered": "No Answer", "busy": "busy", "failed": "failed"}


def _when(moment: object) -> str:
    return "" if moment is None else f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def twilio_console(
    path: Path,
    records: Iterable[UsageRecord],
    *,
    overcharge: Mapping[str, Decimal] | None = None,
    extra_seconds: Mapping[str, int] | None = None,
) -> list[UsageRecord]:
    """Write the export of every Twilio leg in ``records`` to ``path``; ``overcharge`` adds an amount to a
    leg's price, ``extra_seconds`` seconds to its duration (and its price), by record id. The legs written."""
    overcharge = overcharge or {}
    extra_seconds = extra_seconds or {}
    legs = sorted(
        (r for r in records if r.provider == "twilio" and r.kind == "leg"), key=lambda r: r.started_at
    )
    rows = [HEADER]
    for n, leg in enumerate(legs):
        answered = leg.status in (None, "completed") and leg.answered_at is not None
        if answered:
            assert leg.answered_at is not None and leg.ended_at is not None
            seconds = math.ceil((leg.ended_at - leg.answered_at).total_seconds()) + extra_seconds.get(
                leg.id, 0
            )
            price = math.ceil(Decimal(seconds) / 60) * RATE + overcharge.get(leg.id, Decimal(0))
            duration, start, end = str(seconds), _when(leg.started_at), _when(leg.ended_at)
        else:
            price, duration, start, end = Decimal(0), "", "", ""
        status = STATUS[leg.status or "completed"]
        rows.append(
            f"CA{n:032d},{_when(leg.started_at)},{start},{end},{duration},+14155550100,+14155550199,"
            f"Incoming,{status},-{price:.5f},USD\n"
        )
    path.write_text("".join(rows), encoding="utf-8")
    return legs


def near_a_minute(legs: Iterable[UsageRecord]) -> UsageRecord:
    """An answered leg whose whole seconds end 2 or 3 s before a minute: 4 s more bill another minute, within
    reconcile's 5 s matching window, so the line still matches and its extra minute is unexplained."""
    for leg in legs:
        if leg.answered_at is None or leg.ended_at is None or leg.status not in (None, "completed"):
            continue
        if 57 <= math.ceil((leg.ended_at - leg.answered_at).total_seconds()) % 60 <= 58:
            return leg
    raise AssertionError("no leg ends just before a minute")
