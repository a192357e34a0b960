"""Records held back as implausible, and a person's review of them.

``GET /v1/flagged`` lists the tenant's records its guards flag: those held back (out of ``/v1/usage`` and
the invoices) and those a person accepted, each with its reasons. ``POST /v1/reviews/{id}`` with
``{"action": "accept", "note": ...}`` accepts the record's present reasons; with ``{"action": "correct",
"fields": {...}, "note": ...}`` stores a correction event, which re-derives the record, checked again at
once (``talktime.store.reviews`` says how both are kept). The use cases (:func:`flagged`, :func:`review`)
take no HTTP, so ``talktime records`` calls them on a store it opens itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Final

import orjson
from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi import Path as InPath
from starlette.concurrency import run_in_threadpool

from talktime.api import schemas
from talktime.api.errors import json_response
from talktime.core.plausibility import Guards, check
from talktime.core.records import COUNT_FIELDS, KINDS, STATUSES, UsageRecord, record_to_row
from talktime.errors import ConflictError, InputError, NotFoundError, RecordError, RequestError
from talktime.ingest.events import parse_time
from talktime.ingest.sessionize import close_idle
from talktime.store import usage as stored_usage
from talktime.store.base import EventStore, RawEvent
from talktime.store.reviews import (
    CORRECTION,
    SOURCE,
    Judged,
    accept,
    acceptances,
    apply_fields,
    correction_data,
    correction_event_id,
)
from talktime.store.usage import RecordStore, Scope

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
ACTIONS: Final = ("accept", "correct")


def _records(store: EventStore) -> RecordStore:
    if not hasattr(store, "records_dialect"):
        raise TypeError(f"{type(store).__name__} keeps no records table")
    return store  # type: ignore[return-value]  # both stores implement RecordStore


def _judged_dict(item: Judged) -> dict[str, Any]:
    made = item.acceptance
    return {
        "id": item.record.id,
        "customer": item.record.customer,
        "started_at": item.record.started_at.isoformat(),
        "ended_at": None if item.record.ended_at is None else item.record.ended_at.isoformat(),
        "reasons": list(item.reasons),
        "accepted": None
        if made is None
        else {"at": made.at.isoformat(), "reasons": list(made.reasons), "note": made.note},
    }


def flagged(
    store: EventStore,
    tenant: str,
    guards: Guards,
    as_of: datetime,
    idle_timeout: timedelta,
    customer: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> dict[str, Any]:
    """The tenant's records its limits flag: ``held`` (not counted until reviewed) and ``accepted`` (a
    person accepted their present reasons), by id."""
    found = stored_usage.judged(
        _records(store), Scope(tenant, customer, start, end), as_of, idle_timeout, guards.limits_for(tenant)
    )
    return {
        "tenant": tenant,
        "held": [_judged_dict(j) for j in found if j.held],
        "accepted": [_judged_dict(j) for j in found if not j.held],
    }


def _current(
    store: RecordStore, tenant: str, record_id: str, as_of: datetime, idle: timedelta
) -> tuple[UsageRecord, datetime]:
    """The record as of ``as_of`` and when the store first received it; NotFoundError if there is none."""
    stored = store.stored_record(tenant, record_id)
    if stored is None:
        raise NotFoundError(f"no record {record_id!r}")
    first = "first_received" if store.records_dialect == "postgres" else "epoch_us(first_received)"
    quoted = "'" + tenant.replace("'", "''") + "'", "'" + record_id.replace("'", "''") + "'"
    ((received,),) = store.read(
        f"SELECT {first} FROM records WHERE tenant = {quoted[0]} AND id = {quoted[1]}"
    )
    moment = received if isinstance(received, datetime) else _EPOCH + timedelta(microseconds=int(received))
    return close_idle(stored.record, stored.idle_from, as_of, idle), moment


def review(
    store: EventStore,
    tenant: str,
    guards: Guards,
    record_id: str,
    action: str,
    *,
    fields: Mapping[str, Any] | None = None,
    note: str | None = None,
    at: datetime,
    idle_timeout: timedelta,
) -> dict[str, Any]:
    """Accept a flagged record's present reasons, or correct its fields (a correction event); the record
    as it now stands, its reasons and whether it is still held back."""
    records = _records(store)
    limits = guards.limits_for(tenant)
    record, received = _current(records, tenant, record_id, at, idle_timeout)
    if action == "accept":
        if fields:
            raise InputError("fields: only a correction takes fields; accept takes the record as it is")
        reasons = check(record, limits, min(received, at))
        if not reasons:
            raise ConflictError(f"record {record_id!r} breaks no limit: there is nothing to accept")
        accept(records, tenant, record_id, reasons, note, at)
    elif action == "correct":
        data = correction_data(fields or {}, note)
        stored = records.stored_record(tenant, record_id)
        assert stored is not None
        try:
            apply_fields(stored.record, data["fields"])
        except RecordError as error:  # well formed, but the stored record cannot take it
            raise ConflictError(f"fields: the corrected record would be invalid: {error}") from None
        event = RawEvent(
            SOURCE, correction_event_id(record_id, at), CORRECTION, record_id, at, orjson.dumps(data).decode()
        )
        store.append(tenant, [event])
        record, received = _current(records, tenant, record_id, at, idle_timeout)
    else:
        raise InputError(f"action: {action!r} is not one of {', '.join(ACTIONS)}")
    reasons = check(record, limits, min(received, at))
    made = acceptances(records, tenant, [record_id]).get(record_id)
    held = bool(reasons) and (made is None or not set(reasons) <= set(made.reasons))
    return {
        "id": record_id,
        "action": action,
        "held": held,
        "reasons": list(reasons),
        "fields": record_to_row(record),
    }


# --- HTTP ---------------------------------------------------------------------------------------------

_FLAGGED_ITEM: Final[schemas.Schema] = {
    "type": "object",
    "required": ["id", "customer", "started_at", "ended_at", "reasons", "accepted"],
    "properties": {
        "id": {"type": "string"},
        "customer": {"type": ["string", "null"]},
        "started_at": {"type": "string", "format": "date-time"},
        "ended_at": {"type": ["string", "null"], "format": "date-time"},
        "reasons": {
            "type": "array",
            "items": {"type": "string"},
            "description": "each limit broken, `code: what was found and the limit`",
        },
        "accepted": {
            "type": ["object", "null"],
            "description": "the latest acceptance: when, the reasons it accepted, the note",
            "required": ["at", "reasons", "note"],
            "properties": {
                "at": {"type": "string", "format": "date-time"},
                "reasons": {"type": "array", "items": {"type": "string"}},
                "note": {"type": ["string", "null"]},
            },
        },
    },
}
FLAGGED: Final[schemas.Schema] = {
    "type": "object",
    "required": ["tenant", "held", "accepted"],
    "properties": {
        "tenant": {"type": "string", "description": "the key's tenant"},
        "held": {
            "type": "array",
            "items": _FLAGGED_ITEM,
            "description": "flagged, not counted (usage, invoices) until a person accepts or corrects them",
        },
        "accepted": {
            "type": "array",
            "items": _FLAGGED_ITEM,
            "description": "flagged, counted: a person accepted every present reason",
        },
    },
}


def _nullable(schema: schemas.Schema) -> schemas.Schema:
    return {"anyOf": [schema, {"type": "null"}]}


_TIMES: Final = ("ended_at", "answered_at", "first_audio_at", "last_audio_at")
_SECONDS: Final = ("audio_seconds", "speech_seconds", "provider_reported_seconds")
#: The fields a correction may set, each as the record format takes it (null or blank: absent).
CORRECTION_FIELDS: Final[schemas.Schema] = {
    "type": "object",
    "minProperties": 1,
    "description": "record fields to set, as records files write them (null: absent); the corrected record "
    "must still be valid (times in order, parts within totals)",
    "properties": {
        **dict.fromkeys(("customer", "provider", "product", "session"), schemas.RECORD_TEXT),
        "kind": {"enum": [*sorted(KINDS), None]},
        "status": {"enum": [*sorted(STATUSES), None]},
        "started_at": schemas.TIME,
        **dict.fromkeys(_TIMES, schemas.RECORD_TIME),
        **dict.fromkeys(_SECONDS, _nullable(schemas.SECONDS)),
        "channels": _nullable({**schemas.COUNT, "minimum": 1}),
        **dict.fromkeys(COUNT_FIELDS, _nullable(schemas.COUNT)),
    },
    "patternProperties": {r"^attr\.": {"type": ["string", "null"]}},
    "additionalProperties": False,
}
_NOTE: Final[schemas.Schema] = {"type": ["string", "null"], "description": "why, kept with the review"}
REVIEW_BODY: Final[schemas.Schema] = {
    "oneOf": [
        {
            "type": "object",
            "description": "accept the record's present reasons, as they are",
            "required": ["action"],
            "properties": {"action": {"const": "accept"}, "note": _NOTE},
            "additionalProperties": False,
        },
        {
            "type": "object",
            "description": "correct the record's fields (a correction event; the record is checked again)",
            "required": ["action", "fields"],
            "properties": {"action": {"const": "correct"}, "fields": CORRECTION_FIELDS, "note": _NOTE},
            "additionalProperties": False,
        },
    ]
}
REVIEWED: Final[schemas.Schema] = {
    "type": "object",
    "required": ["id", "action", "held", "reasons", "fields"],
    "properties": {
        "id": {"type": "string"},
        "action": {"type": "string", "enum": list(ACTIONS)},
        "held": {"type": "boolean", "description": "still held back after the review"},
        "reasons": {"type": "array", "items": {"type": "string"}},
        "fields": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


def _moment(name: str, value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError as error:
        raise InputError(f"query parameter {name!r}: {error}") from None


def _body(raw: bytes) -> tuple[str, dict[str, Any] | None, str | None]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise RequestError(f"the body is not JSON: {error}") from None
    if not isinstance(body, dict):
        raise RequestError('the body must be an object: {"action": "accept" | "correct", ...}')
    problems = [
        f"{key}: is not a field of a review" for key in body if key not in ("action", "fields", "note")
    ]
    action, fields, note = body.get("action"), body.get("fields"), body.get("note")
    if action not in ACTIONS:
        problems.append(f"action: {action!r} is not one of {', '.join(ACTIONS)}")
    if action == "accept" and "fields" in body:
        problems.append("fields: only a correction takes fields; accept takes the record as it is")
    elif action == "correct" and not isinstance(fields, dict):
        problems.append("fields: must be an object of record fields")
    if note is not None and not isinstance(note, str):
        problems.append("note: must be text")
    if problems:
        raise InputError("; ".join(problems))
    return str(action), fields, note


def add_review_routes(
    app: FastAPI,
    store: EventStore,
    tenant: Callable[..., str],
    *,
    guards: Guards,
    clock: Callable[[], datetime],
    idle_timeout: timedelta,
) -> None:
    """Register ``GET /v1/flagged`` and ``POST /v1/reviews/{id}``; ``tenant`` authenticates."""
    authenticated = Depends(tenant)

    @app.get(
        "/v1/flagged",
        summary="Records the tenant's guards flag: held back until reviewed, or accepted",
        responses={
            **schemas.ok("the flagged records with their reasons, by id", FLAGGED),
            **schemas.errors(401, 403, 422, _422="a bad time"),
        },
    )
    async def get_flagged(
        customer: Annotated[str | None, Query(description="only this customer's records")] = None,
        start: Annotated[
            str | None,
            Query(
                alias="from",
                description="started at or after (ISO 8601 with offset)",
                json_schema_extra=schemas.TIME,
            ),
        ] = None,
        end: Annotated[
            str | None,
            Query(
                alias="to",
                description="started before (ISO 8601 with offset)",
                json_schema_extra=schemas.TIME,
            ),
        ] = None,
        who: str = authenticated,
    ) -> Response:
        begin, finish = _moment("from", start), _moment("to", end)

        def run() -> dict[str, Any]:
            return flagged(store, who, guards, clock(), idle_timeout, customer, begin, finish)

        return json_response(await run_in_threadpool(run))

    @app.post(
        "/v1/reviews/{record_id:path}",
        summary="Accept a flagged record's reasons, or correct its fields; it is checked again at once",
        openapi_extra={
            "requestBody": {"required": True, "content": {"application/json": {"schema": REVIEW_BODY}}}
        },
        responses={
            **schemas.ok("the record after the review: its reasons and whether it is still held", REVIEWED),
            **schemas.errors(
                400,
                401,
                403,
                404,
                409,
                422,
                _404="no such record for this tenant",
                _409="accept of a record that breaks no limit, or a correction the stored record cannot take "
                "(the corrected record would be invalid: times out of order, a part over its total)",
                _422="an unknown action or field, or a value of the wrong shape",
            ),
        },
    )
    async def post_review(
        request: Request,
        record_id: Annotated[str, InPath(min_length=1, description="the record's id; may contain /")],
        who: str = authenticated,
    ) -> Response:
        action, fields, note = _body(await request.body())

        def run() -> dict[str, Any]:
            return review(
                store,
                who,
                guards,
                record_id,
                action,
                fields=fields,
                note=note,
                at=clock(),
                idle_timeout=idle_timeout,
            )

        return json_response(await run_in_threadpool(run))
