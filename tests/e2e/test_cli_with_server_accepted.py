"""A command beside a running server counts what a person accepted there: with the DuckDB store held by
``talktime serve``, ``invoice --store`` and ``margin --store --guards`` read the tenant's acceptances
through the server (``GET /v1/acceptances``) with its records (``GET /v1/records``), so a record accepted
with ``POST /v1/reviews/ID`` is billed as ``GET /v1/invoices`` bills it and marked HELD nowhere."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from app.test_history_accepted import MONTH, PERIOD, PRICES, TENANT, _at
from e2e.test_cli_with_server import cli
from e2e.test_ingest_durability import BATCH, server, talktime
from support.events import record_event

pytestmark = pytest.mark.slow
MARGIN = ("--costs", "costs-informative.toml", "--prices", str(PRICES), "--by", "session", "--format", "json")


def test_commands_beside_the_server_count_what_a_person_accepted_there(tmp_path: Path) -> None:
    store = tmp_path / "events.duckdb"
    key = talktime("keys", "create", TENANT, "--store", str(store)).strip().splitlines()[-1]
    guards = tmp_path / "guards.toml"  # the server's (tests/e2e's server helper allows a backfill)
    guards.write_text("max_past_days = 3650\n", encoding="utf-8")
    times = {"started_at": _at(0), "answered_at": _at(5)}
    events = [
        record_event("r1", provider="twilio", **times, ended_at=_at(52)),
        record_event("runaway-1", provider="twilio", **times, ended_at="2035-03-01T10:00:00Z"),
        record_event("runaway-2", provider="twilio", **times, ended_at="2035-03-01T11:00:00Z"),
    ]
    auth = {"Authorization": f"Bearer {key}"}
    where = ("--store", str(store), "--tenant", TENANT)
    with server(store, "--prices", str(PRICES)) as (_, base):
        body = httpx.Request("POST", "/", json=events).content
        sent = httpx.post(base + "/v1/events", content=body, headers={**auth, "Content-Type": BATCH})
        assert sent.json()["accepted"] == 3
        accepted = httpx.post(base + "/v1/reviews/runaway-1", json={"action": "accept"}, headers=auth)
        assert accepted.status_code == 200 and accepted.json()["held"] is False
        api = httpx.get(base + "/v1/invoices", params={"customer": "acme", "period": PERIOD}, headers=auth)
        assert api.status_code == 200, api.text
        assert [held["id"] for held in api.json()["held"]] == ["runaway-2"]

        invoice = cli("invoice", *MONTH, *where, "--guards", str(guards), key=key)
        assert invoice.returncode == 0, invoice.stderr
        drafted = json.loads(invoice.stdout)
        assert Decimal(drafted["total"]) == Decimal(api.json()["total"])
        assert [held["id"] for held in drafted["held"]] == ["runaway-2"]
        margin = cli("margin", *MARGIN, *where, "--guards", str(guards), key=key)
        assert margin.returncode == 0, margin.stderr
        assert json.loads(margin.stdout)["held_records"] == ["runaway-2"]
