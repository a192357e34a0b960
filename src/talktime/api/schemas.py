"""The OpenAPI contract's schemas: request bodies, answers and error answers, as JSON Schema.

Nothing here validates a request at run time: ingest keeps its own fast path (``talktime.ingest.fastpath``
and ``validate_event``), and these schemas only *describe* what it accepts, so a generated client sends
what the server takes. They are derived from the same definitions the validation uses (the lifecycle
types' pydantic models, the record format's field lists, the kinds and statuses, the built-in policy ids),
so a new field or type appears in the contract by itself. ``tests/api/test_contract.py`` runs Schemathesis
against a real server to hold the two together.

JSON Schema cannot say "no later than" or "no more than another field": those rules are in each schema's
``description`` and under ``x-talktime-rules``; a request that breaks only them is answered per event
(``rejected``, with the field and the reason) like any other invalid event.
"""

from __future__ import annotations

import copy
from typing import Any, Final

from talktime.api.errors import STATUS
from talktime.core.records import COUNT_FIELDS, COUNT_PARTS, KINDS, STATUSES
from talktime.ingest.batch import BATCH_TYPE, SINGLE_TYPE
from talktime.ingest.events import LIFECYCLE_TYPES, MAX_COUNT, RECORD, LifecycleData
from talktime.providers import builtin_ids

Schema = dict[str, Any]

#: The largest batch ``POST /v1/events`` takes (app.MAX_EVENTS; repeated here to keep imports one way).
MAX_EVENTS: Final = 10_000

_ISO: Final = r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})"
#: An ISO 8601 time with a UTC offset, as ``datetime.fromisoformat`` reads it (RFC 3339 is a subset).
TIME: Final[Schema] = {
    "type": "string",
    "format": "date-time",
    "pattern": f"^{_ISO}$",
    "description": "ISO 8601 with a UTC offset (Z or +02:00)",
    "examples": ["2025-03-01T10:00:00Z"],
}
#: Text where an event needs some (a non-empty string).
TEXT: Final[Schema] = {"type": "string", "minLength": 1}
#: Optional text of lifecycle data: a string, or null for absent.
MAYBE_TEXT: Final[Schema] = {"type": ["string", "null"]}
#: Optional text of a record: any string (blank = absent) or null.
RECORD_TEXT: Final[Schema] = {"type": ["string", "null"]}
#: An optional time of a record: a time, or blank / null for absent.
RECORD_TIME: Final[Schema] = {
    "anyOf": [
        {"type": "string", "format": "date-time", "pattern": rf"^\s*{_ISO}\s*$"},
        {"type": "string", "pattern": r"^\s*$"},
        {"type": "null"},
    ]
}
SECONDS: Final[Schema] = {
    "anyOf": [
        {"type": "number", "minimum": 0},
        {"type": "string", "pattern": r"^(0|[1-9][0-9]{0,14})(\.[0-9]{1,15})?$"},
    ],
    "description": "seconds, a finite non-negative JSON number or decimal string (exact beyond 15 digits)",
}
COUNT: Final[Schema] = {"type": "integer", "minimum": 0}
#: Counts and channels of lifecycle events stop at 2**53 - 1, exact in every JSON parser (records' do not).
EVENT_COUNT: Final[Schema] = {**COUNT, "maximum": MAX_COUNT}
POLICY_IDS: Final = tuple(builtin_ids())
CATEGORIES: Final = tuple(dict.fromkeys([*(category for _, _, category in STATUS), "method_not_allowed"]))

ERROR: Final[Schema] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["category", "message"],
            "properties": {
                "category": {"type": "string", "enum": list(CATEGORIES)},
                "message": {"type": "string"},
            },
        }
    },
}

_WHY: Final[dict[int, str]] = {
    400: "the request is refused whole: malformed JSON or a wrong shape",
    401: "no API key, an unknown or a revoked one (WWW-Authenticate: Bearer)",
    403: "a valid key whose role may not use this route (a tenant key on /v1/admin, an admin key elsewhere)",
    404: "not found for this tenant",
    413: "the body is over the size limit, or the batch has too many events",
    409: "at odds with what is stored: the message says why",
    415: "a content type the route does not read",
    422: "a field is invalid: the message names it and says why",
    503: "the event store cannot be reached",
}


#: Why a read answers 409: a stored record the policy cannot meter.
CANNOT_METER: Final = (
    "a record of the tenant's cannot be metered under this policy (e.g. no kind where the policy counts "
    "only some): the message names the record and the field"
)


def errors(*statuses: int, **why: str) -> dict[int | str, dict[str, Any]]:
    """FastAPI ``responses=`` for error answers: each status with its description and :data:`ERROR`.

    ``why`` overrides a description, keyed ``_404`` and so on."""
    answers: dict[int | str, dict[str, Any]] = {}
    for status in (*statuses, 503):
        answers[status] = {
            "description": why.get(f"_{status}", _WHY[status]),
            "content": {"application/json": {"schema": ERROR}},
        }
    return answers


def ok(description: str, schema: Schema, media: str = "application/json") -> dict[int | str, Any]:
    return {200: {"description": description, "content": {media: {"schema": schema}}}}


# --- events ------------------------------------------------------------------------------------------------


def _lifecycle_data(model: type[LifecycleData]) -> Schema:
    """``data`` of one lifecycle type, from its pydantic model (extra keys refused, as the model does)."""
    properties: dict[str, Schema] = {
        "leg": {**MAYBE_TEXT, "description": "the record inside the session; absent: the session itself"},
        "customer": MAYBE_TEXT,
        "provider": MAYBE_TEXT,
        "product": MAYBE_TEXT,
        "kind": {"enum": [*sorted(KINDS), None]},
        "attrs": {"type": "object", "additionalProperties": {"type": "string"}},
    }
    required = []
    for name, info in model.model_fields.items():
        if name in properties:
            continue
        if info.is_required():
            required.append(name)
        if name == "seconds":
            properties[name] = SECONDS
        elif name == "status":
            properties[name] = {"type": "string", "enum": sorted(STATUSES - {"open"})}
        elif name == "channels":
            properties[name] = {**EVENT_COUNT, "minimum": 1}
        elif name in COUNT_FIELDS:
            properties[name] = EVENT_COUNT
        else:
            properties[name] = TEXT
    schema: Schema = {"type": "object", "additionalProperties": False, "properties": properties}
    if required:
        schema["required"] = required
    parts = {part: whole for part, whole in COUNT_PARTS.items() if part in properties}
    if parts:
        schema["x-talktime-rules"] = [f"{part} <= {whole}" for part, whole in parts.items()]
        schema["description"] = "each part no more than its total in the event: " + ", ".join(
            f"{part} <= {whole}" for part, whole in parts.items()
        )
    return schema


def _record_data() -> Schema:
    """``data`` of ``talktime.record``: one finished usage record in the record format (docs/records.md)."""
    properties: dict[str, Schema] = {
        "id": {**TEXT, "pattern": r"\S", "description": "the record's id; absent: the event's id"},
        "customer": RECORD_TEXT,
        "provider": RECORD_TEXT,
        "product": RECORD_TEXT,
        "session": {**RECORD_TEXT, "description": "absent: the event's subject"},
        "kind": {"enum": [*sorted(KINDS), None]},
        "status": {"enum": [*sorted(STATUSES), None]},
        "started_at": TIME,
        "ended_at": RECORD_TIME,
        "answered_at": RECORD_TIME,
        "first_audio_at": RECORD_TIME,
        "last_audio_at": RECORD_TIME,
        "audio_seconds": SECONDS,
        "speech_seconds": SECONDS,
        "provider_reported_seconds": SECONDS,
        "channels": {**COUNT, "minimum": 1},
        **dict.fromkeys(COUNT_FIELDS, COUNT),
        "attrs": {"type": "object", "additionalProperties": {"type": "string"}},
    }
    rules = [
        "started_at <= answered_at, first_audio_at, last_audio_at <= ended_at",
        "first_audio_at <= last_audio_at",
        *(f"{part} <= {whole}" for part, whole in COUNT_PARTS.items()),
    ]
    return {
        "type": "object",
        "description": "one finished usage record; times in order and parts within totals: "
        + "; ".join(rules),
        "x-talktime-rules": rules,
        "required": ["started_at"],
        "properties": properties,
        "patternProperties": {r"^attr\.": {"type": "string"}},
        "additionalProperties": False,
        # a record needs its end unless it is open (an ended_at blank or null is absent)
        "anyOf": [
            {"required": ["ended_at"], "properties": {"ended_at": TIME}},
            {"required": ["status"], "properties": {"status": {"const": "open"}}},
        ],
    }


def _envelope(event_type: str, data: Schema, lifecycle: bool) -> Schema:
    properties: dict[str, Schema] = {
        "specversion": {"type": "string", "const": "1.0"},
        "id": TEXT,
        "source": TEXT,
        "type": {"type": "string", "const": event_type},
        "subject": {**TEXT, "description": "the session (the call or room)"},
        "time": TIME,
        "datacontenttype": {"enum": ["application/json", None]},
        "data": data,
    }
    required = ["specversion", "id", "source", "type"]
    if lifecycle:
        required += ["subject", "time"]
    if not lifecycle or data.get("required"):
        required.append("data")
    return {
        "type": "object",
        "title": event_type,
        "required": required,
        "properties": properties,
        "description": "extension attributes are allowed and ignored",
    }


def cloud_event() -> Schema:
    """One CloudEvent 1.0 (structured JSON) of any talktime type, told apart by ``type``."""
    branches = [_envelope(RECORD, _record_data(), lifecycle=False)]
    for name, model in LIFECYCLE_TYPES.items():
        data = _lifecycle_data(model)
        if not data.get("required"):
            data = {"anyOf": [data, {"type": "null"}]}
        branches.append(_envelope(name, data, lifecycle=True))
    return {"oneOf": branches}


def events_body() -> Schema:
    """``POST /v1/events``'s requestBody: a batch, one event, or either as plain JSON."""
    event = cloud_event()
    batch: Schema = {"type": "array", "items": event, "minItems": 1, "maxItems": MAX_EVENTS}
    return {
        "required": True,
        "description": f"CloudEvents 1.0, structured JSON: an array of up to {MAX_EVENTS} events or one "
        "event; events are checked one by one (the answer says per event: accepted, duplicate, rejected)",
        "content": {
            BATCH_TYPE: {"schema": batch},
            SINGLE_TYPE: {"schema": copy.deepcopy(event)},
            "application/json": {"schema": {"anyOf": [copy.deepcopy(batch), copy.deepcopy(event)]}},
        },
    }


_ISSUE: Final[Schema] = {
    "type": "object",
    "required": ["field", "reason"],
    "properties": {"field": {"type": "string"}, "reason": {"type": "string"}},
}
BATCH_RESULT: Final[Schema] = {
    "type": "object",
    "required": ["accepted", "duplicate", "rejected", "results"],
    "properties": {
        "accepted": {"type": "integer", "minimum": 0},
        "duplicate": {"type": "integer", "minimum": 0},
        "rejected": {"type": "integer", "minimum": 0},
        "results": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["index", "status"],
                "properties": {
                    "index": {"type": "integer", "minimum": 0},
                    "status": {"type": "string", "enum": ["accepted", "duplicate", "rejected"]},
                    "id": {},
                    "source": {},
                    "errors": {"type": "array", "items": _ISSUE},
                },
            },
        },
    },
}

# --- usage, records, invoices, webhooks --------------------------------------------------------------------

_DECIMAL: Final[Schema] = {"type": ["string", "null"], "description": "an exact decimal, as text"}
_TOTALS: Final[Schema] = {
    "type": "object",
    "required": ["records", "actual_seconds", "billable_seconds", "billable_quantity", "unit", "meters"],
    "properties": {
        "records": {"type": "integer"},
        "actual_seconds": _DECIMAL,
        "provider_reported_seconds": _DECIMAL,
        "billable_seconds": _DECIMAL,
        "billable_quantity": _DECIMAL,
        "unit": {"type": "string"},
        "meters": {"type": "object"},
    },
}
USAGE: Final[Schema] = {
    "type": "object",
    "required": ["policy", "customer", "from", "to", "totals", "open", "with_flags", "held"],
    "properties": {
        "policy": {"type": "string", "enum": list(POLICY_IDS)},
        "customer": {"type": ["string", "null"]},
        "from": {"type": ["string", "null"]},
        "to": {"type": ["string", "null"]},
        "totals": _TOTALS,
        "open": {"type": "array", "items": {"type": "string"}},
        "with_flags": {
            "type": "array",
            "description": "records counted in the totals whose events sessionize flagged (contradicting "
            "values, closed by the idle timeout): GET /v1/records/{id} shows the flags",
            "items": {"type": "string"},
        },
        "held": {
            "type": "array",
            "description": "records the tenant's plausibility guards flag, left out of the totals until a "
            "person accepts or corrects them (POST /v1/reviews/{id})",
            "items": {
                "type": "object",
                "required": ["id", "reasons"],
                "properties": {
                    "id": {"type": "string"},
                    "reasons": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}
RECORD_ANSWER: Final[Schema] = {
    "type": "object",
    "description": "the record as `talktime meter --format json` prints it, plus its sessionization",
    "required": ["id", "status", "flags", "held", "reasons", "events", "fields"],
    "properties": {
        "id": {"type": "string"},
        "status": {"type": "string", "enum": sorted(STATUSES)},
        "flags": {"type": "array", "items": {"type": "string"}},
        "held": {
            "type": "boolean",
            "description": "true: the plausibility guards keep it out of usage and invoices until a person "
            "accepts or corrects it",
        },
        "reasons": {"type": "array", "items": {"type": "string"}, "description": "every limit it breaks"},
        "events": {},
        "fields": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}
INVOICE: Final[Schema] = {
    "type": "object",
    "description": "an invoice (talktime.core.invoicing.serialize.invoice_dict): every line shows actual "
    "and billable quantities",
    "required": ["customer", "period", "status", "lines"],
    "properties": {
        "customer": {"type": "string"},
        "period": {"type": "string"},
        "status": {"type": "string"},
        "lines": {"type": "array"},
    },
}
WEBHOOK_ANSWER: Final[Schema] = {
    "type": "object",
    "required": ["provider", "accepted", "duplicate", "records", "ignored"],
    "properties": {
        "provider": {"type": "string"},
        "accepted": {"type": "integer", "minimum": 0},
        "duplicate": {"type": "integer", "minimum": 0},
        "records": {"type": "array", "items": {"type": "string"}},
        "ignored": {"type": ["string", "null"]},
    },
}
WEBHOOK_BODY: Final[Schema] = {
    "required": True,
    "description": "the provider's callback as it sends it: form fields (Twilio) or JSON (Telnyx, Vapi, "
    "Retell), signed with the tenant's secret (see docs/webhooks.md)",
    "content": {
        "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
        "application/json": {"schema": {"type": "object"}},
    },
}

# --- keys --------------------------------------------------------------------------------------------------

KEY_ID: Final[Schema] = {"type": "string", "pattern": r"^k_[0-9a-f]{12}$", "examples": ["k_3f2a9c0d41be"]}
KEY_INFO: Final[Schema] = {
    "type": "object",
    "required": ["id", "tenant", "label", "admin", "created_at", "revoked_at"],
    "properties": {
        "id": KEY_ID,
        "tenant": {"type": "string"},
        "label": {"type": ["string", "null"]},
        "admin": {"type": "boolean"},
        "created_at": {"type": "string", "format": "date-time"},
        "revoked_at": {"type": ["string", "null"], "format": "date-time"},
        "customer": {
            "type": ["string", "null"],
            "description": "a customer-scoped key: reads only this customer's usage, records and invoices",
        },
    },
}
KEY_LIST: Final[Schema] = {
    "type": "object",
    "required": ["keys"],
    "properties": {"keys": {"type": "array", "items": KEY_INFO}},
}
NEW_KEY: Final[Schema] = {
    "type": "object",
    "required": ["key", "info"],
    "properties": {
        "key": {"type": "string", "description": "the key itself: shown in this answer only, never again"},
        "info": KEY_INFO,
        "replaces": {**KEY_INFO, "description": "the key this one rotated out (revoked)"},
    },
}


def tidy(document: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI document as FastAPI makes it, with what it gets wrong for this API put right.

    * An optional query or path parameter is absent, never JSON null: ``anyOf [X, null]`` becomes X (with
      the constraints FastAPI put beside the ``anyOf``).
    * FastAPI's own 422 schema (``HTTPValidationError``) is never answered: every 422 is :data:`ERROR`.
    """
    for item in document.get("paths", {}).values():
        for operation in item.values():
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                branches = schema.get("anyOf")
                if isinstance(branches, list) and {"type": "null"} in branches and len(branches) == 2:
                    (kept,) = [b for b in branches if b != {"type": "null"}]
                    rest = {k: v for k, v in schema.items() if k != "anyOf"}
                    parameter["schema"] = {**kept, **rest}
            answer = operation.get("responses", {}).get("422", {})
            content = answer.get("content", {}).get("application/json", {})
            if "$ref" in content.get("schema", {}):
                content["schema"] = ERROR
    components = document.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    return document
