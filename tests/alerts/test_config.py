"""The alert configuration: every key of docs/alerts.md's example read as documented, customers overriding
the defaults key by key, and every bad key named with why, all at once."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from talktime.app.alerts import load_config
from talktime.core.alerts.config import AlertConfigError, CustomerRules, parse_config
from talktime.errors import InputError

DOCS = Path(__file__).parents[2] / "docs" / "alerts.md"


def _example() -> str:
    found = re.search(r"```toml\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S)
    assert found is not None, "docs/alerts.md has a toml example"
    return found.group(1)


def test_the_documented_example_reads_as_documented(tmp_path: Path) -> None:
    path = tmp_path / "alerts.toml"
    path.write_text(_example(), encoding="utf-8")
    config = load_config(path)
    assert config.webhook is not None
    assert config.webhook.url.startswith("https://")
    assert config.webhook.secret_env == "TALKTIME_ALERTS_SECRET"
    assert config.defaults.spend == Decimal("1000")
    blue = config.rules_for("blue-bank")
    assert blue.spend == Decimal("250.50")  # its own
    assert blue.minutes == config.defaults.minutes  # the default, kept
    assert blue.long_call.spread == Decimal(3)  # its own rule parameter
    assert blue.long_call.window_days == config.defaults.long_call.window_days
    assert config.rules_for("someone-else") == config.defaults


def test_defaults_without_a_file_section() -> None:
    config = parse_config({}, "alerts.toml")
    assert config.defaults == CustomerRules()
    assert config.webhook is None
    assert config.defaults.spend is None  # no threshold unless set


def test_every_bad_key_is_named_at_once() -> None:
    data = {
        "defaults": {"spend": "lots", "long_call": {"sprad": 3, "window_days": 0}},
        "customers": {"blue-bank": {"minutes": Decimal(-1), "stuck_call": {"enabled": "yes"}}},
        "webhook": {"url": "ftp://x", "attempts": 50, "secret": "whsec_abc"},
        "alert": {},
    }
    with pytest.raises(AlertConfigError) as caught:
        parse_config(data, "alerts.toml")
    message = str(caught.value)
    assert message.startswith("alerts.toml: ")
    for part in (
        "key 'alert' is not known",
        "key 'defaults.spend': 'lots' is not a number",
        "key 'defaults.long_call.sprad' is not known",
        "key 'defaults.long_call.window_days': 0 must be at least 1",
        "key 'customers.blue-bank.minutes': -1 must be at least 0",
        "key 'customers.blue-bank.stuck_call.enabled': is 'yes', not true or false",
        "key 'webhook.url': 'ftp://x' is not an http:// or https:// URL",
        "key 'webhook.attempts': 50 must be at most 20",
        "key 'webhook.secret': the signing secret never goes in the file",
    ):
        assert part in message, part
    assert isinstance(caught.value, InputError) and isinstance(caught.value, ValueError)


def test_a_webhook_needs_its_url() -> None:
    with pytest.raises(AlertConfigError, match=r"key 'webhook.url' is missing"):
        parse_config({"webhook": {"attempts": 3}}, "a.toml")


def test_bad_toml_and_missing_file_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "alerts.toml"
    path.write_text("[defaults\nspend = 1\n", encoding="utf-8")
    with pytest.raises(AlertConfigError, match=r"alerts.toml: not valid TOML: .*line 1"):
        load_config(path)
    with pytest.raises(InputError, match="no such alert configuration file"):
        load_config(tmp_path / "nothing.toml")


def test_decimals_stay_exact(tmp_path: Path) -> None:
    path = tmp_path / "alerts.toml"
    path.write_text("[defaults]\nspend = 0.1\nminutes = 1e3\n", encoding="utf-8")
    config = load_config(path)
    assert config.defaults.spend == Decimal("0.1")
    assert config.defaults.minutes == Decimal(1000)
