"""Sessionization: lifecycle events -> usage records, as a pure function of the events and a moment.

The rules (``docs/ingest.md`` has them with examples):

* Events group by ``(subject, leg)``: ``subject`` is the session, ``data.leg`` (or ``data.participant`` for
  participant events) the record inside it. The record's id is the subject, or ``subject/leg``.
* The result does not depend on arrival order: each group's events are sorted by
  ``(time, type, source, id)`` before they are folded, and every fold is a min, max, sum or "earliest wins".
  A late event simply becomes part of its group the next time the session is read.
* Start = the earliest ``opened``/``joined``; end = the latest ``closed``/``left``. Without an ``opened`` the
  record starts at its earliest moment (flagged).
* A session with no ``closed`` event is **open**. Once ``as_of`` is ``idle_timeout`` (default 1 hour) or more
  after its last event, it is closed at that last event (status ``completed``, flagged ``idle-timeout``).
  Before that it stays ``open`` with no end, and the metering policy's ``open_cap_seconds`` closes it.
* Quantity events (audio sent, tokens, characters, channels, provider-reported seconds) add to their record
  whenever they come, after the close included; they never move its start or end.
* Contradictions are kept and flagged, never guessed away silently: two different open or close times, two
  provider-reported values, two channel counts, a timestamp outside the connection (the record then spans
  all of its evidence), a speech segment without its other end, two different records under one id.

Owns: the fold. Does not own: validating events (``events``) or storing them (``talktime.store``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Final, TypeVar

from talktime.core.records import UsageRecord, seconds_between
from talktime.ingest import events as ev

T = TypeVar("T")
DEFAULT_IDLE_TIMEOUT: Final = timedelta(hours=1)

#: Events whose time is a moment of the connection (quantity reports, such as tokens or a provider's
#: seconds, often come after the close and do not move it).
_MOMENTS: Final = (
    ev.OPENED,
    ev.CLOSED,
    ev.JOINED,
    ev.LEFT,
    ev.ANSWERED,
    ev.AUDIO_FIRST,
    ev.AUDIO_LAST,
    ev.SPEECH_STARTED,
    ev.SPEECH_ENDED,
)
_TYPE_ORDER: Final = {name: rank for rank, name in enumerate(sorted(ev.EVENT_TYPES))}


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """A usage record made from events, with the contradictions found on the way and how many events.

    ``idle_from`` is the time of the last event of a record that has no ``closed`` event (the moment its
    idle timeout counts from), None for a record closed by its events or sent whole. It does not depend on
    ``as_of``, so a record stored open can be closed when it is read: see :func:`close_idle`.
    """

    record: UsageRecord
    flags: tuple[str, ...]
    events: int
    idle_from: datetime | None = None


_NEVER: Final = datetime(1, 1, 1, tzinfo=UTC)


def _when(moment: datetime | None) -> datetime:
    return _NEVER if moment is None else moment


def _order(event: ev.Event) -> tuple[datetime, int, str, str]:
    return (_when(event.time), _TYPE_ORDER[event.type], event.source, event.id)


def _iso(moment: datetime) -> str:
    return moment.isoformat()


def _distinct(values: Iterable[T]) -> list[T]:
    seen: list[T] = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen


_TEXT_FIELDS: Final = ("kind", "customer", "provider", "product")
_MOMENT_TYPES: Final = frozenset(_MOMENTS)
_NONE: Final[tuple[ev.Event, ...]] = ()


class _Fold:
    """One group's events, sorted, and kept in one list per type (each in the sorted order), with the flags
    for every contradiction met while they are folded into record fields.

    One pass over the events builds the lists, the times and the texts and attributes; every field is then
    read from the list of its types alone (a group is folded once per record stored, so this is the
    per-record cost of lifecycle ingest)."""

    __slots__ = ("attr_flags", "attrs", "by_type", "events", "every", "flags", "moments", "texts")

    def __init__(self, events: Sequence[ev.Event]) -> None:
        self.events = sorted(events, key=_order)
        self.flags: list[str] = []
        self.by_type: dict[str, list[ev.Event]] = {}
        self.every: list[datetime] = []
        self.moments: list[datetime] = []
        texts: dict[str, list[str]] = {name: [] for name in _TEXT_FIELDS}
        self.attrs: dict[str, str] = {}
        self.attr_flags: list[str] = []
        for event in self.events:
            kind = event.type
            found = self.by_type.get(kind)
            if found is None:
                self.by_type[kind] = [event]
            else:
                found.append(event)
            moment = event.time
            if moment is not None and kind in ev.LIFECYCLE_TYPES:
                self.every.append(moment)
                if kind in _MOMENT_TYPES:
                    self.moments.append(moment)
            payload = event.payload
            if not isinstance(payload, ev.LifecycleData):
                continue
            for name in _TEXT_FIELDS:
                value = getattr(payload, name)
                if value is not None and value not in texts[name]:
                    texts[name].append(value)
            if payload.attrs:
                self._merge_attrs(payload.attrs)
        self.texts = texts

    def _merge_attrs(self, attrs: dict[str, str]) -> None:
        merged = self.attrs
        for key, value in attrs.items():
            if key in merged and merged[key] != value:
                self.attr_flags.append(f"conflict: attrs.{key} given as {merged[key]!r} and {value!r}")
                continue
            merged.setdefault(key, value)

    def of(self, event_type: str) -> Sequence[ev.Event]:
        return self.by_type.get(event_type, _NONE)

    def in_order(self, types: tuple[str, ...]) -> Sequence[ev.Event]:
        """The events of ``types`` in the sorted order."""
        by_type = self.by_type
        if len(types) == 1:
            return by_type.get(types[0], _NONE)
        found = [by_type[t] for t in types if t in by_type]
        if len(found) > 1:
            return [e for e in self.events if e.type in types]
        return found[0] if found else _NONE

    def one_time(self, label: str, types: tuple[str, ...], pick_last: bool = False) -> datetime | None:
        events = self.in_order(types)
        if not events:
            return None
        times = [e.time for e in events if e.time is not None]
        if len(times) < 2:
            return times[0] if times else None
        # equal moments in other offsets count once: the first in the sorted order is kept
        found = sorted(set(times))
        if len(found) > 1:
            chosen = found[-1] if pick_last else found[0]
            self.flags.append(
                f"conflict: {len(found)} different {label} times ({', '.join(map(_iso, found))}); "
                f"the {'latest' if pick_last else 'earliest'} is used"
            )
            return chosen
        return found[0]

    def text(self, name: str) -> str | None:
        values = self.texts[name]
        if len(values) > 1:
            self.flags.append(f"conflict: {name} given as {values!r}; the earliest event's is used")
        return None if not values else str(values[0])

    def speech_seconds(self) -> Decimal | None:
        if ev.SPEECH_STARTED not in self.by_type and ev.SPEECH_ENDED not in self.by_type:
            return None
        starts: dict[str, list[datetime]] = {}
        ends: dict[str, list[datetime]] = {}
        for side, event_type in ((starts, ev.SPEECH_STARTED), (ends, ev.SPEECH_ENDED)):
            for event in self.of(event_type):
                assert isinstance(event.payload, ev.SpeechData) and event.time is not None
                side.setdefault(event.payload.segment, []).append(event.time)
        if not starts and not ends:
            return None
        total = Decimal(0)
        for segment in sorted(set(starts) | set(ends)):
            if segment not in starts or segment not in ends:
                missing = "start" if segment not in starts else "end"
                self.flags.append(f"speech segment {segment!r} has no {missing}: not counted")
                continue
            if len(set(starts[segment])) > 1 or len(set(ends[segment])) > 1:
                self.flags.append(f"conflict: speech segment {segment!r} reported twice; widest span used")
            begin, end = min(starts[segment]), max(ends[segment])
            if end < begin:
                self.flags.append(f"speech segment {segment!r} ends before it starts: not counted")
                continue
            total += seconds_between(begin, end)
        return total

    def summed(self, event_type: str, name: str) -> Decimal | None:
        values = [getattr(e.payload, name) for e in self.of(event_type)]
        return sum(values, Decimal(0)) if values else None

    def last_value(self, event_type: str, name: str, label: str) -> Decimal | int | None:
        found = self.of(event_type)
        if not found:
            return None
        values = _distinct(getattr(e.payload, name) for e in found)
        if len(values) > 1:
            self.flags.append(f"conflict: {label} reported as {values!r}; the latest event's is used")
        return getattr(found[-1].payload, name)  # type: ignore[no-any-return]


def _fold_group(
    subject: str, leg: str | None, events: Sequence[ev.Event], as_of: datetime, idle: timedelta
) -> SessionRecord:
    fold = _Fold(events)
    every = fold.every
    moments = fold.moments or every
    started = fold.one_time("opened", (ev.OPENED, ev.JOINED))
    if started is None:
        started = min(moments)
        fold.flags.append(f"no opened event: starts at its earliest event, {_iso(started)}")
    closing = fold.in_order((ev.CLOSED, ev.LEFT))
    ended = fold.one_time("closed", (ev.CLOSED, ev.LEFT), pick_last=True)
    status = "completed"
    idle_from = None if closing else max(every)
    if closing:
        statuses = _distinct(getattr(e.payload, "status", "completed") for e in closing)
        if len(statuses) > 1:
            fold.flags.append(f"conflict: closed with statuses {statuses!r}; the latest event's is used")
        status = getattr(closing[-1].payload, "status", "completed")
    elif as_of - max(every) >= idle:
        ended = max(every)
        fold.flags.append(
            f"idle-timeout: never closed; closed at its last event {_iso(ended)} "
            f"({int(idle.total_seconds())} s without events)"
        )
    else:
        status = "open"
    earliest, latest = min(moments), max(moments)
    if earliest < started or (ended is not None and latest > ended):
        fold.flags.append(
            f"conflict: events from {_iso(earliest)} to {_iso(latest)} fall outside the connection "
            f"({_iso(started)} to {_iso(ended) if ended else 'open'}); the record spans all of them"
        )
        started = min(started, earliest)
        ended = max(ended, latest) if ended is not None else None
    kind = fold.text("kind") or ("participant" if fold.of(ev.JOINED) or fold.of(ev.LEFT) else None)
    channel_values = _distinct(
        e.payload.channels for e in fold.of(ev.CHANNELS) if isinstance(e.payload, ev.ChannelsData)
    )
    if len(channel_values) > 1:
        fold.flags.append(f"conflict: channels reported as {channel_values!r}; the largest is used")
    reported = fold.last_value(ev.PROVIDER_REPORTED, "seconds", "provider-reported seconds")
    # in the order the flags have always come: texts, then answered and audio times
    customer, provider, product = fold.text("customer"), fold.text("provider"), fold.text("product")
    answered = fold.one_time("answered", (ev.ANSWERED,))
    first_audio, last_audio = _audio_span(fold)
    audio_seconds = fold.summed(ev.AUDIO_SENT, "seconds")
    speech_seconds = fold.speech_seconds()
    counts = _counts(fold) if ev.TOKENS in fold.by_type or ev.CHARACTERS in fold.by_type else _NO_COUNTS
    fold.flags.extend(fold.attr_flags)  # the attributes' conflicts come last
    record = UsageRecord(
        id=subject if leg is None else f"{subject}/{leg}",
        session=subject,
        started_at=started,
        ended_at=ended,
        status=status,
        customer=customer,
        provider=provider,
        product=product,
        kind=kind,
        answered_at=answered,
        first_audio_at=first_audio,
        last_audio_at=last_audio,
        audio_seconds=audio_seconds,
        speech_seconds=speech_seconds,
        channels=max(channel_values, default=1),
        provider_reported_seconds=None if reported is None else Decimal(reported),
        **counts,
        attrs=fold.attrs,
    )
    return SessionRecord(record, tuple(fold.flags), len(fold.events), idle_from)


#: The event types of the commonest group, a call opened, maybe answered, maybe closed (what a voice
#: framework sends): :func:`_simple_fold` folds it without the general fold's lists and passes.
_SIMPLE_TYPES: Final = frozenset({ev.OPENED, ev.ANSWERED, ev.CLOSED})


def _simple_fold(
    subject: str, leg: str | None, events: Sequence[ev.Event], as_of: datetime, idle: timedelta
) -> SessionRecord | None:
    """:func:`_fold_group` of a group made of one ``opened`` event and at most one ``answered`` and one
    ``closed``, each with a time; None for a group of any other shape (the general fold takes it).

    The same steps as :func:`_fold_group`, less those of the event types such a group cannot have: the
    same moments in the same sorted order (so an equal instant in another offset resolves the same way),
    the same flags in the same order. ``tests/ingest/test_sessionize_simple.py`` holds the two equal on
    drawn groups. This is the fold of almost every record a voice framework's events make, once when the
    call opens and again when it closes."""
    if len(events) > 3:
        return None
    by_type: dict[str, ev.Event] = {}
    for event in events:
        kind = event.type
        if (
            kind not in _SIMPLE_TYPES
            or kind in by_type
            or event.time is None
            or type(event.payload) is not ev.LIFECYCLE_TYPES[kind]
        ):
            return None
        by_type[kind] = event
    opened = by_type.get(ev.OPENED)
    if opened is None:
        return None
    ordered = sorted(events, key=_order) if len(events) > 1 else events
    every = [event.time for event in ordered if event.time is not None]
    flags: list[str] = []
    started = opened.time
    assert started is not None
    closed = by_type.get(ev.CLOSED)
    ended: datetime | None
    status: str
    idle_from: datetime | None = None
    if closed is not None:
        assert isinstance(closed.payload, ev.ClosedData)
        ended, status = closed.time, closed.payload.status
    elif as_of - max(every) >= idle:
        idle_from = ended = max(every)
        status = "completed"
        flags.append(
            f"idle-timeout: never closed; closed at its last event {_iso(ended)} "
            f"({int(idle.total_seconds())} s without events)"
        )
    else:
        idle_from, ended, status = max(every), None, "open"
    earliest, latest = min(every), max(every)
    if earliest < started or (ended is not None and latest > ended):
        flags.append(
            f"conflict: events from {_iso(earliest)} to {_iso(latest)} fall outside the connection "
            f"({_iso(started)} to {_iso(ended) if ended else 'open'}); the record spans all of them"
        )
        started = min(started, earliest)
        ended = max(ended, latest) if ended is not None else None
    texts: dict[str, list[str]] = {name: [] for name in _TEXT_FIELDS}
    attrs: dict[str, str] = {}
    attr_flags: list[str] = []
    for event in ordered:
        payload = event.payload
        assert isinstance(payload, ev.LifecycleData)
        for name in _TEXT_FIELDS:
            value = getattr(payload, name)
            if value is not None and value not in texts[name]:
                texts[name].append(value)
        for key, value in payload.attrs.items():
            if key in attrs and attrs[key] != value:
                attr_flags.append(f"conflict: attrs.{key} given as {attrs[key]!r} and {value!r}")
                continue
            attrs.setdefault(key, value)
    chosen: dict[str, str | None] = {}
    for name in _TEXT_ORDER:  # the order _fold_group reads them in, so the flags come in its order
        values = texts[name]
        if len(values) > 1:
            flags.append(f"conflict: {name} given as {values!r}; the earliest event's is used")
        chosen[name] = None if not values else str(values[0])
    flags.extend(attr_flags)
    answered = by_type.get(ev.ANSWERED)
    record = UsageRecord(
        id=subject if leg is None else f"{subject}/{leg}",
        session=subject,
        started_at=started,
        ended_at=ended,
        status=status,
        customer=chosen["customer"],
        provider=chosen["provider"],
        product=chosen["product"],
        kind=chosen["kind"] or None,
        answered_at=None if answered is None else answered.time,
        channels=1,
        attrs=attrs,
    )
    return SessionRecord(record, tuple(flags), len(events), idle_from)


#: The order :func:`_fold_group` reads the text fields in (kind first, then the rest).
_TEXT_ORDER: Final = ("kind", "customer", "provider", "product")


def _audio_span(fold: _Fold) -> tuple[datetime | None, datetime | None]:
    """First and last audio; a last audio before the first is a contradiction: flagged, and the span
    between the two moments is used (a record may not end its audio before it starts it)."""
    first = fold.one_time("first audio", (ev.AUDIO_FIRST,))
    last = fold.one_time("last audio", (ev.AUDIO_LAST,), pick_last=True)
    if first is not None and last is not None and last < first:
        fold.flags.append(
            f"conflict: last audio {_iso(last)} is before first audio {_iso(first)}; the span between them "
            "is used"
        )
        first, last = last, first
    return first, last


def _counts(fold: _Fold) -> dict[str, int | None]:
    """Each token and character field summed over its events; None when no such event came."""
    tokens = [e.payload for e in fold.of(ev.TOKENS) if isinstance(e.payload, ev.TokensData)]
    counts: dict[str, int | None] = {
        name: sum(getattr(t, name) for t in tokens) if tokens else None for name in ev.TOKEN_FIELDS
    }
    characters = fold.of(ev.CHARACTERS)
    for name in ev.CHARACTER_FIELDS:
        counts[name] = (
            int(sum((getattr(e.payload, name) for e in characters), Decimal(0))) if characters else None
        )
    return counts


#: :func:`_counts` of a group without token or character events.
_NO_COUNTS: Final[Mapping[str, int | None]] = dict.fromkeys((*ev.TOKEN_FIELDS, *ev.CHARACTER_FIELDS))


def _merge(found: list[tuple[tuple[int, datetime, str, str], SessionRecord]]) -> SessionRecord:
    """One record for an id sent more than once: identical copies count once; differing ones are flagged."""
    found.sort(key=lambda item: item[0])
    chosen = found[-1][1]
    distinct = _distinct(item[1].record for item in found)
    extra = (
        f"sent {len(found)} times as different events; counted once"
        if len(distinct) == 1
        else f"conflict: {len(distinct)} different records under this id; the latest event's is used"
    )
    events = sum(item[1].events for item in found)
    return SessionRecord(chosen.record, (*chosen.flags, extra), events, chosen.idle_from)


def sessionize(
    events: Iterable[ev.Event], *, as_of: datetime, idle_timeout: timedelta = DEFAULT_IDLE_TIMEOUT
) -> list[SessionRecord]:
    """Usage records from events, sorted by record id. The same events in any order give the same result.

    ``as_of`` is "now" for the idle timeout, passed in so the function stays pure.
    """
    groups: dict[tuple[str, str | None], list[ev.Event]] = {}
    by_id: dict[str, list[tuple[tuple[int, datetime, str, str], SessionRecord]]] = {}
    for event in events:
        if isinstance(event.payload, UsageRecord):
            key = (1, _when(event.time), event.source, event.id)
            by_id.setdefault(event.payload.id, []).append((key, SessionRecord(event.payload, (), 1)))
        else:
            assert event.subject is not None
            groups.setdefault((event.subject, event.leg), []).append(event)
    for (subject, leg), members in groups.items():
        folded = _simple_fold(subject, leg, members, as_of, idle_timeout)
        if folded is None:
            folded = _fold_group(subject, leg, members, as_of, idle_timeout)
        by_id.setdefault(folded.record.id, []).append(((0, _NEVER, subject, leg or ""), folded))
    result = [found[0][1] if len(found) == 1 else _merge(found) for found in by_id.values()]
    return sorted(result, key=lambda item: item.record.id)


#: An ``as_of`` before every event: nothing is closed by the idle timeout (the stored, open form).
NEVER: Final = _NEVER


def idle_closed(idle_from: datetime | None, as_of: datetime, idle_timeout: timedelta) -> bool:
    """Whether a record whose last event came at ``idle_from`` (None: closed by its events) is closed by
    the idle timeout as of ``as_of``: the same test :func:`sessionize` makes."""
    return idle_from is not None and as_of - idle_from >= idle_timeout


def close_idle(
    record: UsageRecord, idle_from: datetime | None, as_of: datetime, idle: timedelta
) -> UsageRecord:
    """The record as :func:`sessionize` gives it as of ``as_of``, from its form as of :data:`NEVER`.

    Closing by the idle timeout sets the end at the last event (every moment of the record is at or before
    it, so nothing else of the record moves) and the status to completed. The flags are not rebuilt here:
    the idle-timeout flag names the timeout, a setting of whoever reads.
    """
    if record.status != "open" or not idle_closed(idle_from, as_of, idle):
        return record
    return replace(record, status="completed", ended_at=idle_from)
