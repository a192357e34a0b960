"""``talktime.app.keys`` and ``talktime.app.webhooks`` called directly, on a real embedded store: what
``talktime keys`` and ``talktime webhooks`` do without a command line, including the refusal to open a
store a running server holds (its note beside the DuckDB file), which leaves the store untouched."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from talktime.app.keys import create_key, key_store, list_keys, revoke_key
from talktime.app.served import announce
from talktime.app.webhooks import providers, remove_secret, secrets, set_secret, webhook_url
from talktime.errors import InputError

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)


def test_keys_are_made_listed_and_revoked_in_the_store_named(tmp_path: Path) -> None:
    store = str(tmp_path / "events.duckdb")
    with key_store(store) as opened:
        made = create_key(opened, "acme", label="ci")
        revoke_key(opened, made.info.id, NOW)
    with key_store(store) as opened:  # closed and opened again: it was written
        (listed,) = list_keys(opened, "acme")
    assert (listed.id, listed.label, listed.revoked_at) == (made.info.id, "ci", NOW)


def test_a_store_a_server_holds_is_refused_with_the_admin_routes_named(tmp_path: Path) -> None:
    store = str(tmp_path / "events.duckdb")
    with announce(store, "0.0.0.0", 8123), pytest.raises(InputError) as refused:  # noqa: SIM117
        with key_store(store):
            pass
    assert "held by talktime serve at http://127.0.0.1:8123" in str(refused.value)
    assert "POST /v1/admin/keys" in str(refused.value)
    assert not Path(store).exists()  # refused before the store was opened


def test_webhook_secrets_are_set_listed_and_removed(tmp_path: Path) -> None:
    store = str(tmp_path / "events.duckdb")
    assert "twilio" in providers() and all(providers().values())

    kept = set_secret(store, "acme", "twilio", "token", public_url="https://t.example.com", now=NOW)
    assert webhook_url(kept) == "https://t.example.com/v1/webhooks/twilio/acme?customer=CUSTOMER"
    set_secret(store, "beta", "vapi", "s3cret", public_url=None, now=NOW)
    assert [(s.tenant, s.provider, s.public_url) for s in secrets(store)] == [
        ("acme", "twilio", "https://t.example.com"),
        ("beta", "vapi", None),
    ]
    assert webhook_url(secrets(store)[1]) == "https://YOUR-HOST/v1/webhooks/vapi/beta?customer=CUSTOMER"

    remove_secret(store, "acme", "twilio", now=NOW + timedelta(seconds=1))
    assert [(s.tenant, s.provider) for s in secrets(store)] == [("beta", "vapi")]
    with pytest.raises(InputError, match="provider 'skype' has no webhook"):
        set_secret(store, "acme", "skype", "x", public_url=None, now=NOW)


def test_a_secret_removed_or_replaced_in_the_same_microsecond_is_gone_or_replaced(tmp_path: Path) -> None:
    """Two changes at one moment (a script, a coarse clock): the later one wins, never deduplicated away."""
    store = str(tmp_path / "events.duckdb")
    set_secret(store, "acme", "vapi", "first", public_url=None, now=NOW)
    remove_secret(store, "acme", "vapi", now=NOW)
    assert secrets(store) == [], "the removal counts: webhooks are refused"
    set_secret(store, "acme", "vapi", "second", public_url=None, now=NOW)
    replaced = set_secret(store, "acme", "vapi", "third", public_url=None, now=NOW - timedelta(seconds=5))
    (kept,) = secrets(store)
    assert kept == replaced and kept.set_at == NOW + timedelta(microseconds=3), "the last one set is in force"
