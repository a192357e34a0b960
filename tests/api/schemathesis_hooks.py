"""Schemathesis hooks for the contract test (loaded through ``SCHEMATHESIS_HOOKS``).

1. JSON Schema cannot say "answered no earlier than started" or "cached tokens no more than input tokens":
   the contract states those rules in words and under ``x-talktime-rules`` (``talktime.api.schemas``). A
   schema-valid event may still break them, and the server then rejects it, rightly. So the events of
   *positive* requests are put in order here, exactly by those rules and nothing else, before they are
   sent; negative requests go out untouched.
2. ``POST /v1/events`` judges each event of a batch apart: a batch with one bad event among good ones is
   answered 200, the bad one ``rejected``. Schemathesis's ``negative_data_rejection`` asks for a 4xx for
   any request that breaks the schema, which this route must not give (valid events are stored even when
   others are rejected, ``docs/ingest.md``); the contract test turns it off for this one route and checks
   instead, per event, that the server rejects exactly the events the contract calls invalid and accepts
   exactly the ones it calls valid (:func:`each_event_as_the_contract_says`), in positive and negative
   requests alike: stricter than the check it replaces.
"""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

import jsonschema_rs
import schemathesis

from talktime.api.schemas import cloud_event
from talktime.core.records import COUNT_PARTS

_TIMES = ("started_at", "answered_at", "first_audio_at", "last_audio_at", "ended_at")


def _moment(value: object) -> datetime | None:
    if not isinstance(value, str) or not value.strip():
        return None  # blank or null: absent
    return datetime.fromisoformat(value.strip())


def _order_times(data: dict[str, Any]) -> None:
    """Give the record's times, as present, in the order the record format requires (same values)."""
    present = [name for name in _TIMES if _moment(data.get(name)) is not None]
    values = sorted((data[name] for name in present), key=_moment)
    for name, value in zip(present, values, strict=True):
        data[name] = value


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)  # 5.0 is a JSON Schema integer


def _parts_within_totals(data: dict[str, Any], totals_default: int | None) -> None:
    for part, whole in COUNT_PARTS.items():
        value = data.get(part)
        if not _number(value):
            continue
        total = data.get(whole, totals_default)
        if _number(total) and value > total:
            data[part] = total


def in_order(event: Any) -> Any:
    """One event with the rules JSON Schema cannot state satisfied (times in order, parts within totals)."""
    if not isinstance(event, dict) or not isinstance(event.get("data"), dict):
        return event
    data = event["data"]
    if event.get("type") == "talktime.record":
        _order_times(data)
        _parts_within_totals(data, None)
    elif event.get("type") == "talktime.tokens":
        _parts_within_totals(data, 0)
    elif event.get("type") == "talktime.characters":
        _parts_within_totals(data, None)
    return event


@schemathesis.hook
def map_case(context: schemathesis.HookContext, case: schemathesis.Case) -> schemathesis.Case:
    positive = case.meta is not None and case.meta.generation.mode.is_positive
    if positive and case.operation.path == "/v1/events" and case.operation.method.upper() == "POST":
        body = case.body
        case.body = [in_order(e) for e in body] if isinstance(body, list) else in_order(body)
    return case


_EVENT = jsonschema_rs.validator_for(cloud_event(), validate_formats=True)


def valid_by_contract(event: Any) -> bool:
    """The event matches the contract's schema and its rules in words (times in order, parts in totals)."""
    if not _EVENT.is_valid(event):
        return False
    return bool(in_order(copy.deepcopy(event)) == event)


def _is_events_route(case: schemathesis.Case) -> bool:
    return case.operation.path == "/v1/events" and case.operation.method.upper() == "POST"


@schemathesis.check
def each_event_as_the_contract_says(
    ctx: schemathesis.CheckContext, response: schemathesis.Response, case: schemathesis.Case
) -> bool | None:
    """A batch answered per event: each event the contract calls valid accepted (or a duplicate), each it
    calls invalid rejected; 200 when any is not rejected, else 422."""
    if not _is_events_route(case) or response.status_code not in (200, 422):
        return None
    events = case.body if isinstance(case.body, list) else [case.body]
    results = response.json()["results"]
    assert len(results) == len(events), f"{len(events)} events, {len(results)} results"
    for index, (sent, result) in enumerate(zip(events, results, strict=True)):
        expected = "accepted or duplicate" if valid_by_contract(sent) else "rejected"
        answered = "rejected" if result["status"] == "rejected" else "accepted or duplicate"
        assert answered == expected, (
            f"event {index}: the contract says {expected}, the server answered {result}; event: {sent!r}"[
                :2000
            ]
        )
    rejected = sum(result["status"] == "rejected" for result in results)
    assert response.status_code == (422 if rejected == len(results) else 200)
    return True
