"""Alerts a server checks as events arrive (:func:`talktime.app.alerts.send_new_alerts`, called after each new
snapshot of a tenant's records), delivered to a real receiver on loopback: each alert is POSTed once across
snapshots and across a restart (the tenant's state file), signed and naming its tenant; a second tenant
with customers of the same names gets its own alerts; one that failed is delivered by the next check."""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path

import pytest
from standardwebhooks import Webhook as Verifier

from alerts.planted import COSTS, MONTH_END, OPEN_CALL, PRICES, normal_month, planted, receiver
from talktime.app.alerts import alert_sending, send_new_alerts
from talktime.app.calls import call_margins
from talktime.core.records import UsageRecord
from talktime.errors import InputError
from talktime.io.records_io import write_records

SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
ENVIRON = {"TALKTIME_ALERTS_SECRET": SECRET}
TENANT = "acme-platform"
COSTS_PATH, PRICES_PATH = Path(COSTS), Path(PRICES)


def _snapshots(folder: Path) -> tuple[Path, Path]:
    """The tenant's records at two snapshots: without the call left open, then with it."""
    before = [r for r in normal_month() + planted() if r.session != OPEN_CALL]
    return _written(folder / "first.parquet", before), _written(
        folder / "second.parquet", normal_month() + planted()
    )


def _written(path: Path, records: list[UsageRecord]) -> Path:
    write_records(path, records)
    return path


def _config(folder: Path, url: str, attempts: int = 3) -> Path:
    path = folder / "alerts.toml"
    path.write_text(
        f'[webhook]\nurl = "{url}"\nattempts = {attempts}\nbackoff_seconds = 0\nstate = "state/alerts.json"\n'
        '[defaults]\nspend = "15"\n',
        encoding="utf-8",
    )
    return path


def test_each_alert_is_sent_once_across_snapshots_and_a_restart(tmp_path: Path) -> None:
    first, second = _snapshots(tmp_path)
    with receiver() as hook:
        config = _config(tmp_path, hook.url)
        sending = alert_sending(config, ENVIRON)
        sent = send_new_alerts(first, COSTS_PATH, PRICES_PATH, sending, tenant=TENANT, now=MONTH_END)
        opened = {a.id for a in sent.check.alerts}
        assert opened and set(sent.posted) == opened and sent.undelivered == ()
        assert {body["data"]["id"] for body in hook.bodies()} == opened, "each open alert POSTed once"
        for headers, body, _ in hook.received:
            data = Verifier(SECRET).verify(body, headers)["data"]  # raises unless the signature holds
            assert data["tenant"] == TENANT

        again = send_new_alerts(first, COSTS_PATH, PRICES_PATH, sending, tenant=TENANT, now=MONTH_END)
        assert again.posted == () and len(hook.received) == len(opened), "the same snapshot sends nothing"

        restarted = alert_sending(config, ENVIRON)  # a new server process: only the state file remembers
        rated = call_margins(second, COSTS_PATH, PRICES_PATH).view  # as the served dashboard rated it
        later = send_new_alerts(
            second,
            COSTS_PATH,
            PRICES_PATH,
            restarted,
            tenant=TENANT,
            now=MONTH_END,
            rated=(rated.rows, rated.currency),
        )
        new = {a.id for a in later.check.alerts} - opened
        assert new == {f"stuck-call/cobalt-retail/{OPEN_CALL}"}, "the call left open is the one new alert"
        assert set(later.posted) == new and len(hook.received) == len(opened) + 1
        assert all(d.delivered for d in later.deliveries.values())
    state = sending.state(TENANT)
    assert state is not None and state.parent == tmp_path / "state" and state.exists()
    assert set(json.loads(state.read_text())["deliveries"]) == opened | new


def test_another_tenant_gets_its_own_alerts(tmp_path: Path) -> None:
    first, _ = _snapshots(tmp_path)
    with receiver() as hook:
        sending = alert_sending(_config(tmp_path, hook.url), ENVIRON)
        ours = send_new_alerts(first, COSTS_PATH, PRICES_PATH, sending, tenant=TENANT, now=MONTH_END)
        theirs = send_new_alerts(first, COSTS_PATH, PRICES_PATH, sending, tenant="zeta/voice", now=MONTH_END)
        assert set(theirs.posted) == set(ours.posted), "same customer names, another tenant: sent too"
        ids = {headers["webhook-id"] for headers, _, _ in hook.received}
        assert len(ids) == 2 * len(ours.posted), "a receiver dropping repeats keeps both tenants' alerts"
        assert {b["data"]["tenant"] for b in hook.bodies()} == {TENANT, "zeta/voice"}
    assert sending.state(TENANT) != sending.state("zeta/voice")


def test_an_alert_that_failed_is_delivered_by_the_next_check(tmp_path: Path) -> None:
    first, _ = _snapshots(tmp_path)
    with receiver([503, 503]) as hook:
        sending = alert_sending(_config(tmp_path, hook.url, attempts=2), ENVIRON)
        sent = send_new_alerts(first, COSTS_PATH, PRICES_PATH, sending, tenant=TENANT, now=MONTH_END)
        (failed,) = sent.undelivered
        assert sent.deliveries[failed].status == 503 and sent.deliveries[failed].attempts == 2
        retried = send_new_alerts(first, COSTS_PATH, PRICES_PATH, sending, tenant=TENANT, now=MONTH_END)
        assert retried.posted == (failed,) and retried.undelivered == ()
        assert [s for _, _, s in hook.received].count(200) == len(sent.deliveries)


def test_a_missing_secret_stops_the_server_before_it_serves(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="TALKTIME_ALERTS_SECRET is not set"):
        alert_sending(_config(tmp_path, "http://127.0.0.1:9/never"), {})
