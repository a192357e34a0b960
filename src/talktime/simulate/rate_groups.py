"""Rating metered passes per key (call, customer or the whole) on DuckDB, for ``compare`` and ``simulate``:
the same numbers as the reference rating (:func:`talktime.core.rating.rate.rate_entry` over provider months).

Owns: adding billable integers up per key within each rated group (month, meter, charge version) in SQL,
and rating those rows with the charge models. Does not own: metering (``pass_engine.py``) or the charge
arithmetic (``talktime.core.rating.charges``).

Exactness. Billable quantities are the engine's integers (microseconds, or millionths of a token or
character). A group is rated by its model over per-key quantities: a per-unit price is linear, so a key's
amount is its records' amounts added up; a tiered, package or flat charge is split pro rata (the rating
module's rule), and the item that takes the remainder is the key holding the group's last record with
quantity (start, then id), as in the reference's per-record split. A per-attempt charge is per record
(``max(fee, usage)``): SQL counts the records below the fee with integers and adds up the others'
quantities. An ``included`` free quota goes to the group's first records (start, then id), as in the
reference: a window sum in SQL leaves each record the integers past the quota, and the inner model rates
those. A model this module does not know (or a quota finer than the billable scale) makes :func:`supported`
say why; the commands then use the reference.

Where the two paths can part: the reference divides each record's quantity by the unit (28 significant
digits) before adding up, this module adds up exact integers first. Amounts agree far below the 6 places
the reports show; a package's block count could differ only if the reference's rounded sum crossed a block
edge that the exact sum sits on.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from typing import Any, Final

from talktime.core.decimals import plain
from talktime.core.rating.cards import CostCard, Entry, PriceCard
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
from talktime.errors import MeteringError
from talktime.simulate.pass_engine import Passes

ZERO: Final = Decimal(0)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
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


def entry_supported(entry: Entry) -> str | None:
    """Why the vectorised path cannot rate ``entry`` (None when it can)."""
    for version in entry.versions:
        why = _why_not(version.model)
        if why is not None:
            return f"{entry.id}: {why}"
    return None


def supported(costs: CostCard, prices: PriceCard | None) -> str | None:
    """Why the vectorised path cannot rate these cards (None when it can)."""
    entries = [*costs.entries, *(prices.components if prices is not None else ())]
    return next((why for e in entries if (why := entry_supported(e)) is not None), None)


def _ints(value: Decimal) -> tuple[int, int]:
    fraction = Fraction(value)
    return fraction.numerator, fraction.denominator


def version_sql(entry: Entry) -> str:
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
    engine: Passes, table: str, entry: Entry, scale: int, keys: Sequence[str], *, own_groups: bool = False
) -> Rated:
    """Rate the metered ``table`` under ``entry``: each (month, meter, charge version) group by its model
    over the per-key quantities, the amounts added up per key. With ``own_groups`` each key is rated on its
    own (a customer's month on a price card)."""
    if len(entry.versions) == 1 and isinstance(entry.versions[0].model, PerUnit):
        return _rate_linear(engine, table, entry, scale, keys, entry.versions[0].model)
    engine.connection.execute(
        f"CREATE OR REPLACE TEMP TABLE {table}_v AS SELECT *, {version_sql(entry)} AS _ver FROM {table}"
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
    engine: Passes, table: str, entry: Entry, scale: int, keys: Sequence[str], model: PerUnit
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
        if not n:  # constant keys over no records: one empty group
            continue
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
