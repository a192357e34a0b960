"""A synthetic provider statement for a synthetic month: the Twilio console's call-log export of every Twilio
leg, as Twilio bills them (whole seconds from the answer, each started minute at the informative cost card's
0.0085 USD), with some lines overcharged so that a reconciliation has something to find. For ``talktime
demo``; a real statement comes from the provider (docs/reconcile.md).

>>> from talktime.synth import synthetic_month
>>> from tempfile import TemporaryDirectory
>>> with TemporaryDirectory() as folder:
...     made = twilio_statement(Path(folder) / "twilio.csv", synthetic_month(200, seed=7), every=50)
...     lines = (Path(folder) / "twilio.csv").read_text().splitlines()
>>> made.lines == len(lines) - 1, made.overcharged, made.overcharge
(True, 3, Decimal('0.15'))
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Final

from talktime.core.records import UsageRecord

#: Twilio's US local inbound minute, as on the informative cost card (``costs-informative.toml``).
RATE: Final = Decimal("0.0085")
OVERCHARGE: Final = Decimal("0.05")
HEADER: Final = (
    "Call Sid,Date Created,Start Time,End Time,Duration,From,To,Direction,Status,Price,Price Unit\n"
)
STATUS: Final = {"completed": "completed", "unanswered": "No Answer", "busy": "busy", "failed": "failed"}


@dataclass(frozen=True, slots=True)
class Statement:
    """What was written: the lines (one per Twilio leg), how many were overcharged and by how much in all."""

    path: Path
    lines: int
    overcharged: int
    overcharge: Decimal


def _when(moment: object) -> str:
    return "" if moment is None else f"{moment:%Y-%m-%d %H:%M:%S} UTC"


def twilio_statement(path: Path, records: Iterable[UsageRecord], *, every: int = 100) -> Statement:
    """Write the console export of every Twilio leg in ``records`` to ``path``, by start; every ``every``-th
    answered leg is overcharged by 0.05 USD (0: none)."""
    legs = sorted(
        (r for r in records if r.provider == "twilio" and r.kind == "leg"), key=lambda r: r.started_at
    )
    rows = [HEADER]
    answered = overcharged = 0
    for n, leg in enumerate(legs):
        status = leg.status or "completed"
        if status == "completed" and leg.answered_at is not None and leg.ended_at is not None:
            seconds = math.ceil((leg.ended_at - leg.answered_at).total_seconds())
            price = math.ceil(Decimal(seconds) / 60) * RATE
            answered += 1
            if every and answered % every == 0:
                price += OVERCHARGE
                overcharged += 1
            duration, start, end = str(seconds), _when(leg.started_at), _when(leg.ended_at)
        else:
            price, duration, start, end = Decimal(0), "", "", ""
        rows.append(
            f"CA{n:032d},{_when(leg.started_at)},{start},{end},{duration},+14155550100,+14155550199,"
            f"Incoming,{STATUS.get(status, status)},-{price:.5f},USD\n"
        )
    path.write_text("".join(rows), encoding="utf-8")
    return Statement(path, len(legs), overcharged, overcharged * OVERCHARGE)
