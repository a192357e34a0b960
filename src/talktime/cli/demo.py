"""``talktime demo``: the "same call, different minute" story on a synthetic month, then the whole call.

The same calls are metered under the profiles of providers that could have carried them (four carriers for
the phone legs, three streaming STT services for the audio, LiveKit's meters for the room), and each
profile's billable minutes are set beside the actual minutes it measured. Then one call's cost is stacked
across its providers (carrier minutes, STT seconds, LLM tokens, TTS credits, room minutes) beside what it
sold for, as the month's margin rates it (the numbers of ``talktime margin --by session`` and the
dashboard), and the month's margin per customer is shown with and without the LLM and TTS costs. Beside the
records it writes a synthetic Twilio statement of the month's legs (1 line in 100 overcharged), so that the
dashboard command it prints shows a reconciliation page too.
"""

from __future__ import annotations

import shutil
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
from talktime.synth_statements import twilio_statement

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


_COSTS = Path("costs-informative.toml")
_PRICES = Path("plan-call-minute.toml")


def _call_stack(path: Path, records: list[UsageRecord], console: Console) -> None:
    """One answered phone call, every record priced by its provider's own unit, its amounts taken from the
    month's margin (what ``talktime margin --by session`` and the dashboard show for it): rated alone, the
    card's monthly quotas (free SIP minutes) would cover it and it would look cheaper than it is."""
    from talktime.app.history import HistorySource
    from talktime.app.margin import session_report
    from talktime.io.ratecards import load_cost_card, load_price_card

    costs, prices = load_cost_card(_COSTS), load_price_card(_PRICES)
    sessions: dict[str, list[UsageRecord]] = {}
    for record in records:
        sessions.setdefault(record.session_key, []).append(record)
    chosen = next(
        rs
        for rs in sessions.values()
        if {"leg", "stream", "llm", "tts", "sip"} <= {r.kind for r in rs} and len(rs) == 6
    )
    report, _ = session_report(HistorySource(records=path), costs, prices)
    first = chosen[0]
    call = next(s for s in report.sessions if s.session == first.session_key and s.customer == first.customer)
    table = Table(title=f"The whole call: {call.session} ({call.customer})", title_justify="left")
    for column in ("record", "cost entry (modality)", "what it bills", "cost USD (in the month)"):
        table.add_column(column, justify="right" if column.startswith("cost USD") else "left")
    for record in chosen:
        for entry in costs.entries_for(record):
            metered = meter_records([record], entry.policy)[0]
            amount = call.costs.get(entry.id, Decimal(0))
            quantity = metered.billable_quantity
            unit = entry.policy.unit + ("" if quantity == 1 else "s")
            what = f"{text(quantity)} {unit} ({metered.trail()})"
            made_up = "*" if entry.placeholder else ""  # a placeholder price (docs/pricing.md)
            table.add_row(record.id, f"{entry.id} ({entry.modality})", what, made_up + _exact(amount))
    console.print(table, soft_wrap=False)
    stack = ", ".join(f"{m} {_exact(v)}" for m, v in call.cost_by_modality.items() if v)
    percent = quantize(call.margin / call.price * 100, 1)
    console.print(
        f"  cost {_exact(call.cost)} ({stack}); sold as {text(call.minutes)} call minute(s) for "
        f"{_exact(call.price)}; margin {_exact(call.margin)} ({percent}%): rated with the rest of the "
        "month, as `margin --by session` rates it (the month's calls share the card's quotas)",
        markup=False,
    )
    if call.placeholder:  # said on the next line, so the numbers above read as `margin` writes them
        console.print(
            f"  * PLACEHOLDER: this cost and margin are priced in part by placeholder prices (the amounts "
            f"marked * above: {', '.join(sorted(call.placeholders))}; no published price, see the cost "
            "card): not real",
            markup=False,
        )


def _exact(amount: Decimal) -> str:
    """An amount as `talktime margin --format json` writes it: exact to 12 decimal places."""
    return text(quantize(amount, 12))


def _month_margins(records: list[UsageRecord], console: Console) -> None:
    """The month per customer: with every modality, and what a minute-only view would have said."""
    from talktime.cli.billing import _margin_table
    from talktime.core.rating.margin import margin_rows, margin_view, session_margins
    from talktime.io.ratecards import load_cost_card, load_price_card

    costs, prices = load_cost_card(_COSTS), load_price_card(_PRICES)
    whole = session_margins(records, costs, prices)
    console.print("\nThe month per customer, every provider of every call costed:")
    _margin_table(margin_view(whole, "customer"), None)
    minutes_only = session_margins([r for r in records if r.kind not in ("llm", "tts")], costs, prices)
    for full, partial in zip(
        margin_rows(whole, "customer"), margin_rows(minutes_only, "customer"), strict=True
    ):
        if full.margin_percent is None or partial.margin_percent is None:
            continue
        made_up = " (* placeholder prices included)" if full.placeholder or partial.placeholder else ""
        console.print(
            f"  {full.key} {full.period}: margin {quantize(full.margin_percent, 1)}% with LLM and TTS; "
            f"{quantize(partial.margin_percent, 1)}% if only minutes were costed{made_up}",
            markup=False,
        )


def run_demo(out: Path, seed: int) -> None:
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 150)
    path = out / "month.csv"
    written = write_records(path, synthetic_month(CALLS, seed=seed, whole_call=True))
    records = list(read_records(path))
    statement = twilio_statement(out / "twilio-statement.csv", records)
    calls = len({r.session_key for r in records})
    console.print(
        f"A synthetic month: {CALLS:,} calls placed, {calls:,} with usage records (the other "
        f"{CALLS - calls:,}: web calls that never connected, which leave none); {written:,} usage records "
        f"in {path}"
    )
    console.print(
        f"and Twilio's statement of its {statement.lines:,} phone legs in {statement.path} (synthetic: "
        f"{statement.overcharged} lines overcharged, {statement.overcharge} USD in all, for the "
        "reconciliation to find)\n"
    )
    for lane in LANES:
        console.print(_lane_table(lane, [r for r in records if r.kind in lane.kinds]))
    _example(records, console)
    _seed_story(console)
    console.print()
    _call_stack(path, records, console)
    _month_margins(records, console)
    # the command as this shell can run it: `make demo` installs it in .venv, not on the PATH
    program = "talktime" if shutil.which("talktime") else ".venv/bin/talktime"
    console.print(f"\nMeter it yourself: {program} meter {path} --policy twilio-voice --summary")
    console.print(
        f"Every call's cost stack: {program} margin --records {path} --costs {_COSTS} --prices {_PRICES} "
        "--by session"
    )
    console.print(
        f"See the month in a browser: {program} dashboard --records {path} --costs {_COSTS} "
        f"--prices {_PRICES} --statement twilio-voice={statement.path}   (then open http://127.0.0.1:8050/; "
        "Ctrl-C stops it)",
        soft_wrap=True,
    )
