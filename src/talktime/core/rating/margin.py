"""Per-call cost, price and margin: for every session, the cost from each provider meter (cost card) and the
price charged (price card), and reports of them by customer, provider or period.

Owns: putting cost and price side by side per session and adding them up. Does not own: the prices (cards)
or the arithmetic of a charge (charge models).

How amounts reach a session: a per-unit or per-attempt charge is exact per record; a tiered, package or
flat charge is computed over its whole group (provider: the month in the cost card's zone, over all
customers; price: the customer's month) and split over the records pro rata to their billable quantity.
Each record is costed by the first cost entry (in card order) whose match takes it; a record no entry
takes is listed as uncosted, never silently free. Fees and minimum-commitment true-ups are period items,
not per call: they are not in these margins.
A session is flagged ``loss`` when its minutes cost more than they sell for (margin < 0). By provider, a
session's price and margin are attributed to its providers in proportion to their cost.

Placeholder prices: a session a cost entry marked ``placeholder`` prices (an entry of the card takes one of
its records: even where a free quota makes that record's amount zero, what the quota leaves is priced by
the same made-up price) has a cost and margin that are not real; so does every row that adds it up. It
names the entries (``placeholders``), and every face must say so on the row, as it says *incomplete*.

The cost stack: every cost is also put on its modality (telephony, stt, llm, tts, platform, from the
profile's ``modality``; ``other`` when it names none), so a call shows what its carrier, transcription,
model and voice cost. A session (or a row of sessions) with any record no cost entry takes is
*incomplete*: its cost is a lower bound and its margin an upper bound, and every face must say so on the row.

Held records: a session with a record the plausibility guards hold back (:class:`Guard`, as ``talktime
invoice`` judges it: as of the end of the record's customer month, or "now" if earlier) is *held*. Its price
is still the price the card gives the record (a held record shares quotas and tiers with the others, so
leaving it out would change other calls' prices too): the mark says that this price is not invoiced until a
person accepts or corrects the record, and every face must say so on the row.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Final, overload

from talktime.core.invoicing.periods import month_period, period_label
from talktime.core.plausibility import Limits, hold_back, reason_code
from talktime.core.rating.cards import CostCard, PriceCard
from talktime.core.rating.money import MoneyError
from talktime.core.rating.rate import rate_entry
from talktime.core.records import UsageRecord

ZERO = Decimal(0)
NO_CUSTOMER = "-"
#: The by-provider row that counts the records no cost entry takes (their provider's cost is unknown).
UNCOSTED_ROW = "(uncosted)"


@dataclass(slots=True)
class SessionMargin:
    customer: str
    session: str
    period: str
    started_at: datetime
    costs: dict[str, Decimal] = field(default_factory=dict)
    providers: dict[str, str] = field(default_factory=dict)
    cost_quantities: dict[str, Decimal] = field(default_factory=dict)
    modalities: dict[str, str] = field(default_factory=dict)
    catalogs: set[str] = field(default_factory=set)
    price: Decimal = ZERO
    price_seconds: Decimal = ZERO
    uncosted: list[str] = field(default_factory=list)
    #: The modalities of the uncosted records (by their kind): their cost is unknown, not zero.
    uncosted_modalities: set[str] = field(default_factory=set)
    #: The records the guards hold back (ids, in file order) and their reason codes: priced, not invoiced
    #: (shared empty defaults: no object per call when nothing is held).
    held: Sequence[str] = ()
    held_reasons: frozenset[str] = frozenset()
    #: The cost entries with placeholder prices that price a record of the session (shared empty default).
    placeholders: frozenset[str] = frozenset()

    @property
    def cost(self) -> Decimal:
        return sum(self.costs.values(), ZERO)

    @property
    def incomplete(self) -> bool:
        """True when a record of the session has no cost: the cost is then a lower bound, not the cost."""
        return bool(self.uncosted)

    @property
    def placeholder(self) -> bool:
        """True when a cost entry with placeholder prices prices a record: the cost is then made up."""
        return bool(self.placeholders)

    @property
    def cost_by_modality(self) -> dict[str, Decimal]:
        return _by_modality(self.costs, self.modalities)

    @property
    def cost_by_provider(self) -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        for entry_id, cost in self.costs.items():
            provider = self.providers.get(entry_id, entry_id)
            out[provider] = out.get(provider, ZERO) + cost
        return out

    @property
    def cost_per_minute(self) -> Decimal | None:
        """What one billable customer minute of this call cost (None when no minute was sold)."""
        return None if self.price_seconds == 0 else self.cost / self.minutes

    @property
    def margin(self) -> Decimal:
        return self.price - self.cost

    @property
    def loss(self) -> bool:
        return self.margin < 0

    @property
    def minutes(self) -> Decimal:
        """Minutes sold (the price components' billable seconds, in minutes)."""
        return self.price_seconds / 60


#: The order cost stacks are shown in: the call's path from the carrier to the voice.
MODALITIES: Final = ("telephony", "stt", "llm", "tts", "platform", "other")
#: A record's modality when no cost entry takes it (so no profile says), by its kind.
KIND_MODALITY: Final[Mapping[str, str]] = {
    "leg": "telephony",
    "sip": "telephony",
    "stream": "stt",
    "batch": "stt",
    "llm": "llm",
    "tts": "tts",
    "participant": "platform",
    "agent": "platform",
}


def _by_modality(costs: Mapping[str, Decimal], modalities: Mapping[str, str]) -> dict[str, Decimal]:
    out = dict.fromkeys(MODALITIES, ZERO)
    for entry_id, cost in costs.items():
        modality = modalities.get(entry_id, "other")
        out[modality] = out.get(modality, ZERO) + cost
    return out


@dataclass(frozen=True, slots=True)
class MarginReport:
    currency: str
    sessions: tuple[SessionMargin, ...]
    uncosted_records: tuple[str, ...]
    #: The records the guards hold back, in file order (empty without a :class:`Guard`).
    held_records: tuple[str, ...] = ()


def placeholders_of(sessions: Iterable[SessionMargin]) -> tuple[str, ...]:
    """The cost entries with placeholder prices that price some session, sorted."""
    found: set[str] = set()
    for s in sessions:
        if s.placeholders:
            found |= s.placeholders
    return tuple(sorted(found))


@dataclass(frozen=True, slots=True)
class Guard:
    """The plausibility limits the invoices apply, and "now": a record is judged as of the end of its
    customer's month, or ``now`` if that is earlier (as ``guarded_invoice`` judges a month); a record a
    store kept, as of its first receipt (the store's word in ``limits.accepted``: ``judged_as_of``)."""

    limits: Limits
    now: datetime

    def moment(self, record: UsageRecord, prices: PriceCard) -> datetime:
        """The "now" ``record`` is judged as of."""
        tz = prices.customer(record.customer or NO_CUSTOMER).timezone
        return min(self.now, month_period(period_label(record.started_at, tz), tz).end)


def held_of(records: Iterable[UsageRecord], prices: PriceCard, guard: Guard) -> dict[str, tuple[str, ...]]:
    """The records ``guard`` holds back, by id in file order, with their reason codes."""
    found: dict[str, tuple[str, ...]] = {}
    for record in records:
        _, held = hold_back([record], guard.limits, guard.moment(record, prices))
        for each, reasons in held:
            found[each.id] = tuple(dict.fromkeys(reason_code(r) for r in reasons))
    return found


def session_margins(
    records: Iterable[UsageRecord], costs: CostCard, prices: PriceCard, guard: Guard | None = None
) -> MarginReport:
    """Cost, price and margin for every session in ``records``; with ``guard``, the sessions' held records
    marked."""
    if costs.currency != prices.currency:
        raise MoneyError(
            f"the cost card is in {costs.currency} and the price card in {prices.currency}; "
            "margins need one currency (no FX here)"
        )
    records = list(records)
    sessions: dict[tuple[str, str], SessionMargin] = {}

    def session_of(record: UsageRecord) -> SessionMargin:
        customer = record.customer or NO_CUSTOMER
        key = (customer, record.session_key)
        found = sessions.get(key)
        tz = prices.customer(customer).timezone
        if found is None:
            found = SessionMargin(
                customer, record.session_key, period_label(record.started_at, tz), record.started_at
            )
            sessions[key] = found
        elif record.started_at < found.started_at:
            found.started_at = record.started_at
            found.period = period_label(record.started_at, tz)
        return found

    by_id = {r.id: r for r in records}
    for record in records:
        session_of(record)

    # cost side: each provider month over all customers
    by_cost_period: dict[str, list[UsageRecord]] = defaultdict(list)
    for record in records:
        by_cost_period[period_label(record.started_at, costs.period_timezone)].append(record)
    costed: set[str] = set()
    for period_records in by_cost_period.values():
        assigned: dict[str, list[UsageRecord]] = defaultdict(list)
        for record in period_records:
            for chosen in costs.entries_for(record):
                assigned[chosen.id].append(record)
        for entry in costs.entries:
            for group in rate_entry(entry, assigned.get(entry.id, [])):
                for item in group.items:
                    costed.add(item.record_id)
                    s = session_of(by_id[item.record_id])
                    s.costs[entry.id] = s.costs.get(entry.id, ZERO) + item.amount
                    s.providers[entry.id] = entry.policy.provider or entry.id
                    s.modalities[entry.id] = entry.modality
                    if entry.catalog is not None:
                        s.catalogs.add(entry.catalog)
                    if entry.placeholder and entry.id not in s.placeholders:
                        s.placeholders = s.placeholders | {entry.id}
                    s.cost_quantities[entry.id] = s.cost_quantities.get(entry.id, ZERO) + item.quantity
    uncosted = tuple(r.id for r in records if r.id not in costed)
    for record_id in uncosted:
        record = by_id[record_id]
        session = session_of(record)
        session.uncosted.append(record_id)
        session.uncosted_modalities.add(KIND_MODALITY.get(record.kind or "", "other"))

    # price side: each customer's month in the customer's zone
    by_customer_period: dict[tuple[str, str], list[UsageRecord]] = defaultdict(list)
    for record in records:
        if record.customer is None:
            continue
        tz = prices.customer(record.customer).timezone
        by_customer_period[(record.customer, period_label(record.started_at, tz))].append(record)
    for period_records in by_customer_period.values():
        for component in prices.components:
            for group in rate_entry(component, period_records):
                for item in group.items:
                    s = session_of(by_id[item.record_id])
                    s.price += item.amount
                    s.price_seconds += item.metered.billable_seconds
    held = {} if guard is None else held_of(records, prices, guard)
    marks: dict[tuple[str, str], tuple[list[str], set[str]]] = {}
    for record_id, codes in held.items():
        record = by_id[record_id]
        ids, reasons = marks.setdefault((record.customer or NO_CUSTOMER, record.session_key), ([], set()))
        ids.append(record_id)
        reasons.update(codes)
    for key, (ids, reasons) in marks.items():
        sessions[key].held, sessions[key].held_reasons = ids, frozenset(reasons)
    ordered = sorted(sessions.values(), key=lambda s: (s.started_at, s.customer, s.session))
    return MarginReport(prices.currency, tuple(ordered), uncosted, tuple(held))


@dataclass(slots=True)
class MarginRow:
    key: str
    period: str = ""
    sessions: int = 0
    loss_sessions: int = 0
    minutes: Decimal = ZERO
    cost: Decimal = ZERO
    price: Decimal = ZERO
    incomplete_sessions: int = 0
    uncosted_records: int = 0
    uncosted_modalities: set[str] = field(default_factory=set)
    held_sessions: int = 0
    held_records: int = 0
    held_reasons: set[str] = field(default_factory=set)
    modality_costs: dict[str, Decimal] = field(default_factory=lambda: dict.fromkeys(MODALITIES, ZERO))
    provider_costs: dict[str, Decimal] = field(default_factory=dict)
    #: The sessions a placeholder-priced cost entry prices, and those entries.
    placeholder_sessions: int = 0
    placeholder_entries: set[str] = field(default_factory=set)

    @property
    def incomplete(self) -> bool:
        return self.incomplete_sessions > 0

    @property
    def placeholder(self) -> bool:
        return self.placeholder_sessions > 0

    @property
    def cost_per_minute(self) -> Decimal | None:
        return None if self.minutes == 0 else self.cost / self.minutes

    def add_session(self, session: SessionMargin) -> None:
        self.sessions += 1
        self.loss_sessions += int(session.loss)
        self.minutes += session.minutes
        self.cost += session.cost
        self.price += session.price
        self.incomplete_sessions += int(session.incomplete)
        self.uncosted_records += len(session.uncosted)
        self.uncosted_modalities |= session.uncosted_modalities
        self.add_held(session.held, session.held_reasons)
        if session.placeholders:
            self.placeholder_sessions += 1
            self.placeholder_entries |= session.placeholders
        for modality, cost in session.cost_by_modality.items():
            self.modality_costs[modality] = self.modality_costs.get(modality, ZERO) + cost
        for provider, cost in session.cost_by_provider.items():
            self.provider_costs[provider] = self.provider_costs.get(provider, ZERO) + cost

    def add_held(self, held: Sequence[str], reasons: Iterable[str]) -> None:
        """Count a session's held records (none: nothing changes)."""
        if held:
            self.held_sessions += 1
            self.held_records += len(held)
            self.held_reasons.update(reasons)

    @property
    def margin(self) -> Decimal:
        return self.price - self.cost

    @property
    def margin_percent(self) -> Decimal | None:
        return None if self.price == 0 else self.margin / self.price * 100

    @property
    def loss(self) -> bool:
        return self.margin < 0


def margin_rows(report: MarginReport, by: str) -> list[MarginRow]:
    """Sessions added up by ``customer`` (each customer's month), ``period`` or ``provider`` (price
    attributed by cost share; records no entry costs on a row of their own)."""
    rows: dict[tuple[str, str], MarginRow] = {}

    def row(key: str, period: str = "") -> MarginRow:
        return rows.setdefault((key, period), MarginRow(key, period))

    for s in report.sessions:
        if by == "provider":
            parts: Mapping[str, Decimal] = s.costs or {"(no provider cost)": ZERO}
            total_cost = s.cost
            for entry_id, cost in parts.items():
                share = (cost / total_cost) if total_cost else Decimal(1) / len(parts)
                r = row(entry_id)
                r.sessions += 1
                r.loss_sessions += int(s.loss)
                r.minutes += s.cost_quantities.get(entry_id, ZERO)
                r.cost += cost
                r.price += s.price * share
                modality = s.modalities.get(entry_id, "other")
                r.modality_costs[modality] = r.modality_costs.get(modality, ZERO) + cost
                r.add_held(s.held, s.held_reasons)
                if entry_id in s.placeholders:
                    r.placeholder_sessions += 1
                    r.placeholder_entries.add(entry_id)
            if s.uncosted:  # records no cost entry takes belong to no provider: a row of their own
                r = row(UNCOSTED_ROW)
                r.sessions += 1
                r.incomplete_sessions += 1
                r.uncosted_records += len(s.uncosted)
                r.uncosted_modalities |= s.uncosted_modalities
        else:
            if by == "customer":
                row(s.customer, s.period).add_session(s)
            else:
                row(s.period).add_session(s)
    return [rows[k] for k in sorted(rows)]


# --- one view for every face ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MarginView:
    """Margin rows as every face shows them: column names in order and one mapping per row.

    Values are exact (``Decimal``), ``None`` where there is no value (a margin % without a price), or text.
    Each row carries ``incomplete`` and ``uncosted``; for an incomplete row, cost is a lower bound and margin
    an upper bound, which the faces must say on the row itself. Each row also carries ``placeholder`` and
    ``placeholder_entries`` (with ``placeholder_sessions`` on a row of calls added up): its cost includes
    one priced by a placeholder price, which the faces must say on the row too.
    """

    by: str
    currency: str
    columns: tuple[str, ...]
    modalities: tuple[str, ...]
    rows: Sequence[dict[str, object]]  # a tuple; by session on request rows made as they are read
    uncosted_records: tuple[str, ...]
    #: The records the guards hold back (each row also says ``held``: how many of its records).
    held_records: tuple[str, ...] = ()
    #: The cost entries with placeholder prices that price some row's cost, sorted.
    placeholder_entries: tuple[str, ...] = ()


def per_minute(view: MarginView) -> MarginView:
    """The same rows with every amount (each modality's and provider's cost, the cost, price and margin) per
    customer minute sold: what one minute of the unified price costs, and where it goes. Rows
    with no minute sold show no per-minute cost (None), never a division by zero."""
    rows: list[dict[str, object]] = []
    for row in view.rows:
        minutes = row.get("minutes")
        out = dict(row)
        for key, value in row.items():
            money = key.startswith("cost") or key in ("price", "margin")
            if money and key != "cost_per_minute" and isinstance(value, Decimal):
                out[key] = value / minutes if isinstance(minutes, Decimal) and minutes else None
        providers = row.get("providers")
        if isinstance(providers, dict):
            out["providers"] = {
                name: (cost / minutes if isinstance(minutes, Decimal) and minutes else None)
                for name, cost in providers.items()
            }
        out["per_minute"] = True
        rows.append(out)
    return MarginView(
        view.by,
        view.currency,
        view.columns,
        view.modalities,
        tuple(rows),
        view.uncosted_records,
        view.held_records,
        view.placeholder_entries,
    )


def margin_view(report: MarginReport, by: str, *, lazy: bool = False) -> MarginView:
    """The rows of ``talktime margin --by <by>`` (session, customer, period or provider). ``lazy``: by
    session, each row is made when it is read (:class:`SessionRows`: a face that writes the rows once then
    holds one row at a time, not gigabytes of them at ten million records)."""
    modalities = shown_modalities({m for s in report.sessions for m in s.modalities.values()})
    if by != "session":
        rows = margin_rows(report, by)
        return rows_view(by, report.currency, rows, modalities, report.uncosted_records, report.held_records)
    stack = tuple(f"cost_{m}" for m in modalities)
    columns = (
        "customer",
        "session",
        "started_at",
        "period",
        "minutes",
        *stack,
        "cost",
        "price",
        "margin",
        "margin_percent",
        "cost_per_minute",
    )
    # each customer's calls together, in the order they started (the id settles equal starts)
    ordered = sorted(report.sessions, key=lambda s: (s.customer, s.started_at, s.session))
    each = SessionRows(ordered, modalities)
    view_rows = each if lazy else tuple(each)
    return MarginView(
        by,
        report.currency,
        columns,
        modalities,
        view_rows,
        report.uncosted_records,
        report.held_records,
        placeholders_of(report.sessions),
    )


class SessionRows(Sequence[dict[str, object]]):
    """The session view's rows, each made from its call when it is read (none is kept)."""

    def __init__(self, sessions: Sequence[SessionMargin], modalities: tuple[str, ...]) -> None:
        self.sessions, self.modalities = sessions, modalities

    def __len__(self) -> int:
        return len(self.sessions)

    @overload
    def __getitem__(self, index: int) -> dict[str, object]: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[dict[str, object]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, object] | Sequence[dict[str, object]]:
        if isinstance(index, slice):
            return SessionRows(self.sessions[index], self.modalities)
        return session_row(self.sessions[index], self.modalities)

    def __iter__(self) -> Iterator[dict[str, object]]:
        modalities = self.modalities
        return (session_row(s, modalities) for s in self.sessions)


def session_row(s: SessionMargin, modalities: tuple[str, ...]) -> dict[str, object]:
    """One call's row of the session view."""
    by_modality = s.cost_by_modality
    return {
        "customer": s.customer,
        "session": s.session,
        "started_at": s.started_at,
        "period": s.period,
        "minutes": s.minutes,
        **{f"cost_{m}": by_modality.get(m, ZERO) for m in modalities},
        "cost": s.cost,
        "price": s.price,
        "margin": s.margin,
        "margin_percent": None if s.price == 0 else s.margin / s.price * 100,
        "cost_per_minute": s.cost_per_minute,
        "providers": dict(sorted(s.cost_by_provider.items())),
        "catalogs": sorted(s.catalogs),
        "loss": s.loss,
        "incomplete": s.incomplete,
        "uncosted": len(s.uncosted),
        "uncosted_modalities": sorted(s.uncosted_modalities),
        "uncosted_records": list(s.uncosted),
        "held": len(s.held),
        "held_reasons": sorted(s.held_reasons),
        "held_records": list(s.held),
        "placeholder": bool(s.placeholders),
        "placeholder_entries": sorted(s.placeholders),
    }


def rows_view(
    by: str,
    currency: str,
    rows: Iterable[MarginRow],
    modalities: tuple[str, ...],
    uncosted_records: tuple[str, ...],
    held_records: tuple[str, ...] = (),
) -> MarginView:
    """Rows of sessions added up (``margin_rows``, or the same rows added up on an engine) as every face
    shows them."""
    stack = tuple(f"cost_{m}" for m in modalities)
    first = ("customer", "period") if by == "customer" else (by,)
    quantity = "quantity" if by == "provider" else "minutes"
    columns = (*first, "sessions", "loss_sessions", quantity, *stack, "cost", "price", "margin")
    columns = (*columns, "margin_percent", "cost_per_minute")
    view_rows: list[dict[str, object]] = []
    placeholders: set[str] = set()
    for r in rows:
        placeholders |= r.placeholder_entries
        keyed: dict[str, object] = (
            {"customer": r.key, "period": r.period} if by == "customer" else {by: r.key}
        )
        view_rows.append(
            {
                **keyed,
                "sessions": r.sessions,
                "loss_sessions": r.loss_sessions,
                quantity: r.minutes,
                **{f"cost_{m}": r.modality_costs.get(m, ZERO) for m in modalities},
                "cost": r.cost,
                "price": r.price,
                "margin": r.margin,
                "margin_percent": r.margin_percent,
                "cost_per_minute": None if by == "provider" else r.cost_per_minute,
                **({} if by == "provider" else {"providers": dict(sorted(r.provider_costs.items()))}),
                "loss": r.loss,
                "incomplete": r.incomplete,
                "uncosted": r.uncosted_records,
                "uncosted_modalities": sorted(r.uncosted_modalities),
                "held_sessions": r.held_sessions,
                "held": r.held_records,
                "held_reasons": sorted(r.held_reasons),
                "placeholder": r.placeholder,
                "placeholder_sessions": r.placeholder_sessions,
                "placeholder_entries": sorted(r.placeholder_entries),
            }
        )
    return MarginView(
        by,
        currency,
        columns,
        modalities,
        tuple(view_rows),
        uncosted_records,
        held_records,
        tuple(sorted(placeholders)),
    )


def shown_modalities(used: Iterable[str]) -> tuple[str, ...]:
    """Telephony, STT, LLM, TTS and platform always; ``other`` only when some cost has no modality."""
    found = set(used)
    return tuple(m for m in MODALITIES if m != "other" or "other" in found)
