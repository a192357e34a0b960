"""The OpenAPI contract, held to the server by Schemathesis: a real ``talktime serve`` on loopback (embedded
store, a tenant key and an admin key made by ``talktime keys create``, a price card), every route, every
check Schemathesis has, and no failure.

Bounded: a fixed number of examples per route and three phases (examples, coverage, fuzzing). The stateful
phase is left out on purpose: it follows ``GET /v1/admin/keys`` to ``POST .../revoke`` and revokes the
very keys the run authenticates with (the revocation working, in effect), after which every answer is 401.

The same run checks the server's log: a start-up line, an access line per request, and no API key in it,
though thousands of requests carried one and the admin route answered new ones.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from api.served import make_key, serve
from support.events import event, record_event

HERE = Path(__file__).parent
PRICES = Path(__file__).parents[2] / "src/talktime/ratecards/plan-call-minute.toml"
MAX_EXAMPLES = 25
KEY_SHAPE = re.compile(r"tt_[A-Za-z0-9_-]{40,}")


def _seed(url: str, key: str) -> None:
    """Usage the read routes can find: two answered legs and an LLM request for customer acme."""
    batch = [
        record_event("leg-1"),
        record_event("leg-2"),
        event("talktime.connection.opened", "llm-1", data={"customer": "acme", "kind": "llm"}),
        event("talktime.tokens", "llm-1", data={"input_tokens": 900, "cached_input_tokens": 100}),
        event("talktime.connection.closed", "llm-1", "2025-03-01T10:00:02Z"),
    ]
    answer = httpx.post(
        f"{url}/v1/events",
        content=json.dumps(batch),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/cloudevents-batch+json"},
    )
    assert answer.status_code == 200 and answer.json()["accepted"] == 5, answer.text


def _config(path: Path, tenant_key: str, admin_key: str) -> Path:
    path.write_text(
        f"""
headers = {{ Authorization = "Bearer {tenant_key}" }}

[generation]
max-examples = {MAX_EXAMPLES}

[phases.stateful]
enabled = false

# every check Schemathesis has; a request refused for its size (413) is refused too, and a 5xx never is
[checks]
not_a_server_error.enabled = true
status_code_conformance.enabled = true
content_type_conformance.enabled = true
response_headers_conformance.enabled = true
response_schema_conformance.enabled = true
positive_data_acceptance.enabled = true
negative_data_rejection.enabled = true
negative_data_rejection.expected-statuses = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]
missing_required_header.enabled = true
unsupported_method.enabled = true
allow_header_conformance.enabled = true
use_after_free.enabled = true
ensure_resource_availability.enabled = true
ignored_auth.enabled = true
object_level_authorization.enabled = true

# a batch is judged per event (see schemathesis_hooks.each_event_as_the_contract_says, which checks it)
# and its coverage phase sends only the invalid variants (about 9,000 requests with the valid ones too);
# valid events come from the examples and fuzzing phases
[[operations]]
include-path = "/v1/events"
include-method = "POST"
checks.negative_data_rejection.enabled = false
phases.coverage.generation.mode = "negative"

# customer= is optional (a customer-scoped key reads its own) but the run's tenant key must name one: a
# request without it is schema-valid and answers 422 naming the field (test_invoice_customer_default.py)
[[operations]]
include-path = "/v1/invoices"
include-method = "GET"
checks.positive_data_acceptance.expected-statuses = [200, 401, 403, 404, 409, 422]

[[operations]]
include-path-regex = "^/v1/admin/"
headers = {{ Authorization = "Bearer {admin_key}" }}
""",
        encoding="utf-8",
    )
    return path


def _schemathesis(url: str, config: Path, tmp_path: Path, name: str, *filters: str) -> int:
    """Run Schemathesis on the server's operations ``filters`` select; how many it tested (no failure)."""
    env = {**os.environ, "PYTHONPATH": str(HERE), "SCHEMATHESIS_HOOKS": "schemathesis_hooks"}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(config),
            "--no-color",
            "run",
            f"{url}/openapi.json",
            *filters,
            "--workers",
            "1",
            "--seed",
            "20261130",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    report = run.stdout + run.stderr
    (tmp_path / f"schemathesis-{name}.txt").write_text(report, encoding="utf-8")
    failures = report[report.find("=== FAILURES ===") :] if "=== FAILURES ===" in report else report
    assert run.returncode == 0, failures[:8000] + "\n...\n" + report[-3000:]
    found = re.search(r"Operations:\s+(\d+) selected / \d+ total", report)
    assert found is not None and f"Tested: {found.group(1)}" in report, report[-3000:]
    return int(found.group(1))


@pytest.mark.slow
def test_every_route_keeps_its_contract_and_the_log_keeps_no_key(tmp_path: Path) -> None:
    store = str(tmp_path / "events.duckdb")
    tenant_key = make_key(store, "acme-platform", "--label", "contract test")
    admin_key = make_key(store, "--admin")
    guards = tmp_path / "guards.toml"  # the seeded March 2025 usage is a backfill: allow ten years back
    guards.write_text("max_past_days = 3650\n", encoding="utf-8")
    with serve(store, tmp_path / "serve.log", "--prices", str(PRICES), "--guards", str(guards)) as served:
        _seed(served.url, tenant_key)
        config = _config(tmp_path / "schemathesis.toml", tenant_key, admin_key)
        document = httpx.get(f"{served.url}/openapi.json").json()
        operations = sum(len(item) for item in document["paths"].values())
        admin = sum(len(item) for path, item in document["paths"].items() if path.startswith("/v1/admin/"))
        assert operations >= 10 and admin == 4
        # the usage routes first; the admin routes after, as they revoke and rotate what they find
        tested = _schemathesis(served.url, config, tmp_path, "usage", "--exclude-path-regex", "^/v1/admin/")
        assert tested == operations - admin
        still = httpx.get(  # the run met the routes, not a wall of 401s
            f"{served.url}/v1/usage",
            params={"policy": "twilio-voice", "customer": "acme"},
            headers={"Authorization": f"Bearer {tenant_key}"},
        )
        assert still.status_code == 200, still.text
        assert still.json()["totals"]["billable_seconds"] == "120", "the two legs seeded, 60 s each"
        assert (
            _schemathesis(served.url, config, tmp_path, "admin", "--include-path-regex", "^/v1/admin/")
            == admin
        )
    log = served.log()
    lines = log.splitlines()
    assert any("talktime.serve serving store" in line and store in line for line in lines), log[:2000]
    assert any(  # the embedded store's dedup hashes, loaded before the first batch (ADR 0009)
        "talktime.serve holding 0 event and 0 record hashes in memory" in line for line in lines
    ), log[:2000]
    access = [line for line in lines if " talktime.access " in line]
    assert len(access) > 500, "one access line per request"
    assert any(" tenant=acme-platform" in line for line in access)
    assert any(" tenant=talktime:admin" in line and "/v1/admin/keys" in line for line in access)
    assert tenant_key not in log and admin_key not in log
    assert not KEY_SHAPE.search(log), "no API key of any shape in the server's log"
    assert "Bearer" not in log
