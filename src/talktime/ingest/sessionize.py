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

from collections.abc import Iterable, Sequence
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


class _Fold:
    """One group's events folded into record fields, with flags for every contradiction met."""

    def __init__(self, subject: str, leg: str | None, events: Sequence[ev.Event]) -> None:
        self.events = sorted(events, key=_order)
        self.flags: list[str] = []
        self.subject = subject
        self.leg = leg

    def times(self, *types: str) -> list[datetime]:
        return [e.time for e in self.events if e.type in types and e.time is not None]

    def of(self, *types: str) -> list[ev.Event]:
        return [e for e in self.events if e.type in types]

    def one_time(self, label: str, types: tuple[str, ...], pick_last: bool = False) -> datetime | None:
        found = sorted(set(self.times(*types)))
        if len(found) > 1:
            chosen = found[-1] if pick_last else found[0]
            self.flags.append(
                f"conflict: {len(found)} different {label} times ({', '.join(map(_iso, found))}); "
                f"the {'latest' if pick_last else 'earliest'} is used"
            )
            return chosen
        return found[0] if found else None

    def text(self, name: str) -> str | None:
        values = _distinct(
            getattr(e.payload, name)
            for e in self.events
            if isinstance(e.payload, ev.LifecycleData) and getattr(e.payload, name) is not None
        )
        if len(values) > 1:
            self.flags.append(f"conflict: {name} given as {values!r}; the earliest event's is used")
        return None if not values else str(values[0])

    def attrs(self) -> dict[str, str]:
        merged: dict[str, str] = {}
        for event in self.events:
            if not isinstance(event.payload, ev.LifecycleData):
                continue
            for key, value in event.payload.attrs.items():
                if key in merged and merged[key] != value:
                    self.flags.append(f"conflict: attrs.{key} given as {merged[key]!r} and {value!r}")
                    continue
                merged.setdefault(key, value)
        return merged

    def speech_seconds(self) -> Decimal | None:
        starts: dict[str, list[datetime]] = {}
        ends: dict[str, list[datetime]] = {}
        for event in self.of(ev.SPEECH_STARTED, ev.SPEECH_ENDED):
            assert isinstance(event.payload, ev.SpeechData) and event.time is not None
            side = starts if event.type == ev.SPEECH_STARTED else ends
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

    def summed(self, types: tuple[str, ...], name: str) -> Decimal | None:
        values = [getattr(e.payload, name) for e in self.of(*types)]
        return sum(values, Decimal(0)) if values else None

    def last_value(self, event_type: str, name: str, label: str) -> Decimal | int | None:
        found = self.of(event_type)
        values = _distinct(getattr(e.payload, name) for e in found)
        if len(values) > 1:
            self.flags.append(f"conflict: {label} reported as {values!r}; the latest event's is used")
        return None if not found else getattr(found[-1].payload, name)


def _fold_group(
    subject: str, leg: str | None, events: Sequence[ev.Event], as_of: datetime, idle: timedelta
) -> SessionRecord:
    fold = _Fold(subject, leg, events)
    every = fold.times(*ev.LIFECYCLE_TYPES)
    moments = fold.times(*_MOMENTS) or every
    started = fold.one_time("opened", (ev.OPENED, ev.JOINED))
    if started is None:
        started = min(moments)
        fold.flags.append(f"no opened event: starts at its earliest event, {_iso(started)}")
    closing = fold.of(ev.CLOSED, ev.LEFT)
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
    if min(moments) < started or (ended is not None and max(moments) > ended):
        fold.flags.append(
            f"conflict: events from {_iso(min(moments))} to {_iso(max(moments))} fall outside the connection "
            f"({_iso(started)} to {_iso(ended) if ended else 'open'}); the record spans all of them"
        )
        started = min(started, *moments)
        ended = max(ended, *moments) if ended is not None else None
    kind = fold.text("kind") or ("participant" if fold.of(ev.JOINED, ev.LEFT) else None)
    channels = fold.of(ev.CHANNELS)
    channel_values = _distinct(e.payload.channels for e in channels if isinstance(e.payload, ev.ChannelsData))
    if len(channel_values) > 1:
        fold.flags.append(f"conflict: channels reported as {channel_values!r}; the largest is used")
    tokens = [e.payload for e in fold.of(ev.TOKENS) if isinstance(e.payload, ev.TokensData)]
    reported = fold.last_value(ev.PROVIDER_REPORTED, "seconds", "provider-reported seconds")
    # in the order the flags have always come: texts, then answered and audio times
    customer, provider, product = fold.text("customer"), fold.text("provider"), fold.text("product")
    answered = fold.one_time("answered", (ev.ANSWERED,))
    first_audio, last_audio = _audio_span(fold)
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
        audio_seconds=fold.summed((ev.AUDIO_SENT,), "seconds"),
        speech_seconds=fold.speech_seconds(),
        channels=max(channel_values, default=1),
        provider_reported_seconds=None if reported is None else Decimal(reported),
        **_counts(fold, tokens),
        attrs=fold.attrs(),
    )
    return SessionRecord(record, tuple(fold.flags), len(fold.events), idle_from)


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


def _counts(fold: _Fold, tokens: list[ev.TokensData]) -> dict[str, int | None]:
    """Each token and character field summed over its events; None when no such event came."""
    counts: dict[str, int | None] = {
        name: sum(getattr(t, name) for t in tokens) if tokens else None for name in ev.TOKEN_FIELDS
    }
    for name in ev.CHARACTER_FIELDS:
        total = fold.summed((ev.CHARACTERS,), name)
        counts[name] = None if total is None else int(total)
    return counts


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
