"""Twilio call status callbacks (form-encoded) -> one leg record per Call SID.

Signature (twilio-python ``RequestValidator``): base64 HMAC-SHA1, keyed with the account's auth token, of
the full URL Twilio called followed by every POST parameter's name and value, names sorted (each name's
values sorted, duplicates once). Twilio's own validator also accepts the URL with or without its default
port; so does this one.

Mapping (units matter: ``Duration`` is whole MINUTES, ``CallDuration`` SECONDS):

==========================  =====================================================================
``CallSid``                 the record; with ``ParentCallSid`` the record is ``<parent>/<child>``
``CallStatus``              initiated, ringing: opened at ``Timestamp``; in-progress: answered at
                            ``Timestamp``; completed, busy, no-answer (-> unanswered), failed,
                            canceled: closed at ``Timestamp`` with that status; queued: nothing
``CallDuration`` (s)        provider-reported seconds; on a completed call also the answer moment,
                            ``Timestamp - CallDuration`` (Twilio's default subscription sends only
                            the completed callback, and a completed leg without an answer time
                            cannot be metered on answered time)
``Duration`` (min)          attribute ``twilio_duration_minutes``, as Twilio billed it
``Timestamp``               RFC 2822, the moment of the status change
``SequenceNumber``          not needed: ids depend on the call and the fact, not on the callback,
                            so callbacks in any order give the same record
==========================  =====================================================================
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from hashlib import sha1
from typing import Final
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from talktime.ingest import events as ev
from talktime.ingest.webhooks.base import (
    SOURCE_PREFIX,
    Mapped,
    PayloadError,
    Reader,
    RecordEvents,
    SignatureError,
    SignedRequest,
    common_data,
)

PROVIDER: Final = "twilio"
SIGNATURE_HEADER: Final = "x-twilio-signature"
#: Twilio's final statuses and talktime's name for each.
FINAL: Final = {
    "completed": "completed",
    "busy": "busy",
    "no-answer": "unanswered",
    "failed": "failed",
    "canceled": "canceled",
}
NOT_FINAL: Final = frozenset({"queued", "initiated", "ringing", "in-progress"})


def form_params(body: bytes) -> list[tuple[str, str]]:
    """The POST parameters of a form-encoded body, in order, repeats kept."""
    try:
        return parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except UnicodeDecodeError:
        raise PayloadError(PROVIDER, "body", "is not UTF-8 form data") from None


def signature(url: str, params: Sequence[tuple[str, str]], auth_token: str) -> str:
    """Twilio's signature of a request: base64(HMAC-SHA1(token, url + sorted name+value pairs))."""
    signed = url
    for name in sorted({name for name, _ in params}):
        for value in sorted({value for key, value in params if key == name}):
            signed += name + value
    digest = hmac.new(auth_token.encode("utf-8"), signed.encode("utf-8"), sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def _url_variants(url: str) -> list[str]:
    """The URL as given, without its port and with its default port (Twilio signs either form)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    default = "443" if parts.scheme == "https" else "80"
    bare = urlunsplit(parts._replace(netloc=host))
    ported = urlunsplit(parts._replace(netloc=f"{host}:{parts.port or default}"))
    return list(dict.fromkeys([url, bare, ported]))


def verify(request: SignedRequest, auth_token: str) -> None:
    """Raise :class:`SignatureError` unless ``X-Twilio-Signature`` signs this URL and these parameters."""
    given = request.headers.get(SIGNATURE_HEADER)
    if not given:
        raise SignatureError(f"no {SIGNATURE_HEADER} header")
    params = form_params(request.body)
    for url in _url_variants(request.url):
        if hmac.compare_digest(signature(url, params, auth_token), given.strip()):
            return
    raise SignatureError(
        "X-Twilio-Signature does not verify for this URL and auth token "
        "(behind a proxy, set the public URL: talktime webhooks set-secret ... --public-url)"
    )


def _timestamp(read: Reader, params: Mapping[str, str]) -> datetime:
    value = read.text(params, "Timestamp", "Timestamp")
    assert value is not None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        moment = None
    if moment is None or moment.utcoffset() is None:
        raise read.fail("Timestamp", f"{value!r} is not an RFC 2822 date with an offset")
    return moment


def to_events(body: bytes, customer: str | None) -> Mapped:
    """The events one status callback says (see the module's table)."""
    read = Reader(PROVIDER)
    params = dict(form_params(body))
    sid = read.text(params, "CallSid", "CallSid")
    status = read.text(params, "CallStatus", "CallStatus")
    assert sid is not None and status is not None
    if status not in FINAL and status not in NOT_FINAL:
        known = ", ".join(sorted({*FINAL, *NOT_FINAL}))
        raise read.fail("CallStatus", f"{status!r} is not a Twilio call status; known: {known}")
    if status == "queued":
        return Mapped([], ignored="a queued call has no moment to meter yet")
    moment = _timestamp(read, params)
    parent = read.text(params, "ParentCallSid", "ParentCallSid", required=False)
    record = RecordEvents(
        SOURCE_PREFIX + PROVIDER,
        parent or sid,
        sid if parent else None,
        common_data(customer, PROVIDER, "voice", "leg"),
    )
    if status in ("initiated", "ringing"):
        record.add("opened", ev.OPENED, moment)
    elif status == "in-progress":
        record.add("opened", ev.OPENED, moment)
        record.add("answered", ev.ANSWERED, moment)
    else:
        _final(read, params, record, status, moment)
    return Mapped(record.events)


def _final(
    read: Reader, params: Mapping[str, str], record: RecordEvents, status: str, moment: datetime
) -> None:
    seconds = read.whole(params, "CallDuration", "CallDuration", required=status == "completed")
    minutes = read.whole(params, "Duration", "Duration", required=False)
    start = moment
    if status == "completed":
        assert seconds is not None
        start = moment - timedelta(seconds=seconds)
        record.add("answered", ev.ANSWERED, start)
    record.add("opened", ev.OPENED, start)
    attrs = {} if minutes is None else {"twilio_duration_minutes": str(minutes)}
    record.add("closed", ev.CLOSED, moment, status=FINAL[status], attrs=attrs or None)
    if seconds is not None:
        record.add("reported", ev.PROVIDER_REPORTED, moment, seconds=str(seconds))
