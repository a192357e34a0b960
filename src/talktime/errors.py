"""Every error talktime raises on purpose, under one root.

    TalktimeError                      root: catch this to catch everything talktime means to raise
    ├── InputError (ValueError)        bad input a user can fix; the CLI prints it on one line, exit code 2
    │   ├── RecordError                a usage record breaks the record format (names source, row, id, field)
    │   ├── PolicyError                a metering policy is invalid or unknown (names file, key)
    │   ├── StatementError             a provider statement line is unreadable (names file, line, field)
    │   ├── RequestError               an HTTP request refused whole: malformed JSON, wrong shape (API: 400)
    │   │   └── PayloadTooLargeError   a body over the size limit or too many events (API: 413)
    │   ├── UnsupportedMediaError      a body in a content type the API does not read (API: 415)
    │   ├── ConflictError              at odds with what is stored: rotating a revoked key (API: 409)
    │   ├── RateCardError              a cost or price card is invalid (names card, key; core.rating.cards)
    │   ├── AlertConfigError           an alert configuration is invalid (names the key; core.alerts.config)
    │   └── UnknownModel, UnknownProvider   a model or provider not in the LLM price catalog, with the
    │                                  closest names (talktime.catalog)
    ├── MeteringError (ValueError)     a valid record that a valid policy cannot meter (names record, field)
    ├── AuthError (PermissionError)    no API key, or one the store does not know (API: 401)
    │   └── ForbiddenError             a known key used for what its role may not do (API: 403)
    ├── NotFoundError (LookupError)    no such record for this tenant, another tenant's included (API: 404)
    └── StoreError (RuntimeError)      the event store cannot be opened or written (API: 503)

Each subclasses the matching built-in too, so ``except ValueError`` keeps working for callers that do not
know talktime.
"""

from __future__ import annotations


class TalktimeError(Exception):
    """Root of every error talktime raises on purpose."""


class InputError(TalktimeError, ValueError):
    """Input a user can fix: the message says where and why."""


class RecordError(InputError):
    """A usage record that breaks the record format.

    ``where`` names the file and row (or the record's position), ``record_id`` the record when it is
    known, ``field`` the offending field.
    """

    def __init__(self, field: str, why: str, *, where: str = "", record_id: str | None = None) -> None:
        self.field = field
        self.why = why
        self.where = where
        self.record_id = record_id
        super().__init__(self._render())

    def _render(self) -> str:
        parts = [p for p in (self.where, f"record {self.record_id!r}" if self.record_id else "") if p]
        prefix = ", ".join(parts)
        return (
            f"{prefix}: field {self.field!r}: {self.why}" if prefix else f"field {self.field!r}: {self.why}"
        )

    def located(self, where: str) -> RecordError:
        """The same error with the file and row it came from."""
        return RecordError(self.field, self.why, where=where, record_id=self.record_id)


class PolicyError(InputError):
    """A metering policy that is invalid, or a policy id that is not known."""


class StatementError(InputError):
    """Provider statement lines that cannot be read: each problem names the file, line, field and why."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        shown = problems[:5]
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__("; ".join(shown) + more)


class MeteringError(TalktimeError, ValueError):
    """A record the policy cannot meter, e.g. one that started before the policy's first version."""


class RequestError(InputError):
    """An HTTP request the API refuses whole (nothing of it is stored): says what is wrong with the body."""


class ConflictError(InputError):
    """A request at odds with what is stored, e.g. rotating a key already revoked."""


class PayloadTooLargeError(RequestError):
    """A request body over the size limit, or a batch with more events than allowed."""


class UnsupportedMediaError(InputError):
    """A request body in a content type the API does not read."""


class AuthError(TalktimeError, PermissionError):
    """A request without an API key, or with a key the store does not know."""


class ForbiddenError(AuthError):
    """A valid key used where its role may not go: a tenant key on the admin routes, or the reverse."""


class NotFoundError(TalktimeError, LookupError):
    """Nothing by that id for this tenant (another tenant's things are not found either)."""


class StoreError(TalktimeError, RuntimeError):
    """The event store cannot be opened, read or written (names the store and why)."""
