"""The CLI and a running server on one DuckDB store at once: commands given --store read the records
through the server that holds the file (with the tenant's key in TALKTIME_KEY), and answer as from a file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from e2e.test_history_from_store import _calls  # the same calls the store-reading suite uses
from e2e.test_ingest_durability import BATCH, server, talktime
from support.events import event
from talktime.core.records import record_to_row
from talktime.io.records_io import write_records

pytestmark = pytest.mark.slow
MARGIN = ["--costs", "costs-informative.toml", "--prices", "plan-call-minute.toml", "--format", "json"]


def cli(*args: str, key: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TALKTIME_KEY"}
    if key is not None:
        env["TALKTIME_KEY"] = key
    return subprocess.run(
        [sys.executable, "-m", "talktime", *args], capture_output=True, text=True, env=env, check=False
    )


def test_commands_read_the_store_through_the_server_that_holds_it(tmp_path: Path) -> None:
    store = tmp_path / "events.duckdb"
    key = talktime("keys", "create", "t1", "--store", str(store)).strip().splitlines()[-1]
    other = talktime("keys", "create", "t2", "--store", str(store)).strip().splitlines()[-1]
    calls = _calls()
    records = tmp_path / "records.csv"
    write_records(records, calls)
    events = [
        {
            "specversion": "1.0",
            "id": f"e-{r.id}",
            "source": "test",
            "type": "talktime.record",
            "data": {k: v for k, v in record_to_row(r).items() if v != ""},
        }
        for r in calls
    ]
    with server(store) as (_, base):
        headers = {"Authorization": f"Bearer {key}", "Content-Type": BATCH}
        body = httpx.Request("POST", "/", json=events).content
        assert httpx.post(base + "/v1/events", content=body, headers=headers).json()["accepted"] == 8
        from_file = cli("margin", "--records", str(records), *MARGIN)
        through = cli("margin", "--store", str(store), "--tenant", "t1", *MARGIN, key=key)
        assert through.returncode == 0, through.stderr
        assert json.loads(through.stdout) == json.loads(from_file.stdout)

        no_key = cli("margin", "--store", str(store), "--tenant", "t1", *MARGIN)
        assert no_key.returncode == 2
        assert "held by talktime serve" in no_key.stderr and "TALKTIME_KEY" in no_key.stderr
        wrong = cli("margin", "--store", str(store), "--tenant", "t1", *MARGIN, key=other)
        assert wrong.returncode == 2 and "'t2'" in wrong.stderr
        rebuild = cli("records", "rebuild", "--store", str(store))
        assert rebuild.returncode == 2 and "stop it to rebuild" in rebuild.stderr

        live = [event("talktime.connection.opened", "live-call", data={"customer": "blue-bank"})]
        live_body = httpx.Request("POST", "/", json=live).content
        assert httpx.post(base + "/v1/events", content=live_body, headers=headers).json()["accepted"] == 1
        listed = httpx.get(base + "/v1/records", headers={"Authorization": f"Bearer {key}"})
        lines = [json.loads(line) for line in listed.text.splitlines()]
        assert [line["id"] for line in lines] == sorted([r.id for r in calls] + ["live-call"])
        assert listed.headers["X-Talktime-Tenant"] == "t1"
    # killed (the helper's SIGKILL), the server left its note: a note whose process is gone is ignored
    assert (tmp_path / "events.duckdb.serve.json").exists()
    after = cli(
        "invoice",
        "--customer",
        "blue-bank",
        "--period",
        "2026-10",
        "--prices",
        "plan-call-minute.toml",
        "--store",
        str(store),
        "--tenant",
        "t1",
    )  # the file is free: read directly
    assert after.returncode == 0, after.stderr
    rebuilt = cli("records", "rebuild", "--store", str(store))
    assert rebuilt.returncode == 0 and "rebuilt 9 records" in rebuilt.stdout
