"""The served dashboard's rating runs in a worker process (``web.served``): a board rated there and sent
back part by part is the board ``talktime dashboard`` makes of the same file (every call's row, the month
per customer, the cost per provider, the usage series, the records), and the jobs it runs there (each
customer's invoices, the what-if runs) give what the same call gives in the server's own process."""

from __future__ import annotations

import gc
import os
import pickle
import types
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from talktime.app.calls import CallRecords
from talktime.app.cards import cost_card, price_card
from talktime.app.month_invoices import customer_invoices
from talktime.app.snapshot import customer_invoices_of_file
from talktime.io.invoices import call_count, calls_csv, render
from talktime.io.records_io import write_records
from talktime.store import open_store
from talktime.synth import synthetic_month
from talktime.web.calls_table import CallsQuery
from talktime.web.customer import calls_of
from talktime.web.data import load
from talktime.web.served import (
    CALLS_CHUNK,
    PackedCalls,
    ServedOptions,
    Snapshots,
    _calls_of,
    board_of,
    invoices_and_calls,
    rated_board,
)

AS_OF = datetime(2026, 3, 20, tzinfo=UTC)


@pytest.fixture(scope="module")
def snapshot_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("worker") / "records.parquet"
    write_records(path, synthetic_month(80, seed=3, month=datetime(2026, 3, 1, tzinfo=UTC), whole_call=True))
    return path


@pytest.fixture(scope="module")
def snapshots(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Snapshots]:
    store = open_store(str(tmp_path_factory.mktemp("store") / "events.duckdb"))
    costs = cost_card(Path("costs-informative.toml"))
    prices = price_card(Path("plan-call-minute.toml"))
    assert prices is not None
    made = Snapshots(store, ServedOptions(costs, prices, "test store", refresh=timedelta(seconds=60)))
    yield made
    made.shutdown()
    store.close()


def test_a_board_rated_in_a_worker_is_the_board_rated_here(snapshots: Snapshots, snapshot_file: Path) -> None:
    options = snapshots.options
    parts = snapshots._in_worker(
        "rating",
        rated_board,
        snapshot_file,
        options.costs,
        options.prices,
        ledger=None,
        guards=None,
        source="test",
        as_of=AS_OF,
    )()
    assert set(parts) and all(isinstance(b, bytes) for b in parts.values()), "each part pickled apart"
    there = board_of(parts)
    here = load(snapshot_file, options.costs, options.prices, source="test", as_of=AS_OF, collect=False)
    here.jobs.shutdown()
    there.jobs.shutdown()
    for query in (CallsQuery(), CallsQuery(sort="margin", descending=True), CallsQuery(loss=True, page=2)):
        assert there.calls.select(query) == here.calls.select(query), query
    assert there.calls.totals == here.calls.totals
    assert there.customers.rows == here.customers.rows and there.providers.rows == here.providers.rows
    assert there.usage == here.usage and there.choices == here.choices
    key = next(iter(here.records._calls))
    assert there.records.of_call(key) == here.records.of_call(key)
    assert there.scan == snapshot_file and there.folder is None and there.served is None


def test_jobs_run_in_another_process_and_answer_as_here(snapshots: Snapshots, snapshot_file: Path) -> None:
    assert snapshots._in_worker("jobs", os.getpid)() != os.getpid()
    options = snapshots.options
    customer = "blue-bank"
    there = snapshots._in_worker(
        "jobs",
        customer_invoices_of_file,
        snapshot_file,
        options.prices,
        customer,
        ["2026-03"],
        ledger=None,
        guards=None,
        now=AS_OF,
    )()
    records = CallRecords(snapshot_file).of_customer(customer)
    assert records, "the customer has calls in the file"
    here = customer_invoices(records, options.prices, customer, ["2026-03"], now=AS_OF)
    assert there == here
    assert there["2026-03"].total == here["2026-03"].total


def test_the_customer_calls_worked_out_in_a_worker_are_the_calls_worked_out_here(
    snapshots: Snapshots, snapshot_file: Path
) -> None:
    """The customer pages' calls of each invoice come from the worker with the invoices, in chunks: once
    unpickled they are what the customer pages work out of the same invoice here, row for row."""
    options = snapshots.options
    customer = "blue-bank"
    invoices, calls = snapshots._in_worker(
        "jobs",
        invoices_and_calls,
        snapshot_file,
        options.prices,
        customer,
        ["2026-03"],
        ledger=None,
        guards=None,
        now=AS_OF,
        calls=True,
    )()
    # the invoices as the server keeps them: each line's calls packed (no object per record for its cycle
    # collector to walk), equal to the invoice worked out here and rendered, exported and totalled the same
    records = CallRecords(snapshot_file).of_customer(customer)
    here = customer_invoices(records, options.prices, customer, ["2026-03"], now=AS_OF)
    kept, whole = invoices["2026-03"], here["2026-03"]
    assert kept == whole and any(line.calls for line in kept.lines)
    assert all(isinstance(line.calls, PackedCalls) for line in kept.lines if line.calls)
    assert call_count(kept) == call_count(whole) and calls_csv(kept) == calls_csv(whole)
    assert render(kept, "json") == render(whole, "json") and render(kept, "html") == render(whole, "html")
    assert [line.actual_base for line in kept.lines] == [line.actual_base for line in whole.lines]
    meters, chunks = calls["2026-03"]
    rows = [row for chunk in chunks for row in pickle.loads(chunk)]
    assert len(chunks) == -(-len(rows) // CALLS_CHUNK) and rows, "every call, in chunks"
    assert (meters, rows) == calls_of(invoices["2026-03"])
    assert (meters, rows) == calls_of(here["2026-03"])
    # as the server keeps them: plain values the cycle collector stops tracking once they are unpickled, so
    # that a large month's calls never make its full collections (every thread stopped) walk them
    done = types.SimpleNamespace(result=invoices)
    kept: dict[str, Any] = {}
    work = _calls_of(done, {customer: calls}, customer, lambda invoice, worked: kept.update(rows=worked[1]))
    assert work() == 1 and kept["rows"] == rows
    assert not any(gc.is_tracked(row) for row in kept["rows"]), "kept calls tracked by the cycle collector"


def test_a_stopping_server_ends_the_job_waiting_for_its_worker(tmp_path: Path) -> None:
    """A server stopped while a worker process runs a job (a rating of minutes at 10 million events) kills
    that worker: the job waiting for its answer ends at once saying so (not that its worker ran out of
    memory), and a job that begins after the stop starts no new worker process to wait for (one did: an
    in-process server's shutdown, as the browser tests have, could then wait minutes for a what-if run)."""
    import threading
    import time

    store = open_store(str(tmp_path / "events.duckdb"))
    costs = cost_card(Path("costs-informative.toml"))
    prices = price_card(Path("plan-call-minute.toml"))
    assert prices is not None
    made = Snapshots(store, ServedOptions(costs, prices, "test store", refresh=timedelta(seconds=60)))
    outcome: list[BaseException | float] = []

    def run() -> None:
        try:
            outcome.append(made._in_worker("jobs", time.sleep, 600)())
        except BaseException as error:  # what the job's thread is left with
            outcome.append(error)

    waiting = threading.Thread(target=run, daemon=True)
    waiting.start()
    deadline = time.monotonic() + 60
    while not getattr(made._workers.get("jobs"), "_processes", None):  # the worker process has the job
        assert time.monotonic() < deadline, "the job never reached a worker"
        time.sleep(0.05)
    time.sleep(1)
    crashed: list[threading.ExceptHookArgs] = []
    hook, threading.excepthook = threading.excepthook, crashed.append
    try:
        stopped = time.monotonic()
        made.shutdown()
        waiting.join(10)
        assert not waiting.is_alive(), "the job still waits for a worker the server killed"
        assert time.monotonic() - stopped < 10
        assert len(outcome) == 1 and isinstance(outcome[0], RuntimeError)
        assert "the server stopped" in str(outcome[0])
        began = time.monotonic()
        with pytest.raises(RuntimeError, match="the server stopped"):
            made._in_worker("jobs", time.sleep, 600)()
        assert time.monotonic() - began < 5 and not made._workers, "no worker started after the stop"
        time.sleep(1)  # the pools' own threads wind down
        assert not crashed, [(c.thread, c.exc_type) for c in crashed]
    finally:
        threading.excepthook = hook
        store.close()
