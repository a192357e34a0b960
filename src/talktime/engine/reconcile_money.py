"""Reconciliation in money on DuckDB: each line's amounts and price difference, the inferred rate, the totals.

Owns: the SQL for the amounts of ``talktime.core.reconcile.money`` (whose Python functions are the
reference these must equal, line by line). Every amount is an exact integer numerator over one common
denominator ``D = unit_seconds * 10**k`` (HUGEINT): a price per unit with ``pk`` places times seconds at
``10**-g`` is ``seconds * price * 10**(k - g - pk) / D``, a statement amount (10 places) is
``amount * 10**10 * unit_seconds * 10**(k - 10) / D``. Flags compare exact numerators; an amount is written
half-even to 12 places; totals are sums of numerators, divided once.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import duckdb

from talktime.core.decimals import text
from talktime.core.rating.cards import RateCardError
from talktime.core.reconcile.model import CAUSES, MONEY_COLUMNS
from talktime.core.reconcile.money import AMOUNT_PLACES, Pricing, modal_rate
from talktime.errors import StatementError


def _int(value: Decimal, places: int) -> int:
    return int(value.scaleb(places))


def _places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def _micros(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


@dataclass(frozen=True, slots=True)
class MoneyPlan:
    """The constants of one reconciliation's money SQL."""

    pricing: Pricing
    g: int
    tolerance: Decimal
    places: int | None

    @property
    def pk(self) -> int:
        return max(_places(p) for v in self.pricing.versions for p in (v.unit_price, v.fee))

    @property
    def k(self) -> int:
        return max(self.g + self.pk, 10, _places(self.tolerance))

    @property
    def u(self) -> int:
        return self.pricing.unit_seconds

    @property
    def denominator(self) -> int:
        return int(self.u * 10**self.k)

    def by_version(self, value: str) -> str:
        """A CASE picking each version's ``value`` (``unit_price`` or ``fee``, as an integer at ``pk``)
        by the row's ``_when`` (epoch microseconds); null before the first version."""
        arms = " ".join(
            f"WHEN _when >= {_micros(v.effective_from)} "
            f"THEN CAST({_int(getattr(v, value), self.pk)} AS HUGEINT)"
            for v in reversed(self.pricing.versions)
        )
        return f"(CASE {arms} END)"

    def priced(self, seconds: str) -> str:
        """Numerator of ``seconds`` (integers at ``10**-g``) at the row's unit price (no fee)."""
        return f"(CAST({seconds} AS HUGEINT) * _pn * {10 ** (self.k - self.g - self.pk)})"

    def written(self, numerator: str) -> str:
        """A numerator as DECIMAL(38, 12), half-even (the written form of :func:`money.written`)."""
        if self.k >= AMOUNT_PLACES:
            scaled, den = f"ABS({numerator})", self.u * 10 ** (self.k - AMOUNT_PLACES)
        else:
            scaled, den = f"ABS({numerator}) * {10 ** (AMOUNT_PLACES - self.k)}", self.u
        q, r = f"({scaled} // {den})", f"({scaled} % {den})"
        up = f"(CASE WHEN 2 * {r} > {den} OR (2 * {r} = {den} AND {q} % 2 = 1) THEN 1 ELSE 0 END)"
        sign = f"(CASE WHEN {numerator} < 0 THEN -1 ELSE 1 END)"
        unit = f"CAST('1e-{AMOUNT_PLACES}' AS DECIMAL(13, {AMOUNT_PLACES}))"
        return f"CAST({sign} * ({q} + {up}) AS DECIMAL(38, 0)) * {unit}"


def statement_facts(con: duckdb.DuckDBPyConnection) -> tuple[int | None, list[str]]:
    """The statement's amount precision (most places written) and its currencies."""
    places = con.execute("SELECT MAX(amount_places) FROM lines WHERE amount IS NOT NULL").fetchall()[0][0]
    query = "SELECT DISTINCT currency FROM lines WHERE currency IS NOT NULL AND amount IS NOT NULL ORDER BY 1"
    currencies = [str(c) for (c,) in con.execute(query).fetchall()]
    return (None if places is None else int(places)), currencies


def infer(
    con: duckdb.DuckDBPyConnection, g: int, unit: str, unit_seconds: int, places: int
) -> Pricing | None:
    """The most common per-unit rate of the priced lines (``ln``: amount, billed ``P`` at ``10**-g``):
    each line's rate as :func:`money.line_rate` rounds it, counted in SQL, picked by :func:`money.modal_rate`.
    """
    num = f"CAST(amount * 10000000000 AS HUGEINT) * {unit_seconds} * {10 ** (places + g)}"
    den = "CAST(P AS HUGEINT) * 10000000000"
    q, r = f"({num} // ({den}))", f"({num} % ({den}))"
    rate = f"{q} + (CASE WHEN 2 * {r} > {den} OR (2 * {r} = {den} AND {q} % 2 = 1) THEN 1 ELSE 0 END)"
    rows = con.execute(
        f"SELECT {rate} AS r, COUNT(*) FROM ln WHERE amount IS NOT NULL AND amount >= 0 AND P > 0 GROUP BY r"
    ).fetchall()
    counts = Counter({Decimal(int(r)).scaleb(-places): int(n) for r, n in rows})
    return modal_rate(counts, unit, unit_seconds, places)


def money_select(plan: MoneyPlan, base: str) -> str:
    """The report lines of ``base`` (the seconds report with ``_when`` and ``_rec``) with their amounts."""
    fee = f"_fn * {plan.u * 10 ** (plan.k - plan.pk)}"
    amount = f"CAST(amount * 10000000000 AS HUGEINT) * {plan.u * 10 ** (plan.k - 10)}"
    tol = _int(plan.tolerance, plan.k) * plan.u
    cause_sums = ", ".join(f"{plan.priced(c)} AS _m_{c}" for c in (*CAUSES, "unexplained"))
    return f"""
    WITH v AS (
        SELECT *, {plan.by_version("unit_price")} AS _pn, {plan.by_version("fee")} AS _fn FROM ({base})
    ),
    n AS (
        SELECT *,
               CASE WHEN line IS NULL THEN 0 ELSE GREATEST({fee}, {plan.priced("provider")}) END AS _due_n,
               CASE WHEN _rec IS NULL THEN 0 ELSE GREATEST({fee}, {plan.priced("expected")}) END AS _exp_n,
               {amount} AS _amt_n, {plan.priced("internal")} AS _int_n, {plan.priced("provider")} AS _use_n,
               {cause_sums}
        FROM v
    ),
    p AS (
        SELECT *, _amt_n - _due_n AS _price_n, COALESCE(ABS(_amt_n - _due_n) > {tol}, FALSE) AS _pflag FROM n
    )
    SELECT CASE WHEN class = 'matched' AND _pflag THEN 'mispriced' ELSE class END AS class,
           line, provider_id, record_id, internal, expected, provider,
           {", ".join(CAUSES)}, unexplained, flagged OR _pflag AS flagged,
           concat_ws(' ', CASE WHEN flagged THEN 'seconds' END, CASE WHEN _pflag THEN 'price' END) AS flags,
           amount, {plan.written("_due_n")} AS due, {plan.written("_exp_n")} AS expected_amount,
           CASE WHEN amount IS NOT NULL THEN {plan.written("_price_n")} END AS price,
           CAST(_pn AS DECIMAL(38, 0)) * CAST('1e-{plan.pk}' AS DECIMAL(38, {plan.pk})) AS rate,
           _rec, _pn IS NULL AS _unpriceable, _when, _due_n, _exp_n, _amt_n, _price_n, _pflag, _int_n, _use_n,
           {", ".join(f"_m_{c}" for c in (*CAUSES, "unexplained"))}
    FROM p"""


def no_money_select(base: str) -> str:
    """The report lines of ``base`` with empty amounts (no rate: no card, no ``--rate``, no amounts)."""
    return f"""
    SELECT class, line, provider_id, record_id, internal, expected, provider, {", ".join(CAUSES)},
           unexplained, flagged, CASE WHEN flagged THEN 'seconds' ELSE '' END AS flags, amount,
           {", ".join(f"CAST(NULL AS DECIMAL(38, {AMOUNT_PLACES})) AS {c}" for c in MONEY_COLUMNS)}, _rec
    FROM ({base})"""


def check_priceable(con: duckdb.DuckDBPyConnection, plan: MoneyPlan) -> None:
    """A line (or record) older than the first price is an error naming it."""
    row = con.execute(
        "SELECT line, record_id, _when FROM classed WHERE _unpriceable ORDER BY line NULLS LAST LIMIT 1"
    ).fetchall()
    if row:
        line, record, when = row[0]
        what = f"statement line {line}" if line is not None else f"record {record!r}"
        first = plan.pricing.versions[0].effective_from.date().isoformat()
        moment = datetime.fromtimestamp(int(when) // 1_000_000, UTC).date().isoformat()
        raise RateCardError(
            f"{what} started {moment}, before {plan.pricing.label} has a price (from {first})"
        )


def check_currency(pricing: Pricing | None, currencies: list[str]) -> None:
    if len(currencies) > 1:
        raise StatementError(
            [
                f"the statement has amounts in {len(currencies)} currencies ({', '.join(currencies)}): "
                "reconcile one currency at a time"
            ]
        )
    if pricing is not None and pricing.currency and currencies and currencies[0] != pricing.currency:
        raise RateCardError(
            f"{pricing.label} prices in {pricing.currency}, the statement is in {currencies[0]} (no FX here)"
        )


def money_summary(con: duckdb.DuckDBPyConnection, plan: MoneyPlan, currency: str | None) -> dict[str, Any]:
    """Totals of the money columns of ``classed``: exact sums of numerators, each written at 12 places."""
    from fractions import Fraction

    from talktime.core.reconcile.money import written

    names = ("_amt_n", "_due_n", "_exp_n", "_price_n", "_int_n", "_use_n")
    causes = tuple(f"_m_{c}" for c in (*CAUSES, "unexplained"))
    row = con.execute(
        f"""SELECT {", ".join(f"SUM({c})" for c in (*names, *causes))},
                   SUM(_due_n) FILTER (amount IS NULL AND line IS NOT NULL),
                   COUNT(*) FILTER (amount IS NOT NULL),
                   COUNT(*) FILTER (amount IS NULL AND line IS NOT NULL),
                   COUNT(*) FILTER (_pflag)
            FROM classed"""
    ).fetchall()[0]

    def amount(value: object) -> Fraction:
        return Fraction(int(value or 0), plan.denominator)  # type: ignore[call-overload]

    statement, due, expected, price, internal, usage = (amount(v) for v in row[: len(names)])
    by_cause = {
        c[3:]: amount(v) for c, v in zip(causes, row[len(names) : len(names) + len(causes)], strict=True)
    }
    unpriced_due = amount(row[-4])
    provider = statement + unpriced_due
    unexplained = by_cause.pop("unexplained")
    parts = {**by_cause, "price": price, "attempt_fees": due - usage}

    def out(value: Fraction) -> str:
        return text(written(value))

    return {
        "currency": currency or plan.pricing.currency,
        "rate_source": plan.pricing.source,
        "pricing": plan.pricing.label,
        "rates": plan.pricing.as_dict(),
        "rate_per_unit": plan.pricing.describe(),
        "places": plan.places,
        "tolerance": text(plan.tolerance),
        "priced_lines": int(row[-3] or 0),
        "unpriced_lines": int(row[-2] or 0),
        "price_flagged_lines": int(row[-1] or 0),
        "statement_amount": out(statement),
        "provider_amount": out(provider),
        "due_amount": out(due),
        "expected_amount": out(expected),
        "internal_amount": out(internal),
        "gap_amount": out(provider - internal),
        "causes": {k: out(v) for k, v in parts.items()},
        "unexplained_amount": out(unexplained),
    }
