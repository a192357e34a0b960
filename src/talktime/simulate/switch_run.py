"""Provider switch on the vectorised engine (DuckDB): the same numbers as
:func:`talktime.core.simulate.switch.compare`, for histories of tens of millions of records.

Owns: which records each pass meters (SQL for the cards' matches and the switch's relabelling), cutting
sessions at the rating month (the reference meters each month's records together), adding billable
seconds up per call or customer within each rated group in SQL, and rating those rows with the charge
models. Does not own: metering (``talktime.engine``), the charge arithmetic
(``talktime.core.rating.charges``) or the switch's shape (``talktime.core.simulate.switch``).

Exactness. Billable seconds are the engine's integers. A group (month, meter, charge version) is rated by
its model over per-call (or per-customer) quantities: a per-unit price is linear, so a call's amount is
its records' amounts added up; a tiered, package or flat charge is split pro rata (the rating module's
rule), and the item that takes the remainder is the call holding the group's last record with quantity
(start, then id), as in the reference's per-record split. A per-attempt charge is per record
(``max(fee, usage)``): SQL counts the records below the fee with integers and adds up the others' seconds.
An ``included`` free quota goes to the group's first records (start, then id), as in the reference: a
window sum in SQL leaves each record the integer seconds past the quota, and the inner model rates those.
A model this module does not know (or a quota finer than the billable scale) makes :func:`supported` say
why; the command then uses the reference.

Where the two paths can part: the reference divides each record's seconds by the unit (28 significant
digits) before adding up, this module adds up exact integers first. Amounts agree far below the 6 places
the reports show; a package's block count could differ only if the reference's rounded sum crossed a block
edge that the exact sum sits on.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any, Final

from talktime.core.decimals import plain
from talktime.core.metering.policy import Policy
from talktime.core.rating.cards import CostCard, Entry, Match, PriceCard
from talktime.core.rating.charges import (
    FlatFee,
    Graduated,
    Included,
    Package,
    PerAttempt,
    PerUnit,
    Volume,
    pro_rata,
)
from talktime.core.rating.money import MoneyError
from talktime.core.simulate.switch import (
    NO_CUSTOMER,
    CallChange,
    CustomerMargin,
    Switch,
    assemble,
    cost_entry_for,
    today,
)
from talktime.engine.backends import DuckDBEngine
from talktime.engine.compile import Compiled, attr_columns, compile_policy
from talktime.engine.dialects import DUCKDB
from talktime.engine.sources import Scannable, canonical_parquet
from talktime.errors import InputError, MeteringError

ZERO: Final = Decimal(0)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_SEP: Final = "\x1f"
_CUT: Final = len(_SEP) + 7  # separator + YYYY-MM appended to each session key
_LINEAR: Final = (PerUnit,)
_PRO_RATA: Final = (Graduated, Volume, Package, FlatFee)


def _why_not(model: object) -> str | None:
    if isinstance(model, Included):
        if Fraction(model.included) * 60 * 10**6 % 1 != 0:
            return "an included quota finer than a microsecond of a minute"
        return _why_not(model.then)
    if isinstance(model, (*_LINEAR, *_PRO_RATA, PerAttempt)):
        return None
    return f"the {getattr(model, 'name', type(model).__name__)} model is not vectorised"


def supported(costs: CostCard, prices: PriceCard | None) -> str | None:
    """Why the vectorised path cannot rate these cards (None when it can)."""
    entries = [*costs.entries, *(prices.components if prices is not None else ())]
    for entry in entries:
        for version in entry.versions:
            why = _why_not(version.model)
            if why is not None:
                return f"{entry.id}: {why}"
    return None


def _lit(value: str) -> str:
    return DUCKDB.str_lit(value)


def match_sql(match: Match) -> str:
    """SQL true for the records ``match`` takes (each given field lower-cased among the allowed values)."""
    parts = []
    for name, allowed in match.fields.items():
        column = DUCKDB.ident(name)
        values = ", ".join(_lit(v) for v in allowed)
        parts.append(f"({column} IS NOT NULL AND lower(CAST({column} AS VARCHAR)) IN ({values}))")
    return " AND ".join(parts) or "TRUE"


def _month(zone: str) -> str:
    return f"strftime(timezone({_lit(zone)}, started_at), '%Y-%m')"


def _customer_month(prices: PriceCard, customers: Iterable[str]) -> str:
    cases = [
        f"WHEN {_lit(c)} THEN {_month(prices.customer(c).timezone)}"
        for c in customers
        if prices.customer(c).timezone != prices.timezone
    ]
    if not cases:
        return _month(prices.timezone)
    return f"CASE customer {' '.join(cases)} ELSE {_month(prices.timezone)} END"


def _cut(month: str) -> str:
    """Each session key with its rating month appended, so session rounding never crosses a month."""
    return f"COALESCE(session, 'record:' || id) || {_lit(_SEP)} || {month}"


class _Passes(DuckDBEngine):
    """One DuckDB connection metering a filtered, relabelled view of one canonical file, pass after pass."""

    def __init__(self, source: Scannable) -> None:
        super().__init__()
        self.source = source
        self.where = "TRUE"
        self.replace: dict[str, str] = {}

    def _relation(self, stack: ExitStack, file: Path, attrs: list[str]) -> str:
        base = super()._relation(stack, file, attrs)
        changes = ", ".join(f"{expr} AS {DUCKDB.ident(name)}" for name, expr in self.replace.items())
        select = f"* REPLACE ({changes})" if changes else "*"
        return f"(SELECT {select} FROM {base} WHERE {self.where}) AS _pass"

    def _prepare(self, stack: ExitStack, path: Path, policy: Policy) -> Compiled:
        """As the engine's, on the file made canonical once for every pass (with every policy's attrs)."""
        relation = self._relation(stack, self.source.path, attr_columns(policy))
        compiled = compile_policy(policy, self.dialect, relation)
        self._validate(compiled, self.source, policy)
        return compiled

    def history(self) -> str:
        """The whole canonical file as a relation."""
        return self._relation_of(self.source.path, [])

    def meter_into(self, table: str, policy: Policy, where: str, replace: Mapping[str, str]) -> int:
        """Meter the records ``where`` keeps (columns rewritten by ``replace``) into ``table``; returns the
        scale of its ``_billable`` integers."""
        self.where, self.replace = where, dict(replace)
        try:
            with ExitStack() as stack:
                compiled = self._prepare(stack, self.source.path, policy)
                self.connection.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS {compiled.records}")
        finally:
            self.where, self.replace = "TRUE", {}
        return compiled.billable_scale

    def arrow_columns(self, sql: str) -> dict[str, list[Any]]:
        """The query's result fetched as Arrow, column by column as Python lists."""
        table = self.connection.sql(sql).to_arrow_table()
        return {name: table.column(name).to_pylist() for name in table.column_names}


def _ints(value: Decimal) -> tuple[int, int]:
    fraction = Fraction(value)
    return fraction.numerator, fraction.denominator


def _version_sql(entry: Entry) -> str:
    """SQL giving the index of the charge version in force at each record's start (NULL: none yet)."""
    cases = []
    for index in reversed(range(len(entry.versions))):
        delta = entry.versions[index].effective_from - _EPOCH
        micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        cases.append(f"WHEN _start >= {micros} THEN {index}")
    return f"CASE {' '.join(cases)} END"


def _at_fee_sql(entry: Entry, scale: int) -> str:
    """SQL true for a record whose usage costs less than its per-attempt fee (integers, exact)."""
    cases = []
    un, ud = _ints(entry.unit_seconds)
    for index, version in enumerate(entry.versions):
        model = version.model
        if isinstance(model, PerAttempt):
            pn, pd = _ints(model.unit_price)
            fn, fd = _ints(model.fee)
            left = f"CAST(_billable AS HUGEINT) * {pn * fd * ud}"
            cases.append(f"WHEN {index} THEN {left} < {fn * un * pd * 10**scale}")
    if not cases:
        return "FALSE"
    return f"CASE _ver {' '.join(cases)} ELSE FALSE END"


def _rated_sql(entry: Entry, scale: int, partition: Sequence[str] = ()) -> str:
    """SQL for the billable integers a record is charged for: all of them, or under an included quota what
    is left once the group's earlier records (start, then id) have used the quota up."""
    cases = []
    for index, version in enumerate(entry.versions):
        model = version.model
        if isinstance(model, Included):
            quota = Fraction(model.included) * Fraction(entry.unit_seconds) * 10**scale
            if quota.denominator != 1:
                raise AssertionError("supported() refuses quotas finer than the billable scale")
            window = ", ".join(["right(session, 7)", "_meter", "_ver", *partition])
            after = (
                f"SUM(CAST(_billable AS HUGEINT)) OVER (PARTITION BY {window} "
                "ORDER BY _start, id ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
            )
            before = f"({after} - CAST(_billable AS HUGEINT))"
            free_line = f"GREATEST({quota.numerator}, {before})"
            cases.append(f"WHEN {index} THEN GREATEST(CAST(0 AS HUGEINT), {after} - {free_line})")
    if not cases:
        return "CAST(_billable AS HUGEINT)"
    return f"CASE _ver {' '.join(cases)} ELSE CAST(_billable AS HUGEINT) END"


@dataclass(slots=True)
class _Split:
    """One call's (or customer's) records in one rated group."""

    key: tuple[str, ...]
    records: int
    billable: int
    rated: int
    below_fee: int
    paying: int
    last_with_quantity: tuple[int, str] | None
    last: tuple[int, str]


@dataclass(slots=True)
class Rated:
    """Per key (call or customer): records, billable seconds and amount."""

    records: dict[tuple[str, ...], int] = field(default_factory=dict)
    seconds: dict[tuple[str, ...], Decimal] = field(default_factory=dict)
    amounts: dict[tuple[str, ...], Decimal] = field(default_factory=dict)


def rate_pass(
    engine: _Passes, table: str, entry: Entry, scale: int, keys: Sequence[str], *, own_groups: bool = False
) -> Rated:
    """Rate the metered ``table`` under ``entry``: each (month, meter, charge version) group by its model
    over the per-key quantities, the amounts added up per key. With ``own_groups`` each key is rated on its
    own (a customer's month on a price card)."""
    if len(entry.versions) == 1 and isinstance(entry.versions[0].model, PerUnit):
        return _rate_linear(engine, table, entry, scale, keys, entry.versions[0].model)
    engine.connection.execute(
        f"CREATE OR REPLACE TEMP TABLE {table}_v AS SELECT *, {_version_sql(entry)} AS _ver FROM {table}"
    )
    rated_sql = _rated_sql(entry, scale, keys if own_groups else ())
    if rated_sql != "CAST(_billable AS HUGEINT)":
        engine.connection.execute(
            f"CREATE OR REPLACE TEMP TABLE {table}_v AS SELECT *, {rated_sql} AS _rated FROM {table}_v"
        )
    else:
        engine.connection.execute(
            f"CREATE OR REPLACE VIEW {table}_r AS SELECT *, {rated_sql} AS _rated FROM {table}_v"
        )
    missing = engine.connection.execute(
        f"SELECT id FROM {table}_v WHERE _ver IS NULL ORDER BY _start, id LIMIT 1"
    ).fetchone()
    if missing is not None:
        raise MeteringError(
            f"record {missing[0]!r}: field 'started_at': is before {entry.id!r} has a price "
            f"(from {entry.versions[0].label})"
        )
    source = f"{table}_v" if rated_sql != "CAST(_billable AS HUGEINT)" else f"{table}_r"
    at_fee = _at_fee_sql(entry, scale)
    key_sql = ", ".join(f"{expr} AS k{i}" for i, expr in enumerate(keys))
    key_names = ", ".join(f"k{i}" for i in range(len(keys)))
    order = "struct_pack(s := _start, i := id)"
    columns = engine.arrow_columns(
        f"SELECT month, meter, _ver, {key_names}, n, b, r, below, paying, "
        f"lastq.s AS lastq_s, lastq.i AS lastq_i, last.s AS last_s, last.i AS last_i FROM ("
        f"SELECT right(session, 7) AS month, CAST(_meter AS VARCHAR) AS meter, _ver, {key_sql}, "
        f"COUNT(*) AS n, SUM(CAST(_billable AS HUGEINT)) AS b, SUM(_rated) AS r, "
        f"COUNT(*) FILTER (WHERE {at_fee}) AS below, "
        f"COALESCE(SUM(CAST(_billable AS HUGEINT)) FILTER (WHERE NOT ({at_fee})), 0) AS paying, "
        f"max({order}) FILTER (WHERE _rated <> 0) AS lastq, max({order}) AS last "
        f"FROM {source} GROUP BY month, meter, _ver, {key_names})"
    )
    key_columns = [columns[f"k{i}"] for i in range(len(keys))]
    groups: dict[tuple[Any, ...], list[_Split]] = defaultdict(list)
    for month, meter, ver, key, n, b, r, below, paying, lq_s, lq_i, l_s, l_i in zip(
        columns["month"],
        columns["meter"],
        columns["_ver"],
        zip(*key_columns, strict=True),
        columns["n"],
        columns["b"],
        columns["r"],
        columns["below"],
        columns["paying"],
        columns["lastq_s"],
        columns["lastq_i"],
        columns["last_s"],
        columns["last_i"],
        strict=True,
    ):
        groups[(ver, month, meter, *(key if own_groups else ()))].append(
            _Split(
                key,
                n,
                int(b),
                int(r),
                below,
                int(paying),
                None if lq_s is None else (lq_s, lq_i),
                (l_s, l_i),
            )
        )
    rated = Rated()
    unit = entry.unit_seconds
    for (index, *_), splits in sorted(groups.items()):
        amounts = _amounts(entry.versions[index].model, splits, scale, unit)
        for split, amount in zip(splits, amounts, strict=True):
            seconds = plain(Decimal(split.billable).scaleb(-scale))
            rated.records[split.key] = rated.records.get(split.key, 0) + split.records
            rated.seconds[split.key] = rated.seconds.get(split.key, ZERO) + seconds
            rated.amounts[split.key] = rated.amounts.get(split.key, ZERO) + amount
    return rated


def _rate_linear(
    engine: _Passes, table: str, entry: Entry, scale: int, keys: Sequence[str], model: PerUnit
) -> Rated:
    """One per-unit price from the first record: a key's amount is its seconds' amount (the model's
    allocation, ``quantity x unit price``), the same for every key with the same seconds."""
    key_sql = ", ".join(f"{expr} AS k{i}" for i, expr in enumerate(keys))
    columns = engine.arrow_columns(
        f"SELECT {key_sql}, COUNT(*) AS n, SUM(CAST(_billable AS HUGEINT)) AS b FROM {table} GROUP BY ALL"
    )
    unit, price = entry.unit_seconds, model.unit_price
    known: dict[int, tuple[Decimal, Decimal]] = {}
    rated = Rated()
    key_columns = [columns[f"k{i}"] for i in range(len(keys))]
    for key, n, b in zip(zip(*key_columns, strict=True), columns["n"], columns["b"], strict=True):
        whole = int(b)
        found = known.get(whole)
        if found is None:
            seconds = plain(Decimal(whole).scaleb(-scale))
            found = known[whole] = (seconds, seconds / unit * price)
        rated.records[key] = n
        rated.seconds[key], rated.amounts[key] = found
    return rated


def _amounts(model: object, splits: list[_Split], scale: int, unit: Decimal) -> list[Decimal]:
    """Each split's part of the group's charge; ``splits`` is reordered so the remainder-taker is last."""
    splits.sort(key=lambda s: (s.last_with_quantity is not None, s.last_with_quantity or (0, ""), s.last))
    if isinstance(model, PerAttempt):
        return [
            model.fee * s.below_fee + plain(Decimal(s.paying).scaleb(-scale)) / unit * model.unit_price
            for s in splits
        ]
    if isinstance(model, Included):
        model = model.then  # the quota is already taken off the rated integers
    quantities = [plain(Decimal(s.rated).scaleb(-scale)) / unit for s in splits]
    if isinstance(model, _LINEAR):
        return list(model.rate(quantities).allocation)
    if isinstance(model, _PRO_RATA):
        charge = model.rate(quantities)
        if charge.quantity == 0 and charge.amount != 0:
            # no quantity: the reference splits evenly per record, the last record taking the remainder
            by_last = sorted(range(len(splits)), key=lambda i: splits[i].last)
            parts = pro_rata(charge.amount, [Decimal(splits[i].records) for i in by_last])
            out = [ZERO] * len(splits)
            for i, part in zip(by_last, parts, strict=True):
                out[i] = part
            return out
        return list(charge.allocation)
    raise AssertionError(f"not vectorised: {model!r}; check supported() first")  # pragma: no cover


def _relabel(policy: Policy) -> dict[str, str]:
    """The ``as_provider`` rewrite in SQL: the other provider's provider, product and a kind it counts."""
    out: dict[str, str] = {}
    if policy.provider:
        out["provider"] = _lit(policy.provider)
    if policy.product:
        out["product"] = _lit(policy.product)
    kinds = policy.current.params.kinds
    if kinds is not None:
        allowed = ", ".join(_lit(k) for k in kinds)
        out["kind"] = (
            f"CASE WHEN kind IS NOT NULL AND kind IN ({allowed}) THEN kind ELSE {_lit(kinds[0])} END"
        )
    return out


def _attrs(policies: Iterable[Policy]) -> list[str]:
    return sorted({a for p in policies for a in attr_columns(p)})


_CUSTOMER: Final = (f"COALESCE(NULLIF(customer, ''), {_lit(NO_CUSTOMER)})",)
_CALL: Final = (*_CUSTOMER, f"left(session, length(session) - {_CUT})")


def compare_vectorised(
    path: Path,
    from_id: str,
    to_id: str,
    costs: CostCard,
    prices: PriceCard | None = None,
    *,
    step: Callable[[str], None] = lambda _: None,
) -> Switch:
    """:func:`talktime.core.simulate.switch.compare` over the records at ``path``, on DuckDB. Check
    :func:`supported` first."""
    from_entry, to_entry = cost_entry_for(costs, from_id, "from"), cost_entry_for(costs, to_id, "to")
    why = supported(costs, prices)
    if why is not None:
        raise InputError(f"the vectorised compare cannot rate this card: {why}")
    before = today(from_entry)
    after = replace(today(to_entry), match=Match())
    policies = [before.policy, after.policy, *(e.policy for e in costs.entries)]
    if prices is not None:
        policies += [c.policy for c in prices.components]
    step("reading history")
    with canonical_parquet(path, _attrs(policies)) as source:
        engine = _Passes(source)
        try:
            return _compare(engine, from_entry, to_entry, before, after, costs, prices, step)
        finally:
            engine.close()


def steps(costs: CostCard, prices: PriceCard | None) -> int:
    """How many times :func:`compare_vectorised` calls ``step`` (for a progress bar)."""
    if prices is None:
        return 4
    return 4 + len(costs.entries) - 1 + len(prices.components)


def _compare(
    engine: _Passes,
    from_entry: Entry,
    to_entry: Entry,
    before: Entry,
    after: Entry,
    costs: CostCard,
    prices: PriceCard | None,
    step: Callable[[str], None],
) -> Switch:
    selected = match_sql(from_entry.match)
    cut = {"session": _cut(_month(costs.period_timezone))}
    step(f"metering under {before.policy.id}")
    scale = engine.meter_into("m_from", before.policy, selected, cut)
    if not engine.connection.execute("SELECT 1 FROM m_from LIMIT 1").fetchall():
        raise InputError(
            f"--from {from_entry.id!r}: no record in the history is one of its calls "
            f"({from_entry.match.describe()})"
        )
    rated_from = rate_pass(engine, "m_from", before, scale, _CALL)
    step(f"metering under {after.policy.id}")
    relabel = _relabel(after.policy)
    scale = engine.meter_into("m_to", after.policy, selected, {**relabel, **cut})
    rated_to = rate_pass(engine, "m_to", after, scale, _CALL)
    notes = _notes(engine, selected, relabel, to_entry)
    margins = _margins(engine, costs, prices, from_entry, step) if prices is not None else None
    step("adding up calls")
    changes = tuple(
        CallChange(
            key[0],
            key[1],
            rated_from.records[key],
            rated_from.seconds[key],
            rated_to.seconds.get(key, ZERO),
            rated_from.amounts[key],
            rated_to.amounts.get(key, ZERO),
        )
        for key in sorted(rated_from.records)
    )
    return assemble(before, after, from_entry, to_entry, costs.currency, changes, margins, notes)


def _notes(engine: _Passes, selected: str, relabel: Mapping[str, str], to_entry: Entry) -> list[str]:
    if "kind" not in relabel:
        return []
    found = engine.connection.execute(
        f"SELECT COUNT(*) FILTER (WHERE kind IS DISTINCT FROM ({relabel['kind']})), "
        f"arg_min({relabel['kind']}, _row) FROM {engine.history()} WHERE {selected}"
    ).fetchone()
    if not found or not found[0]:
        return []
    return [f"{found[0]} record(s) read as kind {found[1]!r}, the kind {to_entry.id} counts"]


def _margins(
    engine: _Passes,
    costs: CostCard,
    prices: PriceCard,
    from_entry: Entry,
    step: Callable[[str], None],
) -> dict[str, CustomerMargin]:
    """Each customer's revenue, minutes sold and other providers' cost, as the margin report has them:
    every cost entry over the records it is first to take (per provider month, split per customer), every
    price component per customer month."""
    if costs.currency != prices.currency:
        raise MoneyError(
            f"the cost card is in {costs.currency} and the price card in {prices.currency}; "
            "margins need one currency (no FX here)"
        )
    customers = [
        str(c)
        for (c,) in engine.connection.execute(
            f"SELECT DISTINCT {_CUSTOMER[0]} FROM {engine.history()} ORDER BY 1"
        ).fetchall()
    ]
    other: dict[str, Decimal] = defaultdict(Decimal)
    revenue: dict[str, Decimal] = defaultdict(Decimal)
    seconds: dict[str, Decimal] = defaultdict(Decimal)
    taken: list[str] = []
    provider_month = {"session": _cut(_month(costs.period_timezone))}
    for entry in costs.entries:
        mine = match_sql(entry.match)
        where = " AND ".join([f"({mine})", *(f"NOT ({t})" for t in taken)])
        taken.append(mine)
        if entry.id == from_entry.id:
            continue
        step(f"costing {entry.id}")
        scale = engine.meter_into("m_cost", entry.policy, where, provider_month)
        for (customer,), amount in rate_pass(engine, "m_cost", entry, scale, _CUSTOMER).amounts.items():
            other[customer] += amount
    customer_month = {"session": _cut(_customer_month(prices, customers))}
    for component in prices.components:
        step(f"pricing {component.id}")
        where = f"customer IS NOT NULL AND customer <> '' AND ({match_sql(component.match)})"
        scale = engine.meter_into("m_price", component.policy, where, customer_month)
        rated = rate_pass(engine, "m_price", component, scale, _CUSTOMER, own_groups=True)
        for (customer,), amount in rated.amounts.items():
            revenue[customer] += amount
            seconds[customer] += rated.seconds[(customer,)]
    return {c: CustomerMargin(revenue[c], seconds[c] / 60, other[c]) for c in customers}
