"""Builders for CloudEvents in tests: one call per event, every field overridable."""

from __future__ import annotations

from typing import Any


def event(
    type_: str,
    subject: str | None = "call-1",
    time: str | None = "2025-03-01T10:00:00Z",
    *,
    id: str | None = None,
    source: str = "/tests",
    data: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A structured-mode CloudEvent as a JSON-ready dict (``id`` defaults to type+subject+time)."""
    body: dict[str, Any] = {
        "specversion": "1.0",
        "id": id or f"{type_}:{subject}:{time}",
        "source": source,
        "type": type_,
    }
    if subject is not None:
        body["subject"] = subject
    if time is not None:
        body["time"] = time
    if data is not None:
        body["data"] = data
    return body


def record_event(record_id: str, customer: str = "acme", **fields: Any) -> dict[str, Any]:
    """A ``talktime.record`` event carrying a finished call leg (answered 47.3 s by default)."""
    data = {
        "id": record_id,
        "customer": customer,
        "kind": "leg",
        "started_at": "2025-03-01T10:00:00Z",
        "answered_at": "2025-03-01T10:00:05Z",
        "ended_at": "2025-03-01T10:00:52.3Z",
        **fields,
    }
    return event(
        "talktime.record", subject=None, time="2025-03-01T10:00:53Z", id=f"ev-{record_id}", data=data
    )
