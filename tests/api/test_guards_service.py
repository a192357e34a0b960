"""Plausibility guards in the running service (issue 12, item 4), on a real ``talktime serve`` over DuckDB
and over PostgreSQL: a runaway call ending in 2035 is kept but held back from ``GET /v1/usage`` and listed
with its reason; a person accepts it (it counts as it is) or corrects it (it counts with the corrected
length); a rebuild of the records gives the same held and accepted state.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.served import TALKTIME, make_key, serve, talktime
from support.events import record_event
from support.fixtures import postgres_server, postgres_url  # noqa: F401  (fixtures)

TENANT = "acme-platform"
RUNAWAY_REASON = "call-too-long: 315532800 s (87648 h) from start to end, over the 24 h limit"
#: The records start in March 2025, more than the default 400 days before the server receives them: a
#: backfill, so this tenant allows ten years; the other tenant allows calls of any length.
GUARDS = """
max_past_days = 3650

[tenants.other-platform]
max_call_hours = 1000000
"""


@pytest.fixture(params=["duckdb", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "duckdb":
        yield str(tmp_path / "events.duckdb")
    else:
        yield request.getfixturevalue("postgres_server").create_database()


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def usage(url: str, key: str) -> dict[str, Any]:
    answer = httpx.get(f"{url}/v1/usage", params={"policy": "twilio-voice"}, headers=bearer(key), timeout=60)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def state(url: str, key: str) -> tuple[dict[str, Any], dict[str, Any]]:
    flagged = httpx.get(f"{url}/v1/flagged", headers=bearer(key), timeout=60)
    assert flagged.status_code == 200, flagged.text
    return usage(url, key), flagged.json()


def cli(*args: str, key: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TALKTIME_KEY": key}
    return subprocess.run([*TALKTIME, *args], capture_output=True, text=True, timeout=120, env=env)


def rebuilt(store: str, tmp_path: Path, guards: Path, key: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The usage and flagged answers after ``talktime records rebuild`` (the server stopped for DuckDB)."""
    assert "rebuilt 4 records" in talktime("records", "rebuild", "--store", store)
    with serve(store, tmp_path / "again.log", "--guards", str(guards)) as again:
        return state(again.url, key)


def test_a_runaway_call_is_held_back_until_accepted_or_corrected(store: str, tmp_path: Path) -> None:
    guards = tmp_path / "guards.toml"
    guards.write_text(GUARDS, encoding="utf-8")
    key = make_key(store, TENANT)
    other = make_key(store, "other-platform")
    events = [
        record_event("normal", provider="twilio"),
        record_event("runaway", provider="twilio", ended_at="2035-03-01T10:00:00Z"),
    ]
    with serve(store, tmp_path / "serve.log", "--guards", str(guards)) as served:
        for who in (key, other):
            sent = httpx.post(f"{served.url}/v1/events", json=events, headers=bearer(who), timeout=60)
            assert sent.status_code == 200 and sent.json()["accepted"] == 2, sent.text
        before, flagged = state(served.url, key)
        # The runaway is kept but left out: 47.3 s answered of the normal call alone, 60 s billed.
        assert before["totals"]["records"] == 1
        assert before["totals"]["actual_seconds"] == "47.3"
        assert before["totals"]["billable_seconds"] == "60"
        assert before["held"] == [{"id": "runaway", "reasons": [RUNAWAY_REASON]}]
        assert [(h["id"], h["reasons"], h["accepted"]) for h in flagged["held"]] == [
            ("runaway", [RUNAWAY_REASON], None)
        ]
        assert flagged["accepted"] == []
        # The other tenant's guards allow calls of any length: both of its records count.
        assert usage(served.url, other)["totals"]["records"] == 2
        assert usage(served.url, other)["held"] == []
        # The record's own page says it is held, and why, beside its (implausible) billable seconds.
        shown = httpx.get(
            f"{served.url}/v1/records/runaway",
            params={"policy": "twilio-voice"},
            headers=bearer(key),
            timeout=60,
        ).json()
        assert (shown["held"], shown["reasons"]) == (True, [RUNAWAY_REASON])
        normal = httpx.get(
            f"{served.url}/v1/records/normal",
            params={"policy": "twilio-voice"},
            headers=bearer(key),
            timeout=60,
        ).json()
        assert (normal["held"], normal["reasons"]) == (False, [])
    assert rebuilt(store, tmp_path, guards, key) == (before, flagged)

    with serve(store, tmp_path / "serve2.log", "--guards", str(guards)) as served:
        answer = httpx.post(
            f"{served.url}/v1/reviews/runaway",
            json={"action": "accept", "note": "a conference bridge, really"},
            headers=bearer(key),
            timeout=60,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["held"] is False and answer.json()["reasons"] == [RUNAWAY_REASON]
        shown = httpx.get(
            f"{served.url}/v1/records/runaway",
            params={"policy": "twilio-voice"},
            headers=bearer(key),
            timeout=60,
        ).json()
        assert (shown["held"], shown["reasons"]) == (False, [RUNAWAY_REASON])  # accepted: counted
        accepted, flagged = state(served.url, key)
        # Counted as it is: 315,532,795 s answered (10:00:05 to ten years later), 60/60 up.
        assert accepted["totals"]["records"] == 2
        assert accepted["totals"]["actual_seconds"] == "315532842.3"
        assert accepted["totals"]["billable_seconds"] == "315532860"
        assert accepted["held"] == [] and flagged["held"] == []
        assert [(a["id"], a["accepted"]["note"]) for a in flagged["accepted"]] == [
            ("runaway", "a conference bridge, really")
        ]
        again = httpx.post(
            f"{served.url}/v1/reviews/normal",
            json={"action": "accept"},
            headers=bearer(key),
            timeout=60,
        )
        assert again.status_code == 409, "a plausible record has nothing to accept"
    assert rebuilt(store, tmp_path, guards, key) == (accepted, flagged)

    with serve(store, tmp_path / "serve3.log", "--guards", str(guards)) as served:
        # The CLI through the server holding the DuckDB file; on PostgreSQL straight to the database.
        done = cli(
            "records",
            "correct",
            "runaway",
            "--store",
            store,
            "--tenant",
            TENANT,
            "--set",
            "ended_at=2025-03-01T10:10:00Z",
            "--note",
            "the PBX clock jumped",
            "--guards",
            str(guards),
            key=key,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines()[0] == "record runaway: corrected; counted"
        corrected, flagged = state(served.url, key)
        # 595 s answered now (10:00:05 to 10:10:00), billed 600 s.
        assert corrected["totals"]["records"] == 2
        assert corrected["totals"]["actual_seconds"] == "642.3"
        assert corrected["totals"]["billable_seconds"] == "660"
        assert corrected["held"] == [] and flagged == {"tenant": TENANT, "held": [], "accepted": []}
        record = httpx.get(
            f"{served.url}/v1/records/runaway",
            params={"policy": "twilio-voice"},
            headers=bearer(key),
            timeout=60,
        ).json()
        assert record["fields"]["ended_at"] == "2025-03-01T10:10:00+00:00"
        (flag,) = record["flags"]
        assert flag.startswith(
            "corrected: ended_at 2035-03-01T10:00:00+00:00 -> 2025-03-01T10:10:00+00:00 at "
        )
        assert flag.endswith(" (the PBX clock jumped)")
        listed = cli(
            "records", "flagged", "--store", store, "--tenant", TENANT, "--guards", str(guards), key=key
        )
        assert listed.returncode == 0, listed.stderr
        assert listed.stdout.splitlines()[0] == "0 record(s) held back, 0 accepted"
    assert rebuilt(store, tmp_path, guards, key) == (corrected, flagged)
    assert json.loads(json.dumps(corrected)) == corrected
