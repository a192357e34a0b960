"""The ``talktime`` command line. Commands parse their options, call the use cases in ``talktime.app`` and
render what they return; nothing calls back into here.

Any error talktime raises on purpose becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import csv
import json
import signal
import sys
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from enum import StrEnum
from pathlib import Path
from types import FrameType
from typing import IO, TYPE_CHECKING, TypeVar

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

from talktime.app.explain import explain as explain_record
from talktime.app.explain import trail_lines
from talktime.app.meter import MeteredRecord, Totals, metering
from talktime.app.methodology import describe, profiles
from talktime.app.methodology import policy as load_policy
from talktime.cli.alerts import alerts_app
from talktime.cli.billing import invoice_app, margin
from talktime.cli.dashboard import dashboard
from talktime.cli.export import export_app
from talktime.cli.guard import guarded
from talktime.cli.history import STORE_HELP
from talktime.cli.measure import measure
from talktime.cli.proxy import proxy
from talktime.cli.reconcile import reconcile
from talktime.cli.records import records_app
from talktime.cli.webhooks import webhooks_app
from talktime.cli.whatif import compare, simulate
from talktime.cli.whatif import methodology as methodology_page
from talktime.core.decimals import text
from talktime.core.metering.summary import summary_rows
from talktime.errors import InputError
from talktime.io.results import CSV_COLUMNS, record_dict, record_row, totals_dict

if TYPE_CHECKING:
    from talktime.app.alerts import AlertSending
    from talktime.core.rating.cards import CostCard, PriceCard
    from talktime.store.base import EventStore
    from talktime.web.served import ServedDashboard

app = typer.Typer(
    name="talktime",
    help="Meter Voice AI usage under declarative provider policies; every billed number explains itself.",
    epilog="Exit codes: 0 done; 1 differences found (reconcile: a line not explained), or an unexpected "
    "error or Ctrl-C; 2 bad input (one 'talktime: error:' line) or a malformed command line (docs/cli.md).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
policies_app = typer.Typer(help="List the built-in provider profiles, or show one's methodology.")
app.add_typer(policies_app, name="policies")
app.add_typer(invoice_app, name="invoice")
app.add_typer(webhooks_app, name="webhooks")
app.add_typer(export_app, name="export")
app.add_typer(alerts_app, name="alerts")
app.command(
    epilog="Exit codes: 0 the report is written (rows with uncosted records marked INCOMPLETE); 2 bad "
    "input, or with --strict any record no cost entry takes."
)(margin)
app.command()(simulate)
app.command()(compare)
app.command("methodology")(methodology_page)
app.command()(reconcile)
app.command()(measure)
app.command()(proxy)
app.command()(dashboard)

T = TypeVar("T")


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def with_progress(records: Iterable[T], total: int | None, label: str) -> Iterator[T]:
    """Records with a progress bar on stderr when it is a terminal (long inputs), silently otherwise."""
    console = Console(stderr=True)
    if not console.is_terminal:
        yield from records
        return
    columns = (SpinnerColumn(), TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(label, total=total)
        for count, item in enumerate(records, start=1):
            yield item
            if count % 1000 == 0:
                progress.update(task, completed=count)


@contextmanager
def output(path: Path | None) -> Iterator[IO[str]]:
    """Standard output, or a file that appears only when the whole output was written (no half files)."""
    if path is None:
        yield sys.stdout
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    try:
        with partial.open("w", encoding="utf-8", newline="") as handle:
            yield handle
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)


@app.command()
def meter(
    input: Path = typer.Argument(..., help="Usage records: .csv, .jsonl or .parquet."),
    policy: str = typer.Option(..., "--policy", "-p", help="A built-in profile id or a policy .toml file."),
    format: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f", help="table, json or csv."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Write here instead of standard output."),
    summary: bool = typer.Option(False, "--summary", help="Totals only, no per-record lines."),
    engine: str | None = typer.Option(
        None,
        "--engine",
        "-e",
        help="duckdb (default), duckdb:///file.db, postgresql://..., clickhouse://..., chdb, spark, "
        "spark://host:port, or reference (the scalar meter alone). Per-record output from an engine is "
        "checked record by record against the scalar meter, which writes each record's full explain trail. "
        "With none given, a file holding seconds past 6 decimals or a count past 64 bits (which the engines "
        "cannot hold) is metered by the scalar meter alone, with a note on stderr.",
    ),
) -> None:
    """Meter records under a policy: actual, provider-reported and billable time, per record and in total."""

    def run() -> None:
        chosen = load_policy(policy)
        with ExitStack() as stack:
            handle = stack.enter_context(output(out))  # nothing appears at --out unless the run succeeds
            done = stack.enter_context(
                metering(input, chosen, engine=engine, summary=summary, ticks=with_progress)
            )
            metered, totals = done.records, done.totals
            if done.note:  # the default engine could not hold a value: the scalar meter meters the file
                Console(stderr=True, highlight=False, soft_wrap=True).print(
                    f"note: {done.note}", markup=False
                )
            if format is OutputFormat.json:
                _write_json(handle, metered, totals, summary)
            elif format is OutputFormat.csv:
                _write_csv(handle, metered, totals, summary)
            else:
                _write_table(handle, metered, totals, summary, title=f"{chosen.id}: {input.name}")

    guarded(run)


def _drain(items: Iterable[object]) -> None:
    for _ in items:
        pass


def _write_json(handle: IO[str], metered: Iterable[MeteredRecord], totals: Totals, summary: bool) -> None:
    """One JSON object, streamed record by record so large inputs never sit in memory as text."""
    handle.write("{")
    if summary:
        _drain(metered)
    else:
        handle.write('"records": [')
        for index, item in enumerate(metered):
            handle.write(("," if index else "") + "\n  " + json.dumps(record_dict(item)))
        handle.write("\n], ")
    handle.write('"totals": ' + json.dumps(totals_dict(totals), indent=2) + "}\n")


def _write_csv(handle: IO[str], metered: Iterable[MeteredRecord], totals: Totals, summary: bool) -> None:
    if summary:
        _drain(metered)
        writer = csv.writer(handle)
        writer.writerow(
            [
                "meter",
                "records",
                "actual_seconds",
                "provider_reported_seconds",
                "provider_reported_records",
                "billable_seconds",
                "billable_quantity",
                "unit",
            ]
        )
        data = totals_dict(totals)
        for name, part in [*data["meters"].items(), ("TOTAL", data)]:
            writer.writerow(
                [
                    name,
                    part["records"],
                    part["actual_seconds"],
                    part["provider_reported_seconds"],
                    part["provider_reported_records"],
                    part["billable_seconds"],
                    part["billable_quantity"],
                    part["unit"],
                ]
            )
        return
    dict_writer = csv.DictWriter(handle, CSV_COLUMNS)
    dict_writer.writeheader()
    for item in metered:
        dict_writer.writerow(record_row(item))


def _write_table(
    handle: IO[str], metered: Iterable[MeteredRecord], totals: Totals, summary: bool, title: str
) -> None:
    console = Console(file=handle, width=None if handle.isatty() else 160, highlight=False)
    if summary:
        _drain(metered)
    else:
        table = Table(title=title, show_lines=False)
        unit = totals.symbol
        for column in ("id", "meter", f"actual {unit}", f"billable {unit}", "quantity", "explain"):
            right = column.startswith(("actual", "billable")) or column == "quantity"
            table.add_column(column, justify="right" if right else "left")
        for item in metered:
            table.add_row(
                item.id,
                item.meter,
                text(item.actual_seconds),
                text(item.billable_seconds),
                text(item.billable_quantity),
                item.trail(),
            )
        console.print(table)
    console.print(totals_table(totals))


def totals_table(totals: Totals, title: str = "totals") -> Table:
    """Totals per meter, each cell as ``summary_rows`` shows it (``-`` where nothing was measured). A count
    policy shows no provider-reported seconds (providers report durations), and no second billable column
    when its base quantity is its unit (a token is a token)."""
    table = Table(title=title)
    count = totals.symbol != "s"
    columns: list[tuple[str, str]] = [
        ("meter", "meter"),
        ("records", "records"),
        (f"actual {totals.symbol}", "actual"),
    ]
    if not count:
        columns.append(("provider-reported s", "provider_reported"))
    columns.append((f"billable {totals.symbol}", "billable"))
    if totals.unit_seconds != 1 or not count:
        columns.append((f"billable {totals.unit}s", "quantity"))
    for header, _ in columns:
        table.add_column(header, justify="left" if header == "meter" else "right")
    for row in summary_rows(totals):
        table.add_row(*(getattr(row, key) for _, key in columns))
    return table


@app.command()
def explain(
    input: Path = typer.Argument(..., help="Usage records: .csv, .jsonl or .parquet."),
    policy: str = typer.Option(..., "--policy", "-p", help="A built-in profile id or a policy .toml file."),
    record_id: str = typer.Option(..., "--id", help="The record to explain."),
) -> None:
    """Print how one record's billable number was reached, one step per line."""

    def run() -> None:
        found = explain_record(input, policy, record_id, ticks=with_progress)
        console = Console(highlight=False, soft_wrap=True)
        for item in found.items:  # one per part when the policy meters several quantities of a record
            heading, *lines = trail_lines(item, found.policy.id)
            console.print(heading)  # printed with markup, as it always was
            for line in lines:
                console.print(line, markup=False)

    guarded(run)


@policies_app.callback(invoke_without_command=True)
def policies(ctx: typer.Context) -> None:
    """List the built-in provider profiles: id, modality, unit, the rule in one line (each part's, for a
    profile that meters several quantities), source and confidence."""
    if ctx.invoked_subcommand is not None:
        return

    def run() -> None:
        table = Table(title="built-in provider profiles")
        for column in ("id", "modality", "unit", "rule (current version)", "from", "source", "conf"):
            table.add_column(column, overflow="fold")
        for p in profiles():
            table.add_row(p.id, p.modality, p.unit, p.rule, p.effective_from, p.source, p.confidence)
        Console(width=200 if not sys.stdout.isatty() else None).print(table)

    guarded(run)


@policies_app.command("show")
def policies_show(
    policy: str = typer.Argument(..., help="A built-in profile id or a policy .toml file."),
) -> None:
    """Print a policy's methodology in plain words: how the provider bills, version by version."""
    guarded(lambda: print(describe(policy), end=""))


@app.command()
def demo(
    out: Path = typer.Option(
        Path("out/demo"),
        "--out",
        help="Where the synthetic month (month.csv) and its Twilio statement (twilio-statement.csv) go.",
    ),
    seed: int = typer.Option(7, help="Random seed for the synthetic month."),
) -> None:
    """A synthetic month over several providers, metered side by side: same call, different minute."""
    from talktime.cli.demo import run_demo

    guarded(lambda: run_demo(out, seed))


app.add_typer(records_app, name="records")
keys_app = typer.Typer(
    help="API keys for the HTTP API, one tenant each, or admin keys (stored hashed; listed by id)."
)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    tenant: str | None = typer.Argument(None, help="The tenant the key writes and reads for."),
    tenant_option: str | None = typer.Option(
        None, "--tenant", help="The tenant, as an option (the same as TENANT; with --customer)."
    ),
    customer: str | None = typer.Option(
        None,
        "--customer",
        help="A customer-scoped key: reads only this customer's usage, calls and invoices of the tenant "
        "(its own dashboard view), writes nothing.",
    ),
    store: str = typer.Option("talktime-events.duckdb", "--store", help=STORE_HELP),
    label: str | None = typer.Option(None, "--label", help="What the key is for, shown by keys list."),
    admin: bool = typer.Option(
        False, "--admin", help="An admin key (no TENANT): manages keys over /v1/admin/keys, reads no usage."
    ),
) -> None:
    """Make a new API key for TENANT (or an admin key, or with --customer a key of one customer of the
    tenant); the key is printed once, as the last line, and stored only hashed."""

    def run() -> None:
        from talktime.app.keys import create_key, key_store

        if tenant is not None and tenant_option is not None and tenant != tenant_option:
            raise InputError(f"TENANT {tenant!r} and --tenant {tenant_option!r} differ: give one")
        owner = tenant if tenant is not None else tenant_option
        with key_store(store) as opened:
            made = create_key(opened, owner, label=label, admin=admin, customer=customer)
        if admin:
            whose = "an admin key"
        elif customer is not None:
            whose = f"API key for customer {customer!r} of tenant {owner!r}"
        else:
            whose = f"API key for tenant {owner!r}"
        print(f"{whose}, id {made.info.id} (shown once; send it as Authorization: Bearer KEY):")
        print(made.key)

    guarded(run)


@keys_app.command("list")
def keys_list(
    tenant: str | None = typer.Argument(None, help="Only this tenant's keys (all keys when omitted)."),
    store: str = typer.Option("talktime-events.duckdb", "--store", help=STORE_HELP),
    format: OutputFormat = typer.Option(OutputFormat.table, "--format", "-f", help="table, json or csv."),
) -> None:
    """List keys by id, tenant, customer (a customer-scoped key), label, role, when made and when revoked;
    never a key or its hash."""

    def run() -> None:
        from talktime.app.keys import key_dict, key_store, list_keys

        with key_store(store) as opened:
            rows = [key_dict(k) for k in list_keys(opened, tenant)]
        if format is OutputFormat.json:
            print(json.dumps({"keys": rows}, indent=2))
        elif format is OutputFormat.csv:
            writer = csv.DictWriter(
                sys.stdout, ["id", "tenant", "customer", "label", "admin", "created_at", "revoked_at"]
            )
            writer.writeheader()
            writer.writerows(rows)
        else:
            table = Table(title="API keys")
            for column in ("id", "tenant", "customer", "label", "role", "created", "revoked"):
                table.add_column(column, overflow="fold")
            for row in rows:
                role = "admin" if row["admin"] else "customer" if row["customer"] else "tenant"
                table.add_row(
                    row["id"],
                    row["tenant"],
                    row["customer"] or "-",
                    row["label"] or "-",
                    role,
                    row["created_at"],
                    row["revoked_at"] or "-",
                )
            Console(width=200 if not sys.stdout.isatty() else None, highlight=False).print(table)

    guarded(run)


@keys_app.command("revoke")
def keys_revoke(
    key_id: str = typer.Argument(..., help="The key's id, as keys list shows it (k_...)."),
    store: str = typer.Option("talktime-events.duckdb", "--store", help=STORE_HELP),
) -> None:
    """Revoke a key: every server on the store refuses it (401) from its next request on. With the
    embedded DuckDB store, whose file a running server holds, revoke through the server's admin route."""

    def run() -> None:
        from datetime import UTC, datetime

        from talktime.app.keys import key_store, revoke_key

        with key_store(store) as opened:
            revoked = revoke_key(opened, key_id, datetime.now(UTC))
        assert revoked.revoked_at is not None
        print(f"key {revoked.id} of {revoked.tenant!r} revoked at {revoked.revoked_at.isoformat()}")

    guarded(run)


@keys_app.command("rotate")
def keys_rotate(
    key_id: str = typer.Argument(..., help="The key's id, as keys list shows it (k_...)."),
    store: str = typer.Option("talktime-events.duckdb", "--store", help=STORE_HELP),
) -> None:
    """Make a new key with the same tenant, label and role and revoke the old one, in one transaction;
    the new key is printed once, as the last line."""

    def run() -> None:
        from datetime import UTC, datetime

        from talktime.app.keys import key_store, rotate_key

        with key_store(store) as opened:
            made = rotate_key(opened, key_id, datetime.now(UTC))
        print(f"key {key_id} revoked; new key {made.info.id} for {made.info.tenant!r} (shown once):")
        print(made.key)

    guarded(run)


def _served_dashboard(
    opened: EventStore,
    store: str,
    costs: CostCard,
    prices: PriceCard,
    ledger: Path | None,
    guards: Path | None,
    months: int,
    refresh: float,
    alerts: AlertSending | None = None,
) -> ServedDashboard:
    from datetime import timedelta

    from talktime.api.access_log import store_label
    from talktime.web.served import ServedDashboard, ServedOptions

    options = ServedOptions(
        costs,
        prices,
        store_label(store),
        ledger=ledger,
        guards=guards,
        months=months,
        refresh=timedelta(seconds=refresh),
    )
    board = ServedDashboard(opened, options)
    if alerts is not None:  # checked after each new snapshot, which a watcher asks for as records change
        from talktime.web.served_alerts import ServedAlerts

        ServedAlerts(board.snapshots, alerts).start()
    return board


class _Terminated(Exception):
    """SIGTERM reached ``talktime serve`` (uvicorn raises it again after its graceful shutdown)."""


def _terminated(signum: int, frame: FrameType | None) -> None:
    raise _Terminated


@app.command()
def serve(
    store: str = typer.Option("talktime-events.duckdb", "--store", help=STORE_HELP),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8000, "--port", help="Port to listen on."),
    prices: Path | None = typer.Option(
        None, "--prices", help="Price card for GET /v1/invoices (and the dashboard, with --costs)."
    ),
    costs: Path | None = typer.Option(
        None,
        "--costs",
        help="Cost card: also serve the dashboard (sign in at /signin with a tenant or customer key); "
        "needs --prices and plotly (the dashboard extra).",
    ),
    dashboard_months: int = typer.Option(
        3,
        "--dashboard-months",
        min=1,
        help="The dashboard shows records started in this many UTC months (this one included), from the "
        "earliest local midnight that opens the oldest among the price card's time zones: every customer's "
        "months in it are whole.",
    ),
    dashboard_refresh: float = typer.Option(
        60.0,
        "--dashboard-refresh",
        min=1.0,
        help="Seconds a dashboard snapshot is kept before a page asks whether newer records are stored "
        "(with --alerts, every tenant's records are looked at this often, pages or not).",
    ),
    alerts: Path | None = typer.Option(
        None,
        "--alerts",
        help="Alert configuration (TOML; docs/alerts.md): after each new snapshot of a tenant's records, "
        "the alerts open are checked and each new one POSTed, signed, to its webhook url (the secret from "
        "the variable secret_env names). Needs --costs and --prices.",
    ),
    ledger: Path | None = typer.Option(None, "--ledger", help="Finalised invoices, LEDGER/<tenant>/."),
    workers: int = typer.Option(
        0, "--workers", min=0, help="Processes that decode and check event batches (0: in the server)."
    ),
    guards: Path | None = typer.Option(
        None,
        "--guards",
        help="Plausibility limits, per tenant (TOML; docs/guards.md). Default: safe defaults.",
    ),
) -> None:
    """Serve the ingestion and usage HTTP API (OpenAPI at /openapi.json); with --costs and --prices, also
    the dashboard in a browser (http://HOST:PORT/, signed in with a tenant or a customer key); with
    --alerts too, each tenant's alerts checked and sent as its events arrive."""

    def run() -> None:
        import uvicorn

        from talktime.api import access_log, create_app
        from talktime.api.app import tune_gc_for_serving
        from talktime.app.serve import known_hashes, serve_inputs
        from talktime.app.served import announce
        from talktime.app.stores import opened_store

        access_log.configure()
        given = serve_inputs(prices, costs, guards, alerts)  # every file checked before the store is opened
        with opened_store(store) as opened:
            board = None
            if given.costs is not None and given.prices is not None:
                board = _served_dashboard(
                    opened,
                    store,
                    given.costs,
                    given.prices,
                    ledger,
                    guards,
                    dashboard_months,
                    dashboard_refresh,
                    given.alerts,
                )
            served = create_app(
                opened,
                prices=given.prices,
                ledger=ledger,
                workers=workers,
                guards=given.guards,
                dashboard=board,
            )
            tune_gc_for_serving()
            access_log.log_start(store, host, port, workers)
            hashes = known_hashes(opened)  # the embedded store's dedup sets, loaded now (ADR 0009)
            if hashes is not None:
                access_log.log_hashes(hashes)
            # uvicorn stops gracefully on SIGTERM, then raises it again under the handler it found: with
            # the default one the process would die there, leaving its note and the store unclosed
            previous = signal.signal(signal.SIGTERM, _terminated)
            try:
                with announce(store, host, port):  # a note beside a DuckDB file: the CLI reads it through us
                    uvicorn.run(served, host=host, port=port, log_level="warning", access_log=False)
            except _Terminated:
                pass  # stopped (systemd, docker stop, kill PID): the note goes, the store is closed, exit 0
            finally:
                signal.signal(signal.SIGTERM, previous)

    guarded(run)


if __name__ == "__main__":  # pragma: no cover
    app()
