"""Provider webhooks -> talktime events: one pure module per provider, and the table that lists them.

Each provider module has ``verify(request, secret[, now])``, which raises ``SignatureError`` unless the
callback is the provider's, and ``to_events(body, customer)``, which maps a verified callback to CloudEvents
(``talktime.connection.opened`` ... ``talktime.provider.reported``) with ids derived from the provider's call
id and the fact, so retried and reordered callbacks count once. :data:`PROVIDERS` is the only place that
knows which providers exist; the HTTP route (``talktime.api.webhooks``) and the CLI read it.

Owns: signature schemes and field mappings (with units). Does not own: HTTP, the secrets' storage
(``secrets``, which goes through an ``EventStore``), sessionizing or metering.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from talktime.ingest.webhooks import retell, telnyx, twilio, vapi
from talktime.ingest.webhooks.base import Mapped, PayloadError, SignatureError, SignedRequest


@dataclass(frozen=True, slots=True)
class Provider:
    """One provider's webhook: how its secret is kept and checked, and how a callback becomes events."""

    name: str
    secret_label: str
    verify: Callable[[SignedRequest, str, datetime], None]
    to_events: Callable[[bytes, str | None], Mapped]
    #: What is stored for the secret: the secret itself (needed to compute an HMAC, or a public key), or
    #: a one-way hash of it (enough to compare a shared secret sent as is).
    keep: Callable[[str], str] = str
    #: Whether the signature covers the URL (then behind a proxy the public URL must be known).
    signs_url: bool = False


def _twilio_verify(request: SignedRequest, secret: str, now: datetime) -> None:
    twilio.verify(request, secret)


def _vapi_verify(request: SignedRequest, secret: str, now: datetime) -> None:
    vapi.verify(request, secret)


def _telnyx_key(key: str) -> str:
    telnyx.public_key_bytes(key)
    return key.strip()


PROVIDERS: Final[dict[str, Provider]] = {
    provider.name: provider
    for provider in (
        Provider("twilio", "the account's auth token", _twilio_verify, twilio.to_events, signs_url=True),
        Provider(
            "telnyx",
            "the account's Ed25519 public key (base64)",
            telnyx.verify,
            telnyx.to_events,
            _telnyx_key,
        ),
        Provider(
            "vapi",
            "the server secret (X-Vapi-Secret or Bearer token)",
            _vapi_verify,
            vapi.to_events,
            vapi.hash_secret,
        ),
        Provider("retell", "the API key with the webhook badge", retell.verify, retell.to_events),
    )
}

__all__ = ["PROVIDERS", "Mapped", "PayloadError", "Provider", "SignatureError", "SignedRequest"]
