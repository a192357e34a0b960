"""What every provider module shares: the signed request, the two errors, field readers and the event builder.

A provider module turns one verified callback into talktime lifecycle events (``docs/ingest.md``). Their ids
are ``<record>/<what>`` (``CA42/answered``, ``abc/llm/tokens``), derived only from the provider's call id and
the kind of fact, never from the callback that carried it: a retried callback, or two callbacks that both
tell when the call was answered, give the same id, and the store's dedup on (tenant, source, id) keeps the
first. So retries and callbacks out of order count once, and a fact stated twice is stored once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import orjson

from talktime.core.decimals import text as plain_text
from talktime.errors import AuthError, InputError, RequestError

#: Every webhook event's CloudEvents ``source`` is this plus the provider's name.
SOURCE_PREFIX: Final = "/webhooks/"
#: Signed timestamps older or newer than this are refused (Telnyx and Retell use 5 minutes).
TOLERANCE_SECONDS: Final = 300


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """A callback as it arrived: the URL the provider called, headers (lower-case names), the raw body."""

    url: str
    headers: Mapping[str, str]
    body: bytes


class SignatureError(AuthError):
    """The callback's signature (or shared secret) does not verify: answered 401, nothing stored."""


class PayloadError(InputError):
    """A verified callback that lacks a field talktime needs, or has it in the wrong type (answered 422)."""

    def __init__(self, provider: str, path: str, why: str) -> None:
        self.provider = provider
        self.path = path
        self.why = why
        super().__init__(f"{provider} webhook: field {path!r}: {why}")


@dataclass(frozen=True, slots=True)
class Mapped:
    """What a callback becomes: CloudEvents to store, or none and the reason it carries nothing to meter."""

    events: list[dict[str, Any]]
    ignored: str | None = None


def json_body(provider: str, body: bytes) -> Any:
    """The decoded JSON body, or a 400 naming the provider (:class:`Reader` reads a float through its
    shortest text, so ``0.0123`` is exactly 0.0123)."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise RequestError(f"{provider} webhook: the body is not valid JSON: {error}") from None


class Reader:
    """Typed reads of one provider's payload; a missing or mistyped field raises :class:`PayloadError`
    with its full path (``call.start_timestamp``)."""

    def __init__(self, provider: str) -> None:
        self.provider = provider

    def fail(self, path: str, why: str) -> PayloadError:
        return PayloadError(self.provider, path, why)

    def obj(self, parent: Mapping[str, Any], key: str, path: str) -> Mapping[str, Any]:
        value = parent.get(key)
        if not isinstance(value, Mapping):
            raise self.fail(
                path, "is required and must be an object" if value is None else "must be an object"
            )
        return value

    def text(self, parent: Mapping[str, Any], key: str, path: str, *, required: bool = True) -> str | None:
        value = parent.get(key)
        if value is None or value == "":
            if required:
                raise self.fail(path, "is required")
            return None
        if not isinstance(value, str):
            raise self.fail(path, f"must be a string, got {value!r}")
        return value

    def number(
        self, parent: Mapping[str, Any], key: str, path: str, *, required: bool = True
    ) -> Decimal | None:
        """A JSON number or a numeric string, as an exact Decimal (floats through their shortest text)."""
        value = parent.get(key)
        if value is None or value == "":
            if required:
                raise self.fail(path, "is required")
            return None
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise self.fail(path, f"must be a number, got {value!r}")
        try:
            parsed = Decimal(repr(value) if isinstance(value, float) else str(value).strip())
        except InvalidOperation:
            raise self.fail(path, f"must be a number, got {value!r}") from None
        if not parsed.is_finite() or parsed < 0:
            raise self.fail(path, f"must be a finite number, not negative, got {value!r}")
        return parsed

    def whole(self, parent: Mapping[str, Any], key: str, path: str, *, required: bool = True) -> int | None:
        """A count: a number with no fraction (``12`` or ``12.0``)."""
        value = self.number(parent, key, path, required=required)
        if value is None:
            return None
        if value != value.to_integral_value():
            raise self.fail(path, f"must be a whole number, got {plain_text(value)}")
        return int(value)

    def iso_time(
        self, parent: Mapping[str, Any], key: str, path: str, *, required: bool = True
    ) -> datetime | None:
        """An ISO 8601 timestamp with an offset."""
        value = self.text(parent, key, path, required=required)
        if value is None:
            return None
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise self.fail(path, f"{value!r} is not an ISO 8601 timestamp") from None
        if parsed.utcoffset() is None:
            raise self.fail(path, f"{value!r} has no UTC offset")
        return parsed

    def epoch_ms(
        self, parent: Mapping[str, Any], key: str, path: str, *, required: bool = True
    ) -> datetime | None:
        """Milliseconds since the Unix epoch, as an aware UTC datetime (exact to the millisecond)."""
        millis = self.whole(parent, key, path, required=required)
        if millis is None:
            return None
        return datetime.fromtimestamp(millis // 1000, UTC).replace(microsecond=(millis % 1000) * 1000)


def decimal_text(value: Decimal) -> str:
    """A decimal as the plain text attributes and seconds are sent in (``0.0123``, ``49``)."""
    return plain_text(value)


@dataclass(slots=True)
class RecordEvents:
    """The events of one record (a call, or one leg of it), built with ids that depend only on the record.

    ``subject`` is the session (the provider's call id); ``leg`` the record inside it, or None for the
    session itself. ``common`` goes into every event's ``data`` (customer, provider, product, kind).
    """

    source: str
    subject: str
    leg: str | None
    common: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)

    def add(self, what: str, type_: str, time: datetime, **data: Any) -> None:
        """One event: ``what`` names the fact (opened, answered, closed, reported, tokens...)."""
        record = self.subject if self.leg is None else f"{self.subject}/{self.leg}"
        body = {**self.common, **{k: v for k, v in data.items() if v is not None}}
        if self.leg is not None:
            body["leg"] = self.leg
        self.events.append(
            {
                "specversion": "1.0",
                "id": f"{record}/{what}",
                "source": self.source,
                "type": type_,
                "subject": self.subject,
                "time": time.isoformat(),
                "data": body,
            }
        )


def common_data(customer: str | None, provider: str, product: str | None, kind: str) -> dict[str, Any]:
    """The ``data`` fields every event of a record carries (absent customer or product left out)."""
    found = {"customer": customer, "provider": provider, "product": product, "kind": kind}
    return {key: value for key, value in found.items() if value is not None}
