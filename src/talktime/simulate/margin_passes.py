"""The margin report's passes: every session numbered once, and each pass's records metered with their
session's number (or key), so no pass joins its metered records back to their calls.

Owns: the sessions table (``_sessions``: each session's customer ``c``, key ``k``, first start ``st``,
number ``sid`` in order of its first start, period in its customer's zone, and whether its records fall in
two cost months ``cf`` or two customer months ``pf``), and the relation a margin pass meters: the records
its ``where`` keeps, each joined to its session (a hash join whose build side is the sessions, not the
records) with the session's code carried in ``_row``. Does not own: metering (``talktime.engine``), which
records an entry takes (``card_sql.py``) or rating (``margin_run.py``, ``margin_grouped.py``).

``_row`` in a pass is ``code x stride + row``: ``row`` the record's row in the file (1-based, below
``stride``), ``code`` = ``sid x 4 + 2 cf + pf``. The compiled metering query passes ``_row`` through untouched
(it only orders by it), so the metered table has each record's session without a join. When a pass finds a
bad record, the pass is compiled again over the file's own rows, so the error names the first bad record in
file order, as every engine does.

Rows added up per customer or period need no session order: there (``numbered=False``) a session's number
is its key's 64-bit hash (``sid = h``), which each pass computes from the record itself and carries through
the metering as ``_key``: no pass joins the sessions at all (the join was about half of a pass), ``_row``
stays the file's row, and the sessions are not sorted. When two sessions of the file share a hash, the
sessions are numbered as above instead.

Checks: the reference reads every record before rating any, so every record's format is checked once up
front and every id screened once (:meth:`SessionPasses.check_records`); the passes then leave the format
checks out of their metering queries (a quarter of each).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from math import isqrt
from typing import Any, Final

from talktime.core.metering.policy import Policy
from talktime.core.rating.cards import PriceCard
from talktime.core.rating.margin import NO_CUSTOMER
from talktime.engine.compile import Compiled, attr_columns, compile_policy
from talktime.engine.sources import Scannable
from talktime.errors import InputError
from talktime.simulate.card_sql import lit
from talktime.simulate.pass_engine import Passes

#: A record's customer and session key as the margin report reads them.
CUSTOMER: Final = f"COALESCE(NULLIF(customer, ''), {lit(NO_CUSTOMER)})"
SESSION: Final = "COALESCE(session, 'record:' || id)"
#: A session's join key: a 64-bit hash of its customer and key (a pass joins or groups by it more cheaply
#: than by two strings), or both, when two sessions of the file share a hash.
_HASH: Final = "hash({c}, {k})"  # of a customer and a key (SQL), as str.format fills it in
_BOTH: Final = f"struct_pack(c := {CUSTOMER}, k := {SESSION})"
#: Codes per session: sid x 4 + 2 x (in two cost months) + (in two customer months).
_CODES: Final = 4
#: The most records a history may have: ``_row`` (below 4 x stride^2) must fit 63 bits.
MOST_RECORDS: Final = isqrt((2**63 - 1) // _CODES) - 1


class SessionPasses(Passes):
    """:class:`Passes` over the sessions of one file: once :meth:`number_sessions` has run, each pass's
    relation joins every record to its session and carries the session's code in ``_row``."""

    def __init__(self, source: Scannable, attrs: Sequence[str] = ()) -> None:
        super().__init__(source, attrs)
        self.key = _HASH.format(c=CUSTOMER, k=SESSION)
        #: Rows per session code (the file's records + 1); 0 until the sessions are numbered, and when
        #: each session's number is its key's hash.
        self.stride = 0
        #: Each session's number is its key's hash, carried by each pass as ``_key``.
        self.hashed = False

    # --- the sessions

    def number_sessions(self, cost_zone: str, prices: PriceCard, *, numbered: bool = True) -> None:
        """Build ``_sessions``: every session in order of its first start (then customer and key), its
        period in its customer's zone and whether its records fall in two cost months (``cost_zone``) or
        two customer months. Not ``numbered``: each session's number is its key's hash (unless two share
        one), and only its customer, key and period are kept."""
        # Grouped by the customer and key themselves (cheaper than by their hash with a clash check on the
        # strings); two sessions share a hash when there are fewer hashes than sessions.
        self.fetch(
            f"CREATE OR REPLACE TEMP TABLE _spans AS SELECT {_HASH.format(c='c', k='k')} AS h, * FROM "
            f"(SELECT {CUSTOMER} AS c, {SESSION} AS k, min(started_at) AS st, max(started_at) AS la, "
            f"count(*) AS n FROM {self.history()} GROUP BY c, k)"
        )
        self.key = _HASH.format(c=CUSTOMER, k=SESSION)
        if self.fetch("SELECT count(DISTINCT h) < count(*) FROM _spans")[0][0]:  # by the keys, then
            self.key = _BOTH
            self.fetch(
                "CREATE OR REPLACE TEMP TABLE _spans AS SELECT struct_pack(c := c, k := k) AS h, "
                "* EXCLUDE (h) FROM _spans"
            )
        customers = [str(c) for (c,) in self.fetch("SELECT DISTINCT c FROM _spans")]
        if not numbered and self.key != _BOTH:
            period = self.customer_months(prices, customers, "st", "c")
            self.fetch(
                f"CREATE OR REPLACE TEMP TABLE _sessions AS SELECT h, c, k, st, h AS sid, {period} AS period "
                "FROM _spans"
            )
            self.fetch("DROP TABLE _spans")
            self.hashed, self.stride, self.carry = True, 0, ("_key",)
            return
        cost = [self.months(cost_zone, m) for m in ("st", "la")]
        own = [self.customer_months(prices, customers, m, "c") for m in ("st", "la")]
        self.fetch(
            "CREATE OR REPLACE TEMP TABLE _sessions AS SELECT *, "
            f"sid * {_CODES} + CASE WHEN cf THEN 2 ELSE 0 END + CASE WHEN pf THEN 1 ELSE 0 END AS code "
            "FROM (SELECT h, c, k, st, row_number() OVER (ORDER BY st, c, k) - 1 AS sid, "
            f"{own[0]} AS period, {cost[0]} <> {cost[1]} AS cf, {own[0]} <> {own[1]} AS pf FROM _spans)"
        )
        (records,) = self.fetch("SELECT COALESCE(sum(n), 0) FROM _spans")[0]
        self.fetch("DROP TABLE _spans")
        if int(records) > MOST_RECORDS:
            raise InputError(
                f"the vectorised margin meters at most {MOST_RECORDS:,} records (a pass's row numbers "
                f"hold the session's); this history has {int(records):,}: use --engine reference"
            )
        self.stride = int(records) + 1

    def sid_sql(self, row: str = "_row") -> str:
        """SQL for the session number of a metered record (its ``row``; numbered sessions)."""
        return f"({row} // {_CODES * self.stride})"

    def session_sql(self, alias: str) -> str:
        """SQL for the session number of a metered record (``alias``: its table)."""
        return f"{alias}._key" if self.hashed else self.sid_sql(f"{alias}._row")

    def file_row_sql(self, row: str) -> str:
        """SQL for the file row of a metered record (its ``row``)."""
        return f"({row} % {self.stride})" if self.stride else row

    def late_sql(self, side: str, row: str = "_row") -> str:
        """SQL true for a metered record whose session falls in two cost months (``side`` ``cost``) or two
        customer months (``price``)."""
        bit = 2 if side == "cost" else 1
        return f"(({row} // {bit * self.stride}) % 2 = 1)"

    def session_of(self, relation: str) -> str:
        """``relation`` (with the record columns) joined to its sessions: every column and ``sid`` (the
        key's hash needs no join)."""
        if self.hashed:
            return f"(SELECT *, {self.key} AS sid FROM {relation} AS _r)"
        return f"(SELECT _r.*, _s.sid FROM {relation} AS _r JOIN _sessions AS _s ON _s.h = {self.key})"

    def fetch(self, sql: str) -> list[Any]:
        return self.connection.execute(sql).fetchall()

    # --- a pass's relation

    def _keyed(self, base: str) -> str:
        if self.hashed:
            return f"(SELECT *, {self.key} AS _key FROM {base}) AS _keyed"
        if not self.stride:
            return base
        row = f"_s.code * {self.stride} + _r._row"
        return (
            f"(SELECT _r.* REPLACE ({row} AS _row) FROM (SELECT * FROM {base}) AS _r "
            f"JOIN _sessions AS _s ON _s.h = {self.key}) AS _keyed"
        )

    # --- checks

    def check_records(self, policy: Policy) -> None:
        """Every record's format and every id once (the reference reads every record before rating any);
        then the passes leave the format checks out."""
        self.check_formats(policy)
        self.formats_checked = True
        self.screen_ids(policy)

    def _plain(self, policy: Policy) -> Compiled:
        """The pass compiled over the file's own rows: its validation names the first bad record in file
        order."""
        stride, self.stride = self.stride, 0
        try:
            with ExitStack() as stack:
                relation = self._relation(stack, self.source.path, attr_columns(policy))
                return compile_policy(policy, self.dialect, relation)
        finally:
            self.stride = stride

    def _check(self, compiled: Compiled, policy: Policy) -> None:
        super()._check(self._plain(policy) if self.stride else compiled, policy)

    def _check_ids(self, compiled: Compiled, policy: Policy) -> None:
        if not self.stride:
            super()._check_ids(compiled, policy)
        elif not self.ids_checked and self._screen_ids(compiled):
            super()._check(self._plain(policy), policy)  # no bad record: its repeated id, if any
