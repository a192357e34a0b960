"""Why no cost entry takes a record: the closest entry, and each field of its match the record fails.

Owns: the words of "no cost entry" messages. Does not own: matching (``cards.Match``) or what an uncosted
record does to a margin (``margin.py``).

An entry takes a record when every field of its ``match`` (provider, product, kind, status, customer,
``attr.<name>``) has one of the listed values. The closest entry is the one with the fewest fields that fail,
the first in card order on a tie; saying which fields failed there is usually the fix (a typo in a provider
name, a kind the entry does not list, an ``attr.model`` the record does not carry).
"""

from __future__ import annotations

from talktime.core.rating.cards import CostCard, Entry, Match
from talktime.core.records import UsageRecord


def misses(match: Match, record: UsageRecord) -> list[str]:
    """Each field of ``match`` the record fails, in words: ``kind 'batch' (the entry takes ['stream'])``."""
    failed: list[str] = []
    for name, allowed in match.fields.items():
        value = record.value_of(name)
        if value is None:
            failed.append(f"{name} missing (the entry takes {list(allowed)})")
        elif str(value).lower() not in allowed:
            failed.append(f"{name} {str(value)!r} (the entry takes {list(allowed)})")
    return failed


def closest_entry(record: UsageRecord, card: CostCard) -> tuple[Entry, list[str]] | None:
    """The entry the record misses by the fewest fields, and those fields; None on a card with no entries."""
    best: tuple[Entry, list[str]] | None = None
    for entry in card.entries:
        failed = misses(entry.match, record)
        if best is None or len(failed) < len(best[1]):
            best = (entry, failed)
    return best


def why_uncosted(record: UsageRecord, card: CostCard) -> str:
    """One sentence naming the record, the closest entry and every field that did not match.

    >>> from talktime.core.records import parse_record
    >>> from talktime.providers import builtin
    >>> from talktime.core.rating.cards import Entry
    >>> entry = Entry("deepgram-streaming", "", builtin("deepgram-streaming"),
    ...               Match({"provider": ("deepgram",), "kind": ("stream",)}), "minute", ())
    >>> card = CostCard("costs", "USD", "UTC", (entry,))
    >>> record = parse_record({"id": "b-1", "provider": "Deepgram", "kind": "batch", "status": "completed",
    ...     "started_at": "2026-10-01T09:00:00Z", "ended_at": "2026-10-01T09:01:00Z"})
    >>> print(why_uncosted(record, card))
    record 'b-1': closest cost entry deepgram-streaming: kind 'batch' (the entry takes ['stream'])
    """
    found = closest_entry(record, card)
    if found is None:
        return f"record {record.id!r}: the cost card has no entries"
    entry, failed = found
    name = entry.group or entry.id
    return f"record {record.id!r}: closest cost entry {name}: " + ", ".join(failed)
