"""The rest of a call's cost in the what-if commands: every modality's cost, and the records no entry prices.

Owns: :class:`Missing` (records no cost entry takes, counted by provider and product: their cost is unknown,
not zero), a record's modality for choosing what a simulated policy meters, and the reference cost stack of
a history (by modality, from :func:`talktime.core.rating.margin.session_margins`). Does not own: rating
(``talktime.core.rating``).

A record's modality is its cost entry's (the first entry whose match takes it, as in the margin report);
for a record no entry takes, its kind's (:data:`KIND_MODALITY`); a record with neither (a generated call)
has none, and every policy counts it.

>>> Missing.of_labels(["openai/chat", "elevenlabs/tts", "openai/chat"]).describe()
'3 record(s) with no cost entry: openai/chat 2, elevenlabs/tts 1'
>>> Missing().describe()
''
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final

from talktime.core.rating.cards import CostCard, PriceCard
from talktime.core.rating.margin import KIND_MODALITY, MODALITIES, session_margins
from talktime.core.records import UsageRecord

ZERO: Final = Decimal(0)


def product_label(provider: str | None, product: str | None) -> str:
    """``provider/product`` as the missing-cost lists name a record (``-`` for a field it lacks)."""
    return f"{provider or '-'}/{product or '-'}"


@dataclass(frozen=True, slots=True)
class Missing:
    """Records no cost entry takes, counted per ``provider/product``: a cost stack without them is a lower
    bound."""

    counts: Mapping[str, int] = field(default_factory=dict)

    @classmethod
    def of_labels(cls, labels: Iterable[str]) -> Missing:
        return cls(dict(Counter(labels)))

    @classmethod
    def of(cls, records: Iterable[UsageRecord]) -> Missing:
        return cls.of_labels(product_label(r.provider, r.product) for r in records)

    @property
    def records(self) -> int:
        return sum(self.counts.values())

    def __bool__(self) -> bool:
        return self.records > 0

    def __add__(self, other: Missing) -> Missing:
        merged = Counter(self.counts)
        merged.update(other.counts)
        return Missing(dict(merged))

    def ordered(self) -> list[tuple[str, int]]:
        """Most records first, then by name."""
        return sorted(self.counts.items(), key=lambda item: (-item[1], item[0]))

    def describe(self) -> str:
        if not self:
            return ""
        listed = ", ".join(f"{label} {count}" for label, count in self.ordered())
        return f"{self.records} record(s) with no cost entry: {listed}"

    def short(self) -> str:
        """For a table cell: ``12: openai/chat, elevenlabs/tts`` (``-`` when nothing is missing)."""
        if not self:
            return "-"
        return f"{self.records}: " + ", ".join(label for label, _ in self.ordered())

    def as_dict(self) -> dict[str, object]:
        return {"records": self.records, "by_product": dict(self.ordered())}


def placeholder_note(entries: Iterable[str]) -> str:
    """The legend of the ``*`` the faces put on a cost priced in part by placeholder prices.

    >>> placeholder_note(["livekit-sip"])[:60]
    '* PLACEHOLDER: the costs marked * are priced in part by plac'
    """
    return (
        f"* PLACEHOLDER: the costs marked * are priced in part by placeholder prices ({', '.join(entries)}: "
        "no published price, see the cost card): they are not real"
    )


def record_modality(record: UsageRecord, costs: CostCard) -> str | None:
    """The record's modality: its cost entry's, else its kind's, else None (see the module docstring)."""
    entry = costs.entry_for(record)
    if entry is not None:
        return entry.modality
    return KIND_MODALITY.get(record.kind) if record.kind is not None else None


@dataclass(frozen=True, slots=True)
class Stack:
    """What records cost, by modality (every modality, zero included), and the records no entry takes."""

    by_modality: Mapping[str, Decimal] = field(default_factory=lambda: dict.fromkeys(MODALITIES, ZERO))
    missing: Missing = field(default_factory=Missing)
    #: The cost entries with placeholder prices (``placeholder = true``) that price some of the records: the
    #: stack's total is then made up in part.
    placeholder: tuple[str, ...] = ()

    @property
    def total(self) -> Decimal:
        return sum(self.by_modality.values(), ZERO)


def cost_stack(records: Iterable[UsageRecord], costs: CostCard) -> Stack:
    """The reference: the records' cost by modality as the margin report rates it (provider months, each
    record by its first cost entry), and the records no entry takes."""
    history = list(records)
    nothing_sold = PriceCard("no prices", "no prices", costs.currency, costs.period_timezone, ())
    report = session_margins(history, costs, nothing_sold)
    by_modality = dict.fromkeys(MODALITIES, ZERO)
    for session in report.sessions:
        for modality, cost in session.cost_by_modality.items():
            by_modality[modality] = by_modality.get(modality, ZERO) + cost
    uncosted = set(report.uncosted_records)
    group_of = {e.id: e.group for e in costs.entries}
    found = {group_of[e] for session in report.sessions for e in session.placeholders}
    return Stack(by_modality, Missing.of(r for r in history if r.id in uncosted), tuple(sorted(found)))
