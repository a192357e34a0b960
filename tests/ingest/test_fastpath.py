"""Differential test: the ingest fast path against the full validation (validate_event / parse_record).

The fast path may only say "certainly valid" (then the full path must agree, with the same envelope) or
"don't know" (then the full path decides and names field and reason). Ingest = fast path, else full path;
so over Hypothesis-made good and bad events, ingest accepts and rejects exactly what the full path does,
with the same issues, and the plain shapes real senders use are decided by the fast path itself.
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from talktime.app import service
from talktime.core.records import COUNT_FIELDS, RECORD_FIELDS
from talktime.ingest.events import EVENT_TYPES, LIFECYCLE_TYPES, RECORD, validate_event
from talktime.ingest.fastpath import quick_check
from talktime.store.base import RawEvent, first_seen


class ListStore:
    """Just enough of an EventStore for service.ingest: dedup within the batch."""

    def append(self, tenant: str, events: list[RawEvent]) -> list[bool]:
        return first_seen(events)


INSTANTS = [
    "2025-03-01T10:00:00Z",
    "2025-03-01T10:00:04.5Z",
    "2025-03-01T11:00:52.3+01:00",  # 10:00:52.3Z
    "2025-03-01T10:00:52.300001+00:00",
    "2025-03-01T09:59:59-00:30",  # 10:29:59Z
    "2025-03-01T10:01:00.000000Z",
]
BAD_TIMES = ["2025-03-01T10:00:00", "2025-03-01", "yesterday", "", "  ", "2025-13-01T00:00:00Z", 1740823200]


def times() -> st.SearchStrategy[Any]:
    good = st.sampled_from(INSTANTS)
    padded = good.map(lambda t: f" {t} ")
    return st.one_of(good, good, padded, st.sampled_from(BAD_TIMES), st.none(), st.booleans())


def numbers() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.integers(min_value=-5, max_value=10**20),
        st.floats(allow_nan=True, allow_infinity=True),
        st.sampled_from([0.0, -0.0, 46.9, "12.5", " 3 ", "", "x", "1e3", "NaN", True, False]),
        st.none(),
        st.lists(st.integers(), max_size=1),
    )


def texts() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.text(max_size=6), st.sampled_from(["acme", " ", ""]), st.integers(), st.none(), st.booleans()
    )


def kinds() -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(["leg", "LEG", " sip ", "agent", "nope", "", "  "]), texts())


def statuses() -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(["completed", "FAILED", " open ", "canceled", "nope", "", " "]), texts())


def attrs() -> st.SearchStrategy[Any]:
    return st.one_of(
        st.dictionaries(
            st.text(max_size=3), st.one_of(st.text(max_size=3), st.integers(), st.none()), max_size=2
        ),
        st.none(),
        st.text(max_size=3),
    )


RECORD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    **{name: texts() for name in RECORD_FIELDS},
    **{
        name: times() for name in ("started_at", "ended_at", "answered_at", "first_audio_at", "last_audio_at")
    },
    **{name: numbers() for name in ("audio_seconds", "speech_seconds", "provider_reported_seconds")},
    **{name: numbers() for name in ("channels", *COUNT_FIELDS)},
    "kind": kinds(),
    "status": statuses(),
    "attrs": attrs(),
    "attr.region": texts(),
    "colour": texts(),
}
LIFECYCLE_VALUES: dict[str, st.SearchStrategy[Any]] = {
    **{name: texts() for name in ("leg", "customer", "provider", "product", "participant", "segment")},
    "kind": kinds(),
    "status": statuses(),
    "attrs": attrs(),
    **{name: numbers() for name in ("seconds", "channels", *COUNT_FIELDS)},
    "colour": texts(),
}


@st.composite
def data_dicts(draw: st.DrawFn, values: dict[str, st.SearchStrategy[Any]]) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(sorted(values)), unique=True, max_size=len(values)))
    return {name: draw(values[name]) for name in names}


@st.composite
def events(draw: st.DrawFn) -> Any:
    """Good and bad events alike: every envelope and data field may be missing, mistyped or malformed."""
    if draw(st.integers(0, 50)) == 0:
        return draw(st.one_of(st.none(), st.integers(), st.lists(st.integers(), max_size=2)))
    event_type = draw(
        st.one_of(st.sampled_from(sorted(EVENT_TYPES)), st.just(RECORD), st.sampled_from(["nope", 3, ""]))
    )
    raw: dict[str, Any] = {"type": event_type}
    optional: dict[str, st.SearchStrategy[Any]] = {
        "specversion": st.sampled_from(["1.0", "1.0", "1.0", "0.3", 1.0, None]),
        "id": st.one_of(st.sampled_from(["e1", "ev-2", " x "]), texts()),
        "source": st.one_of(st.just("/pbx"), texts()),
        "subject": st.one_of(st.just("call-1"), texts()),
        "time": times(),
        "datacontenttype": st.sampled_from(["application/json", "text/plain", None]),
    }
    for name, strategy in optional.items():
        if draw(st.integers(0, 5)) > 0:
            raw[name] = draw(strategy)
    values = RECORD_VALUES if event_type == RECORD else LIFECYCLE_VALUES
    raw["data"] = draw(st.one_of(data_dicts(values), data_dicts(values), st.none(), st.text(max_size=2)))
    if draw(st.booleans()) and isinstance(raw["data"], dict):
        raw.pop("data")
    return raw


@st.composite
def plain_valid_events(draw: st.DrawFn) -> dict[str, Any]:
    """The shapes real senders use: strings for text, numbers as JSON numbers, times with an offset."""
    event_type = draw(st.sampled_from(sorted(EVENT_TYPES)))
    raw: dict[str, Any] = {
        "specversion": "1.0",
        "id": draw(st.text("abcXYZ019-_/.:", min_size=1, max_size=8)),
        "source": "/pbx",
        "type": event_type,
        "subject": draw(st.text(min_size=1, max_size=8)),
        "time": draw(st.sampled_from(INSTANTS)),
    }
    if event_type == RECORD:
        start, answer, end = sorted(draw(st.lists(st.integers(0, 999_999), min_size=3, max_size=3)))
        stamp = "2025-03-01T10:00:00.{:06d}+02:00"
        raw["data"] = {
            "customer": "acme",
            "kind": draw(st.sampled_from(["leg", "sip", "tts"])),
            "started_at": stamp.format(start),
            "answered_at": stamp.format(answer),
            "ended_at": stamp.format(end),
            "provider_reported_seconds": draw(st.one_of(st.integers(0, 10**6), st.floats(0, 1e6))),
            "channels": draw(st.integers(1, 4)),
        }
        return raw
    data: dict[str, Any] = {"customer": "acme", "leg": draw(st.sampled_from(["a", "b"]))}
    required = {
        "talktime.participant.joined": {"participant": "alice"},
        "talktime.participant.left": {"participant": "alice"},
        "talktime.speech.started": {"segment": "s1"},
        "talktime.speech.ended": {"segment": "s1"},
        "talktime.audio.sent": {"seconds": draw(st.floats(0, 1e6))},
        "talktime.provider.reported": {"seconds": draw(st.integers(0, 10**6))},
        "talktime.channels": {"channels": draw(st.integers(1, 8))},
        "talktime.tokens": {"input_tokens": draw(st.integers(0, 10**6))},
        "talktime.characters": {"characters": draw(st.integers(0, 10**6))},
        "talktime.connection.closed": {"status": "failed"},
    }
    data.update(required.get(event_type, {}))
    assert event_type in LIFECYCLE_TYPES
    raw["data"] = data
    return raw


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events())
def test_the_fast_path_never_accepts_what_the_full_path_rejects(raw: Any) -> None:
    quick = quick_check(raw)
    full = validate_event(raw)
    if quick is not None:
        assert full.event is not None, full.issues
        event = full.event
        assert tuple(quick) == (event.source, event.id, event.type, event.subject, event.time)


@settings(max_examples=300, deadline=None)
@given(plain_valid_events())
def test_the_fast_path_decides_the_plain_shapes_itself(raw: dict[str, Any]) -> None:
    assert validate_event(raw).event is not None
    assert quick_check(raw) is not None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(events(), min_size=1, max_size=8))
def test_ingest_accepts_and_rejects_exactly_what_the_full_path_does(batch: list[Any]) -> None:
    result = service.ingest(ListStore(), "t1", batch)  # type: ignore[arg-type]
    for entry, raw in zip(result.results, batch, strict=True):
        full = validate_event(raw)
        if full.event is None:
            assert entry["status"] == "rejected"
            assert entry["errors"] == [issue.as_dict() for issue in full.issues]
        else:
            assert entry["status"] in ("accepted", "duplicate")
            assert "errors" not in entry
