"""One DuckDB connection metering filtered, relabelled views of one canonical file, pass after pass: the
engine behind ``compare``, ``simulate`` and ``margin`` on DuckDB.

Owns: the pass's relation (the records a ``where`` keeps, columns rewritten), metering it into a table with
each record's error code, checking records once (formats, repeated ids), and a record's rating month by the
month boundaries of the file's range. Does not own: the SQL of the metering (``talktime.engine.compile``) or
of the cards (``card_sql.py``).

Speed (a pass is a scan of the file and the metering query; 10M records are a few seconds each): a pass
meters with 64-bit integers, and with 128 only when a value does not fit; it keeps each record's error code
and runs the engine's validation queries only when some record has one (to name the first bad record, as
every engine does); the ids are screened for repeats once, not in every pass over the same records; and a
record's rating month is a comparison with the month boundaries of the file's range, not a time zone
conversion per record (:meth:`Passes.months`); ids and session keys skip DuckDB's TRIM when it cannot change
them (:func:`fast_trims`); and a caller may fold a pass into its own statement (:meth:`Passes.metering_sql`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from contextlib import ExitStack
from itertools import pairwise
from pathlib import Path
from typing import Any, Final

from talktime.core.metering.policy import Policy
from talktime.core.rating.cards import PriceCard
from talktime.engine.backends import DuckDBEngine
from talktime.engine.compile import Compiled, attr_columns, compile_policy
from talktime.engine.dialects import DUCKDB
from talktime.engine.sources import Scannable
from talktime.simulate.card_sql import lit, month_sql

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
        #: Every record's format was checked (:meth:`check_formats` over the whole file): passes leave the
        #: format checks out of their metering queries.
        self.formats_checked = False
        #: Columns of the pass's relation a metering pass carries through to its rows (``compile_policy``).
        self.carry: tuple[str, ...] = ()
        #: The name a caller gave the records of :meth:`pass_records` (a ``WITH`` table), while a metering
        #: query reads them there instead of filtering the file itself.
        self.records_named: str | None = None

    def _relation(self, stack: ExitStack, file: Path, attrs: list[str]) -> str:
        changes = ", ".join(f"{expr} AS {DUCKDB.ident(name)}" for name, expr in self.replace.items())
        select = f"* REPLACE ({changes})" if changes else "*"
        if self.records_named is not None:
            return f"(SELECT {select} FROM {self.records_named}) AS _pass"
        base = self._keyed(super()._relation(stack, file, sorted({*attrs, *self.attrs})))
        return f"(SELECT {select} FROM {base} WHERE {self.where}) AS _pass"

    def pass_records(self, policies: Sequence[Policy], where: str) -> str:
        """SQL for the records a pass keeps (``where``), before its columns are rewritten, with the columns
        every one of ``policies`` reads: a caller names it once (a ``WITH`` table) for several passes over
        the same records (``metering_sql``'s ``records``), so the file is read and filtered once for them."""
        attrs = sorted({a for policy in policies for a in attr_columns(policy)} | set(self.attrs))
        with ExitStack() as stack:
            base = self._keyed(super()._relation(stack, self.source.path, attrs))
        return f"SELECT * FROM {base} WHERE {where}"

    def _keyed(self, base: str) -> str:
        """The relation of the whole file that a pass filters (a subclass may join more to each record)."""
        return base

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
        history = self.history()
        try:
            for fast in (True, False):  # 64-bit integers first, as a pass
                self.fast = fast
                compiled = compile_policy(policy, self.dialect, history)
                formats = fast_trims(compiled.formats)
                checks = dataclasses.replace(compiled, validation=formats, any_duplicate=_NOTHING)
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

    def months_us(self, zone: str, micros: str) -> str:
        """:meth:`months` of an instant given as microseconds since 1970 (a metered record's ``_start``)."""
        return self.months(zone, f"timezone('UTC', make_timestamp({micros}))", micros)

    def months(self, zone: str, moment: str = "started_at", micros: str | None = None) -> str:
        """:func:`month_sql` for this file's records: comparisons with the month boundaries in ``zone`` over
        the file's time range (a time zone conversion per record costs about as much as metering it), and
        :func:`month_sql` itself for a moment outside that range or within three hours of an edge."""
        found = self._months.get(zone)
        if found is None:
            found = self._months[zone] = self._boundaries(zone)
        slow = month_sql(zone, moment)
        if not found:
            return slow
        micros = micros or f"epoch_us({moment})"
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

    def metering_sql(
        self,
        policy: Policy,
        where: str,
        replace: Mapping[str, str],
        columns: Sequence[str],
        records: str | None = None,
    ) -> tuple[str, int] | None:
        """The query :meth:`meter_into` would run, as SQL a caller folds into its own statement (no table in
        between): the records ``where`` keeps, their ``columns`` and ``_error`` (NULL for a good record),
        on 64-bit integers (a value that does not fit raises), and its billable scale. None when the pass
        must run on its own, checked as :meth:`meter_into` checks it: records not checked once up front
        (formats and ids), or a metering query of another shape. The caller reads ``_error`` and, on a bad
        record or an integer past 64 bits, meters the pass with :meth:`meter_into`, which names the record
        or reruns on 128 bits. ``records``: the name the caller gave :meth:`pass_records` of the same
        ``where`` (the query reads the records there)."""
        if self.trusted or not (self.formats_checked and self.ids_checked):
            return None
        self.where, self.replace, self.fast = where, dict(replace), True
        self.records_named = records
        try:
            with ExitStack() as stack:
                relation = self._relation(stack, self.source.path, attr_columns(policy))
                compiled = compile_policy(policy, self.dialect, relation, carry=self.carry)
        finally:
            self.where, self.replace, self.fast = "TRUE", {}, False
            self.records_named = None
        together = _with_errors(compiled.records)
        if together is None:
            return None
        together = fast_trims(_without_formats(together, compiled))
        return f"SELECT {', '.join([*columns, '_error'])} FROM ({together})", compiled.billable_scale

    def _meter_checked(self, table: str, policy: Policy, columns: Sequence[str]) -> int:
        """Meter into ``table`` and check the records in one pass: the metering query keeps each record's
        error code, and only when some record has one (or the query fails) do the engine's validation
        queries run, to name the first bad record as every engine does. (A metering query of another shape
        than the one :func:`_with_errors` knows is validated first, then run.)"""
        import duckdb

        def create(query: str, *extra: str) -> None:
            select = ", ".join([*columns, *extra]) if columns else "*"
            self.connection.execute(
                f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT {select} FROM ({fast_trims(query)})"
            )

        with ExitStack() as stack:
            relation = self._relation(stack, self.source.path, attr_columns(policy))
            compiled = compile_policy(policy, self.dialect, relation, carry=self.carry)
            together = None if self.trusted else _with_errors(compiled.records)
            if together is not None and self.formats_checked:
                together = _without_formats(together, compiled)
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
            self._check_ids(compiled, policy)
            return compiled.billable_scale

    def _check_ids(self, compiled: Compiled, policy: Policy) -> None:
        """The repeated-id query for a pass, unless the file's ids were screened already or the pass's
        screen finds no repeat (the screen is cheap; then the query)."""
        if not self.ids_checked and self._screen_ids(compiled):
            self._validate(dataclasses.replace(compiled, validation=_NO_ROWS), self.source, policy)

    def _check(self, compiled: Compiled, policy: Policy) -> None:
        """The engine's validation (the repeated-id query only while ids are not checked)."""
        checks = dataclasses.replace(compiled, any_duplicate=_NOTHING) if self.ids_checked else compiled
        self._validate(checks, self.source, policy)

    def arrow_columns(self, sql: str) -> dict[str, list[Any]]:
        """The query's result fetched as Arrow, column by column as Python lists."""
        table = self.connection.sql(sql).to_arrow_table()
        return {name: table.column(name).to_pylist() for name in table.column_names}


def _without_formats(query: str, compiled: Compiled) -> str:
    """``query`` (over the compiled source layer) without the record-format checks (their SQL as
    :attr:`Compiled.formats` names it), when they were made once for the whole file: they read every column,
    about a quarter of a metering query. Unchanged when the checks are not found once, as written there."""
    head, tail = "WITH _src AS (SELECT *, ", " AS _err_fmt FROM ("
    formats = compiled.formats
    if not formats.startswith(head) or tail not in formats:
        return query
    checks = formats[len(head) : formats.index(tail)] + tail
    if query.count(checks) != 1:
        return query
    return query.replace(checks, f"CAST(NULL AS VARCHAR){tail}")


def _with_errors(records: str) -> str | None:
    """The compiled metering query with each record's error code (``_error``, NULL for a good record) as one
    more column and in no order; None when the query does not end the way this expects."""
    if not records.endswith(_RECORDS_TAIL):
        return None
    return records[: -len(_RECORDS_TAIL)] + ", _error FROM _final"


def _trimmed(column: str) -> str:
    """DuckDB's trim of a text column (``DUCKDB.trim``), with a fast path: a value of printable ASCII
    that starts with no space and ends with none is its own trim (TRIM strips spaces and Unicode space
    separators only). On ids and session keys, each distinct, TRIM cost about five times the check."""
    x = DUCKDB.ident(column)
    return (
        f"(CASE WHEN {x} >= '!' AND {x} < chr(127) AND {x} NOT LIKE '% ' AND strlen({x}) = length({x}) "
        f"THEN {x} ELSE {DUCKDB.trim.format(x=x)} END)"
    )


#: The compiled source layer's trims of the columns with a value per record, and their fast spellings.
_FAST_TRIMS: Final = {
    f"{DUCKDB.trim.format(x=DUCKDB.ident('id'))} AS id": f"{_trimmed('id')} AS id",
    f"{DUCKDB.trim.format(x=DUCKDB.ident('session'))} AS {DUCKDB.ident('session')}": (
        f"{_trimmed('session')} AS {DUCKDB.ident('session')}"
    ),
}


def fast_trims(query: str) -> str:
    """``query`` (compiled) with the fast trims of ids and session keys (:func:`_trimmed`): the same values,
    at a fifth of the cost on 10M records."""
    for slow, fast in _FAST_TRIMS.items():
        query = query.replace(slow, fast)
    return query
