"""Vectorised rating on DuckDB for the what-if commands: the same numbers as the reference rating
(:func:`talktime.core.rating.rate.rate_entry` over provider months), for histories of tens of millions of
records. ``compare`` (``switch_run.py``) and ``simulate`` (``run.py``) rate through here; ``margin``
(``margin_run.py``) meters through :class:`Passes` and rates record by record, exactly as the reference adds.

Owns: which records each pass meters (SQL for the cards' matches, first entry first as in the margin report,
and for relabelling records as another provider's), cutting sessions at the rating month (the reference
meters each month's records together), adding billable integers up per key (call, customer or the whole)
within each rated group in SQL, rating those rows with the charge models, and the records no entry takes.
Does not own: metering (``talktime.engine``) or the charge arithmetic (``talktime.core.rating.charges``).

Exactness. Billable quantities are the engine's integers (microseconds, or millionths of a token or
character). A group (month, meter, charge version) is rated by its model over per-key quantities: a
per-unit price is linear, so a key's amount is its records' amounts added up; a tiered, package or flat
charge is split pro rata (the rating module's rule), and the item that takes the remainder is the key
holding the group's last record with quantity (start, then id), as in the reference's per-record split. A
per-attempt charge is per record (``max(fee, usage)``): SQL counts the records below the fee with integers
and adds up the others' quantities. An ``included`` free quota goes to the group's first records (start,
then id), as in the reference: a window sum in SQL leaves each record the integers past the quota, and the
inner model rates those. A model this module does not know (or a quota finer than the billable scale)
makes :func:`supported` say why; the commands then use the reference.

Where the two paths can part: the reference divides each record's quantity by the unit (28 significant
digits) before adding up, this module adds up exact integers first. Amounts agree far below the 6 places
the reports show; a package's block count could differ only if the reference's rounded sum crossed a block
edge that the exact sum sits on.

Speed (a pass is a scan of the file and the metering query; 10M records are a few seconds each): a pass
meters with 64-bit integers, and with 128 only when a value does not fit; it keeps each record's error code
and runs the engine's validation queries only when some record has one (to name the first bad record, as
every engine does); the ids are screened for repeats once, not in every pass over the same records; and a
record's rating month is a comparison with the month boundaries of the file's range, not a time zone
conversion per record (:meth:`Passes.months`).
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction
from itertools import pairwise
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
from talktime.core.rating.margin import KIND_MODALITY
from talktime.core.records import ATTR_PREFIX
from talktime.core.simulate.costs import Missing, product_label
from talktime.core.simulate.rules import left_off_note
from talktime.engine.backends import DuckDBEngine
from talktime.engine.compile import Compiled, attr_columns, compile_policy
from talktime.engine.dialects import DUCKDB
from talktime.engine.sources import Scannable
from talktime.errors import MeteringError

ZERO: Final = Decimal(0)
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_SEP: Final = "\x1f"
#: How long the cut (separator + YYYY-MM) that :func:`cut_sql` appends to each session key is.
CUT_LENGTH: Final = len(_SEP) + 7
_LINEAR: Final = (PerUnit,)
#: Queries that find nothing: the repeated-id check of a pass whose ids were checked already, and the
#: validation of a pass whose metering found no bad record.
_NOTHING: Final = "SELECT 1 WHERE FALSE"
_NO_ROWS: Final = "SELECT 1, NULL, NULL WHERE FALSE"
#: Beyond this many months in a file's range, months are computed record by record (``month_sql``).
_MOST_MONTHS: Final = 600
#: Within this of a month's edge (microseconds; more than any clock change), a record's month is converted.
_NEAR_EDGE_US: Final = 3 * 3600 * 10**6
#: How the compiled metering query ends (``compile.py``): its per-record rows from ``_final``, in file order.
_RECORDS_TAIL: Final = " FROM _final ORDER BY _row"
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


def lit(value: str) -> str:
    return DUCKDB.str_lit(value)


def match_sql(match: Match) -> str:
    """SQL true for the records ``match`` takes (each given field lower-cased among the allowed values)."""
    parts = []
    for name, allowed in match.fields.items():
        column = DUCKDB.ident(name)
        values = ", ".join(lit(v) for v in allowed)
        parts.append(f"({column} IS NOT NULL AND lower(CAST({column} AS VARCHAR)) IN ({values}))")
    return " AND ".join(parts) or "TRUE"


def month_sql(zone: str, moment: str = "started_at") -> str:
    """SQL for the month (YYYY-MM) ``moment`` falls in, in ``zone`` (``period_label``)."""
    return f"strftime(timezone({lit(zone)}, {moment}), '%Y-%m')"


def customer_month_sql(
    prices: PriceCard, customers: Iterable[str], moment: str = "started_at", customer: str = "customer"
) -> str:
    """SQL for the month of ``moment`` in the zone of the ``customer`` column's customer."""
    cases = [
        f"WHEN {lit(c)} THEN {month_sql(prices.customer(c).timezone, moment)}"
        for c in customers
        if prices.customer(c).timezone != prices.timezone
    ]
    if not cases:
        return month_sql(prices.timezone, moment)
    return f"CASE {customer} {' '.join(cases)} ELSE {month_sql(prices.timezone, moment)} END"


def cut_sql(month: str) -> str:
    """Each session key with its rating month appended, so session rounding never crosses a month."""
    return f"COALESCE(session, 'record:' || id) || {lit(_SEP)} || {month}"


class Passes(DuckDBEngine):
    """One DuckDB connection metering a filtered, relabelled view of one canonical file, pass after pass.

    ``attrs`` are every ``attr.*`` column any pass reads (policies and cards' matches), so each relation has
    them all; ``trusted`` files (calls generated here) skip the record checks. Once ``ids_checked`` (no id of
    the file is repeated, or the records of every later pass were checked already), a pass skips the
    engine's query for repeated ids."""

    def __init__(self, source: Scannable, attrs: Sequence[str] = (), *, trusted: bool = False) -> None:
        super().__init__()
        self.source = source
        self.attrs = sorted(set(attrs))
        self.trusted = trusted
        self.ids_checked = False
        self._months: dict[str, list[tuple[str, int]]] = {}
        self.where = "TRUE"
        self.replace: dict[str, str] = {}

    def _relation(self, stack: ExitStack, file: Path, attrs: list[str]) -> str:
        base = super()._relation(stack, file, sorted({*attrs, *self.attrs}))
        changes = ", ".join(f"{expr} AS {DUCKDB.ident(name)}" for name, expr in self.replace.items())
        select = f"* REPLACE ({changes})" if changes else "*"
        return f"(SELECT {select} FROM {base} WHERE {self.where}) AS _pass"

    def _prepare(self, stack: ExitStack, path: Path, policy: Policy) -> Compiled:
        """As the engine's, on the file made canonical once for every pass (with every policy's attrs)."""
        relation = self._relation(stack, self.source.path, attr_columns(policy))
        compiled = compile_policy(policy, self.dialect, relation)
        if not self.trusted:
            self._check(compiled, policy)
        return compiled

    def check_formats(self, policy: Policy) -> None:
        """Every record's format, as reading the file record by record checks it, for a file scanned as it
        is (a parsed file was checked while it was parsed): a pass checks only the records it meters."""
        import duckdb

        if self.trusted or self.source.parsed:
            return
        try:
            for fast in (True, False):  # 64-bit integers first, as a pass
                self.fast = fast
                compiled = compile_policy(policy, self.dialect, self.history())
                checks = dataclasses.replace(compiled, validation=compiled.formats, any_duplicate=_NOTHING)
                try:
                    self._validate(checks, self.source, policy)
                    return
                except (duckdb.OutOfRangeException, duckdb.ConversionException):
                    if not fast:
                        raise
        finally:
            self.fast = False

    def screen_ids(self, policy: Policy) -> None:
        """Screen the whole file once for repeated ids (the engine's screen: hashes sorted in NumPy); when
        there are none, no pass repeats the check on its records."""
        compiled = compile_policy(policy, self.dialect, self.history())
        self.ids_checked = not self._screen_ids(compiled)

    def history(self) -> str:
        """The whole canonical file as a relation."""
        return self._relation_of(self.source.path, self.attrs)

    def months(self, zone: str, moment: str = "started_at") -> str:
        """:func:`month_sql` for this file's records: comparisons with the month boundaries in ``zone`` over
        the file's time range (a time zone conversion per record costs about as much as metering it), and
        :func:`month_sql` itself for a moment outside that range or within three hours of an edge."""
        found = self._months.get(zone)
        if found is None:
            found = self._months[zone] = self._boundaries(zone)
        slow = month_sql(zone, moment)
        if not found:
            return slow
        micros = f"epoch_us({moment})"
        near = _NEAR_EDGE_US  # a zone may change its clock at midnight: near an edge, convert
        whens = [f"WHEN {micros} < {found[0][1] + near} THEN {slow}"]
        for (month, _), (_, end) in pairwise(found):
            whens += [
                f"WHEN {micros} < {end - near} THEN {lit(month)}",
                f"WHEN {micros} < {end + near} THEN {slow}",
            ]
        return f"(CASE {' '.join(whens)} ELSE {slow} END)"

    def customer_months(
        self,
        prices: PriceCard,
        customers: Iterable[str],
        moment: str = "started_at",
        customer: str = "customer",
    ) -> str:
        """:func:`customer_month_sql` with :meth:`months`."""
        zones = {c: prices.customer(c).timezone for c in customers}
        cases = [
            f"WHEN {lit(c)} THEN {self.months(z, moment)}" for c, z in zones.items() if z != prices.timezone
        ]
        default = self.months(prices.timezone, moment)
        return f"(CASE {customer} {' '.join(cases)} ELSE {default} END)" if cases else default

    def _boundaries(self, zone: str) -> list[tuple[str, int]]:
        """Each month of the file's time range in ``zone`` with the instant it starts at (microseconds since
        1970), and the month after the last (its start ends the range); empty for an empty file or a range
        of many years."""
        first, last = self.connection.execute(
            f"SELECT {month_sql(zone, 'min(started_at)')}, {month_sql(zone, 'max(started_at)')} "
            f"FROM {self.history()}"
        ).fetchall()[0]
        if first is None or last is None:
            return []
        year, month = int(first[:4]), int(first[5:7])
        months: list[str] = []
        while not months or months[-1] <= last:
            months.append(f"{year:04d}-{month:02d}")
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
            if len(months) > _MOST_MONTHS:
                return []
        starts = ", ".join(f"epoch_us(timezone({lit(zone)}, TIMESTAMP '{m}-01 00:00:00'))" for m in months)
        instants = self.connection.execute(f"SELECT {starts}").fetchall()[0]
        return [(m, int(t)) for m, t in zip(months, instants, strict=True)]

    def meter_into(
        self,
        table: str,
        policy: Policy,
        where: str,
        replace: Mapping[str, str],
        columns: Sequence[str] = (),
    ) -> int:
        """Meter the records ``where`` keeps (columns rewritten by ``replace``) into ``table`` (only the
        metering query's ``columns``, when given); returns the scale of its ``_billable`` integers
        (``_actual`` is at scale 6).

        With 64-bit integers first (several times faster); a value that does not fit raises, never wraps,
        and the pass then runs again with 128 bits, as the engine's totals do."""
        import duckdb

        self.where, self.replace = where, dict(replace)
        try:
            for fast in (True, False):
                self.fast = fast
                try:
                    return self._meter_checked(table, policy, columns)
                except (duckdb.OutOfRangeException, duckdb.ConversionException):
                    if not fast:
                        raise
        finally:
            self.where, self.replace, self.fast = "TRUE", {}, False
        raise AssertionError("unreachable")  # pragma: no cover

    def _meter_checked(self, table: str, policy: Policy, columns: Sequence[str]) -> int:
        """Meter into ``table`` and check the records in one pass: the metering query keeps each record's
        error code, and only when some record has one (or the query fails) do the engine's validation
        queries run, to name the first bad record as every engine does. (A metering query of another shape
        than the one :func:`_with_errors` knows is validated first, then run.)"""
        import duckdb

        def create(query: str, *extra: str) -> None:
            select = ", ".join([*columns, *extra]) if columns else "*"
            self.connection.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT {select} FROM ({query})")

        with ExitStack() as stack:
            relation = self._relation(stack, self.source.path, attr_columns(policy))
            compiled = compile_policy(policy, self.dialect, relation)
            together = None if self.trusted else _with_errors(compiled.records)
            if together is None:
                if not self.trusted:
                    self._check(compiled, policy)
                create(compiled.records)
                return compiled.billable_scale
            try:
                create(together, "_error")
            except duckdb.Error:
                self._check(compiled, policy)  # names the bad record when one is the cause
                raise
            if self.connection.execute(f"SELECT 1 FROM {table} WHERE _error IS NOT NULL LIMIT 1").fetchall():
                self._check(compiled, policy)
                raise AssertionError("the metering query found an error the validation did not")
            if not self.ids_checked and self._screen_ids(compiled):  # the screen is cheap; then the query
                self._validate(dataclasses.replace(compiled, validation=_NO_ROWS), self.source, policy)
            return compiled.billable_scale

    def _check(self, compiled: Compiled, policy: Policy) -> None:
        """The engine's validation (the repeated-id query only while ids are not checked)."""
        checks = dataclasses.replace(compiled, any_duplicate=_NOTHING) if self.ids_checked else compiled
        self._validate(checks, self.source, policy)

    def arrow_columns(self, sql: str) -> dict[str, list[Any]]:
        """The query's result fetched as Arrow, column by column as Python lists."""
        table = self.connection.sql(sql).to_arrow_table()
        return {name: table.column(name).to_pylist() for name in table.column_names}


def _with_errors(records: str) -> str | None:
    """The compiled metering query with each record's error code (``_error``, NULL for a good record) as one
    more column and in no order; None when the query does not end the way this expects."""
    if not records.endswith(_RECORDS_TAIL):
        return None
    return records[: -len(_RECORDS_TAIL)] + ", _error FROM _final"


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


def relabel_sql(policy: Policy) -> dict[str, str]:
    """The ``as_provider`` rewrite in SQL: the other provider's provider, product and a kind it counts."""
    out: dict[str, str] = {}
    if policy.provider:
        out["provider"] = lit(policy.provider)
    if policy.product:
        out["product"] = lit(policy.product)
    kinds = policy.current.params.kinds
    if kinds is not None:
        allowed = ", ".join(lit(k) for k in kinds)
        out["kind"] = f"CASE WHEN kind IS NOT NULL AND kind IN ({allowed}) THEN kind ELSE {lit(kinds[0])} END"
    return out


def attrs_of(policies: Iterable[Policy]) -> list[str]:
    return sorted({a for p in policies for a in attr_columns(p)})


def card_attrs(costs: CostCard, prices: PriceCard | None = None) -> list[str]:
    """Every ``attr.*`` column the cards read: their policies' and their matches' (``attr.model``)."""
    entries = [*costs.entries, *(prices.components if prices is not None else ())]
    names = {a for e in entries for a in attr_columns(e.policy)}
    names |= {name for e in entries for name in e.match.fields if name.startswith(ATTR_PREFIX)}
    return sorted(names)


def group_firsts(costs: CostCard) -> list[Entry]:
    """The first entry of each card entry (one per part share a match), in card order."""
    seen: set[str] = set()
    out = []
    for entry in costs.entries:
        if entry.group not in seen:
            seen.add(entry.group)
            out.append(entry)
    return out


def taken_sql(costs: CostCard) -> list[tuple[Entry, str]]:
    """Each card entry's first entry with SQL true for the records it prices, as ``CostCard.entries_for``:
    an entry the records it is the first (not additional) entry to take, in card order; an ``additional``
    entry the records it matches that some other entry prices."""
    out: list[tuple[Entry, str]] = []
    earlier: list[str] = []
    for entry in group_firsts(costs):
        mine = match_sql(entry.match)
        if entry.additional:
            continue
        out.append((entry, " AND ".join([f"({mine})", *(f"NOT ({t})" for t in earlier)])))
        earlier.append(mine)
    costed = f"NOT ({uncosted_sql(costs)})"
    for entry in group_firsts(costs):
        if entry.additional:
            out.append((entry, f"({match_sql(entry.match)}) AND {costed}"))
    order = {e.group: i for i, e in enumerate(group_firsts(costs))}
    return sorted(out, key=lambda item: order[item[0].group])


def group_sql(costs: CostCard, group: str) -> str:
    """SQL true for the records the card entry ``group`` prices (see :func:`taken_sql`)."""
    return next((where for entry, where in taken_sql(costs) if entry.group == group), "FALSE")


def uncosted_sql(costs: CostCard) -> str:
    """SQL true for the records no cost entry takes (an additional entry alone does not price a record)."""
    firsts = [e for e in group_firsts(costs) if not e.additional]
    return " AND ".join(f"NOT ({match_sql(e.match)})" for e in firsts) or "TRUE"


def modality_sql(costs: CostCard) -> str:
    """SQL for a record's modality: its cost entry's, else its kind's, else NULL (``record_modality``)."""
    firsts = [e for e in group_firsts(costs) if not e.additional]
    whens = [f"WHEN {match_sql(e.match)} THEN {lit(e.modality)}" for e in firsts]
    whens += [f"WHEN kind = {lit(kind)} THEN {lit(modality)}" for kind, modality in KIND_MODALITY.items()]
    return f"(CASE {' '.join(whens)} END)"


def missing_by(engine: Passes, costs: CostCard, keys: Sequence[str]) -> dict[tuple[str, ...], Missing]:
    """Per key (SQL over the history's columns): the records no cost entry takes, by provider and product."""
    key_sql = ", ".join(f"{expr} AS k{i}" for i, expr in enumerate(keys))
    names = [f"k{i}" for i in range(len(keys))]
    rows = engine.connection.execute(
        f"SELECT {', '.join(names)}, provider, product, COUNT(*) FROM (SELECT {key_sql}, provider, product "
        f"FROM {engine.history()} WHERE {uncosted_sql(costs)}) GROUP BY ALL"
    ).fetchall()
    found: dict[tuple[str, ...], Missing] = defaultdict(Missing)
    for row in rows:
        key = tuple(str(k) for k in row[: len(keys)])
        provider, product, count = row[len(keys) :]
        found[key] += Missing({product_label(provider, product): int(count)})
    return dict(found)


def cost_by_modality(
    engine: Passes,
    costs: CostCard,
    keys: Sequence[str],
    skip_group: str | None = None,
    step: Callable[[str], None] = lambda _: None,
) -> dict[tuple[str, ...], dict[str, Decimal]]:
    """Per key: every cost entry's cost over the records it is first to take (per provider month), added up
    by modality, as the margin report's cost stack; ``skip_group`` leaves one card entry out."""
    out: dict[tuple[str, ...], dict[str, Decimal]] = defaultdict(dict)
    provider_month = {"session": cut_sql(engine.months(costs.period_timezone))}
    for first, where in taken_sql(costs):
        if first.group == skip_group:
            continue
        for entry in (e for e in costs.entries if e.group == first.group):
            step(f"costing {entry.id}")
            scale = engine.meter_into("m_cost", entry.policy, where, provider_month)
            for key, amount in rate_pass(engine, "m_cost", entry, scale, keys).amounts.items():
                stack = out[key]
                stack[entry.modality] = stack.get(entry.modality, ZERO) + amount
    return dict(out)


def cost_passes(costs: CostCard, skip_group: str | None = None) -> int:
    """How many times :func:`cost_by_modality` calls ``step``."""
    return sum(1 for e in costs.entries if e.group != skip_group)


def left_off_notes(engine: Passes, card: CostCard, left_off: Mapping[str, str]) -> list[str]:
    """Notes for the card entries ``--at`` left off that price some record of the history (``card`` is the
    card before pinning)."""
    notes = []
    for group, why in left_off.items():
        found = engine.connection.execute(
            f"SELECT COUNT(*) FROM {engine.history()} WHERE {group_sql(card, group)}"
        ).fetchall()
        if found[0][0]:
            notes.append(left_off_note(group, why, int(found[0][0])))
    return notes
