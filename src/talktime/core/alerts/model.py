"""What the rules read and what they give: a customer's billing period, a call, a record open or long, and
the alert itself, with its stable id and the body its webhook carries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from talktime.core.decimals import text


class Rule(StrEnum):
    spend = "spend"
    minutes = "minutes"
    long_call = "long-call"
    tokens_per_minute = "tokens-per-minute"
    stuck_call = "stuck-call"


#: Each rule in words, as the page, the command line and the webhook name it.
RULE_NAMES = {
    Rule.spend: "spend in the period",
    Rule.minutes: "billable minutes in the period",
    Rule.long_call: "call far longer than usual",
    Rule.tokens_per_minute: "LLM tokens per minute far above normal",
    Rule.stuck_call: "call left open",
}


@dataclass(frozen=True, slots=True)
class PeriodUsage:
    """A customer's billing period (``YYYY-MM`` in the customer's time zone on the price card) as the price
    card rates it: what its calls are priced at and the billable minutes sold."""

    customer: str
    period: str
    spend: Decimal
    minutes: Decimal
    calls: int


@dataclass(frozen=True, slots=True)
class CallFacts:
    """One call (a session of records) as the anomaly rules read it.

    ``duration_us`` runs from the first start to the last end of the call's records (None while a record of
    the call is still open); ``tokens`` adds up the input and output tokens of its LLM records."""

    customer: str
    session: str
    started_at: datetime
    duration_us: int | None
    tokens: int


@dataclass(frozen=True, slots=True)
class RecordSpan:
    """A record that is still open (no end) or that ran long: what the stuck-call rule reads."""

    record_id: str
    customer: str
    session: str
    kind: str
    provider: str
    status: str
    started_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert: which rule fired for which customer, on what (a period, a call, a record), the value
    beside the threshold it passed (both exact, in ``unit``), and the sentence that says so."""

    rule: Rule
    customer: str
    subject: str  # the period (YYYY-MM), the call's session, or the record's id
    value: Decimal
    threshold: Decimal
    unit: str  # the price card's currency, "min" or "tokens/min"
    message: str
    started_at: datetime | None = None  # when the call or record started (None for a period)

    @property
    def id(self) -> str:
        """Stable across checks: the same period, call or record gives the same id, however its value grew,
        so an alert delivered once is not delivered again."""
        return f"{self.rule.value}/{self.customer}/{self.subject}"

    @property
    def rule_name(self) -> str:
        return RULE_NAMES[self.rule]


def webhook_body(alert: Alert, now: datetime, tenant: str | None = None) -> dict[str, Any]:
    """The JSON body POSTed for ``alert`` (the Standard Webhooks shape: type, timestamp, data); amounts as
    exact decimal strings. ``tenant``: the alert is one tenant's of a server's (``data.tenant``)."""
    return {
        "type": "talktime.alert",
        "timestamp": now.isoformat(),
        "data": {
            **({} if tenant is None else {"tenant": tenant}),
            "id": alert.id,
            "rule": alert.rule.value,
            "rule_name": alert.rule_name,
            "customer": alert.customer,
            "subject": alert.subject,
            "value": text(alert.value),
            "threshold": text(alert.threshold),
            "unit": alert.unit,
            "message": alert.message,
            "started_at": None if alert.started_at is None else alert.started_at.isoformat(),
        },
    }


def shown(value: Decimal, places: int = 2) -> str:
    """A number for a sentence: grouped thousands, ``places`` decimals (rounded half-even for display)."""
    return format(value.quantize(Decimal(1).scaleb(-places)), f",.{places}f")
