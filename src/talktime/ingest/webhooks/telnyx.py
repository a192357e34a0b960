"""Telnyx Call Control webhooks (JSON ``{"data": {event_type, occurred_at, payload}}``) -> one leg record
per ``call_leg_id``.

Signature (telnyx-python ``lib/webhook_verification.py``): Ed25519 over ``"<telnyx-timestamp>|<raw body>"``,
base64 in ``telnyx-signature-ed25519``, checked with the account's public key (base64, 32 bytes, from the
Mission Control portal); the timestamp (Unix seconds) must be within 5 minutes of the server's clock.

Mapping:

=======================  ==================================================================================
``call.initiated``       opened at ``payload.start_time`` (else ``occurred_at``)
``call.answered``        answered at ``occurred_at``
``call.hangup``          opened at ``payload.start_time``; closed at ``occurred_at`` with ``hangup_cause``:
                         normal_clearing, time_limit, unspecified -> completed; user_busy -> busy;
                         no_answer, timeout -> unanswered; originator_cancel -> canceled; call_rejected,
                         not_found -> failed. The answer moment comes only from ``call.answered`` (Call
                         Control sends it for every answered leg): ``start_time`` is when the leg
                         started, ringing included, and guessing the answer from it would bill the ring
``call.cost``            ``billed_duration_secs`` (SECONDS) -> provider-reported; ``total_cost``,
                         ``currency`` and every ``cost_parts[]`` entry (cost, rate per minute, billed
                         seconds, by ``call_part``) -> attributes ``telnyx_cost_call_control`` ...
other event types        acknowledged, nothing stored
=======================  ==================================================================================
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from talktime.errors import TalktimeError
from talktime.ingest import events as ev
from talktime.ingest.webhooks.base import (
    SOURCE_PREFIX,
    TOLERANCE_SECONDS,
    Mapped,
    Reader,
    RecordEvents,
    SignatureError,
    SignedRequest,
    common_data,
    decimal_text,
    json_body,
)

PROVIDER: Final = "telnyx"
SIGNATURE_HEADER: Final = "telnyx-signature-ed25519"
TIMESTAMP_HEADER: Final = "telnyx-timestamp"
HANGUP_STATUS: Final = {
    "normal_clearing": "completed",
    "time_limit": "completed",
    "unspecified": "completed",
    "user_busy": "busy",
    "no_answer": "unanswered",
    "timeout": "unanswered",
    "originator_cancel": "canceled",
    "call_rejected": "failed",
    "not_found": "failed",
}


def public_key_bytes(key: str) -> bytes:
    """The raw 32-byte Ed25519 key of its base64 text, or ValueError saying what is wrong."""
    try:
        raw = base64.b64decode(key.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("the Telnyx public key must be base64 text") from None
    if len(raw) != 32:
        raise ValueError(f"the Telnyx public key must be 32 bytes of base64, got {len(raw)}")
    return raw


def verify(request: SignedRequest, public_key: str, now: datetime) -> None:
    """Raise :class:`SignatureError` unless the Ed25519 signature of ``timestamp|body`` verifies and the
    timestamp is within 5 minutes of ``now``."""
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    except ImportError:  # pragma: no cover - depends on the install
        raise TalktimeError(
            "Telnyx webhooks need the cryptography package: pip install cryptography"
        ) from None
    signed = request.headers.get(SIGNATURE_HEADER)
    stamp = request.headers.get(TIMESTAMP_HEADER)
    if not signed or not stamp:
        raise SignatureError(f"send both {SIGNATURE_HEADER} and {TIMESTAMP_HEADER}")
    if not stamp.strip().isdigit():
        raise SignatureError(f"{TIMESTAMP_HEADER} {stamp!r} is not Unix seconds")
    if abs(now.timestamp() - int(stamp)) > TOLERANCE_SECONDS:
        raise SignatureError(f"{TIMESTAMP_HEADER} is more than {TOLERANCE_SECONDS} s from the server's clock")
    try:
        signature = base64.b64decode(signed.strip(), validate=True)
        key = Ed25519PublicKey.from_public_bytes(public_key_bytes(public_key))
        key.verify(signature, stamp.strip().encode("ascii") + b"|" + request.body)
    except (binascii.Error, ValueError, InvalidSignature):
        raise SignatureError(
            "telnyx-signature-ed25519 does not verify with the tenant's public key"
        ) from None


def to_events(body: bytes, customer: str | None) -> Mapped:
    """The events one Call Control webhook says (see the module's table)."""
    read = Reader(PROVIDER)
    decoded = json_body(PROVIDER, body)
    if not isinstance(decoded, Mapping):
        raise read.fail("body", "must be a JSON object with a data object")
    data = read.obj(decoded, "data", "data")
    kind = read.text(data, "event_type", "data.event_type")
    if kind not in ("call.initiated", "call.answered", "call.hangup", "call.cost"):
        return Mapped([], ignored=f"{kind} carries nothing talktime meters")
    payload = read.obj(data, "payload", "data.payload")
    occurred = read.iso_time(data, "occurred_at", "data.occurred_at")
    leg = read.text(payload, "call_leg_id", "data.payload.call_leg_id")
    assert occurred is not None and leg is not None
    record = RecordEvents(
        SOURCE_PREFIX + PROVIDER, leg, None, common_data(customer, PROVIDER, "voice", "leg")
    )
    start = read.iso_time(payload, "start_time", "data.payload.start_time", required=kind == "call.hangup")
    if kind == "call.initiated":
        record.add("opened", ev.OPENED, start or occurred)
    elif kind == "call.answered":
        if start is not None:
            record.add("opened", ev.OPENED, start)
        record.add("answered", ev.ANSWERED, occurred)
    elif kind == "call.hangup":
        assert start is not None
        _hangup(read, payload, record, start, occurred)
    else:
        _cost(read, payload, record, occurred)
    return Mapped(record.events)


def _hangup(
    read: Reader, payload: Mapping[str, Any], record: RecordEvents, start: datetime, end: datetime
) -> None:
    cause = read.text(payload, "hangup_cause", "data.payload.hangup_cause")
    if cause not in HANGUP_STATUS:
        known = ", ".join(sorted(HANGUP_STATUS))
        raise read.fail(
            "data.payload.hangup_cause", f"{cause!r} is not a Telnyx hangup cause; known: {known}"
        )
    status = HANGUP_STATUS[cause]
    record.add("opened", ev.OPENED, start)
    session = read.text(payload, "call_session_id", "data.payload.call_session_id", required=False)
    attrs = {"telnyx_hangup_cause": cause, **({"telnyx_call_session_id": session} if session else {})}
    record.add("closed", ev.CLOSED, end, status=status, attrs=attrs)


def _cost(read: Reader, payload: Mapping[str, Any], record: RecordEvents, occurred: datetime) -> None:
    billed = read.whole(payload, "billed_duration_secs", "data.payload.billed_duration_secs")
    attrs: dict[str, str] = {}
    total = read.number(payload, "total_cost", "data.payload.total_cost", required=False)
    if total is not None:
        attrs["telnyx_total_cost"] = decimal_text(total)
    parts = payload.get("cost_parts") or []
    if not isinstance(parts, list):
        raise read.fail("data.payload.cost_parts", "must be an array")
    for index, part in enumerate(parts):
        path = f"data.payload.cost_parts[{index}]"
        if not isinstance(part, Mapping):
            raise read.fail(path, "must be an object")
        name = str(read.text(part, "call_part", f"{path}.call_part")).replace("-", "_")
        currency = read.text(part, "currency", f"{path}.currency", required=False)
        if currency:
            attrs["telnyx_currency"] = currency
        for key, label in (("cost", "cost"), ("rate", "rate"), ("billed_duration_secs", "billed_secs")):
            value = read.number(part, key, f"{path}.{key}", required=False)
            if value is not None:
                attrs[f"telnyx_{label}_{name}"] = decimal_text(value)
    record.add("reported", ev.PROVIDER_REPORTED, occurred, seconds=str(billed), attrs=attrs or None)
