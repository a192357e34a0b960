"""A request body turned into the rows to store and the per-event verdicts, with no store in sight.

:func:`prepare_body` is everything of ``POST /v1/events`` that needs only the bytes: decode the JSON, check
every event (the fast path, else the full validation, see :mod:`talktime.ingest.fastpath`), drop repeats
inside the batch, and lay the valid events out as one Arrow table, with the record each event feeds, a
record event's record row and, given the tenant, the embedded store's hashes of each row
(:mod:`talktime.store.key_hashes`): work a store would otherwise do after decoding the data again. It is a
pure function of its arguments, so ``talktime serve --workers N`` runs it in worker processes (the
server's one process is otherwise bound by the GIL) while the store, the only writer, stays in the server
process. A :class:`Prepared` pickles cheaply: the rows travel as Arrow buffers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson
import pyarrow as pa

from talktime.errors import PayloadTooLargeError, RequestError, UnsupportedMediaError
from talktime.ingest.events import validate_event
from talktime.ingest.fastpath import quick_check
from talktime.store.base import ROWS_SCHEMA
from talktime.store.key_hashes import with_hashes
from talktime.store.records import PLAIN_ROW, json_text, record_columns

BATCH_TYPE: Final = "application/cloudevents-batch+json"
SINGLE_TYPE: Final = "application/cloudevents+json"

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND: Final = timedelta(microseconds=1)


#: :data:`~talktime.store.base.ROWS_SCHEMA` and what a store would otherwise derive from each event's data,
#: here where the data is decoded already (:func:`talktime.store.records.record_columns`).
PREPARED_SCHEMA: Final = ROWS_SCHEMA.append(pa.field("rid", pa.string())).append(pa.field("plain", PLAIN_ROW))


@dataclass(frozen=True, slots=True)
class Rejected:
    """An event refused, with what the answer says about it."""

    index: int
    is_object: bool
    id: Any
    source: Any
    errors: list[dict[str, str]]


@dataclass(frozen=True, slots=True)
class Prepared:
    """A checked batch: ``rows`` to store (no two with the same source and id), ``repeats`` (indexes of
    events equal in (source, id) to an earlier one of the batch: duplicates whatever the store says),
    and the rejected events."""

    count: int
    rows: pa.Table
    repeats: list[tuple[int, str, str]]  # index, source, id
    rejected: list[Rejected]


def decode_batch(content_type: str, body: bytes, max_events: int) -> list[Any]:
    """The events of a request body, or the 4xx error that refuses the request whole."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media not in (BATCH_TYPE, SINGLE_TYPE, "application/json"):
        raise UnsupportedMediaError(
            f"content type {media or '(none)'!r} is not accepted; send {BATCH_TYPE} (an array of events), "
            f"{SINGLE_TYPE} or application/json"
        )
    try:
        decoded = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise RequestError(f"the body is not valid JSON: {error}") from None
    if media == BATCH_TYPE and not isinstance(decoded, list):
        raise RequestError(f"a {BATCH_TYPE} body must be a JSON array of events")
    if media == SINGLE_TYPE and not isinstance(decoded, dict):
        raise RequestError(f"a {SINGLE_TYPE} body must be one JSON object")
    items = decoded if isinstance(decoded, list) else [decoded]
    if not isinstance(decoded, list | dict):
        raise RequestError("the body must be an event object or an array of events")
    if not items:
        raise RequestError("the batch is empty")
    if len(items) > max_events:
        raise PayloadTooLargeError(f"the batch has {len(items)} events; at most {max_events} are accepted")
    return items


def prepare_items(items: Sequence[Any], tenant: str | None = None) -> Prepared:
    """Check every event and lay out the valid ones (see the module's docstring); with ``tenant``, the
    rows carry their hashes for that tenant (a store given them for another computes its own)."""
    pos: list[int] = []
    sources: list[str] = []
    ids: list[str] = []
    types: list[str] = []
    subjects: list[str | None] = []
    times: list[int | None] = []
    datas: list[str] = []
    payloads: list[Any] = []
    repeats: list[tuple[int, str, str]] = []
    rejected: list[Rejected] = []
    seen: set[tuple[str, str]] = set()
    dumps = orjson.dumps
    for index, item in enumerate(items):
        envelope = quick_check(item)
        if envelope is None:
            checked = validate_event(item)
            event = checked.event
            if event is None:
                is_object = isinstance(item, dict)
                rejected.append(
                    Rejected(
                        index,
                        is_object,
                        item.get("id") if is_object else None,
                        item.get("source") if is_object else None,
                        [issue.as_dict() for issue in checked.issues],
                    )
                )
                continue
            source, event_id, event_type, subject, time = (
                event.source,
                event.id,
                event.type,
                event.subject,
                event.time,
            )
        else:
            source, event_id, event_type, subject, time = envelope
        key = (source, event_id)
        if key in seen:
            repeats.append((index, source, event_id))
            continue
        seen.add(key)
        pos.append(index)
        sources.append(source)
        ids.append(event_id)
        types.append(event_type)
        subjects.append(subject)
        times.append(None if time is None else (time - _EPOCH) // _MICROSECOND)
        payload = item.get("data")
        payloads.append(payload)
        try:
            datas.append(dumps(payload).decode())
        except TypeError:  # a whole number past 64 bits, which orjson refuses
            datas.append(json_text(payload))
    rids, plain = record_columns(types, ids, subjects, datas, payloads)
    rows = pa.Table.from_arrays(
        [
            pa.array(pos, pa.int64()),
            pa.array(sources, pa.string()),
            pa.array(ids, pa.string()),
            pa.array(types, pa.string()),
            pa.array(subjects, pa.string()),
            pa.array(times, pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            pa.array(datas, pa.string()),
            rids,
            plain,
        ],
        schema=PREPARED_SCHEMA,
    )
    if tenant is not None:
        rows = with_hashes(tenant, rows, sources, ids)
    return Prepared(len(items), rows, repeats, rejected)


def prepare_body(content_type: str, body: bytes, max_events: int, tenant: str | None = None) -> Prepared:
    """:func:`decode_batch` then :func:`prepare_items`: one call, so a worker process can do both."""
    return prepare_items(decode_batch(content_type, body, max_events), tenant)
