"""Per-tenant webhook secrets, kept in the event store itself: no new table, no change to ``EventStore``.

The store's only general facility is the append-only event log with dedup on (tenant, source, id), and it
is enough: each ``talktime webhooks set-secret`` appends one event of type :data:`SECRET_TYPE` under the
reserved tenant :data:`SECRETS_TENANT`, and the latest event of a (tenant, provider) wins (a removal is an
event without a secret). Both stores, the embedded DuckDB file and PostgreSQL, keep them the same way, in
the same transaction guarantees, and a key rotation keeps its history.

Why not in the tenant's own events: ``GET /v1/usage`` reads all of them as usage. Why the reserved tenant
is safe: ``POST /v1/events`` accepts only talktime's usage event types, so even a key made for a tenant of
that name could neither write nor read a secret.

What is stored is the provider's :attr:`Provider.keep` of the secret: Twilio's auth token and Retell's API
key as they are (an HMAC needs them; protect the store like the accounts they open), Telnyx's public key,
and only the sha256 of Vapi's shared secret.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Final
from urllib.parse import urlsplit

from talktime.errors import InputError
from talktime.ingest.webhooks import PROVIDERS
from talktime.store.base import EventStore, RawEvent

SECRETS_TENANT: Final = "talktime:webhook-secrets"
SECRET_TYPE: Final = "talktime.webhook.secret"
SECRET_SOURCE: Final = "talktime:webhooks"


@dataclass(frozen=True, slots=True)
class Secret:
    """A tenant's secret for one provider (``value`` as stored: see the module's docstring)."""

    tenant: str
    provider: str
    value: str
    public_url: str | None
    set_at: datetime


def _provider(name: str) -> str:
    if name not in PROVIDERS:
        raise InputError(f"provider {name!r} has no webhook; known: {', '.join(sorted(PROVIDERS))}")
    return name


def _public_url(provider: str, url: str | None) -> str | None:
    if url is None:
        return None
    if not PROVIDERS[provider].signs_url:
        raise InputError(
            f"--public-url is for providers whose signature covers the URL (twilio), not {provider}"
        )
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise InputError(
            f"--public-url {url!r}: give the scheme and host the provider calls, e.g. https://t.example.com"
        )
    return url.rstrip("/")


def set_secret(
    store: EventStore,
    tenant: str,
    provider: str,
    secret: str,
    *,
    public_url: str | None = None,
    now: datetime,
) -> Secret:
    """Store a tenant's secret for a provider (replacing any earlier one); refuse a malformed one."""
    if not tenant.strip() or tenant == SECRETS_TENANT:
        raise InputError(f"TENANT {tenant!r} cannot hold webhook secrets")
    name = _provider(provider)
    if not secret.strip():
        raise InputError(f"SECRET for {name} is empty; give {PROVIDERS[name].secret_label}")
    try:
        kept = PROVIDERS[name].keep(secret.strip())
    except ValueError as error:
        raise InputError(f"SECRET for {name}: {error}") from None
    found = Secret(tenant, name, kept, _public_url(name, public_url), now)
    return _append(store, found, {"secret": kept, "public_url": found.public_url})


def remove_secret(store: EventStore, tenant: str, provider: str, *, now: datetime) -> None:
    """Forget a tenant's secret for a provider: its webhooks are refused from then on."""
    _append(store, Secret(tenant, _provider(provider), "", None, now), {"secret": None})


def _append(store: EventStore, secret: Secret, fields: dict[str, str | None]) -> Secret:
    """Append the change as the (tenant, provider)'s latest event. Its moment is the time given, or one
    microsecond after the latest change kept if that is not earlier: a set and a removal in the same
    microsecond would otherwise share an event id (the removal deduplicated away, the secret left in force)
    or tie, and the latest change must be the one that wins."""
    before = _latest(store).get((secret.tenant, secret.provider))
    if before is not None and before[0] >= secret.set_at:
        secret = replace(secret, set_at=before[0] + timedelta(microseconds=1))
    data = {"tenant": secret.tenant, "provider": secret.provider, **fields}
    event_id = f"{secret.provider}:{secret.tenant}:{secret.set_at.timestamp():.6f}"
    raw = RawEvent(SECRET_SOURCE, event_id, SECRET_TYPE, secret.tenant, secret.set_at, json.dumps(data))
    store.append(SECRETS_TENANT, [raw])
    return secret


def _latest(store: EventStore) -> dict[tuple[str, str], tuple[datetime, str, dict[str, str | None]]]:
    """The latest change per (tenant, provider), removals included: (moment, event id, data)."""
    latest: dict[tuple[str, str], tuple[datetime, str, dict[str, str | None]]] = {}
    for raw in store.events(SECRETS_TENANT):
        if raw.type != SECRET_TYPE or raw.time is None:
            continue
        data = json.loads(raw.data)
        key = (str(data["tenant"]), str(data["provider"]))
        moment = raw.time if raw.time.tzinfo else raw.time.replace(tzinfo=UTC)
        if key not in latest or (moment, raw.id) > latest[key][:2]:
            latest[key] = (moment, raw.id, data)
    return latest


def all_secrets(store: EventStore) -> dict[tuple[str, str], Secret]:
    """The secret in force per (tenant, provider): the latest one set, removals dropped."""
    latest = _latest(store)
    return {
        key: Secret(key[0], key[1], str(data["secret"]), data.get("public_url"), moment)
        for key, (moment, _, data) in latest.items()
        if data.get("secret")
    }


class SecretCache:
    """The secrets of :func:`all_secrets`, read again at most every ``ttl`` seconds of ``monotonic``:
    a secret set while the server runs (PostgreSQL) takes effect within ``ttl``."""

    def __init__(self, store: EventStore, ttl: float, monotonic: Callable[[], float]) -> None:
        self._store = store
        self._ttl = ttl
        self._monotonic = monotonic
        self._read_at: float | None = None
        self._secrets: dict[tuple[str, str], Secret] = {}

    def get(self, tenant: str, provider: str) -> Secret | None:
        now = self._monotonic()
        if self._read_at is None or now - self._read_at >= self._ttl:
            self._secrets = all_secrets(self._store)
            self._read_at = now
        return self._secrets.get((tenant, provider))
