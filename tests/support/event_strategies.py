"""Hypothesis strategies for streams of CloudEvents as clients send them: every lifecycle type and whole
records, a few sessions and legs so events meet in one record, times out of order and with offsets, events
sent twice (the same event, or another under a used (source, id)), and the stream cut into batches.

Record ids collide on purpose: a ``talktime.record`` event may name ``call-1`` or ``call-1/a``, the ids of
lifecycle groups, so the merge of several sources under one id is drawn too.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from strategies import usage_record
from support.events import event
from talktime.core.records import record_to_row

T0 = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
SUBJECTS = ("call-1", "call-2", "room-9")
LEGS = (None, None, "a", "b")
_OFFSETS = (UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30)))


@st.composite
def moment(draw: st.DrawFn) -> str:
    """A time within three hours of T0 (so idle timeouts fall inside the draws), in some offset."""
    at = T0 + timedelta(
        seconds=draw(st.integers(0, 3 * 3600)), microseconds=draw(st.sampled_from([0, 500_000]))
    )
    text = at.astimezone(draw(st.sampled_from(_OFFSETS))).isoformat()
    return text.replace("+00:00", "Z") if draw(st.booleans()) else text


def _common(draw: st.DrawFn, leg: str | None) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if leg is not None:
        data["leg"] = leg
    if draw(st.integers(0, 3)) == 0:
        data["customer"] = draw(st.sampled_from(["acme", "beta"]))
    if draw(st.integers(0, 4)) == 0:
        data["kind"] = draw(st.sampled_from(["leg", "sip", "stream"]))
    if draw(st.integers(0, 6)) == 0:
        data["attrs"] = {"model": draw(st.sampled_from(["a", "b"]))}
    return data


@st.composite
def lifecycle_event(draw: st.DrawFn, number: int) -> dict[str, Any]:
    subject = draw(st.sampled_from(SUBJECTS))
    leg = draw(st.sampled_from(LEGS))
    kind = draw(
        st.sampled_from(
            [
                "talktime.connection.opened",
                "talktime.connection.opened",
                "talktime.connection.closed",
                "talktime.call.answered",
                "talktime.audio.first",
                "talktime.audio.last",
                "talktime.audio.sent",
                "talktime.speech.started",
                "talktime.speech.ended",
                "talktime.participant.joined",
                "talktime.participant.left",
                "talktime.channels",
                "talktime.tokens",
                "talktime.characters",
                "talktime.provider.reported",
            ]
        )
    )
    data = _common(draw, leg)
    if kind == "talktime.connection.closed" and draw(st.booleans()):
        data["status"] = draw(st.sampled_from(["completed", "failed", "busy"]))
    elif kind in ("talktime.audio.sent", "talktime.provider.reported"):
        data["seconds"] = draw(st.sampled_from([1, 2.5, 46.9, 0.1234567, "12.000001"]))
    elif kind.startswith("talktime.speech."):
        data["segment"] = draw(st.sampled_from(["s1", "s2"]))
    elif kind.startswith("talktime.participant."):
        data.pop("leg", None)
        data["participant"] = draw(st.sampled_from(["alice", "bob"]))
    elif kind == "talktime.channels":
        data["channels"] = draw(st.integers(1, 3))
    elif kind == "talktime.tokens":
        total = draw(st.integers(0, 5000))
        data.update(input_tokens=total, cached_input_tokens=draw(st.integers(0, total)), output_tokens=7)
    elif kind == "talktime.characters":
        total = draw(st.integers(0, 900))
        data.update(characters=total, ssml_characters=draw(st.integers(0, total)))
    source = draw(st.sampled_from(["/pbx", "/media"]))
    return event(kind, subject, draw(moment()), id=f"e{number}", source=source, data=data)


@st.composite
def record_event(draw: st.DrawFn, number: int) -> dict[str, Any]:
    """A whole record, under an id of its own or one a lifecycle group also makes."""
    record_id = draw(st.sampled_from([f"r{number}", "call-1", "call-2/a", f"r{number % 3}"]))
    record = draw(usage_record(record_id=record_id))
    data = {k: v for k, v in record_to_row(record).items() if v != ""}
    subject = draw(st.sampled_from([None, "call-1"]))
    return event("talktime.record", subject, draw(moment()), id=f"rec{number}", source="/platform", data=data)


@st.composite
def event_batches(draw: st.DrawFn, max_events: int = 24) -> list[list[dict[str, Any]]]:
    """A stream of events, shuffled, some sent twice, cut into one to six batches."""
    count = draw(st.integers(1, max_events))
    events = [
        draw(record_event(n)) if draw(st.integers(0, 4)) == 0 else draw(lifecycle_event(n))
        for n in range(count)
    ]
    for _ in range(draw(st.integers(0, 4))):  # resent: the same event, or another one under a used id
        again = dict(draw(st.sampled_from(events)))
        if draw(st.booleans()):
            again = {**draw(lifecycle_event(count)), "id": again["id"], "source": again["source"]}
        events.append(again)
    events = draw(st.permutations(events))
    cuts = sorted(draw(st.lists(st.integers(1, max(1, len(events) - 1)), max_size=5, unique=True)))
    bounds = [0, *cuts, len(events)]
    return [events[a:b] for a, b in itertools.pairwise(bounds) if events[a:b]]
