"""The talktime events one proxied connection becomes, with ids that never change once made.

Every event of a connection names the connection (``subject``, and ``data.leg`` when the client named the
session itself), and its id is ``<connection id>/<what>`` (``c1f3.../opened``, ``.../audio.sent/2``): the id
is fixed when the event is made, so a batch sent twice, or a spilled file posted again, counts once on the
server (dedup is on source and id). ``docs/ingest.md`` lists the event types.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

#: One CloudEvent as a JSON-ready dict.
CloudEvent = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Labels:
    """Who a connection's record is. ``connection`` is unique per connection; ``subject`` the session (the
    client's ``X-Talktime-Session``, else the connection id); ``leg`` the record inside it (None when the
    subject is the connection itself)."""

    connection: str
    subject: str
    leg: str | None
    source: str
    customer: str | None = None
    provider: str | None = None
    product: str | None = None
    kind: str | None = "stream"

    def describing(self) -> dict[str, str]:
        """The record's descriptive fields, for the opened and closed events."""
        fields = {
            "customer": self.customer,
            "provider": self.provider,
            "product": self.product,
            "kind": self.kind,
        }
        return {name: value for name, value in fields.items() if value is not None}


def iso(wall_ns: int) -> str:
    """A wall-clock time in nanoseconds since the epoch as ISO 8601 UTC, to the microsecond.

    >>> iso(1_740_823_200_123_456_789)
    '2025-03-01T10:00:00.123456Z'
    """
    moment = _EPOCH + timedelta(microseconds=wall_ns // 1000)
    return moment.isoformat().replace("+00:00", "Z")


def cloud_event(labels: Labels, event_type: str, name: str, wall_ns: int, data: dict[str, Any]) -> CloudEvent:
    """The CloudEvent ``talktime.<event_type>`` of this connection, id ``<connection>/<name>``.

    >>> labels = Labels("c1", "c1", None, "talktime-proxy")
    >>> cloud_event(labels, "audio.sent", "audio.sent/1", 0, {"seconds": "1.5"})["id"]
    'c1/audio.sent/1'
    """
    body = dict(data)
    if labels.leg is not None:
        body["leg"] = labels.leg
    return {
        "specversion": "1.0",
        "id": f"{labels.connection}/{name}",
        "source": labels.source,
        "type": f"talktime.{event_type}",
        "subject": labels.subject,
        "time": iso(wall_ns),
        "data": body,
    }
