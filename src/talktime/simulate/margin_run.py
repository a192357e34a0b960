"""The margin report on the vectorised engine (DuckDB): the same :class:`MarginReport` as
:func:`talktime.core.rating.margin.session_margins`, Decimal for Decimal, for histories of tens of millions of
records. ``talktime margin`` runs here unless a card needs the reference (``--engine auto``).

Owns: the report's passes (every session with its first start and period; each cost entry over the records it
prices, per provider month; each price component per customer month; the records no entry takes) and adding
each record's amount to its session in the reference's order. Does not own: metering (``talktime.engine``),
which records an entry takes (``card_sql.py``), numbering sessions (``margin_passes.py``), the charge
arithmetic (``talktime.core.rating.charges``) or the report's shape and views
(``talktime.core.rating.margin``).

Exactness. The reference adds Decimals of 28 significant digits record by record, so a session's amount
depends on the order of the additions (a third of a minute is not exact). This module keeps that order
instead of adding integers up in SQL:

* DuckDB meters the records and gives Python, per session, its one item of an entry (most sessions) or its
  items in the reference's order: meter, charge version, start, id. The few sessions whose records fall in two
  months are added up last, item by item, months in the order the input first shows them (as the reference
  meets them).
* A per-unit or per-attempt charge is per record: ``q x unit_price`` or ``max(fee, q x unit_price)`` on the
  quantity ``q = billable seconds / unit``, as the models allocate, once per distinct billable integer.
* An included quota goes to a group's first records: DuckDB's exact running sum finds the records that can
  use some of it, the model rates those in order, and the records after them pay the inner per-unit price
  (if rounding left some quota after them, the whole group goes through the model). Tiered, package and flat
  charges rate each whole group through the model and take its allocation per record.

Sessions with the same cost entries share one ``providers`` and one ``modalities`` dict and one ``catalogs``
set (the card's, read-only like the rest of a report).
"""

from __future__ import annotations

import gc
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from itertools import pairwise, repeat
from math import ceil
from pathlib import Path
from typing import Any, Final

from talktime.core.rating.cards import CostCard, Entry, PriceCard
from talktime.core.rating.charges import FlatFee, Graduated, Included, Package, PerAttempt, PerUnit, Volume
from talktime.core.rating.margin import KIND_MODALITY, NO_CUSTOMER, Guard, MarginReport, SessionMargin
from talktime.core.rating.money import MoneyError
from talktime.engine.dialects import DUCKDB
from talktime.engine.sources import canonical_parquet
from talktime.errors import InputError, MeteringError
from talktime.simulate.card_sql import (
    card_attrs,
    cut_sql,
    group_firsts,
    lit,
    match_sql,
    taken_sql,
    uncosted_sql,
)
from talktime.simulate.margin_passes import SessionPasses
from talktime.simulate.rate_groups import version_sql as version_of

ZERO: Final = Decimal(0)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_PRO_RATA: Final = (Graduated, Volume, Package, FlatFee)
_BIGINT: Final = 2**63 - 1
#: The columns of a metering pass this module reads.
METERED: Final = ("_row", "id", "customer", "session", "_meter", "_start", "_billable")

__all__ = [
    "METERED",
    "MarginRun",
    "SessionSums",
    "charge_kind",
    "margin_supported",
    "margin_vectorised",
    "month_cuts",
]


def charge_kind(model: object) -> str | None:
    """How a charge model's amounts reach records: ``record`` (each its own), ``quota`` (an included quota
    over a per-record price), ``group`` (the whole group's charge split), None (not handled here)."""
    if isinstance(model, (PerUnit, PerAttempt)):
        return "record"
    if isinstance(model, Included):
        inner = charge_kind(model.then)
        return "quota" if inner == "record" else inner
    return "group" if isinstance(model, _PRO_RATA) else None


def _entry_why(entry: Entry) -> str | None:
    for version in entry.versions:
        if charge_kind(version.model) is None:
            name = getattr(version.model, "name", type(version.model).__name__)
            return f"{entry.id}: the {name} model is not vectorised"
    versions = entry.policy.versions
    if any(v.params.scope == "period" for v in versions) and any(
        "customer" in rule.when for v in versions for rule in v.params.rules
    ):
        return f"{entry.id}: a policy that rounds per calendar period has a rule on the customer"
    return None


def margin_supported(costs: CostCard, prices: PriceCard) -> str | None:
    """Why the vectorised margin cannot rate these cards (None when it can)."""
    entries = [*costs.entries, *prices.components]
    return next((why for e in entries if (why := _entry_why(e)) is not None), None)


def margin_vectorised(
    path: Path,
    costs: CostCard,
    prices: PriceCard,
    *,
    step: Callable[[str], None] = lambda _: None,
    guard: Guard | None = None,
) -> MarginReport:
    """:func:`~talktime.core.rating.margin.session_margins` over the records at ``path``, on DuckDB (with
    ``guard``, the held records marked: found in SQL, ``margin_held``). Check :func:`margin_supported`
    first."""
    if costs.currency != prices.currency:
        raise MoneyError(
            f"the cost card is in {costs.currency} and the price card in {prices.currency}; "
            "margins need one currency (no FX here)"
        )
    why = margin_supported(costs, prices)
    if why is not None:
        raise InputError(f"the vectorised margin cannot rate these cards: {why}")
    attrs = card_attrs(costs, prices)
    step("reading history")
    collecting = gc.isenabled()
    with canonical_parquet(path, attrs) as source:
        engine = SessionPasses(source, attrs)
        try:
            # Millions of small objects (amounts, each session's dicts) and no cycles among them: the cycle
            # collector would scan them again and again as they are made, for nothing.
            gc.disable()
            return MarginRun(engine, costs, prices, step, guard).report()
        finally:
            if collecting:
                gc.enable()
            engine.close()


# --- one entry's items ----------------------------------------------------------------------------------

#: An item of a session in two months, with what orders it: (month's rank, entry or component position,
#: meter, charge version, position in start and id order), then the entry, amount and quantity or seconds.
_Late = tuple[int, int, str, int, int, str, Decimal, Decimal]


@dataclass(slots=True)
class _Items:
    """One entry's items per session, for the sessions in one month: the one item of each session that has
    one (``sids``, ``amounts``, ``values``), the items in order of those with several (``multi``); and the
    items of the sessions in two months (``late``, by session)."""

    sids: list[int] = field(default_factory=list)
    amounts: list[Decimal] = field(default_factory=list)
    values: list[Decimal] = field(default_factory=list)
    multi: dict[int, list[tuple[Decimal, Decimal]]] = field(default_factory=dict)
    late: dict[int, list[_Late]] = field(default_factory=lambda: defaultdict(list))


class _Cache(dict[int, Decimal]):
    """Values computed once per billable integer."""

    def __init__(self, compute: Callable[[int], Decimal]) -> None:
        super().__init__()
        self.compute = compute

    def __missing__(self, key: int) -> Decimal:
        value = self[key] = self.compute(key)
        return value


class _Rater:
    """One entry's arithmetic on billable integers: seconds, the quantity in the entry's unit, and the amount
    of a per-record charge version (the inner model behind a quota once it is used up)."""

    def __init__(self, entry: Entry, scale: int) -> None:
        self.entry, self.scale = entry, scale
        self.seconds = _Cache(lambda b: Decimal(b).scaleb(-scale))
        self.quantities = _Cache(lambda b: self.seconds[b] / entry.unit_seconds)
        self.amounts = [_Cache(self._per_record(v.model)) for v in entry.versions]

    def _per_record(self, model: object) -> Callable[[int], Decimal]:
        inner = model.then if isinstance(model, Included) else model
        if isinstance(inner, PerAttempt):
            return lambda b: max(inner.fee, self.quantities[b] * inner.unit_price)
        if isinstance(inner, PerUnit):
            return lambda b: self.quantities[b] * inner.unit_price

        def whole_group_only(b: int) -> Decimal:
            raise AssertionError(f"{self.entry.id}: {model!r} rates whole groups")

        return whole_group_only

    def rate(self, ver: int, bs: Sequence[int]) -> list[Decimal]:
        """The group's allocation by its charge version's model, records in start and id order."""
        return list(self.entry.versions[ver].model.rate([self.quantities[b] for b in bs]).allocation)


# --- the run ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class SessionSums:
    """Every session's amounts by its number (sessions in the report's order): its cost and quantity by cost
    entry (in card order), its price and priced seconds, its uncosted records' ids and modalities; and the
    ids of every uncosted record, in file order."""

    costs: list[dict[str, Decimal]]
    quantities: list[dict[str, Decimal]]
    price: list[Decimal]
    seconds: list[Decimal]
    uncosted: dict[int, tuple[list[str], set[str]]]
    uncosted_ids: tuple[str, ...]
    #: The held records' ids and reason codes by session, and every held record's id, in file order.
    held: dict[int, tuple[list[str], set[str]]] = field(default_factory=dict)
    held_ids: tuple[str, ...] = ()


class MarginRun:
    def __init__(
        self,
        engine: SessionPasses,
        costs: CostCard,
        prices: PriceCard,
        step: Callable[[str], None],
        guard: Guard | None = None,
    ) -> None:
        self.engine, self.costs, self.prices, self.step = engine, costs, prices, step
        self.guard = guard
        self.history = engine.history()
        self.count = 0
        self.ranks: dict[str, dict[tuple[str, str], int]] = {}
        self.firsts = [e for e in group_firsts(costs) if not e.additional]
        self.extra = [e for e in group_firsts(costs) if e.additional]
        #: Every record has a cost entry (:meth:`priced_groups` tells).
        self.all_costed = False

    def run(self, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
        return self.engine.connection.execute(sql, list(parameters)).fetchall()

    def columns(self, sql: str) -> dict[str, list[Any]]:
        return self.engine.arrow_columns(sql)

    # --- sessions

    def sessions(self) -> None:
        """:meth:`session_tables`, then each session's customer, key, period and first start in Python."""
        self.session_tables()
        found = self.columns("SELECT c, k, period, epoch_us(st) AS us FROM _sessions ORDER BY sid")
        self.customers, self.keys, self.periods = found["c"], found["k"], found["period"]
        self.starts = [_EPOCH + timedelta(microseconds=us) for us in found["us"]]
        self.count = len(self.keys)

    def session_tables(self) -> None:
        """Every session numbered in order of its first start (``_sessions``, see
        :meth:`SessionPasses.number_sessions`); from then on each pass's records carry their session."""
        self.engine.number_sessions(self.costs.period_timezone, self.prices)

    def check_records(self) -> None:
        """The reference reads every record: every format and every id checked once."""
        if self.costs.entries:
            self.engine.check_records(self.costs.entries[0].policy)

    def meter(self, entry: Entry, side: str, where: str, month: str, *, ordered: bool) -> tuple[int, str]:
        """Meter ``entry``'s records (``where``) into ``_m``, each with its session in ``_row``: the
        billable scale, and SQL for a metered record's rating month (see :meth:`pass_of`)."""
        replace, columns, rating_month = self.pass_of(entry, side, month, ordered=ordered)
        return self.engine.meter_into("_m", entry.policy, where, replace, columns), rating_month

    def pass_of(
        self, entry: Entry, side: str, month: str, *, ordered: bool
    ) -> tuple[dict[str, str], list[str], str]:
        """How a pass meters ``entry``'s records: the columns it rewrites, the metering query's columns it
        keeps, and SQL for a metered record's rating month (``m``; ``month`` over ``started_at``). Only
        the columns the rating reads (strings cost most): ``id`` when ``ordered`` (start and id order);
        the customer on the price side; the session key cut at the month when the policy rounds per
        session or period (else the month comes from the start)."""
        engine, columns = self.engine, ["_row", "_meter", "_start", "_billable", *self.engine.carry]
        columns += ["id"] if ordered else []
        if side == "cost" and all(v.params.scope == "record" for v in entry.policy.versions):
            return {}, columns, engine.months_us(self.costs.period_timezone, "m._start")
        columns += ["customer", "session"] if side == "price" else ["session"]
        return month_cuts(entry, month), columns, "right(m.session, 7)"

    @staticmethod
    def price_where(component: Entry) -> str:
        """SQL true for the records a price component meters: a customer's, of the component's match."""
        return f"customer IS NOT NULL AND customer <> '' AND ({match_sql(component.match)})"

    def uncosted_sql(self, columns: str) -> str:
        """SQL for the records no cost entry takes, with their session (``sid``) and ``columns``, in file
        order."""
        records = f"(SELECT * FROM {self.history} WHERE {uncosted_sql(self.costs)})"
        return f"SELECT sid, {columns} FROM {self.engine.session_of(records)} ORDER BY _row"

    def held_sql(self, columns: str) -> str:
        """SQL for the records the guard holds back, with their session (``sid``), ``reasons`` and
        ``columns``, in file order (none without a guard); a record a person accepted is held while its
        acceptance does not cover its reasons (judged in Python: ``margin_held.covered_rows``)."""
        from talktime.simulate.margin_held import covered_rows, held_sql

        assert self.guard is not None
        customers = list(self.prices.customers)
        covered = covered_rows(self.engine.connection, self.history, self.prices, customers, self.guard)
        records = held_sql(self.history, self.prices, customers, self.guard, covered)
        return f"SELECT sid, reasons, {columns} FROM {self.engine.session_of(records)} ORDER BY _row"

    def held_by_session(self) -> tuple[dict[int, tuple[list[str], set[str]]], tuple[str, ...]]:
        """The held records' ids and reason codes by session, and every held id in file order."""
        if self.guard is None:
            return {}, ()
        found = self.columns(self.held_sql("id"))
        held: dict[int, tuple[list[str], set[str]]] = {}
        for sid, reasons, record_id in zip(found["sid"], found["reasons"], found["id"], strict=True):
            ids, codes = held.setdefault(sid, ([], set()))
            ids.append(record_id)
            codes.update(reasons)
        return held, tuple(found["id"])

    def rank(self, side: str, sid: int, month: str) -> int:
        """Where a month comes in the reference's order (first seen in the input first): provider months on
        the cost side, the session's customer's months on the price side. Only sessions in two months ask."""
        if side not in self.ranks:
            if side == "cost":
                month_of, customer = self.engine.months(self.costs.period_timezone), "''"
                where = "TRUE"
            else:
                customers = [str(c) for (c,) in self.run(f"SELECT DISTINCT customer FROM {self.history}")]
                month_of = self.engine.customer_months(self.prices, [c for c in customers if c])
                customer, where = "customer", "customer IS NOT NULL AND customer <> ''"
            rows = self.run(
                f"SELECT c, m, min(_row) AS r FROM (SELECT _row, {customer} AS c, {month_of} AS m "
                f"FROM {self.history} WHERE {where}) GROUP BY c, m ORDER BY r"
            )
            self.ranks[side] = {(str(c), str(m)): i for i, (c, m, _) in enumerate(rows)}
        return self.ranks[side][("" if side == "cost" else self.customers[sid], month)]

    # --- one entry

    def check_versions(self, entry: Entry) -> None:
        """The reference's error for the first record metered into ``_m`` (start, then id) that starts
        before ``entry`` has a charge version."""
        before = f"({version_of(entry)}) IS NULL"
        if not self.run(f"SELECT 1 FROM _m WHERE {before} LIMIT 1"):
            return
        # a pass may leave ids out: each record's id (as the metering trims it) from its row in the file
        file_row, record_id = self.engine.file_row_sql("m._row"), DUCKDB.trim.format(x="h.id")
        missing = self.run(
            f"SELECT id, _start FROM (SELECT {record_id} AS id, m._start FROM (SELECT * FROM _m WHERE "
            f"{before}) AS m JOIN (SELECT _row, id FROM {self.history}) AS h ON h._row = {file_row}) "
            "ORDER BY _start, id LIMIT 1"
        )
        if missing:
            started = (_EPOCH + timedelta(microseconds=int(missing[0][1]))).isoformat()
            raise MeteringError(
                f"record {missing[0][0]!r}: field 'started_at': {started} is before {entry.id!r} has a price "
                f"(from {entry.versions[0].label})"
            )

    def items(self, entry: Entry, scale: int, side: str, month: str) -> _Items:
        """The records metered into ``_m`` rated under ``entry``: each item's amount and its quantity in the
        entry's unit (cost side) or billable seconds (price side), per session (``month``: SQL for a
        metered record's rating month)."""
        sid, late = self.engine.sid_sql("m._row"), self.engine.late_sql(side, "m._row")
        cust = "m.customer" if side == "price" else "NULL"
        self.run(
            f"CREATE OR REPLACE TEMP VIEW _items AS SELECT {sid} AS sid, {late} AS late, m._row, m.id, "
            f"m._start, {cust} AS cust, {month} AS month, CAST(m._meter AS VARCHAR) AS meter, "
            f"{version_of(entry)} AS ver, m._billable AS b FROM _m AS m"
        )
        self.check_versions(entry)
        (largest,) = self.run("SELECT max(_billable) FROM _m")[0]
        b = "b" if largest is None or int(largest) <= _BIGINT else "CAST(b AS VARCHAR)"
        rater = _Rater(entry, scale)
        kinds = [charge_kind(v.model) for v in entry.versions]
        partition = ["cust", "month", "meter", "ver"] if side == "price" else ["month", "meter", "ver"]
        value = rater.seconds if side == "price" else rater.quantities
        if "group" in kinds:
            return self.grouped(rater, partition, b, value, side)
        quotas = self.quotas(rater, kinds, partition, b) if "quota" in kinds else {}
        return self.direct(rater, b, value, quotas, side)

    def grouped(self, rater: _Rater, partition: list[str], b: str, value: _Cache, side: str) -> _Items:
        """Every item in group order (``partition``, start, id), each group rated whole by its model."""
        keys = ", ".join(partition)
        found = self.columns(
            f"SELECT sid, late, month, meter, ver, {b} AS b, "
            f"row_number() OVER (PARTITION BY {keys} ORDER BY _start, id) = 1 AS new "
            f"FROM _items ORDER BY {keys}, _start, id"
        )
        bs = [int(x) for x in found["b"]]
        starts = [i for i, new in enumerate(found["new"]) if new] + [len(bs)]
        amounts: list[Decimal] = []
        for first, end in pairwise(starts):
            amounts += rater.rate(found["ver"][first], bs[first:end])
        per_sid: dict[int, list[tuple[Decimal, Decimal]]] = defaultdict(list)
        out = _Items()
        for position, (sid, late, amount, x) in enumerate(
            zip(found["sid"], found["late"], amounts, bs, strict=True)
        ):
            if late:
                month, meter, ver = found["month"][position], found["meter"][position], found["ver"][position]
                rank = self.rank(side, sid, month)
                out.late[sid].append((rank, 0, meter, ver, position, "", amount, value[x]))
            else:
                per_sid[sid].append((amount, value[x]))
        for sid, items in per_sid.items():
            if len(items) == 1:
                out.sids.append(sid)
                out.amounts.append(items[0][0])
                out.values.append(items[0][1])
            else:
                out.multi[sid] = items
        return out

    def quotas(
        self, rater: _Rater, kinds: Sequence[str | None], partition: list[str], b: str
    ) -> dict[int, Decimal]:
        """The amounts (by ``_row``) of the records that can use an included quota: each group's records
        whose exact running sum before them is within the quota, rated in order by the model. When rounding
        left some of the quota after them, the whole group is rated."""
        entry = rater.entry
        bounds, versions = [], []
        for index, version in enumerate(entry.versions):
            if kinds[index] == "quota":
                assert isinstance(version.model, Included)
                quota = Fraction(version.model.included) * Fraction(entry.unit_seconds) * 10**rater.scale
                bounds.append(f"WHEN {index} THEN {ceil(quota)}")
                versions.append(str(index))
        keys = ", ".join(partition)
        window = f"PARTITION BY {keys} ORDER BY _start, id"
        found = self.columns(
            f"SELECT _row, {b} AS b, {keys}, n, new FROM (SELECT *, "
            f"SUM(CAST(b AS HUGEINT)) OVER ({window} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) - b "
            f"AS before, COUNT(*) OVER (PARTITION BY {keys}) AS n, row_number() OVER ({window}) = 1 AS new "
            f"FROM _items WHERE ver IN ({', '.join(versions)})) "
            f"WHERE before <= (CASE ver {' '.join(bounds)} END) ORDER BY {keys}, _start, id"
        )
        amounts: dict[int, Decimal] = {}
        starts = [i for i, new in enumerate(found["new"]) if new] + [len(found["b"])]
        for first, end in pairwise(starts):
            ver = found["ver"][first]
            model = entry.versions[ver].model
            assert isinstance(model, Included)
            rows, bs = found["_row"][first:end], [int(x) for x in found["b"][first:end]]
            left = model.included
            for x in bs:  # what is left of the quota after these records, as Included.rate computes it
                left -= min(left, rater.quantities[x])
            if left != 0 and len(bs) < found["n"][first]:
                rows, bs = self.whole_group({name: found[name][first] for name in partition}, b)
            amounts.update(zip(rows, rater.rate(ver, bs), strict=True))
        return amounts

    def whole_group(self, key: dict[str, Any], b: str) -> tuple[list[int], list[int]]:
        """One group's records in start and id order (``key``: its partition's values)."""
        same = " AND ".join(f"{name} IS NOT DISTINCT FROM ?" for name in key)
        rows = self.run(f"SELECT _row, {b} FROM _items WHERE {same} ORDER BY _start, id", list(key.values()))
        return [int(r) for r, _ in rows], [int(x) for _, x in rows]

    def direct(self, rater: _Rater, b: str, value: _Cache, quotas: dict[int, Decimal], side: str) -> _Items:
        """Per-record amounts (a quota's first records from ``quotas``, by ``_row``): the one item of each
        session that has one, the items in order of those with several, those of sessions in two months."""
        out = _Items()
        row = "_row" if quotas else "NULL"

        def amount(ver: int, x: int, row: int | None) -> Decimal:
            found = quotas.get(row) if row is not None else None
            return rater.amounts[ver][x] if found is None else found

        self.run(
            f"CREATE OR REPLACE TEMP TABLE _one AS SELECT sid, count(*) AS n, any_value(ver) AS ver, "
            f"any_value({b}) AS b, any_value({row}) AS r FROM _items WHERE NOT late GROUP BY sid"
        )
        # in session order: each session's sums are made, then read, by number; made in the order a hash
        # aggregate returns them they lie all over memory (about a tenth of --by provider at 10M records)
        single = self.columns("SELECT sid, ver, b, r FROM _one WHERE n = 1 ORDER BY sid")
        bs = [int(x) for x in single["b"]] if b != "b" else single["b"]
        out.sids, out.values = single["sid"], list(map(value.__getitem__, bs))
        versions = set(single["ver"])
        if len(versions) == 1 and not quotas:
            out.amounts = list(map(rater.amounts[versions.pop()].__getitem__, bs))
        else:
            out.amounts = list(map(amount, single["ver"], bs, single["r"]))
        multi = self.columns(
            f"SELECT sid, ver, {b} AS b, {row} AS r FROM _items JOIN (SELECT sid FROM _one WHERE n > 1) "
            "USING (sid) WHERE NOT late ORDER BY sid, meter, ver, _start, id"
        )
        for sid, v, x, r in zip(multi["sid"], multi["ver"], multi["b"], multi["r"], strict=True):
            out.multi.setdefault(sid, []).append((amount(v, int(x), r), value[int(x)]))
        late = self.columns(
            f"SELECT sid, month, meter, ver, {b} AS b, {row} AS r FROM _items WHERE late "
            "ORDER BY month, meter, ver, _start, id"
        )
        names = ("sid", "month", "meter", "ver", "b", "r")
        for position, (sid, month, meter, v, x, r) in enumerate(zip(*(late[n] for n in names), strict=True)):
            rank = self.rank(side, sid, month)
            out.late[sid].append((rank, 0, meter, v, position, "", amount(v, int(x), r), value[int(x)]))
        return out

    # --- the report

    def report(self) -> MarginReport:
        found = self.sums()
        sessions = tuple(
            self.session_margins(found.costs, found.quantities, found.price, found.seconds, found.uncosted)
        )
        for sid, (ids, codes) in found.held.items():
            sessions[sid].held, sessions[sid].held_reasons = ids, frozenset(codes)
        return MarginReport(self.prices.currency, sessions, found.uncosted_ids, found.held_ids)

    def sums(self) -> SessionSums:
        """Every session's amounts (see :class:`SessionSums`), before they become a report."""
        self.sessions()
        costs, prices, count = self.costs, self.prices, self.count
        cost_values: list[dict[str, Decimal]] = [{} for _ in range(count)]
        quantities: list[dict[str, Decimal]] = [{} for _ in range(count)]
        late_costs: dict[int, list[_Late]] = defaultdict(list)
        taken = {first.group: where for first, where in taken_sql(costs)}
        priced = self.priced_groups()
        self.check_records()
        cost_month = self.engine.months(costs.period_timezone)
        for index, entry in enumerate(costs.entries):
            self.step(f"costing {entry.id}")
            if entry.group not in priced:
                continue
            scale, month = self.meter(entry, "cost", taken[entry.group], cost_month, ordered=True)
            found = self.items(entry, scale, "cost", month)
            eid = entry.id
            for sid, items in found.multi.items():
                total, qty = items[0]
                for amount, quantity in items[1:]:
                    total, qty = total + amount, qty + quantity
                found.sids.append(sid)
                found.amounts.append(total)
                found.values.append(qty)
            _put(cost_values, found.sids, eid, found.amounts)  # in card order: the reference's order
            _put(quantities, found.sids, eid, found.values)
            for sid, late in found.late.items():
                late_costs[sid] += [(r, index, m, v, p, eid, a, q) for r, _, m, v, p, _, a, q in late]
        price = [ZERO] * count
        seconds = [ZERO] * count
        late_prices: dict[int, list[_Late]] = defaultdict(list)
        customers = sorted({c for c in self.customers if c != NO_CUSTOMER} | set(prices.customers))
        own_month = self.engine.customer_months(prices, customers)
        for index, component in enumerate(prices.components):
            self.step(f"pricing {component.id}")
            where = self.price_where(component)
            scale, month = self.meter(component, "price", where, own_month, ordered=True)
            found = self.items(component, scale, "price", month)
            for sid, amount, second in zip(found.sids, found.amounts, found.values, strict=True):
                price[sid] += amount
                seconds[sid] += second
            for sid, items in found.multi.items():
                for amount, second in items:
                    price[sid] += amount
                    seconds[sid] += second
            for sid, late in found.late.items():
                late_prices[sid] += [(r, index, m, v, p, "", a, s) for r, _, m, v, p, _, a, s in late]
        self.step("adding up sessions")
        for sid in set(late_costs) | set(late_prices):
            _add_late(sid, late_costs, late_prices, cost_values, quantities, price, seconds)
        kinds = " ".join(f"WHEN {lit(kind)} THEN {lit(modality)}" for kind, modality in KIND_MODALITY.items())
        found_uncosted: dict[str, list[Any]] = {"sid": [], "id": [], "modality": []}
        if not self.all_costed:
            found_uncosted = self.columns(
                self.uncosted_sql(f"id, CASE lower(trim(kind)) {kinds} ELSE 'other' END AS modality")
            )
        uncosted: dict[int, tuple[list[str], set[str]]] = {}
        for sid, record_id, modality in zip(*found_uncosted.values(), strict=True):
            ids, modalities = uncosted.setdefault(sid, ([], set()))
            ids.append(record_id)
            modalities.add(modality)
        held, held_ids = self.held_by_session()
        return SessionSums(
            cost_values, quantities, price, seconds, uncosted, tuple(found_uncosted["id"]), held, held_ids
        )

    def priced_groups(self) -> set[str]:
        """The card entries that price some record (the others need no pass): each record's first entry,
        and the additional entries that match a record some entry prices. Notes whether every record is
        costed (``all_costed``: then no query looks for the records no entry takes)."""
        whens = " ".join(f"WHEN {match_sql(e.match)} THEN {i}" for i, e in enumerate(self.firsts))
        first = f"CASE {whens} END" if whens else "NULL"
        flags = [
            f"(CASE WHEN {match_sql(e.match)} THEN {1 << i} ELSE 0 END)" for i, e in enumerate(self.extra)
        ]
        extra = " + ".join(flags) if flags and len(flags) < 63 else "0"
        found_rows = self.run(
            f"SELECT g, bit_or(extra) FROM (SELECT {first} AS g, CAST({extra} AS BIGINT) AS extra "
            f"FROM {self.history}) GROUP BY g"
        )
        rows = [(g, extra) for g, extra in found_rows if g is not None]
        self.all_costed = len(rows) == len(found_rows)
        found = {self.firsts[int(g)].group for g, _ in rows}
        bits = 0
        for _, extra in rows:
            bits |= int(extra)
        many = len(self.extra) >= 63  # no bits: every additional entry gets its pass
        return found | {e.group for i, e in enumerate(self.extra) if rows and (many or bits >> i & 1)}

    def session_margins(
        self,
        cost_values: list[dict[str, Decimal]],
        quantities: list[dict[str, Decimal]],
        price: list[Decimal],
        seconds: list[Decimal],
        uncosted: dict[int, tuple[list[str], set[str]]],
    ) -> Iterator[SessionMargin]:
        """Each session's margin. The providers, modalities and catalogs of a session's cost entries come
        from the card: the sessions with the same entries share them (a report is read, never changed; at
        ten million records a copy each would take gigabytes)."""
        entries = {e.id: e for e in self.costs.entries}
        shapes: dict[tuple[str, ...], tuple[dict[str, str], dict[str, str], set[str], frozenset[str]]] = {}
        for sid in range(self.count):
            costs = cost_values[sid]
            shape = tuple(costs)
            found = shapes.get(shape)
            if found is None:
                chosen = [entries[e] for e in shape]
                found = shapes[shape] = (
                    {e.id: e.policy.provider or e.id for e in chosen},
                    {e.id: e.modality for e in chosen},
                    {e.catalog for e in chosen if e.catalog is not None},
                    frozenset(e.id for e in chosen if e.placeholder),
                )
            providers, modalities, catalogs, placeholders = found
            ids, unknown = uncosted.get(sid) or ([], set())
            yield SessionMargin(
                customer=self.customers[sid],
                session=self.keys[sid],
                period=self.periods[sid],
                started_at=self.starts[sid],
                costs=costs,
                providers=providers,
                cost_quantities=quantities[sid],
                modalities=modalities,
                catalogs=catalogs,
                price=price[sid],
                price_seconds=seconds[sid],
                uncosted=ids,
                uncosted_modalities=unknown,
                placeholders=placeholders,
            )


def _put(dicts: list[dict[str, Decimal]], sids: list[int], key: str, values: list[Decimal]) -> None:
    """``dicts[sid][key] = value`` for each session and value (the loop in C: millions of items)."""
    deque(map(dict.__setitem__, map(dicts.__getitem__, sids), repeat(key), values), maxlen=0)


def month_cuts(entry: Entry, month: str) -> dict[str, str]:
    """The rating month (SQL) appended to the session key, and for a policy that rounds per calendar period
    to the customer too: the reference meters each rating month's records on their own."""
    cut = {"session": cut_sql(month)}
    if any(v.params.scope == "period" for v in entry.policy.versions):
        cut["customer"] = f"COALESCE(customer, '') || {lit(chr(31))} || {month}"
    return cut


def _add_late(
    sid: int,
    late_costs: dict[int, list[_Late]],
    late_prices: dict[int, list[_Late]],
    cost_values: list[dict[str, Decimal]],
    quantities: list[dict[str, Decimal]],
    price: list[Decimal],
    seconds: list[Decimal],
) -> None:
    """A session whose records fall in two months, added up item by item in the reference's order: month
    (first seen first), entry, meter, charge version, start and id."""
    costs: dict[str, Decimal] = {}
    amounts: dict[str, Decimal] = {}
    for item in sorted(late_costs.get(sid, []), key=lambda item: item[:5]):
        eid, amount, quantity = item[5:]
        costs[eid] = costs.get(eid, ZERO) + amount
        amounts[eid] = amounts.get(eid, ZERO) + quantity
    if costs:
        cost_values[sid], quantities[sid] = costs, amounts
    for item in sorted(late_prices.get(sid, []), key=lambda item: item[:5]):
        price[sid] += item[6]
        seconds[sid] += item[7]
