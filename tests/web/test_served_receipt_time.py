"""The two guards worded in time (``max_future_hours``, ``max_past_days``) judge a stored record as of when
the store first received it in every face, so the same records give the same month on each: ``GET
/v1/invoices`` of a real ``talktime serve`` on loopback, the served dashboard's invoices page (Debian's
chromium), ``talktime invoice --store`` through that server (DuckDB: the server holds the file) and on the
store itself, and ``talktime margin --store --guards``'s HELD marks; on DuckDB and PostgreSQL (issue #12,
item 4).

Last month's calls of one customer, each received by the store a few minutes after it started, except
``sent-early``, received two days before its start (a scheduled call announced ahead): at receipt it started
more than 24 h ahead, so it is held back everywhere, though its start has long passed when the month is
billed. With ``max_past_days = 2``, the calls received on time are counted everywhere, though each started
more than two days before the month's end. Before, the command line and the dashboard judged both as of the
month's end: they billed ``sent-early`` and held the others back, and their totals differed from the API's.

The receipt times are the store's own columns (``events.received_at``, ``records.first_received``) set to
when the events would have been received: the tests cannot wait two days; every read is the real one.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from support.events import record_event
from support.fixtures import postgres_server  # noqa: F401  (fixture)
from talktime.app import service
from talktime.app.keys import create_key
from talktime.cli.main import app
from talktime.core.invoicing.periods import period_label
from talktime.io.ratecards import load_price_card
from talktime.store import open_store
from web.kit import (
    COSTS,
    PRICES,
    READY,
    api_json,
    free_port,
    served_invoice_total,
    sign_in,
    start_serve,
)

TENANT = "acme-platform"
CUSTOMER = "acme"
EARLY = "sent-early"
#: Last month's first day: every call of it has ended, and the month has too.
_FIRST = (
    datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
).replace(day=1)
#: id -> (start, seconds long, received this long after the start; negative: before it)
CALLS = {
    "on-time-1": (_FIRST + timedelta(days=2, hours=10), 240, timedelta(minutes=3)),
    "on-time-2": (_FIRST + timedelta(days=9, hours=10), 180, timedelta(minutes=2)),
    EARLY: (_FIRST + timedelta(days=12, hours=10), 300, -timedelta(hours=48)),
}
GUARDS = {"future": "max_future_hours = 24\n", "past": "max_past_days = 2\n"}


@pytest.fixture(params=["duckdb", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store holding the calls, each received when :data:`CALLS` says, and a key of the tenant's."""
    if request.param == "duckdb":
        target = str(tmp_path / "events.duckdb")
    else:
        target = request.getfixturevalue("postgres_server").create_database()
    opened = open_store(target)
    try:
        events = [
            record_event(
                rid,
                customer=CUSTOMER,
                kind="sip",  # the price card's call minutes
                provider="twilio",
                started_at=start.isoformat(),
                answered_at=(start + timedelta(seconds=4)).isoformat(),
                ended_at=(start + timedelta(seconds=seconds)).isoformat(),
            )
            for rid, (start, seconds, _) in CALLS.items()
        ]
        assert service.ingest(opened, TENANT, events).rejected == 0
    finally:
        opened.close()
    _received(target, {rid: start + after for rid, (start, _, after) in CALLS.items()})
    yield target


def _received(target: str, moments: dict[str, datetime]) -> None:
    """Set when the store received each record's one event (the event's and the record's columns)."""
    postgres = target.startswith("postgres")
    mark = "%s" if postgres else "?"
    statements = [
        f"UPDATE events SET received_at = {mark} WHERE tenant = {mark} AND id = {mark}",
        f"UPDATE records SET first_received = {mark}, last_received = {mark} "
        f"WHERE tenant = {mark} AND id = {mark}",
    ]
    if postgres:
        import psycopg

        with psycopg.connect(target) as connection, connection.cursor() as cursor:
            for rid, at in moments.items():
                cursor.execute(statements[0], [at, TENANT, f"ev-{rid}"])
                cursor.execute(statements[1], [at, at, TENANT, rid])
                assert cursor.rowcount == 1
    else:
        import duckdb

        database = duckdb.connect(target)
        try:
            for rid, at in moments.items():
                database.execute(statements[0], [at, TENANT, f"ev-{rid}"])
                database.execute(statements[1], [at, at, TENANT, rid])
        finally:
            database.close()


def _serve(store: str, folder: Path, *options: str) -> tuple[subprocess.Popen[bytes], str]:
    """``talktime serve`` on ``store`` (kit's :func:`~web.kit.start_serve`, which keeps its log beside a
    store file; a PostgreSQL store has none: the log goes into ``folder``)."""
    if not store.startswith("postgres"):
        server, url, _ = start_serve(store, *options)
        return server, url
    port = free_port()
    command = [sys.executable, "-m", "talktime", "serve", "--store", store, "--port", str(port)]
    command += ["--costs", COSTS, "--prices", PRICES, *options]
    log = folder / "serve.log"
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"talktime serve stopped: {log.read_text()}")
        try:
            with urllib.request.urlopen(url + "/openapi.json", timeout=2):
                return server, url
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("talktime serve did not answer in time")


def _run(*args: str, key: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), env={"TALKTIME_KEY": key} if key else None)


def _cli_invoice(target: str, guards: Path, *more: str, key: str | None = None) -> dict[str, Any]:
    month = ("--customer", CUSTOMER, "--period", _period(), "--prices", PRICES, "--guards", str(guards))
    done = _run("invoice", *month, "--store", target, "--tenant", TENANT, *more, key=key)
    assert done.exit_code == 0, done.output
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def _margin_held(target: str, guards: Path, key: str | None = None) -> list[str]:
    done = _run(
        *("margin", "--costs", COSTS, "--prices", PRICES, "--by", "session", "--format", "json"),
        *("--store", target, "--tenant", TENANT, "--guards", str(guards)),
        key=key,
    )
    assert done.exit_code == 0, done.output
    return list(json.loads(done.stdout).get("held_records", []))


def _period() -> str:
    card = load_price_card(Path(str(files("talktime.ratecards").joinpath(PRICES))))
    return period_label(CALLS[EARLY][0], card.customer(CUSTOMER).timezone)


def _held(invoice: dict[str, Any]) -> list[str]:
    return [held["id"] for held in invoice.get("held", [])]


@pytest.mark.parametrize("limit", ["future", "past"])
def test_every_face_judges_a_stored_record_as_of_its_first_receipt(
    store: str, limit: str, tmp_path: Path, page: Any
) -> None:
    guards = tmp_path / "guards.toml"
    guards.write_text(GUARDS[limit], encoding="utf-8")
    opened = open_store(store)
    try:
        key = create_key(opened, TENANT).key
    finally:
        opened.close()
    period = _period()
    totals: dict[str, Decimal] = {}
    server, url = _serve(store, tmp_path, "--guards", str(guards))
    try:
        api = api_json(url, f"/v1/invoices?customer={CUSTOMER}&period={period}", key)
        totals["GET /v1/invoices"] = Decimal(api["total"])
        assert _held(api) == [EARLY], "received 48 h before its start: held back as of its receipt"
        assert api["held"][0]["reasons"][0].startswith("starts-in-future: ")
        sign_in(page, url, key, READY)
        totals["the served invoices page"] = served_invoice_total(page, url, CUSTOMER, period)
        shown = page.locator(f"article#inv-{CUSTOMER}-{period}").inner_text()
        assert EARLY in shown and "on-time" not in shown, "the page names the held record, only it"
        if not store.startswith("postgres"):  # the server holds the DuckDB file: the CLI reads through it
            through = _cli_invoice(store, guards, key=key)
            totals["talktime invoice through the server"] = Decimal(through["total"])
            assert _held(through) == [EARLY]
            assert _margin_held(store, guards, key=key) == [EARLY]
    finally:
        server.terminate()
        server.wait(timeout=20)
    direct = _cli_invoice(store, guards)
    totals["talktime invoice --store"] = Decimal(direct["total"])
    assert _held(direct) == [EARLY]
    assert _margin_held(store, guards) == [EARLY], "margin marks HELD what the invoices hold back"
    billed = Decimal(_cli_invoice(store, guards, "--allow-flagged")["total"])
    assert billed > totals["GET /v1/invoices"], "the held record bills something: the totals would show it"
    assert len(set(totals.values())) == 1, totals
