"""Why no cost entry takes a record: the closest entry and each field of its match that failed."""

from __future__ import annotations

from talktime.core.rating.cards import CostCard, Entry, Match
from talktime.core.rating.unmatched import closest_entry, why_uncosted
from talktime.core.records import UsageRecord, parse_record
from talktime.providers import builtin


def entry(name: str, **match: tuple[str, ...]) -> Entry:
    return Entry(name, "", builtin("twilio-voice"), Match(match), "minute", ())


def record(**fields: str) -> UsageRecord:
    base = {"id": "r-1", "status": "completed", "started_at": "2026-10-01T09:00:00Z"}
    return parse_record({**base, "ended_at": "2026-10-01T09:01:00Z", **fields})


CARD = CostCard(
    "costs",
    "USD",
    "UTC",
    (
        entry("openai", provider=("openai",), kind=("llm",), **{"attr.model": ("gpt-4o-mini",)}),
        entry("deepgram", provider=("deepgram",), kind=("stream",)),
        entry("deepgram-batch", provider=("deepgram",), kind=("batch",)),
    ),
)


def test_the_closest_entry_is_the_one_missed_by_fewest_fields() -> None:
    found = closest_entry(record(provider="Deepgram", kind="agent"), CARD)
    assert found is not None
    assert found[0].id == "deepgram", "one field off, and first in card order of the two"
    assert found[1] == ["kind 'agent' (the entry takes ['stream'])"]


def test_a_missing_attribute_is_named_as_missing() -> None:
    said = why_uncosted(record(provider="openai", kind="llm", **{"attr.model": ""}), CARD)
    assert said == (
        "record 'r-1': closest cost entry openai: attr.model missing (the entry takes ['gpt-4o-mini'])"
    )


def test_every_failed_field_of_the_closest_entry_is_named() -> None:
    said = why_uncosted(record(provider="opnai", kind="llm", **{"attr.model": "gpt-4o"}), CARD)
    assert "provider 'opnai' (the entry takes ['openai'])" in said
    assert "attr.model 'gpt-4o' (the entry takes ['gpt-4o-mini'])" in said
    assert "kind" not in said


def test_a_card_without_entries_says_so() -> None:
    assert (
        why_uncosted(record(), CostCard("none", "USD", "UTC", ()))
        == "record 'r-1': the cost card has no entries"
    )
