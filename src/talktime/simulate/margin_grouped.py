"""``talktime margin --by customer|period|provider`` on DuckDB without a Python object per call: each row's
cost, price, minutes, cost stack, provider costs, session counts and loss sessions added up in SQL, exactly
(by provider: from each call's sums, ``margin_providers``).

Owns: the rows of sessions added up per customer month or per period
(:func:`talktime.core.rating.margin.margin_rows`), from the same metering passes as ``margin_run.py``.
Does not own: metering (``talktime.engine``), which records an entry takes (``card_sql.py``), the charge
arithmetic (``talktime.core.rating.charges``) or how rows are shown (``rows_view``).

Exactness. Every amount a record carries is a *term* times a quantity ``x`` the engine adds up exactly
(integers): a per-unit price times its billable integers (under an included quota, the integers past the
quota, by an exact running sum in start and id order, as ``Included`` consumes it), a per-attempt fee
times the count of records below it, or a tiered, package or flat charge's whole group amount times the
record's share of the group's integers (``pro_rata``; by record count when the group has none). So a
row's amount is sum(term x its rows' x): the exact rational, which becomes a Decimal once. The reference
adds 28-digit Decimals call by call; the two agree far below the 12 places JSON and CSV show.

Whether a call loses money needs its own margin. Each session's margin is added up in SQL with each term as
an integer fraction of 10^-20 of the currency, floored, with a bound on what the flooring (and a term
rounded to fit 128 bits) can change; only a session whose margin lies within its bound of zero is added up
again exactly in Python. A value past 128 bits raises, and the caller then takes the per-call path.
"""

from __future__ import annotations

import gc
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction
from itertools import groupby
from pathlib import Path
from typing import Any, Final

import pyarrow as pa

from talktime.core.rating.cards import CostCard, Entry, PriceCard
from talktime.core.rating.charges import Included, PerAttempt, PerUnit
from talktime.core.rating.margin import (
    KIND_MODALITY,
    MODALITIES,
    NO_CUSTOMER,
    Guard,
    MarginRow,
    MarginView,
    rows_view,
    shown_modalities,
)
from talktime.engine.sources import canonical_parquet
from talktime.simulate.card_sql import card_attrs, lit, taken_sql, uncosted_sql
from talktime.simulate.margin_passes import SessionPasses
from talktime.simulate.margin_providers import provider_view
from talktime.simulate.margin_run import MarginRun, charge_kind, margin_supported
from talktime.simulate.rate_groups import version_sql as version_of

__all__ = ["GROUPED_BY", "grouped_view"]

#: The views added up without an object per call: per customer month or period here, per provider from the
#: per-call sums (``margin_providers``); by session each call is a row (``margin_run``).
GROUPED_BY: Final = ("customer", "period", "provider")
#: Session margins in SQL are integers of 10^-SCALE of the currency.
SCALE: Final = 20
#: The fewest of a group's first records read for an included quota (see ``quota_firsts``).
FIRST_RECORDS: Final = 64
#: On 64 bits first, at 10^-FAST_SCALE (a margin of 9 million units fits; past it, 128 bits).
FAST_SCALE: Final = 12
#: A term that is no small fraction at that scale is rounded to 10^-EXTRA of a unit of it.
EXTRA: Final = 12
_SMALL: Final = 10**24
_HUGEINT: Final = 2**127
_BIGINT: Final = 2**63
_SEP: Final = chr(31)


class TooLarge(Exception):
    """An integer past 128 bits, or a quota finer than the billable integers: take the per-call path."""


@dataclass(frozen=True, slots=True)
class _Term:
    """What one unit of ``x`` of a (side, entry, version, term) costs or sells for, exactly, and whether
    ``x`` counts records (``n``) instead of billable integers."""

    value: Fraction
    by_count: bool = False


@dataclass(slots=True)
class _Pass:
    """One entry's pass: the entry, its side (``cost``/``price``), its billable scale, the records it
    meters (``where``) and SQL for their month (``month_of``)."""

    entry: Entry
    side: str
    scale: int
    where: str
    month_of: str


@dataclass(slots=True)
class _Key:
    """A row's exact sums before they become a :class:`MarginRow`."""

    cost: dict[int, Fraction] = field(default_factory=dict)  # by pass
    price: Fraction = Fraction(0)
    seconds: Fraction = Fraction(0)


def grouped_view(
    path: Path,
    costs: CostCard,
    prices: PriceCard,
    by: str,
    *,
    step: Callable[[str], None] = lambda _: None,
    guard: Guard | None = None,
) -> MarginView:
    """``margin_view(margin_vectorised(...), by)`` for ``by`` in :data:`GROUPED_BY`, with no object per
    call. Check :func:`~talktime.simulate.margin_run.margin_supported` first; raises :class:`TooLarge`
    when an amount does not fit the engine's integers."""
    import duckdb

    if by not in GROUPED_BY:
        raise ValueError(f"grouped_view adds up by {' or '.join(GROUPED_BY)}, not {by!r}")
    why = margin_supported(costs, prices)
    if why is not None:
        raise ValueError(f"the vectorised margin cannot rate these cards: {why}")
    attrs = card_attrs(costs, prices)
    step("reading history")
    with canonical_parquet(path, attrs) as source:
        engine = SessionPasses(source, attrs)
        collecting = gc.isenabled()
        try:
            if by == "provider":  # each call's own amounts: sessions numbered, in the report's order
                gc.disable()  # millions of small objects, no cycles (see margin_vectorised)
                return provider_view(MarginRun(engine, costs, prices, step, guard), step)
            return _Grouped(engine, costs, prices, step, by, guard).view()
        except (duckdb.OutOfRangeException, duckdb.ConversionException) as error:
            raise TooLarge(str(error)) from error
        finally:
            if collecting:
                gc.enable()
            engine.close()


class _Grouped(MarginRun):
    def __init__(
        self,
        engine: SessionPasses,
        costs: CostCard,
        prices: PriceCard,
        step: Callable[[str], None],
        by: str,
        guard: Guard | None = None,
    ) -> None:
        super().__init__(engine, costs, prices, step, guard)
        self.by = by
        self.passes: list[_Pass] = []
        self.terms: dict[tuple[int, int, str], _Term] = {}
        # Every query here that reads rows in an order says so (ORDER BY, min_by, sums): tables need not
        # keep the order their rows were made in, which costs each pass's insert and table a little.
        self.run("SET preserve_insertion_order = false")
        self.run(
            "CREATE OR REPLACE TEMP TABLE _x (p INTEGER, sid UBIGINT, ver INTEGER, term VARCHAR, "
            "x BIGINT, b BIGINT, bad BOOLEAN)"  # a record's integers fit 64 bits (else TooLarge); a row each
        )

    def session_tables(self) -> None:
        """Every session with its customer and period; its number is its key's hash (no order needed)."""
        self.engine.number_sessions(self.costs.period_timezone, self.prices, numbered=False)

    def key_sql(self) -> str:
        return "c || chr(31) || period" if self.by == "customer" else "period"

    # --- the passes

    def meter_all(self) -> None:
        costs, prices = self.costs, self.prices
        taken = {first.group: where for first, where in taken_sql(costs)}
        priced = self.priced_groups()
        self.check_records()
        cost_month = self.engine.months(costs.period_timezone)
        for _, run in groupby(costs.entries, key=lambda e: e.group):  # the parts of one card entry
            parts = list(run)
            for entry in parts:
                self.step(f"costing {entry.id}")
            if parts[0].group in priced and not self.shared_passes(parts, taken[parts[0].group], cost_month):
                for entry in parts:
                    self.one_pass(entry, "cost", taken[entry.group], cost_month)
        customers = sorted(
            {str(c) for (c,) in self.run("SELECT DISTINCT c FROM _sessions") if c != NO_CUSTOMER}
            | set(prices.customers)
        )
        own_month = self.engine.customer_months(prices, customers)
        for component in prices.components:
            self.step(f"pricing {component.id}")
            self.one_pass(component, "price", self.price_where(component), own_month)
        self.recheck()

    def one_pass(self, entry: Entry, side: str, where: str, month_of: str) -> None:
        """``entry``'s records (``where``) metered and rated into ``_x``: in one statement (the metering
        query read as it runs, no table in between) when the engine can fold it, each row marked ``bad``
        when its record cannot be metered or has no charge version (:meth:`recheck` then names it);
        else metered into ``_m`` first, checked, then rated."""
        import duckdb

        ordered = _ordered(entry)
        replace, columns, month = self.pass_of(entry, side, month_of, ordered=ordered)
        folded = self.engine.metering_sql(entry.policy, where, replace, columns)
        if folded is not None:
            sql, scale = folded
            self.passes.append(_Pass(entry, side, scale, where, month_of))
            try:
                self.rate_pass(len(self.passes) - 1, f"({sql})", month, folded=True)
                return
            except (duckdb.OutOfRangeException, duckdb.ConversionException):
                self.passes.pop()  # past 64 bits: on its own, on 128 bits (the statement left nothing)
        scale, month = self.meter(entry, side, where, month_of, ordered=ordered)
        self.check_versions(entry)
        self.passes.append(_Pass(entry, side, scale, where, month_of))
        self.rate_pass(len(self.passes) - 1, "_m", month, folded=False)

    def shared_passes(self, parts: list[Entry], where: str, month_of: str) -> bool:
        """The cost passes of a card entry's parts (an LLM call's input, cached input and output tokens:
        the same records, metered by one meter each) in ONE statement that reads and filters the file
        once for all of them; False (and nothing done) when there is one part, a part needs its records
        in order (an included quota), a pass cannot be folded, or a value does not fit 64 bits: then each
        part runs on its own."""
        import duckdb

        if len(parts) < 2 or any(_ordered(entry) for entry in parts):
            return False
        first, selects = len(self.passes), []
        for entry in parts:
            replace, columns, month = self.pass_of(entry, "cost", month_of, ordered=False)
            folded = self.engine.metering_sql(entry.policy, where, replace, columns, "_shared")
            if folded is None:
                del self.passes[first:]
                return False
            sql, scale = folded
            self.passes.append(_Pass(entry, "cost", scale, where, month_of))
            selects.append(self.rated_sql(len(self.passes) - 1, f"({sql})", month, folded=True))
        records = self.engine.pass_records([entry.policy for entry in parts], where)
        try:
            self.run(f"INSERT INTO _x WITH _shared AS ({records}) {' UNION ALL '.join(selects)}")
        except (duckdb.OutOfRangeException, duckdb.ConversionException):
            del self.passes[first:]  # past 64 bits: each on its own (the statement left nothing)
            return False
        return True

    def recheck(self) -> None:
        """The first pass with a record it could not meter or rate, metered again on its own: that raises
        the reference's error for the record (the passes before it had none)."""
        (first,) = self.run("SELECT min(p) FROM _x WHERE bad")[0]
        if first is None:
            return
        chosen = self.passes[int(first)]
        entry = chosen.entry
        self.meter(entry, chosen.side, chosen.where, chosen.month_of, ordered=_ordered(entry))
        self.check_versions(entry)
        raise AssertionError(f"{entry.id}: a record the metering marked bad was not refused on its own")

    def rate_pass(self, index: int, metered: str, month: str, *, folded: bool) -> None:
        """Put the records ``metered`` (a table or query, as ``m``, each record's session in its ``_row`` or
        ``_key``) into ``_x``, one row each: its charged ``x``, billable ``b`` and term (``month``: SQL for
        its rating month). ``folded``: ``metered`` has each record's ``_error``, and a row is ``bad`` when
        it has one or starts before the entry's first charge version."""
        self.run(f"INSERT INTO _x {self.rated_sql(index, metered, month, folded=folded)}")
        self.run("DROP TABLE IF EXISTS _s")

    def rated_sql(self, index: int, metered: str, month: str, *, folded: bool) -> str:
        """The rows :meth:`rate_pass` puts into ``_x``, as a query. An included quota's records are kept
        in ``_s`` first (the caller drops it once the query has run), and its first records rated."""
        chosen = self.passes[index]
        entry, side, scale = chosen.entry, chosen.side, chosen.scale
        kinds = [charge_kind(v.model) for v in entry.versions]
        group = ["month", "meter", "ver", *(["cust"] if side == "price" else [])]
        quotas = self.quota_bounds(entry, scale)
        columns = [
            f"{self.engine.session_sql('m')} AS sid",
            "m._billable AS b",
            f"{version_of(entry)} AS ver",
            "m._error IS NOT NULL AS bad" if folded else "FALSE AS bad",
        ]
        if "group" in kinds or quotas:  # the rated group's keys
            columns += [f"{month} AS month", "CAST(m._meter AS VARCHAR) AS meter"]
            columns += ["m.customer AS cust"] if side == "price" else []
        if quotas:
            columns += ["m._row AS r", "m._start", "m.id"]
        source = f"(SELECT {', '.join(columns)} FROM {metered} AS m)"
        charged = "b"
        if quotas:  # the records kept once: a quota reads a group's first records, perhaps twice
            self.run(f"CREATE OR REPLACE TEMP TABLE _s AS SELECT * FROM {source}")
            self.quota_firsts("_s", group, quotas)
            source = "(SELECT s.*, q.x AS qx FROM _s AS s LEFT JOIN _q AS q ON q.r = s.r)"
            charged = "COALESCE(qx, b)"
        below = self.below_fee_sql(entry, scale)
        whole = " || chr(31) || ".join(f"COALESCE({g}, '')" for g in group if g != "ver")
        terms = " ".join(
            f"WHEN {ver} THEN "
            + (
                f"'g' || chr(31) || {whole}"
                if kind == "group"
                else f"CASE WHEN {below} THEN 'f' ELSE 'u' END"
            )
            for ver, kind in enumerate(kinds)
        )
        return (
            f"SELECT {index}, sid, ver, term, CAST(CASE WHEN term = 'f' THEN 1 ELSE x END AS "
            "BIGINT), CAST(b AS BIGINT), bad OR ver IS NULL FROM (SELECT sid, ver, b, x, bad, "
            f"CASE ver {terms} END AS term FROM (SELECT *, {charged} AS x FROM {source}))"
        )

    @staticmethod
    def quota_bounds(entry: Entry, scale: int) -> dict[int, int]:
        """Each charge version's included quota in billable integers (the versions with one)."""
        bounds = {}
        for index, version in enumerate(entry.versions):
            if isinstance(version.model, Included):
                quota = Fraction(version.model.included) * Fraction(entry.unit_seconds) * 10**scale
                if quota.denominator != 1:
                    raise TooLarge(f"{entry.id}: an included quota finer than the billable integers")
                bounds[index] = quota.numerator
        return bounds

    def quota_firsts(self, source: str, group: list[str], quotas: dict[int, int]) -> None:
        """``_q``: the charged integers ``x`` of the records (``r``: their ``_row``) that use some of an
        included quota, where ``x`` is not all their billable integers. A group's records use it in start
        and id order, as ``Included`` consumes it: each pays for what its running sum puts past the quota.
        Once the records so far have used it up, every later record pays for all of it, so only each
        group's first records are read (the smallest by start and id: :func:`first_records` of them, more
        when they do not use the quota up), not the whole group in order."""
        versions = ", ".join(str(v) for v in quotas)
        keys = ", ".join(group)
        first, wanted = 0, 1
        for ver, count, total in self.run(
            f"SELECT ver, count(*), sum(b) FROM {source} WHERE ver IN ({versions}) GROUP BY {keys}"
        ):
            wanted = max(wanted, first_records(int(count), quotas[int(ver)], int(total or 0)))
        while wanted > first:
            first = wanted
            rows = self.run(
                f"SELECT ver, count(*), min(b), min_by(struct_pack(r := r, b := b, s := _start, i := id), "
                f"struct_pack(s := _start, i := id), {first}) FROM {source} WHERE ver IN ({versions}) "
                f"GROUP BY {keys}"
            )
            charged: dict[int, int] = {}
            for ver, count, least, records in rows:
                quota, before = quotas[int(ver)], 0
                for record in sorted(records, key=lambda item: (item["s"], item["i"])):
                    b = int(record["b"] or 0)  # none only in a bad record, refused after the pass
                    after = before + b
                    x = max(0, after - max(quota, before))
                    if x != b:
                        charged[int(record["r"])] = x
                    before = after
                if len(records) < count and (before < quota or least is None or least < 0):
                    # not used up by these: as many more as the quota looks to need, and half as many again
                    need = (
                        count if before <= 0 or least is None or least < 0 else len(records) * quota // before
                    )
                    wanted = max(wanted, min(count, need + need // 2 + 1))
        if any(x >= _BIGINT for x in charged.values()):
            raise TooLarge("a quota's charged integers past 64 bits")
        table = pa.table(
            {"r": pa.array(list(charged), pa.int64()), "x": pa.array(list(charged.values()), pa.int64())}
        )
        connection = self.engine.connection
        connection.register("_q_found", table)
        try:
            self.run("CREATE OR REPLACE TEMP TABLE _q AS SELECT * FROM _q_found")
        finally:
            connection.unregister("_q_found")

    def below_fee_sql(self, entry: Entry, scale: int) -> str:
        """SQL true for a record whose charged integers ``x`` cost less than its per-attempt fee."""
        cases = []
        unit = Fraction(entry.unit_seconds)
        for index, version in enumerate(entry.versions):
            model = version.model.then if isinstance(version.model, Included) else version.model
            if isinstance(model, PerAttempt):
                # x / 10^scale / unit * price < fee  <=>  x * price < fee * unit * 10^scale
                price, fee = Fraction(model.unit_price), Fraction(model.fee) * unit * 10**scale
                left = price.numerator * fee.denominator
                right = fee.numerator * price.denominator
                cases.append(f"WHEN {index} THEN x * {left} < {right}")
        return f"(CASE ver {' '.join(cases)} ELSE FALSE END)" if cases else "FALSE"

    # --- what each term is worth

    def price_terms(self, rows: list[Any]) -> None:
        """Each (pass, version, term)'s worth per unit of ``x``: a per-record price from the card, a
        group's charge (the model over the group's exact total) over the group's charged integers.
        ``rows``: each row's sums (key, pass, version, term, x, b and records), added up here per term."""
        totals: dict[tuple[int, int, str], tuple[int, int, int]] = {}
        for _, p, ver, term, x, b, n in rows:
            before = totals.get((p, ver, term), (0, 0, 0))
            totals[(p, ver, term)] = (before[0] + int(x), before[1] + int(b), before[2] + int(n))
        for (p, ver, term), (x, b, n) in totals.items():
            chosen = self.passes[p]
            entry, scale = chosen.entry, chosen.scale
            model = entry.versions[ver].model
            inner = model.then if isinstance(model, Included) else model
            per_integer = Fraction(1, 10**scale) / Fraction(entry.unit_seconds)
            if term == "f":
                assert isinstance(inner, PerAttempt)
                worth = _Term(Fraction(inner.fee))
            elif term == "u":
                assert isinstance(inner, (PerUnit, PerAttempt))
                worth = _Term(per_integer * Fraction(inner.unit_price))
            else:
                quantity = Decimal(int(b)).scaleb(-scale) / entry.unit_seconds
                amount = Fraction(model.rate([quantity]).amount)
                # no quantity in the group: an even split per record, as pro_rata splits it
                worth = _Term(amount / int(x)) if int(x) else _Term(amount / int(n), by_count=True)
            self.terms[(int(p), int(ver), str(term))] = worth

    # --- the rows

    def view(self) -> MarginView:
        self.session_tables()
        self.meter_all()
        self.step("adding up rows")
        keys = self.key_sql()
        self.run(f"CREATE OR REPLACE TEMP TABLE _k AS SELECT sid, {keys} AS key, c, period FROM _sessions")
        sums: dict[str, _Key] = defaultdict(_Key)
        present: dict[str, set[int]] = defaultdict(set)
        # every record's session is in _k: the rows add up to each term's totals too
        rows = self.run(
            "SELECT key, p, ver, term, sum(x), sum(b), count(*) FROM _x JOIN _k USING (sid) GROUP BY ALL"
        )
        self.price_terms(rows)
        for key, p, ver, term, x, b, n in rows:
            chosen, worth = self.passes[p], self.terms[(p, ver, term)]
            amount = worth.value * int(n if worth.by_count else x)
            found = sums[key]
            if chosen.side == "cost":
                found.cost[p] = found.cost.get(p, Fraction(0)) + amount
                present[key].add(p)
            else:
                found.price += amount
                found.seconds += Fraction(int(b), 10**chosen.scale)
        used = {self.passes[p].entry.modality for ps in present.values() for p in ps}
        out = []
        for key, c, period, count in self.run(
            "SELECT key, any_value(c), any_value(period), count(*) FROM _k GROUP BY key"
        ):
            row = MarginRow(c, period) if self.by == "customer" else MarginRow(period)
            row.sessions = int(count)
            found = sums.get(key, _Key())
            row.minutes = _decimal(found.seconds / 60)
            row.price = _decimal(found.price)
            modality: dict[str, Fraction] = {}
            provider: dict[str, Fraction] = {}
            for p in sorted(present.get(key, ())):
                entry = self.passes[p].entry
                amount = found.cost.get(p, Fraction(0))
                modality[entry.modality] = modality.get(entry.modality, Fraction(0)) + amount
                name = entry.policy.provider or entry.id
                provider[name] = provider.get(name, Fraction(0)) + amount
            row.cost = _decimal(sum(found.cost.values(), Fraction(0)))
            row.modality_costs = {m: _decimal(modality.get(m, Fraction(0))) for m in MODALITIES}
            row.provider_costs = {name: _decimal(v) for name, v in provider.items()}
            out.append((str(key), row))
        by_key = dict(out)
        self.uncosted_by(by_key)
        self.placeholder_by(by_key)
        held = self.held_by(by_key)
        for key, losses in self.loss_sessions().items():
            by_key[key].loss_sessions = losses
        ordered = sorted(by_key.values(), key=lambda r: (r.key, r.period))
        uncosted: list[str] = []
        if not self.all_costed:
            uncosted = self.columns(
                f"SELECT id FROM {self.history} WHERE {uncosted_sql(self.costs)} ORDER BY _row"
            )["id"]
        modalities = shown_modalities(used)
        return rows_view(self.by, self.prices.currency, ordered, modalities, tuple(uncosted), held)

    def margins(self, scale: int, integer: str) -> bool:
        """``_margins``: each session's margin in integers of 10^-``scale`` of the currency (each term's
        amount floored) and the bound on what the flooring can change (``e``); False when a term does not
        fit ``integer``."""
        values = []
        largest = _HUGEINT if integer == "HUGEINT" else 2**63
        for (p, ver, term), worth in self.terms.items():
            num, den, rounded = _fraction(worth.value * 10**SCALE)
            if max(num, den) >= _HUGEINT:  # on either path: past 128 bits at 10^-SCALE, each call on its own
                raise TooLarge(f"{self.passes[p].entry.id}: an amount past 128 bits")
            num, den, rounded = _fraction(worth.value * 10**scale)
            if max(num, den) >= largest:
                return False
            sign = 1 if self.passes[p].side == "price" else -1
            big = f"CAST('{num}' AS {integer}), CAST('{den}' AS {integer})"
            values.append(f"({p}, {ver}, {lit(term)}, {sign}, {big}, {rounded}, {worth.by_count})")
        self.run(
            "CREATE OR REPLACE TEMP TABLE _w AS SELECT * FROM (VALUES "
            + ", ".join(values)
            + ") AS w(p, ver, term, sign, num, den, rounded, by_count)"
        )
        self.run(
            "CREATE OR REPLACE TEMP TABLE _margins AS SELECT sid, sum(sign * v) AS m, sum(e) AS e FROM ("
            f"SELECT sid, sign, (num * CAST(q AS {integer})) // den AS v, "
            "CASE WHEN q = 0 THEN 0 WHEN rounded THEN q // den + 2 ELSE 1 END AS e "
            "FROM (SELECT _x.*, CASE WHEN w.by_count THEN 1 ELSE x END AS q, w.* EXCLUDE (p, ver, term) "
            "FROM _x JOIN _w AS w USING (p, ver, term))) GROUP BY sid"
        )
        return True

    def uncosted_by(self, rows: dict[str, MarginRow]) -> None:
        """Each row's records no cost entry takes: how many, in how many sessions, of which modalities."""
        if self.all_costed:
            return
        kinds = " ".join(f"WHEN {lit(kind)} THEN {lit(modality)}" for kind, modality in KIND_MODALITY.items())
        modality = f"CASE lower(trim(kind)) {kinds} ELSE 'other' END AS modality"
        found = self.run(
            f"SELECT key, count(DISTINCT sid), count(*), list(DISTINCT modality) FROM "
            f"({self.uncosted_sql(modality)}) JOIN _k USING (sid) GROUP BY key"
        )
        for key, sessions, records, modalities in found:
            row = rows[str(key)]
            row.incomplete_sessions, row.uncosted_records = int(sessions), int(records)
            row.uncosted_modalities = {str(m) for m in modalities}

    def placeholder_by(self, rows: dict[str, MarginRow]) -> None:
        """Each row's sessions a cost entry with placeholder prices prices (a record in its pass), and those
        entries."""
        marked = [
            p for p, chosen in enumerate(self.passes) if chosen.side == "cost" and chosen.entry.placeholder
        ]
        if not marked:
            return
        found = self.run(
            "SELECT key, count(DISTINCT sid), list(DISTINCT p) FROM _x JOIN _k USING (sid) "
            f"WHERE p IN ({', '.join(map(str, marked))}) GROUP BY key"
        )
        for key, sessions, passes in found:
            row = rows[str(key)]
            row.placeholder_sessions = int(sessions)
            row.placeholder_entries = {self.passes[int(p)].entry.id for p in passes}

    def held_by(self, rows: dict[str, MarginRow]) -> tuple[str, ...]:
        """Each row's records the guard holds back (how many, in how many sessions, for which reasons), and
        every held record's id in file order."""
        if self.guard is None:
            return ()
        held_records = self.held_sql("id, _row")
        found = self.run(
            f"SELECT key, sid, id, reasons FROM ({held_records}) JOIN _k USING (sid) ORDER BY _row"
        )
        for key, group in groupby(sorted(found, key=lambda f: (str(f[0]), f[1])), key=lambda f: str(f[0])):
            for _, session in groupby(group, key=lambda f: f[1]):
                held = list(session)
                rows[key].add_held([f[2] for f in held], (c for f in held for c in f[3]))
        return tuple(str(f[2]) for f in found)

    def loss_sessions(self) -> dict[str, int]:
        """Per row, the sessions whose margin is below zero: in SQL where the floored margin is clear of
        zero by more than its bound, exactly in Python for the rest. Margins are integers of 10^-12 of the
        currency on 64 bits first (several times faster than 128); a value past them raises, and the
        margins are made again on 128 bits at 10^-SCALE."""
        import duckdb

        if not self.terms:
            return {}
        for scale, integer in ((min(SCALE, FAST_SCALE), "BIGINT"), (SCALE, "HUGEINT")):
            try:
                if self.margins(scale, integer):
                    break
            except (duckdb.OutOfRangeException, duckdb.ConversionException):
                if integer == "HUGEINT":
                    raise
        counts: dict[str, int] = {
            str(key): int(n)
            for key, n in self.run(
                "SELECT key, count(*) FROM _margins JOIN _k USING (sid) "
                "WHERE (e = 0 AND m < 0) OR (e > 0 AND m + e <= 0) GROUP BY key"
            )
        }
        unsure = self.run(
            "SELECT key, sid, p, ver, term, x FROM _x JOIN (SELECT sid FROM _margins WHERE e > 0 AND "
            "m + e > 0 AND m - e < 0) USING (sid) JOIN _k USING (sid) ORDER BY sid"
        )
        margins: dict[tuple[str, int], Fraction] = {}
        for key, sid, p, ver, term, x in unsure:
            worth = self.terms[(p, ver, term)]
            amount = worth.value * (1 if worth.by_count else int(x))
            sign = 1 if self.passes[p].side == "price" else -1
            margins[(str(key), sid)] = margins.get((str(key), sid), Fraction(0)) + sign * amount
        for (key, _), margin in margins.items():
            if margin < 0:
                counts[key] = counts.get(key, 0) + 1
        return counts


def first_records(count: int, quota: int, total: int) -> int:
    """How many of a group's first records to read for its included quota: as many as it would need were
    the group's ``count`` records alike (``total`` billable integers), half as many again, at least
    :data:`FIRST_RECORDS`, at most the group."""
    alike = count if total <= 0 else count * quota // total
    return min(count, max(FIRST_RECORDS, alike + alike // 2 + 1))


def _fraction(scaled: Fraction) -> tuple[int, int, bool]:
    """A term at its scale as ``num / den``: exact when small, else rounded to 10^-EXTRA (True)."""
    if scaled.denominator <= _SMALL and scaled.numerator <= _SMALL:
        return scaled.numerator, scaled.denominator, False
    return round(scaled * 10**EXTRA), 10**EXTRA, True


def _ordered(entry: Entry) -> bool:
    """Whether rating ``entry`` needs its records in start and id order (an included quota's running sum)."""
    return any(isinstance(v.model, Included) for v in entry.versions)


def _decimal(value: Fraction) -> Decimal:
    """An exact sum as a Decimal (28 significant digits, as the reference's amounts)."""
    return Decimal(value.numerator) / Decimal(value.denominator)
