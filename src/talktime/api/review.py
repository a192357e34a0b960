"""Records held back as implausible, and a person's review of them: the HTTP routes.

``GET /v1/flagged`` lists the tenant's records its guards flag: those held back (out of ``/v1/usage`` and
the invoices) and those a person accepted, each with its reasons. ``POST /v1/reviews/{id}`` with
``{"action": "accept", "note": ...}`` accepts the record's present reasons; with ``{"action": "correct",
"fields": {...}, "note": ...}`` stores a correction event, which re-derives the record, checked again at
once (``talktime.store.reviews`` says how both are kept). ``GET /v1/acceptances`` answers the latest
acceptance of each record a person accepted, as the invoices count it: a command beside a server holding
its DuckDB store reads it with the records (``talktime.app.served``). The routes parse the request and
render the answer; the use cases are :mod:`talktime.app.review`'s (``talktime records`` and the served
dashboard's ``/flagged`` page call them too) and :func:`talktime.app.history.stored_acceptances`.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, Final

import orjson
from fastapi import Depends, FastAPI, Query, Request, Response
from fastapi import Path as InPath
from starlette.concurrency import run_in_threadpool

from talktime.api import schemas
from talktime.api.errors import json_response
from talktime.api.records_export import TENANT_HEADER
from talktime.api.scope import Reader
from talktime.app.history import stored_acceptances
from talktime.app.review import ACTIONS, flagged, moment, review
from talktime.core.records import COUNT_FIELDS, KINDS, STATUSES
from talktime.errors import InputError, RequestError

if TYPE_CHECKING:
    from talktime.core.plausibility import Guards
    from talktime.store.base import EventStore

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
ACCEPTANCES: Final[schemas.Schema] = {
    "type": "object",
    "required": ["tenant", "accepted"],
    "properties": {
        "tenant": {"type": "string", "description": "the key's tenant"},
        "accepted": {
            "type": "array",
            "description": "by id: each record a person accepted, with its latest acceptance. It counts "
            "while every reason the record has, worded as of `judged_at`, is among `reasons`",
            "items": {
                "type": "object",
                "required": ["id", "reasons", "judged_at"],
                "properties": {
                    "id": {"type": "string"},
                    "reasons": {
                        "type": "array",
                        "items": {"type": "string"},
                        "description": "the reasons accepted, word for word",
                    },
                    "judged_at": {
                        "type": "string",
                        "format": "date-time",
                        "description": "the moment the record's time checks are worded as of: when the "
                        "store first received it, or now if that is earlier",
                    },
                },
            },
        },
    },
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
    return None if value is None else moment(value, f"query parameter {name!r}")


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
    reader: Callable[..., Reader],
    *,
    guards: Guards,
    clock: Callable[[], datetime],
    idle_timeout: timedelta,
) -> None:
    """Register ``GET /v1/flagged``, ``POST /v1/reviews/{id}`` (``tenant`` authenticates: a tenant key) and
    ``GET /v1/acceptances`` (``reader``: a customer-scoped key reads its customer's)."""
    authenticated, reading = Depends(tenant), Depends(reader)

    @app.get(
        "/v1/acceptances",
        summary="The latest acceptance of each record a person accepted: what the invoices count",
        responses={
            **schemas.ok("each accepted record's latest acceptance, by id", ACCEPTANCES),
            **schemas.errors(401, 403, 422),
        },
    )
    async def get_acceptances(
        customer: Annotated[str | None, Query(description="only this customer's records")] = None,
        who: Reader = reading,
    ) -> Response:
        asked = who.customer_asked(customer)

        def run() -> dict[str, Any]:
            found = stored_acceptances(store, who.tenant, asked, clock())
            return {
                "tenant": who.tenant,
                "accepted": [
                    {"id": rid, "reasons": sorted(made.reasons), "judged_at": made.judged_at.isoformat()}
                    for rid, made in sorted(found.items())
                ],
            }

        return json_response(await run_in_threadpool(run), headers={TENANT_HEADER: who.tenant})

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
            return flagged(store, who, guards, clock(), idle_timeout, customer, begin, finish).as_dict()

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
            ).as_dict()

        return json_response(await run_in_threadpool(run))
