"""Which rules meter and price a record in the what-if commands: the one answer of ADR 0004.

By default a record is metered by the policy version, and priced by the charge version, in force when it
*started*, as ``talktime meter``, ``margin`` and ``invoice`` do: the same records give the same billable
quantities in every command. ``--at DATE`` (``simulate`` and ``compare`` alike) asks what the records would
have cost had the rules and prices in force on DATE applied to every one of them: each policy, cost entry and
price component is *pinned* to its version on DATE, in force from the beginning of time.

Channels are a fact of the record (``channels``); what they bill is each policy's own rule (``per_call`` or
``per_channel``, ``extra_channel_factor``) of the version that meters the record. Nothing here has a channel
rule of its own.

>>> from talktime.providers import builtin
>>> telnyx = builtin("telnyx-voice")
>>> [v.params.increment_seconds for v in telnyx.versions]
[Decimal('6'), Decimal('60')]
>>> pinned = pin_policy(telnyx, at_date("2026-11-15"))
>>> [(v.effective_from.year, v.params.increment_seconds) for v in pinned.versions]
[(1970, Decimal('60'))]
>>> Rules(at_date("2026-11-15")).label
'the rules and prices in force on 2026-11-15, applied to every record'
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Final

from talktime.core.metering.policy import Policy
from talktime.core.rating.cards import CostCard, Entry, PriceCard
from talktime.errors import InputError

#: Where a pinned version starts: before any record.
SINCE_EVER: Final = datetime(1970, 1, 1, tzinfo=UTC)


def at_date(value: str) -> datetime:
    """``--at YYYY-MM-DD`` as midnight UTC."""
    try:
        return datetime.combine(date.fromisoformat(value), datetime.min.time(), tzinfo=UTC)
    except ValueError:
        raise InputError(f"--at {value!r}: write a date as YYYY-MM-DD") from None


@dataclass(frozen=True, slots=True)
class Rules:
    """The rules a what-if applies: each record's own (``at`` None), or those in force on ``at``."""

    at: datetime | None = None

    @property
    def label(self) -> str:
        if self.at is None:
            return "each record under the rules and prices in force when it started"
        return f"the rules and prices in force on {self.at.date().isoformat()}, applied to every record"

    def policy(self, policy: Policy) -> Policy:
        return policy if self.at is None else pin_policy(policy, self.at)

    def entry(self, entry: Entry, option: str = "--at") -> Entry:
        return entry if self.at is None else pin_entry(entry, self.at, option)

    def costs(self, card: CostCard) -> tuple[CostCard, dict[str, str]]:
        """The card under these rules, and the entries left off it (card key: why)."""
        return (card, {}) if self.at is None else pin_costs(card, self.at)

    def prices(self, card: PriceCard | None) -> PriceCard | None:
        return card if card is None or self.at is None else pin_prices(card, self.at)


def _day(moment: datetime) -> str:
    return moment.date().isoformat()


def pin_policy(policy: Policy, at: datetime) -> Policy:
    """The policy with its version in force on ``at`` alone, in force since ever (parts kept)."""
    if policy.versions[0].effective_from > at:
        raise InputError(
            f"--at {_day(at)}: profile {policy.id!r} starts on {_day(policy.versions[0].effective_from)}; "
            "choose a date on or after it"
        )
    version = policy.version_at(at).model_copy(update={"effective_from": SINCE_EVER})
    pinned = policy.model_copy(update={"versions": (version,)})
    pinned._components = None  # a policy with parts builds its components again, from the pinned version
    return pinned


def pin_entry(entry: Entry, at: datetime, option: str = "--at") -> Entry:
    """The card entry at ``at``: its policy pinned, and its charge version on ``at`` in force since ever."""
    version = entry.version_at(at)
    if version is None:
        raise InputError(
            f"{option} {_day(at)}: {entry.id!r} has no price before {entry.versions[0].label}; "
            "choose a later date"
        )
    return replace(
        entry,
        policy=pin_policy(entry.policy, at),
        versions=(replace(version, effective_from=SINCE_EVER),),
    )


def pin_costs(card: CostCard, at: datetime) -> tuple[CostCard, dict[str, str]]:
    """Every entry pinned at ``at``. An entry with no profile version or price yet on ``at`` is left off the
    card (its records are then uncosted, and reported so): returned by card key, with the reason."""
    kept: list[Entry] = []
    left_off: dict[str, str] = {}
    for entry in card.entries:
        if entry.group in left_off:
            continue
        try:
            kept.append(pin_entry(entry, at))
        except InputError as why:
            left_off[entry.group] = str(why)
            kept = [e for e in kept if e.group != entry.group]
    return replace(card, entries=tuple(kept)), left_off


def left_off_note(group: str, why: str, records: int) -> str:
    """The note for a card entry ``--at`` left off, when it prices ``records`` records of the history."""
    return f"{group}: left off the cost card ({why}); its {records:,} record(s) count as missing costs"


def pin_prices(card: PriceCard, at: datetime) -> PriceCard:
    """Every price component pinned at ``at`` (a component with no price on ``at`` is an error)."""
    return replace(card, components=tuple(pin_entry(c, at) for c in card.components))


def cost_group(card: CostCard, policy_id: str) -> tuple[Entry, ...]:
    """The card's entries that price ``policy_id`` (its key, or the profile it meters by): one, or one per
    part of a policy with parts. Empty when the card has none."""
    first = next((e for e in card.entries if policy_id in (e.id, e.group, e.policy.id)), None)
    if first is None:
        return ()
    return tuple(e for e in card.entries if e.group == first.group)
