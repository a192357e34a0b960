"""Causes, classes, options and the summary of a reconciliation, with its story in plain words.

All quantities are exact: integer counts of ``10**-scale`` seconds inside, ``Decimal`` seconds outside.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Final, Literal

from talktime.core.decimals import text
from talktime.core.reconcile.money import Pricing

#: Each cause, in the order a trail meets it, with what it means.
CAUSES: Final[dict[str, str]] = {
    "time_basis": "the provider measures another time (connection, answered, audio, speech) than our tally",
    "connection_overhead": "setup and teardown: the provider bills the connection, our tally its content",
    "lifecycle": "status, short-call exemption or open-session cap (failed calls free, ...)",
    "participants": "each participant or leg billed on its own; our tally counts the session once",
    "rounding": "increments: each record rounded to the provider's blocks",
    "minimum": "a minimum billed per record",
    "channels": "each channel billed",
    "multiplier": "segments at another rate, factors and multipliers",
    "missing": "billed by the provider, no record of ours matches",
    "unbilled": "our record, not on the statement",
    "billing_delay": "our record near the period end, not billed yet (within the billing-delay window)",
    "duplicated": "the same provider id billed again",
}
CLASSES: Final = ("matched", "mismatched", "mispriced", "provider_only", "internal_only", "duplicate")
#: Money columns of a report line: due (the statement's billed quantity at the rate), expected_amount (our
#: metering at the rate), price (amount - due: a cause of its own) and the rate per unit applied.
MONEY_COLUMNS: Final = ("due", "expected_amount", "price", "rate")
#: The columns of one report line, in order.
REPORT_COLUMNS: Final = (
    "class",
    "line",
    "provider_id",
    "record_id",
    "internal",
    "expected",
    "provider",
    *CAUSES,
    "unexplained",
    "flagged",
    "flags",
    "amount",
    *MONEY_COLUMNS,
)
Tally = Literal["tally", "profile"]


@dataclass(frozen=True, slots=True)
class Options:
    """How to reconcile. Seconds are exact decimals."""

    tolerance_seconds: Decimal = Decimal(1)
    window_seconds: Decimal = Decimal(5)
    delay_seconds: Decimal = Decimal(300)
    tally: Tally = "tally"
    rate_per_unit: Decimal | None = None
    #: The rate lines are checked against (a cost card's entry, see ``money.card_pricing``); None: the
    #: ``rate_per_unit`` if given, else the statement's most common rate.
    pricing: Pricing | None = None
    #: How far a line's amount may be off its due amount; None: one unit of the statement's last place.
    money_tolerance: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Summary:
    """Totals over every line. ``causes`` + ``unexplained_seconds`` == ``gap_seconds`` exactly."""

    policy: str
    unit: str
    unit_seconds: Decimal
    counts: dict[str, int]
    internal_billable_seconds: Decimal
    expected_seconds: Decimal
    provider_billable_seconds: Decimal
    causes: dict[str, Decimal]
    unexplained_seconds: Decimal
    flagged_lines: int
    not_counted_records: int
    details: dict[str, int] = field(default_factory=dict)
    money: dict[str, Any] | None = None
    rounding_label: str = ""
    #: Lines flagged for their seconds (``flagged_lines`` also counts lines flagged for their price).
    seconds_flagged_lines: int = 0

    @property
    def gap_seconds(self) -> Decimal:
        return self.provider_billable_seconds - self.internal_billable_seconds

    def in_unit(self, seconds: Decimal) -> str:
        """Seconds in the policy's unit, one decimal, as the story prints them."""
        return f"{(seconds / self.unit_seconds).quantize(Decimal('0.1'))}"

    def story(self) -> str:
        """The gap in plain words, largest cause first."""
        unit = {"minute": "min", "hour": "h", "second": "s"}[self.unit]
        head = (
            f"{self.in_unit(self.provider_billable_seconds)} {unit} billed vs "
            f"{self.in_unit(self.internal_billable_seconds)} {unit} tallied"
        )
        parts = []
        for cause, seconds in sorted(self.causes.items(), key=lambda kv: -abs(kv[1])):
            if seconds == 0:
                continue
            sign = "+" if seconds > 0 else "-"
            amount = self.in_unit(abs(seconds))
            parts.append(f"{cause.replace('_', ' ')} {sign}{amount} {unit}{self._why(cause)}")
        if self.unexplained_seconds != 0:
            sign = "+" if self.unexplained_seconds > 0 else "-"
            parts.append(
                f"UNEXPLAINED {sign}{self.in_unit(abs(self.unexplained_seconds))} {unit} "
                f"({self.seconds_flagged_lines} lines over the tolerance)"
            )
        return head + (": " + ", ".join(parts) if parts else ": no gap") + self._money_story()

    def _money_story(self) -> str:
        """The money in words: what was charged, what was due at the rate, and the price difference."""
        m = self.money
        if m is None:
            return ""
        currency = f" {m['currency']}" if m.get("currency") else ""
        price = Decimal(m["causes"]["price"])
        flagged = m["price_flagged_lines"]
        said = (
            f". Charged {shown(m['statement_amount'], m['places'])}{currency} on {m['priced_lines']} "
            f"priced lines; at {m['rate_per_unit']} ({m['rate_source']}) "
            f"{shown(m['due_amount'], m['places'])}{currency} was due"
        )
        if price != 0:
            sign = "+" if price > 0 else "-"
            said += (
                f": PRICE {sign}{shown(str(abs(price)), m['places'])}{currency} ({flagged} lines over the "
            )
            said += f"money tolerance {m['tolerance']})"
        return said

    def _why(self, cause: str) -> str:
        d = self.details
        if cause == "participants" and d.get("participant_sessions"):
            sessions, records = d["participant_sessions"], d["participant_session_records"]
            per = records / sessions
            each = f"{int(per)} participants per call" if per == int(per) else f"{per:.1f} per call"
            return f" ({each}: {sessions} sessions, each connection billed on its own)"
        if cause == "rounding" and d.get("rounded_records"):
            return f" ({d['rounded_records']} connections rounded {self.rounding_label})"
        if cause == "minimum" and d.get("minimum_records"):
            return f" ({d['minimum_records']} records raised to the minimum)"
        if cause == "channels" and d.get("channel_records"):
            return f" ({d['channel_records']} multichannel records)"
        if cause == "missing":
            return f" ({d.get('missing_lines', 0)} lines with no record of ours)"
        if cause == "unbilled":
            return f" ({d.get('unbilled_records', 0)} records not on the statement)"
        if cause == "duplicated":
            return f" ({d.get('duplicate_lines', 0)} duplicate lines)"
        return ""

    def as_dict(self) -> dict[str, object]:
        return {
            "policy": self.policy,
            "unit": self.unit,
            "matched": self.counts.get("matched", 0),
            "mismatched": self.counts.get("mismatched", 0),
            "mispriced": self.counts.get("mispriced", 0),
            "provider_only": self.counts.get("provider_only", 0),
            "internal_only": self.counts.get("internal_only", 0),
            "duplicates": self.counts.get("duplicate", 0),
            "not_counted_records": self.not_counted_records,
            "internal_billable_seconds": text(self.internal_billable_seconds),
            "expected_seconds": text(self.expected_seconds),
            "provider_billable_seconds": text(self.provider_billable_seconds),
            "gap_seconds": text(self.gap_seconds),
            "causes": {k: text(v) for k, v in self.causes.items()},
            "unexplained_seconds": text(self.unexplained_seconds),
            "flagged_lines": self.flagged_lines,
            "seconds_flagged_lines": self.seconds_flagged_lines,
            "story": self.story(),
            "money": self.money,
        }


def shown(amount: str | None, places: int | None) -> str:
    """An exact amount for people: at the statement's precision (``places``, half-even), exact without it.

    >>> shown("0.0255", 5), shown("0.017", None)
    ('0.02550', '0.017')
    """
    if amount is None:
        return ""
    value = Decimal(amount)
    if places is None:
        return text(value)
    return f"{value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN):f}"
