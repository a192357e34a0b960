"""``webhooks``: the per-tenant secrets provider webhooks are checked with, set, listed and removed in an
event store a user names (``talktime webhooks``); the store is opened and closed here.

The secrets themselves, and how the store keeps them, are :mod:`talktime.ingest.webhooks.secrets`'.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from talktime.app.stores import opened_store
from talktime.ingest.webhooks import PROVIDERS

if TYPE_CHECKING:
    from talktime.ingest.webhooks.secrets import Secret

__all__ = ["providers", "remove_secret", "secrets", "set_secret", "webhook_url"]


def providers() -> dict[str, str]:
    """Every provider with a webhook, by name, and what its secret is (shown in help)."""
    return {name: provider.secret_label for name, provider in sorted(PROVIDERS.items())}


def set_secret(
    store: str, tenant: str, provider: str, value: str, *, public_url: str | None, now: datetime
) -> Secret:
    """Keep ``tenant``'s secret for ``provider`` at ``now``, replacing the one before."""
    from talktime.ingest.webhooks.secrets import set_secret as keep

    with opened_store(store) as opened:
        return keep(opened, tenant, provider, value, public_url=public_url, now=now)


def webhook_url(secret: Secret) -> str:
    """The URL to give the provider (``CUSTOMER`` for the customer to write the calls for)."""
    base = secret.public_url or "https://YOUR-HOST"
    return f"{base}/v1/webhooks/{secret.provider}/{secret.tenant}?customer=CUSTOMER"


def secrets(store: str) -> list[Secret]:
    """Every tenant's secret for every provider, by tenant and provider."""
    from talktime.ingest.webhooks.secrets import all_secrets

    with opened_store(store) as opened:
        found = all_secrets(opened)
    return [found[key] for key in sorted(found)]


def remove_secret(store: str, tenant: str, provider: str, *, now: datetime) -> None:
    """Forget ``tenant``'s secret for ``provider``: its webhooks are refused from then on."""
    from talktime.ingest.webhooks.secrets import remove_secret as forget

    with opened_store(store) as opened:
        forget(opened, tenant, provider, now=now)
