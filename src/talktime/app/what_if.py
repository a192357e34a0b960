"""``what_if``: which what-if questions a record file and its cost card raise, for a face that offers them
without being asked (the dashboard): the rounding impact of every time-metered policy the file's providers
use and of the card's other products that bill the same kind of records, and each provider switch to such a
product. The answers are :func:`talktime.app.simulate.simulate` and :func:`talktime.app.compare.compare`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from talktime.core.rating.cards import CostCard, Entry

__all__ = ["Switch", "WhatIfChoices", "what_if_choices"]


@dataclass(frozen=True, slots=True)
class Switch:
    """A switch from a product the file uses to one the card also prices, by their card keys."""

    modality: str
    from_: str
    to: str


@dataclass(frozen=True, slots=True)
class WhatIfChoices:
    """The policies whose rounding to compare (in use first in each modality) and the switches to offer."""

    rounding: tuple[str, ...]
    in_use: frozenset[str]
    switches: tuple[Switch, ...]


def _key(entry: Entry) -> str:
    return entry.group or entry.id


def _kinds(entry: Entry) -> frozenset[str]:
    return frozenset(entry.policy.current.params.kinds or ())


def what_if_choices(costs: CostCard, used: Iterable[str]) -> WhatIfChoices:
    """The questions for a file whose records the card entries ``used`` (entry ids, or card keys) cost.

    An alternative is a card product of the same modality that bills a kind of record an entry in use
    bills (a streaming STT for streams, a carrier for phone legs), and is not in use itself.

    >>> from pathlib import Path
    >>> from talktime.io.ratecards import load_cost_card
    >>> found = what_if_choices(load_cost_card(Path("costs-informative.toml")), ["twilio-voice"])
    >>> found.rounding
    ('twilio-voice', 'telnyx-voice', 'plivo-voice')
    >>> [f"{s.from_} -> {s.to}" for s in found.switches]
    ['twilio-voice -> telnyx-voice', 'twilio-voice -> plivo-voice']
    """
    wanted = set(used)
    groups: dict[str, Entry] = {}
    for entry in costs.entries:
        groups.setdefault(_key(entry), entry)
    in_use = {key for key, entry in groups.items() if key in wanted or entry.id in wanted}
    in_use |= {_key(e) for e in costs.entries if e.id in wanted}
    rounding: list[str] = []
    switches: list[Switch] = []
    for key in [k for k in groups if k in in_use]:
        entry = groups[key]
        others = [
            other
            for other_key, other in groups.items()
            if other_key not in in_use and other.modality == entry.modality and _kinds(other) & _kinds(entry)
        ]
        switches += [Switch(entry.modality, key, _key(other)) for other in others]
        if entry.policy.is_count:
            continue
        for candidate in (entry, *others):
            if candidate.policy.id not in rounding:
                rounding.append(candidate.policy.id)
    return WhatIfChoices(tuple(rounding), frozenset(in_use), tuple(switches))
