"""The served dashboard's review of held records (``talktime serve --costs --prices``, operator keys only):
the ``/flagged`` page read live from the store, its Accept and Correct forms, and the form token.

* **Live, not from the snapshot.** The page lists what :func:`talktime.app.review.held_months` gives: the
  held records and each month's draft total without and with them, read from the store as of the request,
  exactly as ``GET /v1/invoices`` reads them (acceptances included). It is kept until
  :func:`~talktime.app.review.review_mark` changes (a batch, a correction, an acceptance: by this page,
  the API or the CLI) or ``max_age`` passes; then the held records are read again (one SQL query) and
  only the customers whose held records or records changed are rated again. So a review shows on the very
  next page, without waiting for the next snapshot (which re-rates the whole window, and reads no
  acceptance).
* **Forms.** ``POST /flagged/accept`` (``record``, ``note``) accepts the record's present reasons word for
  word; ``POST /flagged/correct`` (``record``, ``set.FIELD`` for each field shown, ``other``/``other_value``
  for any other field, ``note``) stores a correction event of the fields whose value changed. Both answer a
  303 to ``/flagged`` saying what was done; a review the record cannot take (a bad time, a negative count,
  a record that breaks no limit) answers the page again with the error beside that record's form and the
  values as typed. Plain HTML forms: no script needed.
* **Cross-site requests.** The session cookie is SameSite=Strict; on top of it every POST of a signed-in
  browser carries :data:`FORM_FIELD`, a token derived from its session (an HMAC of the session token with a
  key made when the server starts): :func:`check_post`, called by the served dashboard's dispatch for every
  signed-in POST, refuses one without it, or with another session's, with a 403 page. A customer key's
  POST to a review path is a 403 page too: reviews are the operator's.

Owns: the token, the form parsing, the live list's cache. Does not own: the review (``talktime.app.review``),
the page's layout (``flagged*.html``), who is signed in (``talktime.web.served``).
"""

from __future__ import annotations

import hashlib
import hmac
import html
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qs, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import Message, Receive

from talktime.app.held_records import HeldMonth
from talktime.app.review import (
    CustomerMonths,
    customer_mark,
    customer_months,
    fields_to_correct,
    held_now,
    review,
    review_mark,
)
from talktime.errors import PayloadTooLargeError, TalktimeError

if TYPE_CHECKING:
    from talktime.core.rating.cards import PriceCard
    from talktime.store.base import ApiKey, EventStore
    from talktime.store.reviews import Judged
    from talktime.web.data import Dashboard

#: The form field every signed-in POST carries.
FORM_FIELD: Final = "form_token"
#: The review forms' addresses.
ACCEPT_PATH: Final = "/flagged/accept"
CORRECT_PATH: Final = "/flagged/correct"
#: A review form's body is small: a longer one is refused before it is parsed.
MAX_FORM_BYTES: Final = 16_384
#: The fields a correction may set, as the record format names them (``attr.NAME`` too, typed as such).
CORRECTABLE: Final = (
    "ended_at",
    "started_at",
    "answered_at",
    "first_audio_at",
    "last_audio_at",
    "status",
    "audio_seconds",
    "speech_seconds",
    "provider_reported_seconds",
    "channels",
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "audio_input_tokens",
    "audio_output_tokens",
    "characters",
    "ssml_characters",
    "cjk_characters",
    "customer",
    "provider",
    "product",
    "session",
    "kind",
)

#: How the use case's errors name a field: ``field 'ended_at': ...`` or ``fields.colour: ...``.
_NAMED: Final = re.compile(r"field '([^']+)'|fields\.([\w.]+):")
_KEY: Final = secrets.token_bytes(32)  # made when the server starts: a restart ends every session anyway


def form_token(session: str | None) -> str:
    """The form token of a session (empty without one): unguessable without the session's cookie."""
    if not session:
        return ""
    return hmac.new(_KEY, session.encode(), hashlib.sha256).hexdigest()


def _refused(title: str, why: str) -> Response:
    from talktime.web.served import _page

    body = (
        f'<h1>{html.escape(title)}</h1><p class="error" role="alert">{html.escape(why)}</p>'
        '<p><a href="/flagged">Back to the flagged records</a> (the page gives a fresh form).</p>'
    )
    return _page(title, body, status=403)


async def check_post(request: Request, key: ApiKey) -> tuple[Response | None, Receive]:
    """Refuse a signed-in POST without its session's form token (403 page), or a customer key's POST to a
    review path; else None and a ``receive`` that gives the body again to the page that answers."""
    from talktime.api.bodies import limited_body
    from talktime.web.served import COOKIE

    try:
        body, too_long = await limited_body(request, MAX_FORM_BYTES), False
    except PayloadTooLargeError:
        body, too_long = b"", True

    async def replay() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    if key.customer is not None and request.url.path.startswith("/flagged"):
        return _refused(
            "Not yours to review",
            f"This key belongs to customer {key.customer!r}: reviewing held records is the operator's "
            "(sign in with the tenant's key).",
        ), replay
    if too_long:
        return _refused("Refused", "The form is too long."), replay
    given = _fields(body).get(FORM_FIELD, "")
    expected = form_token(request.cookies.get(COOKIE))
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        return _refused(
            "Refused: the form's token is missing or is not this session's",
            "This request did not come from a form this dashboard gave your session (a page of another "
            "site, a form from before you signed in again, or a script), so nothing was changed.",
        ), replay
    return None, replay


def _fields(body: bytes) -> dict[str, str]:
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[-1] for name, values in parsed.items()}


@dataclass(frozen=True, slots=True)
class StoreReview:
    """What the page reviews with: the served store and tenant, the server's guards, card and ledger."""

    store: EventStore
    tenant: str
    guards: Path | None
    prices: PriceCard
    ledger: Path | None
    idle_timeout: timedelta
    max_age: timedelta
    clock: Callable[[], datetime]

    @classmethod
    def of(cls, board: Dashboard) -> StoreReview | None:
        """The board's when it is a served snapshot (its ``served`` is a ``TenantView``), else None."""
        view = board.served
        snapshots = getattr(view, "snapshots", None)
        if view is None or snapshots is None:
            return None
        options = snapshots.options
        return cls(
            snapshots.store,
            str(getattr(view, "tenant")),  # noqa: B009  # a TenantView; Served names only line()
            options.guards,
            options.prices,
            options.ledger,
            options.idle_timeout,
            options.max_age,
            options.clock,
        )


@dataclass(frozen=True, slots=True)
class Live:
    """The held list as read from the store at ``as_of``."""

    months: list[HeldMonth]
    #: Held records no draft lists: they name no customer, or their month's invoice is finalised.
    elsewhere: list[Judged]
    as_of: datetime
    seconds: float
    #: Records still open that started in a listed month, by (customer, period): not on its draft yet.
    still_open: dict[tuple[str, str], int]


class LiveHeld:
    """The held list of one tenant: read again when :func:`review_mark` changes or it is ``max_age`` old,
    and then only the customers whose held records or records changed are rated again."""

    def __init__(self, source: StoreReview) -> None:
        self.source = source
        self._lock = threading.Lock()
        self._kept: tuple[tuple[object, ...], float, Live] | None = None
        self._customers: dict[str, tuple[object, float, CustomerMonths]] = {}

    def _young(self, since: float) -> bool:
        return time.monotonic() - since < self.source.max_age.total_seconds()

    def get(self) -> Live:
        s = self.source
        with self._lock:  # one reader at a time: a second page waits for the first one's answer
            mark = review_mark(s.store, s.tenant)
            kept = self._kept
            if kept is not None and kept[0] == mark and self._young(kept[1]):
                return kept[2]
            began, as_of = time.perf_counter(), s.clock()
            now = held_now(s.store, s.tenant, s.guards, as_of=as_of, idle_timeout=s.idle_timeout)
            months: list[HeldMonth] = []
            customers: dict[str, tuple[object, float, CustomerMonths]] = {}
            still_open: dict[tuple[str, str], int] = {}
            for customer, held in now.by_customer.items():
                key = (
                    tuple((j.record.id, j.reasons) for j in held),
                    customer_mark(s.store, s.tenant, customer),
                )
                found = self._customers.get(customer)
                if found is None or found[0] != key or not self._young(found[1]):
                    rated = customer_months(
                        s.store,
                        s.tenant,
                        s.prices,
                        customer,
                        held,
                        ledger=s.ledger,
                        as_of=as_of,
                        idle_timeout=s.idle_timeout,
                    )
                    found = (key, time.monotonic(), rated)
                customers[customer] = found
                months += found[2].months
                still_open.update({(customer, p): n for p, n in found[2].still_open.items()})
            self._customers = customers
            listed = {held.record.id for month in months for held in month.records}
            everyone = [*(j for found in now.by_customer.values() for j in found), *now.nobody]
            elsewhere = [j for j in everyone if j.record.id not in listed]
            live = Live(months, elsewhere, as_of, time.perf_counter() - began, still_open)
            self._kept = (mark, time.monotonic(), live)
            return live


@dataclass(frozen=True, slots=True)
class Attempt:
    """A review the record could not take: the form's values as typed, and the error (it names the field)."""

    record: str
    action: str
    values: dict[str, str]
    error: str
    other: str = ""  # the "another field" name as typed

    @property
    def field(self) -> str:
        """The field the error names (its input is marked invalid and focused), or ""."""
        found = _NAMED.search(self.error)
        return "" if found is None else found.group(1) or found.group(2)


def typed_fields(form: dict[str, str]) -> dict[str, str]:
    """The correction form's fields as typed: ``set.FIELD`` inputs and the ``other`` field's value."""
    typed = {name[4:]: value for name, value in form.items() if name.startswith("set.") and name[4:]}
    other = form.get("other", "").strip()
    if other:
        typed[other] = form.get("other_value", "")
    return typed


async def post_review(request: Request, source: StoreReview, action: str) -> Attempt | Response:
    """Run the review a form asks for: a 303 to the page saying what was done, or the :class:`Attempt`
    the page shows again with its error."""
    form = _fields(await request.body())
    record_id = form.get("record", "")
    note = form.get("note", "").strip() or None
    typed = typed_fields(form) if action == "correct" else {}
    shown = {name[4:]: value for name, value in form.items() if name.startswith("was.") and name[4:]}
    reasons = form.get("shown_reasons")  # the reasons the page showed: an acceptance accepts those or none

    def run() -> dict[str, Any]:
        fields = (
            fields_to_correct(source.store, source.tenant, record_id, typed, shown)
            if action == "correct"
            else {}
        )
        done = review(
            source.store,
            source.tenant,
            source.guards,
            record_id,
            action,
            fields=fields,
            note=note,
            at=source.clock(),
            idle_timeout=source.idle_timeout,
            shown_reasons=None if reasons is None or action != "accept" else reasons.splitlines(),
        )
        return {"reviewed": done.id, "action": action, "held": "yes" if done.held else "no"}

    try:
        done = await run_in_threadpool(run)
    except TalktimeError as error:
        other = form.get("other", "").strip() if action == "correct" else ""
        return Attempt(record_id, action, {**typed, "note": note or ""}, str(error), other)
    return RedirectResponse("/flagged?" + urlencode(done) + "#flagged", status_code=303)


__all__ = [
    "ACCEPT_PATH",
    "CORRECTABLE",
    "CORRECT_PATH",
    "FORM_FIELD",
    "Attempt",
    "Live",
    "LiveHeld",
    "StoreReview",
    "check_post",
    "form_token",
    "post_review",
]
