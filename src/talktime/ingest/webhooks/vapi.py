"""Vapi ``end-of-call-report`` server messages -> a record per modality of the call.

Authentication: Vapi sends the server secret in ``X-Vapi-Secret`` (the legacy inline secret, or a Bearer
credential configured with that header and no prefix) or, with a Bearer Token credential,
``Authorization: Bearer <token>``. talktime keeps only the secret's sha256 and compares hashes in
constant time. Vapi's HMAC and OAuth 2.0 credentials are not supported.

Mapping of ``message`` (costs are US DOLLARS, minutes are MINUTES):

=============================  ===========================================================================
``call.id``                    the session; the call itself is record ``<id>`` (kind agent)
``startedAt``, ``endedAt``     the call's start and end (``message.call.startedAt`` when absent)
``endedReason``                customer-did-not-answer -> unanswered, customer-busy -> busy,
                               ...failed-to-connect... and call.start.error... -> failed, else completed
                               (Vapi bills a connected call whatever ended it); kept as
                               ``vapi_ended_reason``
``costs[type=vapi].minutes``   x 60 -> the call's provider-reported seconds (the platform minutes)
``costs[type=transport]``      attributes of the call: ``vapi_transport_provider``, ``..._minutes``,
                               ``..._cost_usd``
``costs[type=transcriber]``    record ``<id>/transcriber`` (kind stream, over the call): minutes x 60 ->
                               provider-reported and audio seconds; ``attr.transcriber`` = its provider
``costs[type=model]``          record ``<id>/llm`` (kind llm): ``promptTokens`` -> input_tokens,
                               ``cachedPromptTokens`` -> cached_input_tokens, ``completionTokens`` ->
                               output_tokens
``costs[type=voice]``          record ``<id>/tts`` (kind tts): ``characters``
any ``cost``                   ``vapi_cost_usd`` on its record; ``message.cost`` on the call
=============================  ===========================================================================

LLM and TTS records start and end at the call's start: their quantities are counts, and a zero span keeps
a per-minute policy that counts every kind (``vapi``) from billing them as minutes. Squad calls have one
cost of a type per assistant: the second is ``<id>/llm-2``, and so on.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any, Final

from talktime.ingest import events as ev
from talktime.ingest.webhooks.base import (
    SOURCE_PREFIX,
    Mapped,
    Reader,
    RecordEvents,
    SignatureError,
    SignedRequest,
    common_data,
    decimal_text,
    json_body,
)

PROVIDER: Final = "vapi"
SECRET_HEADER: Final = "x-vapi-secret"
SIXTY: Final = Decimal(60)
#: Cost types that become records of their own, and the leg name of the first of each.
MODALITY_LEGS: Final = {"transcriber": "transcriber", "model": "llm", "voice": "tts"}


def hash_secret(secret: str) -> str:
    """The stored form of a Vapi server secret: hex sha256 (the secret itself is never kept)."""
    return hashlib.sha256(secret.strip().encode("utf-8")).hexdigest()


def verify(request: SignedRequest, secret_hash: str) -> None:
    """Raise :class:`SignatureError` unless ``X-Vapi-Secret`` or the Bearer token is the tenant's secret."""
    offered = [request.headers.get(SECRET_HEADER, "")]
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        offered.append(token)
    if not any(offered):
        raise SignatureError(f"send the Vapi server secret in {SECRET_HEADER} or Authorization: Bearer")
    matches = [hmac.compare_digest(hash_secret(value), secret_hash) for value in offered if value]
    if not any(matches):
        raise SignatureError("the Vapi server secret does not match the tenant's")


def _status(reason: str) -> str:
    if "did-not-answer" in reason:
        return "unanswered"
    if "customer-busy" in reason:
        return "busy"
    if "failed-to-connect" in reason or reason.startswith("call.start.error"):
        return "failed"
    return "completed"


def to_events(body: bytes, customer: str | None) -> Mapped:
    """The records one end-of-call report says (see the module's table); other messages carry nothing."""
    read = Reader(PROVIDER)
    decoded = json_body(PROVIDER, body)
    if not isinstance(decoded, Mapping):
        raise read.fail("body", "must be a JSON object with a message object")
    message = read.obj(decoded, "message", "message")
    kind = read.text(message, "type", "message.type")
    if kind != "end-of-call-report":
        return Mapped([], ignored=f"a {kind} message carries nothing talktime meters")
    call = read.obj(message, "call", "message.call")
    call_id = read.text(call, "id", "message.call.id")
    start = read.iso_time(message, "startedAt", "message.startedAt", required=False) or read.iso_time(
        call, "startedAt", "message.startedAt"
    )
    end = read.iso_time(message, "endedAt", "message.endedAt", required=False) or read.iso_time(
        call, "endedAt", "message.endedAt"
    )
    reason = read.text(message, "endedReason", "message.endedReason", required=False) or read.text(
        call, "endedReason", "message.call.endedReason", required=False
    )
    assert call_id is not None and start is not None and end is not None
    costs = message.get("costs") or []
    if not isinstance(costs, list):
        raise read.fail("message.costs", "must be an array")
    source = SOURCE_PREFIX + PROVIDER
    main = RecordEvents(source, call_id, None, common_data(customer, PROVIDER, "voice-agent", "agent"))
    attrs: dict[str, str] = {}
    if reason:
        attrs["vapi_ended_reason"] = reason
    total = read.number(message, "cost", "message.cost", required=False)
    if total is not None:
        attrs["vapi_cost_usd"] = decimal_text(total)
    platform = Decimal(0)
    platform_seen = False
    seen: dict[str, int] = {}
    records: list[RecordEvents] = []
    for index, item in enumerate(costs):
        path = f"message.costs[{index}]"
        if not isinstance(item, Mapping):
            raise read.fail(path, "must be an object")
        cost_type = read.text(item, "type", f"{path}.type")
        assert cost_type is not None
        cost = read.number(item, "cost", f"{path}.cost", required=False)
        if cost_type in MODALITY_LEGS:
            seen[cost_type] = seen.get(cost_type, 0) + 1
            number = seen[cost_type]
            leg = MODALITY_LEGS[cost_type] + ("" if number == 1 else f"-{number}")
            records.append(
                _modality(read, item, path, cost_type, leg, cost, source, call_id, customer, start, end)
            )
        elif cost_type == "vapi":
            platform += _required_number(read, item, "minutes", path) * SIXTY
            platform_seen = True
            _add_cost(attrs, "vapi_platform_cost_usd", cost)
        elif cost_type == "transport":
            provider = read.text(item, "provider", f"{path}.provider", required=False)
            if provider:
                attrs["vapi_transport_provider"] = provider
            minutes = read.number(item, "minutes", f"{path}.minutes", required=False)
            if minutes is not None:
                attrs["vapi_transport_minutes"] = decimal_text(minutes)
            _add_cost(attrs, "vapi_transport_cost_usd", cost)
        else:
            _add_cost(attrs, f"vapi_{cost_type.replace('-', '_')}_cost_usd", cost)
    main.add("opened", ev.OPENED, start)
    main.add("closed", ev.CLOSED, end, status=_status(reason or ""), attrs=attrs or None)
    if platform_seen:
        main.add("reported", ev.PROVIDER_REPORTED, end, seconds=decimal_text(platform))
    return Mapped([event for record in (main, *records) for event in record.events])


def _required_number(read: Reader, item: Mapping[str, Any], key: str, path: str) -> Decimal:
    value = read.number(item, key, f"{path}.{key}")
    assert value is not None
    return value


def _add_cost(attrs: dict[str, str], name: str, cost: Decimal | None) -> None:
    if cost is None:
        return
    before = Decimal(attrs[name]) if name in attrs else Decimal(0)
    attrs[name] = decimal_text(before + cost)


def _modality(
    read: Reader,
    item: Mapping[str, Any],
    path: str,
    cost_type: str,
    leg: str,
    cost: Decimal | None,
    source: str,
    call_id: str,
    customer: str | None,
    start: datetime,
    end: datetime,
) -> RecordEvents:
    """The record of one transcriber, model or voice cost."""
    config_key = {"transcriber": "transcriber", "model": "model", "voice": "voice"}[cost_type]
    config = item.get(config_key)
    config = config if isinstance(config, Mapping) else {}
    provider = read.text(config, "provider", f"{path}.{config_key}.provider", required=False)
    product = read.text(config, "model", f"{path}.{config_key}.model", required=False) or read.text(
        config, "voiceId", f"{path}.{config_key}.voiceId", required=False
    )
    kind = {"transcriber": "stream", "model": "llm", "voice": "tts"}[cost_type]
    record = RecordEvents(source, call_id, leg, common_data(customer, provider or PROVIDER, product, kind))
    attrs = {"vapi_cost_usd": decimal_text(cost)} if cost is not None else {}
    if cost_type == "transcriber":
        seconds = decimal_text(_required_number(read, item, "minutes", path) * SIXTY)
        if provider:
            attrs["transcriber"] = provider
        record.add("opened", ev.OPENED, start)
        record.add("closed", ev.CLOSED, end, attrs=attrs or None)
        record.add("reported", ev.PROVIDER_REPORTED, end, seconds=seconds)
        record.add("audio", ev.AUDIO_SENT, end, seconds=seconds)
        return record
    record.add("opened", ev.OPENED, start)
    record.add("closed", ev.CLOSED, start, attrs=attrs or None)
    if cost_type == "model":
        prompt = read.whole(item, "promptTokens", f"{path}.promptTokens")
        cached = read.whole(item, "cachedPromptTokens", f"{path}.cachedPromptTokens", required=False)
        output = read.whole(item, "completionTokens", f"{path}.completionTokens")
        assert prompt is not None
        if cached is not None and cached > prompt:
            raise read.fail(f"{path}.cachedPromptTokens", f"{cached} is more than promptTokens {prompt}")
        record.add(
            "tokens", ev.TOKENS, end, input_tokens=prompt, output_tokens=output, cached_input_tokens=cached
        )
    else:
        characters = read.whole(item, "characters", f"{path}.characters")
        record.add("characters", ev.CHARACTERS, end, characters=characters)
    return record
