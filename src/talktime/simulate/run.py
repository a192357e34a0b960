"""Running several policies over the same calls on the vectorised engine (DuckDB), one pass each.

Owns: choosing the moment whose rules and prices apply, reading every record as the kind each policy counts
(a simulated call is a call, whatever the policy calls it), and collecting each policy's totals into
:class:`~talktime.core.simulate.impact.PolicyImpact` lines. Does not own: generating calls or the arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from talktime.core.metering.describe import one_line
from talktime.core.metering.policy import Policy
from talktime.core.rating.cards import CostCard
from talktime.core.simulate.impact import PolicyImpact, cost_entry, impact
from talktime.engine.backends import DuckDBEngine
from talktime.engine.compile import Compiled
from talktime.engine.dialects import DUCKDB
from talktime.engine.sources import Scannable


class _AsKind(DuckDBEngine):
    """DuckDB reading every record as ``kind``; ``trusted`` files (generated here) skip validation."""

    def __init__(self, kind: str | None, trusted: bool) -> None:
        super().__init__()
        self.kind = kind
        self.trusted = trusted

    def _relation(self, stack: ExitStack, file: Path, attrs: list[str]) -> str:
        base = super()._relation(stack, file, attrs)
        if self.kind is None:
            return base
        return f"(SELECT * REPLACE ({DUCKDB.str_lit(self.kind)} AS kind) FROM {base}) AS _as_kind"

    def _validate(self, compiled: Compiled, source: Scannable, policy: Policy) -> None:
        if not self.trusted:
            super()._validate(compiled, source, policy)


def anchor(policies: Sequence[Policy], card: CostCard | None) -> datetime:
    """The first day of the month on or after every policy's current version and its current price, so the
    rules and prices in force today apply to every simulated call."""
    moments = [p.current.effective_from for p in policies]
    for policy in policies:
        entry = cost_entry(card, policy.id) if card is not None else None
        if entry is not None:
            moments.append(entry.versions[-1].effective_from)
    latest = max(moments).astimezone(UTC)
    first = latest.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if first == latest:
        return first
    return (
        first.replace(year=first.year + 1, month=1)
        if first.month == 12
        else first.replace(month=first.month + 1)
    )


@dataclass(slots=True)
class Simulation:
    """Every policy over the same calls, with where the calls came from."""

    source: str
    records: int
    at: datetime
    policies: list[Policy]
    impacts: list[PolicyImpact] = field(default_factory=list)
    calls: int | None = None
    seed: int | None = None
    channels: str = ""
    participants: str = ""
    notes: list[str] = field(default_factory=list)


def meter_policies(
    path: Path,
    policies: Sequence[Policy],
    card: CostCard | None,
    at: datetime,
    *,
    trusted: bool = False,
    step: Callable[[str], None] = lambda _: None,
) -> list[PolicyImpact]:
    """Each policy's totals over the records at ``path``, as impact lines (one engine pass per policy)."""
    lines = []
    for policy in policies:
        step(policy.id)
        version = policy.version_at(at)
        kinds = version.params.kinds
        engine = _AsKind(kinds[0] if kinds else None, trusted)
        try:
            totals = engine.totals(path, policy)
        finally:
            engine.close()
        whole = totals.all
        lines.append(
            impact(
                policy,
                one_line(version.params),
                whole.records,
                whole.actual_seconds,
                whole.billable_seconds,
                card,
                at,
            )
        )
    return lines


def seconds_total(lines: Sequence[PolicyImpact]) -> Decimal:
    return sum((line.billable_seconds for line in lines), Decimal(0))
