"""Delivering alerts to the configured webhook: each alert POSTed once, signed, retried, remembered.

* **Signed** with the Standard Webhooks scheme (the ``standardwebhooks`` package): headers ``webhook-id``
  (``msg_`` and a hash of the alert's stable id, the same on every attempt so a receiver can drop repeats),
  ``webhook-timestamp`` (Unix seconds) and ``webhook-signature`` (``v1,`` and the base64 HMAC-SHA256 of
  ``id.timestamp.body`` under the secret). The secret (``whsec_`` and base64) comes from the environment
  variable the configuration names, never from the file.
* **Retried** on a connection error, a timeout, a 5xx, 408 or 429: ``attempts`` in all, waiting
  ``backoff_seconds`` and doubling before each retry. Any other answer (a 4xx, a redirect, which is not
  followed) fails at once: a retry would get the same.
* **Idempotent**: the outcome of each alert is kept in a small JSON state file; an alert delivered once is
  never POSTed again, an alert that failed is tried again on the next ``--send``.
* **Per tenant** on a server (:func:`talktime.app.alerts.send_new_alerts`): each tenant's outcomes in a
  state file of its own (:func:`tenant_state_file`), its name in the body's ``data.tenant`` and in the
  ``webhook-id``'s hash, so two tenants' alerts on customers of the same id are two alerts.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from standardwebhooks import Webhook as Signer

from talktime.core.alerts.config import Webhook
from talktime.core.alerts.model import Alert, webhook_body
from talktime.errors import InputError

__all__ = [
    "Delivery",
    "Post",
    "deliver",
    "delivery_outcomes",
    "delivery_words",
    "message_id",
    "post_json",
    "signing_secret",
    "state_file",
    "tenant_state_file",
]

#: How a POST is made: (url, body, headers, timeout in seconds) -> (HTTP status or None, why it failed).
Post = Callable[[str, bytes, Mapping[str, str], float], tuple[int | None, str]]
RETRIED = frozenset({408, 429})


@dataclass(frozen=True, slots=True)
class Delivery:
    """What became of one alert's delivery: ``delivered`` or ``failed``, after how many attempts, when the
    last attempt ended, its HTTP status (None without an answer) and why it failed ("" when delivered)."""

    alert_id: str
    outcome: str
    attempts: int
    at: str
    status: int | None
    error: str

    @property
    def delivered(self) -> bool:
        return self.outcome == "delivered"


def delivery_words(delivery: Delivery | None, sending: bool = True) -> str:
    """A delivery's outcome in words, as the command line and the dashboard say it (``sending``: a webhook
    is configured, so an alert without an outcome is still to be sent)."""
    if delivery is None:
        return "not sent yet" if sending else "not sent (no webhook configured)"
    tries = f"{delivery.attempts} attempt{'s' if delivery.attempts != 1 else ''}"
    at = f"{delivery.at[:19].replace('T', ' ')} UTC"
    if delivery.delivered:
        return f"delivered {at} (HTTP {delivery.status}, {tries})"
    return f"FAILED after {tries}, {at}: {delivery.error}"


def message_id(alert_id: str, tenant: str | None = None) -> str:
    """The ``webhook-id`` of an alert (of ``tenant``'s, on a server): the same for every attempt and run."""
    scoped = alert_id if tenant is None else f"{tenant}\n{alert_id}"  # a tenant's name has no line break
    return "msg_" + hashlib.sha256(scoped.encode()).hexdigest()[:32]


def state_file(config_path: Path, webhook: Webhook) -> Path:
    """Where deliveries are remembered: ``webhook.state``, relative to the configuration file's folder."""
    chosen = Path(webhook.state)
    return chosen if chosen.is_absolute() else config_path.parent / chosen


def tenant_state_file(state: Path, tenant: str) -> Path:
    """The state file of ``tenant``'s deliveries beside ``state``: its name's safe characters (up to 40) and
    a hash of the whole name, so any tenant name gives a distinct, valid file name.

    >>> tenant_state_file(Path("alerts-state.json"), "acme-platform").name
    'alerts-state.acme-platform-b46a25d6.json'
    """
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_") else "_" for c in tenant)[:40]
    digest = hashlib.sha256(tenant.encode()).hexdigest()[:8]
    return state.with_name(f"{state.stem}.{safe}-{digest}{state.suffix}")


def signing_secret(webhook: Webhook, environ: Mapping[str, str] | None = None) -> str:
    """The signing secret from the environment variable ``webhook.secret_env``, checked."""
    name = webhook.secret_env
    secret = (os.environ if environ is None else environ).get(name, "")
    if not secret:
        raise InputError(
            f"key 'webhook.secret_env': the environment variable {name} is not set; it holds the signing "
            "secret (whsec_ and base64, as Standard Webhooks receivers expect)"
        )
    try:
        Signer(secret)
    except Exception:  # the library raises binascii.Error or its own error for a bad or empty secret
        raise InputError(
            f"key 'webhook.secret_env': the secret in {name} is not whsec_ followed by base64"
        ) from None
    return secret


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # a redirected POST would become a GET without its body: fail instead


_OPENER = urllib.request.build_opener(_NoRedirect)


def post_json(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> tuple[int | None, str]:
    """POST ``body`` with the standard library; the status, or None and why there was no answer."""
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return int(response.status), ""
    except urllib.error.HTTPError as error:
        return int(error.code), f"HTTP {error.code} {error.reason}"
    except urllib.error.URLError as error:
        return None, f"no answer: {error.reason}"
    except (TimeoutError, OSError) as error:
        return None, f"no answer: {error or type(error).__name__}"


def delivery_outcomes(path: Path) -> dict[str, Delivery]:
    """The deliveries remembered in ``path`` (none when it does not exist yet)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise InputError(f"{path}: the alert delivery state cannot be read: {error}") from None
    try:
        return {key: Delivery(**value) for key, value in data["deliveries"].items()}
    except (KeyError, TypeError, AttributeError) as error:
        raise InputError(f"{path}: not an alert delivery state file ({error})") from None


def _save(path: Path, outcomes: Mapping[str, Delivery]) -> None:
    """Write the state whole to a temporary file, then put it in place (never half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    data = {"version": 1, "deliveries": {k: asdict(v) for k, v in sorted(outcomes.items())}}
    temporary.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    temporary.replace(path)


def _attempt_headers(signer: Signer, msg_id: str, at: datetime, body: str) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "user-agent": "talktime-alerts",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signer.sign(msg_id, at, body),
    }


def deliver(
    alerts: Iterable[Alert],
    webhook: Webhook,
    secret: str,
    state: Path,
    *,
    post: Post = post_json,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    tenant: str | None = None,
) -> dict[str, Delivery]:
    """POST each alert not delivered before (see the module); the outcome of every alert given, new or
    remembered, by alert id. The state file is written after each alert, so an interrupted run loses
    nothing it delivered. ``tenant``: the alerts are that tenant's on a server (``state`` is its own)."""
    signer = Signer(secret)
    outcomes = delivery_outcomes(state)
    result: dict[str, Delivery] = {}
    for alert in alerts:
        known = outcomes.get(alert.id)
        if known is not None and known.delivered:
            result[alert.id] = known
            continue
        msg_id = message_id(alert.id, tenant)
        body = json.dumps(webhook_body(alert, clock(), tenant), separators=(",", ":"))
        status: int | None = None
        error = ""
        attempts = 0
        for attempt in range(1, webhook.attempts + 1):
            attempts = attempt
            headers = _attempt_headers(signer, msg_id, clock(), body)
            status, error = post(webhook.url, body.encode(), headers, float(webhook.timeout_seconds))
            if status is not None and 200 <= status < 300:
                error = ""
                break
            retried = status is None or status >= 500 or status in RETRIED
            if not retried:
                if status is not None and 300 <= status < 400:
                    error += " (redirects are not followed: configure the final URL)"
                break
            if attempt < webhook.attempts:
                sleep(float(webhook.backoff_seconds) * 2 ** (attempt - 1))
        delivered = status is not None and 200 <= status < 300
        outcome = Delivery(
            alert.id,
            "delivered" if delivered else "failed",
            attempts,
            clock().isoformat(),
            status,
            error,
        )
        outcomes[alert.id] = result[alert.id] = outcome
        _save(state, outcomes)
    return result
