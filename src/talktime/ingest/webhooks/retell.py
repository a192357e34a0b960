"""Retell ``call_started``, ``call_ended`` and ``call_analyzed`` webhooks -> one record per call.

Signature (retell-python-sdk ``lib/webhook_auth.py``): ``x-retell-signature: v=<ms epoch>,d=<hex>`` where
``d`` is HMAC-SHA256, keyed with the Retell API key that has the webhook badge, of the raw body followed by
the timestamp's digits; the timestamp must be within 5 minutes of the server's clock.

Mapping of ``call`` (times are MILLISECONDS since the epoch, costs US CENTS):

===================================  ==================================================================
``call_id``                          the record (kind agent)
``start_timestamp``                  opened
``end_timestamp``                    closed, with ``disconnection_reason``: dial_no_answer ->
                                     unanswered, dial_busy -> busy, dial_failed -> failed, else
                                     completed (Retell bills a connected call whatever ended it)
``duration_ms``                      / 1000 -> provider-reported seconds
``call_cost.combined_cost``          attribute ``retell_combined_cost_cents``
``call_cost.product_costs[]``        ``retell_cost_cents_<product>`` per product
``call_cost.total_duration_seconds`` ``retell_total_duration_seconds`` (the seconds Retell priced)
``llm_token_usage``                  ``retell_llm_tokens_average``, ``retell_llm_requests``
===================================  ==================================================================

``call_analyzed`` repeats the call of ``call_ended`` with the analysis added: its events have the same ids
and count once. A call that never connected (dial_*) may come without timestamps: nothing to meter.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

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

PROVIDER: Final = "retell"
SIGNATURE_HEADER: Final = "x-retell-signature"
_SIGNATURE: Final = re.compile(r"v=(\d+),d=([0-9a-f]{64})")
EVENTS: Final = frozenset({"call_started", "call_ended", "call_analyzed"})
NOT_CONNECTED: Final = {"dial_no_answer": "unanswered", "dial_busy": "busy", "dial_failed": "failed"}


def signature(body: bytes, api_key: str, timestamp_ms: int) -> str:
    """Retell's signature header for a body: ``v=<ms>,d=<hex HMAC-SHA256(key, body + str(ms))>``."""
    digest = hmac.new(api_key.encode("utf-8"), body + str(timestamp_ms).encode("ascii"), hashlib.sha256)
    return f"v={timestamp_ms},d={digest.hexdigest()}"


def verify(request: SignedRequest, api_key: str, now: datetime) -> None:
    """Raise :class:`SignatureError` unless ``x-retell-signature`` signs the body with the tenant's key
    at a moment within 5 minutes of ``now``."""
    given = request.headers.get(SIGNATURE_HEADER, "").strip()
    match = _SIGNATURE.fullmatch(given)
    if match is None:
        raise SignatureError(f"{SIGNATURE_HEADER} must read v=<ms epoch>,d=<64 hex digits>")
    stamp = int(match.group(1))
    if abs(now.timestamp() * 1000 - stamp) > TOLERANCE_SECONDS * 1000:
        raise SignatureError(f"{SIGNATURE_HEADER} is more than {TOLERANCE_SECONDS} s from the server's clock")
    if not hmac.compare_digest(signature(request.body, api_key, stamp), given):
        raise SignatureError(f"{SIGNATURE_HEADER} does not verify with the tenant's Retell API key")


def to_events(body: bytes, customer: str | None) -> Mapped:
    """The events one call webhook says (see the module's table); other webhooks carry nothing."""
    read = Reader(PROVIDER)
    decoded = json_body(PROVIDER, body)
    if not isinstance(decoded, Mapping):
        raise read.fail("body", "must be a JSON object with event and call")
    kind = read.text(decoded, "event", "event")
    if kind not in EVENTS:
        return Mapped([], ignored=f"a {kind} webhook carries nothing talktime meters")
    call = read.obj(decoded, "call", "call")
    call_id = read.text(call, "call_id", "call.call_id")
    assert call_id is not None
    reason = read.text(call, "disconnection_reason", "call.disconnection_reason", required=False)
    connected = reason not in NOT_CONNECTED
    start = read.epoch_ms(call, "start_timestamp", "call.start_timestamp", required=False)
    end = None
    if kind != "call_started":
        end = read.epoch_ms(call, "end_timestamp", "call.end_timestamp", required=connected)
    if start is None:
        if connected:
            raise read.fail("call.start_timestamp", "is required for a call that connected")
        if end is None:
            return Mapped([], ignored=f"call {call_id} never connected ({reason}) and has no timestamps")
        start = end
    record = RecordEvents(
        SOURCE_PREFIX + PROVIDER, call_id, None, common_data(customer, PROVIDER, "voice-agent", "agent")
    )
    record.add("opened", ev.OPENED, start)
    if end is None:
        return Mapped(record.events)
    status = NOT_CONNECTED.get(reason or "", "completed")
    record.add("closed", ev.CLOSED, end, status=status, attrs=_attrs(read, call, reason) or None)
    duration = read.whole(call, "duration_ms", "call.duration_ms", required=False)
    if duration is not None:
        seconds = decimal_text(Decimal(duration) / 1000)
        record.add("reported", ev.PROVIDER_REPORTED, end, seconds=seconds)
    return Mapped(record.events)


def _attrs(read: Reader, call: Mapping[str, Any], reason: str | None) -> dict[str, str]:
    attrs = {"retell_disconnection_reason": reason} if reason else {}
    cost = call.get("call_cost")
    if isinstance(cost, Mapping):
        combined = read.number(cost, "combined_cost", "call.call_cost.combined_cost", required=False)
        if combined is not None:
            attrs["retell_combined_cost_cents"] = decimal_text(combined)
        seconds = read.number(
            cost, "total_duration_seconds", "call.call_cost.total_duration_seconds", required=False
        )
        if seconds is not None:
            attrs["retell_total_duration_seconds"] = decimal_text(seconds)
        products = cost.get("product_costs") or []
        if not isinstance(products, list):
            raise read.fail("call.call_cost.product_costs", "must be an array")
        for index, item in enumerate(products):
            path = f"call.call_cost.product_costs[{index}]"
            if not isinstance(item, Mapping):
                raise read.fail(path, "must be an object")
            product = read.text(item, "product", f"{path}.product")
            cents = read.number(item, "cost", f"{path}.cost")
            assert product is not None and cents is not None
            attrs[f"retell_cost_cents_{product}"] = decimal_text(cents)
    elif cost is not None:
        raise read.fail("call.call_cost", "must be an object")
    usage = call.get("llm_token_usage")
    if isinstance(usage, Mapping):
        average = read.number(usage, "average", "call.llm_token_usage.average", required=False)
        requests = read.number(usage, "num_requests", "call.llm_token_usage.num_requests", required=False)
        if average is not None:
            attrs["retell_llm_tokens_average"] = decimal_text(average)
        if requests is not None:
            attrs["retell_llm_requests"] = decimal_text(requests)
    return attrs
