"""Delivering alerts to a real HTTP receiver on loopback: each POST is signed so that a Standard Webhooks
receiver verifies it with the secret (and an HMAC worked out by hand agrees), a first 500 is retried with the
same webhook-id, a second run sends nothing twice, a 4xx is not retried, a timeout is; the outcome is kept
in the state file and shown by ``talktime alerts check``, whose exit codes say what happened."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from standardwebhooks import Webhook as Verifier
from standardwebhooks import WebhookVerificationError
from typer.testing import CliRunner

from alerts.planted import COSTS, LONG_CALL, OPEN_CALL, PRICES, TOKENS_CALL, planted_month, receiver
from talktime.app.alert_delivery import deliver, delivery_outcomes, message_id, signing_secret
from talktime.cli.alerts import alerts_app
from talktime.core.alerts.config import Webhook
from talktime.core.alerts.model import Alert, Rule
from talktime.errors import InputError
from talktime.io.records_io import write_records

SECRET = "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()
AT = datetime(2026, 10, 31, 23, tzinfo=UTC)
ALERTS = (
    Alert(Rule.spend, "acme", "2026-10", Decimal("120.5"), Decimal(100), "USD", "acme spent 120.50 USD"),
    Alert(
        Rule.long_call, "acme", "call-7", Decimal(6000), Decimal("1873.2"), "s", "call-7 lasted 100 min", AT
    ),
)


def _hand_signature(secret: str, headers: dict[str, str], body: bytes) -> str:
    """The Standard Webhooks signature worked out from the specification, without the library."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def test_signed_retried_after_a_500_and_never_sent_twice(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with receiver([500]) as hook:
        webhook = Webhook(hook.url, attempts=3, backoff_seconds=Decimal("0.05"))
        first = deliver(ALERTS, webhook, SECRET, state)
        assert [d.outcome for d in first.values()] == ["delivered", "delivered"]
        assert first[ALERTS[0].id].attempts == 2 and first[ALERTS[0].id].status == 200
        assert [status for _, _, status in hook.received] == [500, 200, 200]
        (h1, _, _), (h2, _, _), (h3, b3, _) = hook.received
        assert h1["webhook-id"] == h2["webhook-id"] == message_id(ALERTS[0].id) != h3["webhook-id"]
        for headers, body, _ in hook.received:
            payload = Verifier(SECRET).verify(body, headers)  # raises unless the signature holds
            assert headers["webhook-signature"] == _hand_signature(SECRET, headers, body)
            assert payload["type"] == "talktime.alert"
            with pytest.raises(WebhookVerificationError):
                Verifier("whsec_" + base64.b64encode(b"another secret, same length").decode()).verify(
                    body, headers
                )
        data = json.loads(b3)["data"]
        assert data["id"] == "long-call/acme/call-7" and data["value"] == "6000" and data["unit"] == "s"

        again = deliver(ALERTS, webhook, SECRET, state)
        assert len(hook.received) == 3  # nothing sent twice
        assert again == first
    assert delivery_outcomes(state) == first


def test_a_4xx_is_not_retried_and_a_failed_alert_is_tried_next_time(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    with receiver([400]) as hook:
        webhook = Webhook(hook.url, attempts=5, backoff_seconds=Decimal(0))
        first = deliver(ALERTS[:1], webhook, SECRET, state)
        outcome = first[ALERTS[0].id]
        assert (outcome.outcome, outcome.attempts, outcome.status) == ("failed", 1, 400)
        assert "HTTP 400" in outcome.error
        second = deliver(ALERTS[:1], webhook, SECRET, state)
        assert second[ALERTS[0].id].delivered and len(hook.received) == 2


def test_a_timeout_is_retried_up_to_the_attempts(tmp_path: Path) -> None:
    with receiver(delay=1.0) as hook:
        webhook = Webhook(hook.url, attempts=2, backoff_seconds=Decimal(0), timeout_seconds=Decimal("0.3"))
        outcome = deliver(ALERTS[:1], webhook, SECRET, tmp_path / "state.json")[ALERTS[0].id]
        assert (outcome.outcome, outcome.attempts, outcome.status) == ("failed", 2, None)
        assert "timed out" in outcome.error
        assert len(hook.received) == 2


def test_the_secret_comes_from_the_environment_and_is_checked() -> None:
    webhook = Webhook("https://example.com/hook", secret_env="ALERTS_SECRET")
    assert signing_secret(webhook, {"ALERTS_SECRET": SECRET}) == SECRET
    with pytest.raises(
        InputError, match=r"key 'webhook\.secret_env': the environment variable ALERTS_SECRET"
    ):
        signing_secret(webhook, {})
    with pytest.raises(InputError, match="not whsec_ followed by base64"):
        signing_secret(webhook, {"ALERTS_SECRET": "whsec_%%%"})


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("planted") / "month.parquet"
    write_records(path, planted_month())
    return path


def _config(folder: Path, url: str) -> Path:
    path = folder / "alerts.toml"
    path.write_text(
        f'[webhook]\nurl = "{url}"\nsecret_env = "TEST_ALERTS_SECRET"\nattempts = 3\nbackoff_seconds = 0.05\n'
        '[defaults]\nspend = "15"\n',
        encoding="utf-8",
    )
    return path


def _check(month: Path, config: Path, *extra: str) -> tuple[int, str]:
    command = [
        "check",
        "--records",
        str(month),
        "--costs",
        COSTS,
        "--prices",
        PRICES,
        "--config",
        str(config),
    ]
    result = CliRunner().invoke(alerts_app, [*command, *extra], env={"TEST_ALERTS_SECRET": SECRET})
    return result.exit_code, result.output


def test_the_command_sends_each_alert_once(month: Path, tmp_path: Path) -> None:
    with receiver([503]) as hook:
        config = _config(tmp_path, hook.url)
        code, shown = _check(month, config)
        assert code == 1 and "delivery: not sent" in shown and hook.received == []
        code, shown = _check(month, config, "--send")
        assert code == 1, shown
        sent = {b["data"]["id"] for b in hook.bodies()}
        assert {LONG_CALL, TOKENS_CALL, OPEN_CALL} <= {b["data"]["subject"] for b in hook.bodies()}
        assert len(hook.bodies()) == len(sent) == shown.count("delivery: delivered")
        assert len(hook.received) == len(sent) + 1  # the first answer, a 503, was retried
        code, again = _check(month, config, "--send")
        assert code == 1 and len(hook.received) == len(sent) + 1  # a second run sends nothing
        assert again.count("delivery: delivered") == len(sent)
        code, listed = _check(month, config, "--format", "json")
        document = json.loads(listed)
        assert {a["delivery"]["outcome"] for a in document["alerts"]} == {"delivered"}


def test_exit_3_when_an_alert_is_not_delivered(month: Path, tmp_path: Path) -> None:
    with receiver([503] * 100) as hook:
        code, shown = _check(month, _config(tmp_path, hook.url), "--send")
    assert code == 3
    assert "FAILED" in shown and "HTTP 503" in shown


def test_exit_2_on_a_bad_configuration_or_a_missing_secret(month: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[defaults]\nspend = -3\n", encoding="utf-8")
    code, shown = _check(month, bad)
    assert code == 2 and "key 'defaults.spend': -3 must be at least 0" in shown
    config = _config(tmp_path, "http://127.0.0.1:9/never")
    result = CliRunner().invoke(
        alerts_app,
        [
            "check",
            "--records",
            str(month),
            "--costs",
            COSTS,
            "--prices",
            PRICES,
            "--config",
            str(config),
            "--send",
        ],
        env={"TEST_ALERTS_SECRET": ""},
    )
    assert result.exit_code == 2 and "TEST_ALERTS_SECRET is not set" in result.output
