"""``talktime serve --alerts FILE`` checks each tenant's alerts as its events arrive, with no one looking at
its pages: a batch that takes a customer past its minutes threshold gets one signed POST to a real receiver
on loopback; a later batch that opens no new alert sends nothing more, and neither does a restarted server
(the tenant's delivery state file). A bad alerts file or a missing secret stops ``serve`` before it makes
the store."""

from __future__ import annotations

import base64
import html
import http.cookiejar
import json
import secrets
import subprocess
import time
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from importlib.resources import files
from pathlib import Path

import pytest
from standardwebhooks import Webhook as Verifier
from typer.testing import CliRunner

from alerts.planted import Receiver, receiver
from talktime.app.keys import create_key
from talktime.cli.main import app
from talktime.core.invoicing.periods import period_label
from talktime.io.ratecards import load_price_card
from talktime.store import open_store
from web.kit import COSTS, PRICES, start_serve

SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
TENANT = "acme-platform"
CUSTOMER = "cobalt-retail"
WAIT = 45.0  # seconds for a snapshot and its check (refresh 1 s; a first rating takes a few)


def _config(folder: Path, url: str) -> Path:
    path = folder / "alerts.toml"
    path.write_text(
        f'[webhook]\nurl = "{url}"\nattempts = 3\nbackoff_seconds = 0\nstate = "state/alerts.json"\n'
        "[defaults]\nminutes = 10\n",
        encoding="utf-8",
    )
    return path


def _post_call(url: str, key: str, session: str, start: datetime, minutes: int) -> None:
    """One call of ``minutes`` for the customer, as a record event over ``/v1/events``."""
    call = {
        "id": f"{session}-caller",
        "customer": CUSTOMER,
        "provider": "livekit",
        "kind": "participant",
        "session": session,
        "started_at": start.isoformat(),
        "ended_at": (start + timedelta(minutes=minutes)).isoformat(),
    }
    event = {"specversion": "1.0", "id": session, "source": "/test", "type": "talktime.record", "data": call}
    request = urllib.request.Request(
        url + "/v1/events",
        data=json.dumps([event]).encode(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert json.loads(answer.read())["accepted"] == 1


def _checks(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if f"alerts: tenant {TENANT} checked" in line]


def _until(done: Callable[[], bool], why: str) -> None:
    deadline = time.monotonic() + WAIT
    while not done():
        assert time.monotonic() < deadline, why
        time.sleep(0.2)


def _stop(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    server.wait(timeout=20)


def test_a_threshold_crossed_is_posted_once_with_no_page_looked_at(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = str(tmp_path / "events.duckdb")
    opened = open_store(store)
    try:
        key = create_key(opened, TENANT).key
    finally:
        opened.close()
    monkeypatch.setenv("TALKTIME_ALERTS_SECRET", SECRET)  # the server inherits the environment
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=40)
    card = load_price_card(Path(str(files("talktime.ratecards").joinpath(PRICES))))
    month = period_label(start, card.customer(CUSTOMER).timezone)  # the alert's month: its billing month
    with receiver() as hook:
        config = _config(tmp_path, hook.url)
        options = ("--alerts", str(config), "--dashboard-refresh", "1")
        server, url, log = start_serve(store, *options)
        try:
            _post_call(url, key, "call-a", start, 12)  # 12 billable minutes: above 10
            _until(lambda: len(hook.received) >= 1, "no alert POSTed after the batch")
            _until(lambda: len(_checks(log)) >= 1, "the check is not logged")
            _post_call(url, key, "call-b", start, 2)  # more minutes, the same alert: nothing new
            _until(lambda: len(_checks(log)) >= 2, "the second batch was not checked")
            assert "over 2 calls" in _checks(log)[-1], "the second check saw both calls"
            page = _alerts_page(url, key)
            assert f'data-alert="minutes/{CUSTOMER}/{month}"' in page, "the operator's page shows it"
            assert "delivered" in page and "HTTP 200" in page
            assert hook.url not in page and "alerts.json" not in page and str(tmp_path) not in page, (
                "a tenant sees neither the operator's webhook (its path can hold a secret) nor a server path"
            )
            assert "talktime serve --alerts" in page and "--send" not in page, (
                "the page says who checks and sends"
            )
        finally:
            _stop(server)
        _assert_one_signed_alert(hook)

        server, url, log = start_serve(store, *options)  # a restart: only the state file remembers
        try:
            _until(lambda: len(_checks(log)) >= 1, "the restarted server did not check the tenant")
        finally:
            _stop(server)
        assert "0 posted" in _checks(log)[0]
        _assert_one_signed_alert(hook)
    state = json.loads(next((tmp_path / "state").glob("alerts.acme-platform-*.json")).read_text())
    assert set(state["deliveries"]) == {f"minutes/{CUSTOMER}/{month}"}


def _alerts_page(url: str, key: str) -> str:
    """The operator's ``/alerts`` page, signed in with the tenant key through the form (no browser)."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    opener.open(url + "/signin", data=f"key={key}".encode(), timeout=30).close()
    with opener.open(url + "/alerts", timeout=30) as answer:
        return html.unescape(answer.read().decode())


def _assert_one_signed_alert(hook: Receiver) -> None:
    assert len(hook.received) == 1, "exactly one POST"
    headers, body, _ = hook.received[0]
    data = Verifier(SECRET).verify(body, headers)["data"]  # raises unless the signature holds
    assert data["tenant"] == TENANT and data["customer"] == CUSTOMER and data["rule"] == "minutes"
    assert data["id"].startswith(f"minutes/{CUSTOMER}/")


@pytest.mark.parametrize(
    ("text", "environ", "why"),
    [
        ("[defaults]\nminutes = -1\n", {"TALKTIME_ALERTS_SECRET": SECRET}, "minutes"),
        ('[webhook]\nurl = "http://127.0.0.1:9/x"\n', {}, "TALKTIME_ALERTS_SECRET is not set"),
    ],
)
def test_a_bad_alerts_file_or_a_missing_secret_stops_serve_before_the_store_is_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, environ: dict[str, str], why: str
) -> None:
    monkeypatch.delenv("TALKTIME_ALERTS_SECRET", raising=False)
    config = tmp_path / "alerts.toml"
    config.write_text(text, encoding="utf-8")
    store = tmp_path / "events.duckdb"
    options = ["--costs", COSTS, "--prices", PRICES, "--alerts", str(config)]
    result = CliRunner().invoke(app, ["serve", "--store", str(store), "--port", "0", *options], env=environ)
    assert result.exit_code == 2
    (line,) = result.stderr.strip().splitlines()
    assert str(config) in line and why in line
    assert not store.exists(), "no store file made"


def test_alerts_without_the_cards_names_both(tmp_path: Path) -> None:
    config = tmp_path / "alerts.toml"
    config.write_text("[defaults]\nminutes = 10\n", encoding="utf-8")
    store = tmp_path / "events.duckdb"
    result = CliRunner().invoke(app, ["serve", "--store", str(store), "--alerts", str(config)])
    assert result.exit_code == 2
    assert "--costs" in result.stderr and "--prices" in result.stderr
    assert not store.exists()
