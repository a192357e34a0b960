"""``talktime simulate``, ``talktime compare`` and ``talktime methodology``: the what-if faces.

They parse the options, call the use cases in ``talktime.app`` (which read the records, a file or a store,
the policies and rate cards, and choose the engine), and write a table, JSON or an HTML report with charts
(``--out DIR`` keeps the PNG files).
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from talktime.app.compare import CompareEngine
from talktime.app.history import HistorySource
from talktime.app.methodology import PageFormat
from talktime.app.methodology import page as methodology_text
from talktime.app.progress import Step
from talktime.cli.guard import guarded
from talktime.core.decimals import quantize, text
from talktime.errors import InputError

if TYPE_CHECKING:
    from talktime.app.simulate import Simulated
    from talktime.core.simulate.switch import Switch

DEFAULT_COSTS = Path("costs-informative.toml")
STORE_HELP = "Read the history from an event store (a DuckDB file or postgresql:// URL); needs --tenant."


class ReportFormat(StrEnum):
    table = "table"
    json = "json"
    html = "html"


__all__ = ["CompareEngine", "PageFormat", "ReportFormat", "compare", "methodology", "simulate"]


@contextmanager
def _progress(total: int) -> Iterator[Step]:
    """A step counter on stderr when it is a terminal (large simulations take seconds per policy)."""
    console = Console(stderr=True)
    if not console.is_terminal:
        yield lambda _: None
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task("starting", total=total)
        started = [0]

        def step(label: str) -> None:
            progress.update(task, description=label, completed=started[0])
            started[0] += 1

        yield step
        progress.update(task, completed=total)


def _policy_names(value: str) -> list[str]:
    names = [n.strip() for n in value.split(",") if n.strip()]
    if not names:
        raise InputError("--policies: name one or more profiles, e.g. twilio-voice,vonage-voice")
    return names


def _console(handle: object = None) -> Console:
    return Console(width=None if sys.stdout.isatty() else 200, highlight=False)


def _money(value: Decimal | None) -> str:
    return "-" if value is None else text(quantize(value, 4))


def _pct(value: Decimal | None) -> str:
    return "-" if value is None else f"{quantize(value, 2):+}%"


AT_HELP = (
    "Apply the rules and prices in force on this date (YYYY-MM-DD) to every record. Default: each record "
    "under those in force when it started (generated calls start on the first day of the month after "
    "every current version and price)."
)


def simulate(
    policies: str = typer.Option(
        ..., "--policies", help="Profiles to compare, comma-separated (ids or .toml)."
    ),
    records: Path | None = typer.Option(
        None, "--records", help="Meter these calls (.csv, .jsonl, .parquet)."
    ),
    store: str | None = typer.Option(None, "--store", help=STORE_HELP),
    tenant: str | None = typer.Option(None, "--tenant", help="The tenant to read from --store."),
    distribution: str | None = typer.Option(
        None,
        "--distribution",
        help="fixed:SECONDS, lognormal:mean=S,sigma=X, uniform:LOW,HIGH or empirical:FILE (with --calls).",
    ),
    calls: int | None = typer.Option(None, "--calls", help="How many calls to generate."),
    channels: str | None = typer.Option(None, "--channels", help="Channels mix, e.g. 1:0.7,2:0.3."),
    participants: str | None = typer.Option(
        None, "--participants", help="Participants mix, e.g. 1:0.5,2:0.5."
    ),
    costs: Path = typer.Option(DEFAULT_COSTS, "--costs", help="Cost card (a file or a built-in example)."),
    format: ReportFormat = typer.Option(ReportFormat.table, "--format", "-f", help="table, json or html."),
    seed: int = typer.Option(7, "--seed", help="Seed for generated calls: same seed, same calls."),
    at: str | None = typer.Option(None, "--at", help=AT_HELP),
    out: Path | None = typer.Option(None, "--out", help="Write charts (PNG), report.html and JSON here."),
) -> None:
    """Rounding impact: what each policy bills for the same calls, against exact billing; on history, with
    the rest of the calls' cost (every modality) and the records no cost entry prices."""
    from talktime.app.simulate import Generated
    from talktime.app.simulate import simulate as run_simulation

    def run() -> None:
        histogram = out is not None or format is ReportFormat.html
        done = run_simulation(
            _policy_names(policies),
            costs,
            history=HistorySource(records, store, tenant),
            generate=Generated(distribution, calls, channels, participants, seed),
            at=at,
            histogram=histogram,
            progress=_progress,
        )
        _write_simulation(done, format, out)

    guarded(run)


def _write_simulation(done: Simulated, format: ReportFormat, out: Path | None) -> None:
    from talktime.simulate.charts import cost_chart, durations_chart
    from talktime.simulate.report import simulation_dict, simulation_html, simulation_table, stack_line

    sim = done.simulation
    figures: dict[str, Path] = {}
    if done.histogram is not None:
        folder = out or Path(tempfile.mkdtemp(prefix="talktime-charts-"))
        histogram, width, longest = done.histogram
        figures["Call durations with each policy's billable steps"] = durations_chart(
            folder / "durations.png", histogram, width, longest, sim.policies, sim.source
        )
        figures["Billable minutes and cost by policy"] = cost_chart(
            folder / "cost-by-policy.png", sim.impacts, sim.source
        )
    if out is not None:
        (out / "report.html").write_text(simulation_html(sim, figures), encoding="utf-8")
        (out / "simulation.json").write_text(
            json.dumps(simulation_dict(sim), indent=2) + "\n", encoding="utf-8"
        )
    if format is ReportFormat.json:
        print(json.dumps(simulation_dict(sim), indent=2))
    elif format is ReportFormat.html:
        sys.stdout.write(simulation_html(sim, figures))
    else:
        header, rows = simulation_table(sim)
        table = Table(title=f"{sim.source}: {sim.records:,} records, {sim.rules.label}")
        for column in header:
            table.add_column(column, justify="left" if column in _TEXT else "right")
        for row in rows:
            table.add_row(*row)
        console = _console()
        console.print(table)
        console.print(
            "exact = each record's actual quantity under the policy's basis, one charge per record",
            markup=False,
        )
        if sim.stack is not None:
            console.print(stack_line(sim.stack), markup=False)
        for note in sim.notes:
            console.print(note, markup=False)
        if out is not None:
            console.print(f"charts and report: {out}/report.html", markup=False)


_TEXT = frozenset({"policy", "rule", "customer", "modality", "missing costs", "call"})


def compare(
    from_: str = typer.Option(..., "--from", help="The provider profile you use now."),
    to: str = typer.Option(..., "--to", help="The provider profile you consider."),
    records: Path | None = typer.Option(None, "--records", help="History (.csv, .jsonl, .parquet)."),
    store: str | None = typer.Option(None, "--store", help=STORE_HELP),
    tenant: str | None = typer.Option(None, "--tenant", help="The tenant to read from --store."),
    costs: Path = typer.Option(DEFAULT_COSTS, "--costs", help="Cost card with entries for both profiles."),
    prices: Path | None = typer.Option(
        None, "--prices", help="Price card: adds the price that keeps the margin."
    ),
    at: str | None = typer.Option(None, "--at", help=AT_HELP),
    format: ReportFormat = typer.Option(ReportFormat.table, "--format", "-f", help="table, json or html."),
    top: int = typer.Option(10, "--top", help="How many of the most-changed calls to list."),
    out: Path | None = typer.Option(None, "--out", help="Write the chart (PNG), report.html and JSON here."),
    engine: CompareEngine = typer.Option(
        CompareEngine.auto,
        "--engine",
        help="duckdb (vectorised, any size), reference (the per-record Python meter) or auto: duckdb "
        "unless a card uses a charge model or a policy it does not handle, or a record has seconds past 6 "
        "decimals or a count past 64 bits. Both give the same numbers.",
    ),
) -> None:
    """Provider switch: re-meter history under another profile and price, per call, customer and total;
    with --prices, the price that keeps the margin over every modality's cost."""
    from talktime.app.compare import compare as run_compare
    from talktime.simulate.charts import switch_chart
    from talktime.simulate.report import switch_dict, switch_html

    def run() -> None:
        switch = run_compare(
            from_,
            to,
            HistorySource(records, store, tenant),
            costs,
            prices,
            at=at,
            engine=engine,
            progress=_progress,
        )
        with tempfile.TemporaryDirectory(prefix="talktime-cmp-") as folder:
            figures: dict[str, Path] = {}
            if out is not None or format is ReportFormat.html:
                target = (out or Path(folder)) / "switch-by-customer.png"
                figures["Cost change per customer"] = switch_chart(target, switch)
            if out is not None:
                (out / "report.html").write_text(switch_html(switch, figures, top), encoding="utf-8")
                data = json.dumps(switch_dict(switch, top), indent=2) + "\n"
                (out / "compare.json").write_text(data, encoding="utf-8")
            if format is ReportFormat.json:
                print(json.dumps(switch_dict(switch, top), indent=2))
            elif format is ReportFormat.html:
                sys.stdout.write(switch_html(switch, figures, top))
            else:
                _switch_tables(switch, top, out)

    guarded(run)


def _switch_tables(switch: Switch, top: int, out: Path | None) -> None:
    from talktime.simulate.report import switch_table

    console = _console()
    title = f"{switch.name} ({switch.currency}, {switch.rules.label})"
    table = Table(title=title)
    header, rows = switch_table(switch)
    for column in header:
        table.add_column(column, justify="left" if column in _TEXT else "right")
    for row in rows:
        table.add_row(*row)
    console.print(table)
    calls = Table(title=f"the {top} calls that change most")
    for column in ("call", "customer", "billable from", "billable to", "cost from", "cost to", "change"):
        calls.add_column(column, justify="left" if column in ("call", "customer") else "right")
    was, will = ("* " if e.placeholder else "" for e in (switch.from_entry, switch.to_entry))
    for change in switch.biggest(top):  # * marks a cost priced by placeholder prices (the notes say which)
        calls.add_row(
            change.session,
            change.customer,
            text(change.seconds_from),
            text(change.seconds_to),
            was + _money(change.cost_from),
            will + _money(change.cost_to),
            ("* " if was or will else "") + _money(change.delta),
        )
    console.print(calls)
    if switch.total.revenue is None:
        console.print("give --prices CARD to see the price per minute that keeps the margin", markup=False)
    elif switch.total.incomplete:
        console.print(
            "platform cost is every modality's cost from the card; 'missing costs' counts the records no "
            "entry prices: their cost is left out of the platform cost (>=) and of 'keep margin %' "
            "('keep margin amount' does not depend on it)",
            markup=False,
        )
    for note in switch.notes:
        console.print(note, markup=False)
    if out is not None:
        console.print(f"chart and report: {out}/report.html", markup=False)


def methodology(
    policy: str = typer.Argument(..., help="A built-in profile id or a policy .toml file."),
    format: PageFormat = typer.Option(PageFormat.md, "--format", "-f", help="md or html."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Write the page here instead of standard output."
    ),
) -> None:
    """The published methodology page: what a billable minute is, with a worked example the meter computes."""

    def run() -> None:
        page = methodology_text(policy, format)
        if out is None:
            sys.stdout.write(page)
        else:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(page, encoding="utf-8")

    guarded(run)
