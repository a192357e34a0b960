"""Deepgram management API: ``GET /v1/projects/{project_id}/requests`` (usage requests) JSON page.

Shape (Deepgram's SDK type ``GetProjectUsageRequestsResponse``): ``{"page", "limit", "requests": [{
"request_id", "created", "path", "api_key_id", "response": {"details": {"usd", "duration", "total_audio",
"channels", "streams", "models", "method", ...}, "code", "completed"}}]}``. ``duration`` is seconds of audio
(a JSON number, read exactly and rounded half-even to the microsecond), ``usd`` the charge (rounded to
10 places). A response ``code`` other than 2xx is a failed request. ``created`` is ISO 8601 in UTC.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pyarrow as pa

from talktime.importers._text import MICRO, load_json, text, utc_if_naive
from talktime.importers.base import Reading, normalize, raw_table

_MONEY = Decimal("1e-10")


def _table(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def read_json(data: bytes, where: str) -> pa.Table:
    """Usage requests as statement lines (one per request_id)."""
    rows = []
    for index, request in enumerate(load_json(data, where, "requests")):
        item = _table(request)
        response = _table(item.get("response"))
        details = _table(response.get("details"))
        code = response.get("code")
        failed = code is not None and not str(code).startswith("2")
        created = utc_if_naive(text(item.get("created")))
        rows.append(
            {
                "line": str(index),
                "id": text(item.get("request_id")),
                "started_at": created,
                "duration": text(details.get("duration"), MICRO) or ("0" if failed else None),
                "channels": text(details.get("channels")),
                "status": "failed" if failed else "completed",
                "amount": text(details.get("usd"), _MONEY),
                "currency": "USD" if details.get("usd") is not None else None,
            }
        )
    reading = Reading(
        where=lambda n: f"{where} requests[{n}]",
        field_names={
            "id": "request_id",
            "started_at": "created",
            "duration": "response.details.duration",
            "channels": "response.details.channels",
            "amount": "response.details.usd",
        },
    )
    return normalize(raw_table(rows), reading)
