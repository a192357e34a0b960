"""The commands that read a tenant's records from a store (``invoice --store``, ``invoice finalize --store``,
``margin --store --guards``, ``export invoice-lines --store``) read the tenant's acceptances with them
(``talktime.app.history``), so a flagged record a person accepted through the API counts on the command
line exactly as ``GET /v1/invoices`` counts it: the same total, a month a person accepted whole finalises
without ``--allow-flagged``, and the margin marks HELD only what the invoice holds back; on DuckDB and
PostgreSQL. ``GET /v1/acceptances`` answers the same acceptances (a customer-scoped key: its customer's)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner, Result

from app.test_review import PRICES, TENANT
from support.events import record_event
from support.fixtures import postgres_server  # noqa: F401  (fixture)
from talktime.api import create_app
from talktime.app import service
from talktime.cli.main import app
from talktime.io.ratecards import load_price_card
from talktime.store import hash_key, open_store

#: Last month's second day: the commands judge a month as of its end, the API as of each record's first
#: receipt (now), so the calls are recent enough for both (the guards hold back a start 400 days back).
_LAST = (datetime.now(UTC).replace(day=1) - timedelta(days=1)).replace(day=2, hour=10, minute=0, second=0)
PERIOD = f"{_LAST:%Y-%m}"
MONTH = ("--customer", "acme", "--period", PERIOD, "--prices", str(PRICES))
MARGIN = ("--costs", "costs-informative.toml", "--prices", str(PRICES), "--by", "session", "--format", "json")


@pytest.fixture(params=["duckdb", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store (closed: the commands open it themselves) with acme's last month: two plain calls, two
    "ending" in 2035 (held back: over the 24 h limit), one of nobody's; a tenant key and a customer key."""
    if request.param == "duckdb":
        target = str(tmp_path / "events.duckdb")
    else:
        target = request.getfixturevalue("postgres_server").create_database()
    opened = open_store(target)
    try:
        opened.add_key(TENANT, hash_key("key-a"))
        opened.add_key(TENANT, hash_key("key-acme"), customer="acme")
        times = {"started_at": _at(0), "answered_at": _at(5)}
        events = [
            record_event("r1", provider="twilio", **times, ended_at=_at(52)),
            record_event("r2", provider="twilio", **times, ended_at=_at(180)),
            record_event("runaway-1", provider="twilio", **times, ended_at="2035-03-01T10:00:00Z"),
            record_event("runaway-2", provider="twilio", **times, ended_at="2035-03-01T11:00:00Z"),
            record_event("nobody", customer="", provider="twilio", **times, ended_at="2035-03-01T11:00:00Z"),
        ]
        assert service.ingest(opened, TENANT, events).rejected == 0
    finally:
        opened.close()
    yield target


def _at(seconds: int) -> str:
    return (_LAST + timedelta(seconds=seconds)).isoformat()


def _api(target: str, method: str, route: str, key: str = "key-a", **kwargs: object) -> object:
    """One request to the HTTP API over the store, the store closed again after."""
    opened = open_store(target)
    try:
        client = TestClient(create_app(opened, prices=load_price_card(PRICES)))
        answer = client.request(method, route, headers={"Authorization": f"Bearer {key}"}, **kwargs)  # type: ignore[arg-type]
        assert answer.status_code == 200, answer.text
        return answer.json()
    finally:
        opened.close()


def _api_total(target: str) -> Decimal:
    found = _api(target, "GET", "/v1/invoices", params={"customer": "acme", "period": PERIOD})
    assert isinstance(found, dict)
    return Decimal(found["total"])


def _accept(target: str, record_id: str) -> None:
    done = _api(target, "POST", f"/v1/reviews/{record_id}", json={"action": "accept", "note": "a bridge"})
    assert isinstance(done, dict) and done["held"] is False


def _run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def _cli_invoice(target: str) -> tuple[Decimal, list[str]]:
    done = _run("invoice", *MONTH, "--store", target, "--tenant", TENANT)
    assert done.exit_code == 0, done.output
    invoice = json.loads(done.stdout)
    return Decimal(invoice["total"]), [held["id"] for held in invoice.get("held", [])]


def _held_in_margin(target: str, guards: Path) -> list[str]:
    done = _run("margin", *MARGIN, "--store", target, "--tenant", TENANT, "--guards", str(guards))
    assert done.exit_code == 0, done.output
    return list(json.loads(done.stdout).get("held_records", []))


def test_the_commands_count_an_accepted_record_as_the_api_invoice_does(store: str, tmp_path: Path) -> None:
    guards = tmp_path / "guards.toml"
    guards.write_text("max_call_hours = 24\n", encoding="utf-8")
    before, held = _cli_invoice(store)
    assert held == ["runaway-1", "runaway-2"] and before == _api_total(store)
    assert _held_in_margin(store, guards) == ["nobody", "runaway-1", "runaway-2"]

    _accept(store, "runaway-1")
    after, held = _cli_invoice(store)
    assert held == ["runaway-2"], "the accepted record is billed, the other still held"
    assert after == _api_total(store) and after > before
    assert _held_in_margin(store, guards) == ["nobody", "runaway-2"], "HELD only what the invoice holds"
    lines = _run(
        *("export", "invoice-lines", "--period", PERIOD, "--prices", str(PRICES), "--customer", "acme"),
        *("--store", store, "--tenant", TENANT, "--out", str(tmp_path / "lines.csv")),
    )
    assert lines.exit_code == 0, lines.output
    rows = list(csv.DictReader(io.StringIO((tmp_path / "lines.csv").read_text(encoding="utf-8"))))
    assert sum(Decimal(row["amount"]) for row in rows) == after, "the exported lines add up to the total"


def test_a_month_whose_flagged_records_were_all_accepted_finalises_without_allow_flagged(
    store: str, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger"
    finalize = ("invoice", "finalize", *MONTH, "--store", store, "--tenant", TENANT, "--ledger", str(ledger))
    _accept(store, "runaway-1")
    refused = _run(*finalize, "--at", datetime.now(UTC).isoformat())
    assert refused.exit_code == 2 and "runaway-2" in refused.output and "runaway-1" not in refused.output
    _accept(store, "runaway-2")
    done = _run(*finalize, "--at", datetime.now(UTC).isoformat())
    assert done.exit_code == 0, done.output
    assert f"total {_api_total(store)} USD" in done.stdout


def test_the_acceptances_route_answers_what_the_invoices_count(store: str) -> None:
    _accept(store, "runaway-1")
    found = _api(store, "GET", "/v1/acceptances")
    assert isinstance(found, dict)
    (item,) = found["accepted"]
    assert (found["tenant"], item["id"]) == (TENANT, "runaway-1")
    assert item["reasons"][0].startswith("call-too-long: ")
    mine = _api(store, "GET", "/v1/acceptances", key="key-acme")
    assert mine == found, "a customer key reads its own customer's acceptances"
    opened = open_store(store)
    try:
        client = TestClient(create_app(opened))
        other = client.get(
            "/v1/acceptances", params={"customer": "other"}, headers={"Authorization": "Bearer key-acme"}
        )
        assert other.status_code == 403 and "'acme'" in other.text
        assert client.get("/v1/acceptances").status_code == 401
    finally:
        opened.close()
