"""``statements``: provider statements a face reconciles against a record file it already holds (the
dashboard's ``--statement``), each exactly as ``talktime reconcile`` would, and what a page needs beside the
result: the flagged lines as report lines, and the call each line's record belongs to.

A statement is given as ``PROFILE=FILE`` with ``talktime reconcile``'s options after it, comma-separated
(``twilio-voice=calls.csv,money-tolerance=0.001``); every value is checked when it is given, in the same
words as the command. A line is priced by the face's cost card when the card has an entry for the profile
(``cost-entry=ID`` names one), by ``rate=PRICE``, or, with ``rate=inferred``, by the statement's most common
rate; every result names where its rate came from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from talktime.app.history import HistorySource
from talktime.app.methodology import policy as load_policy
from talktime.app.reconcile import amount, reconcile, seconds
from talktime.errors import InputError, TalktimeError

if TYPE_CHECKING:
    from talktime.core.rating.cards import CostCard
    from talktime.core.reconcile.model import Summary
    from talktime.engine.reconcile import Result

__all__ = [
    "STATEMENT_HELP",
    "StatementReport",
    "StatementSpec",
    "call_keys",
    "parse_statement",
    "parse_statements",
    "reconcile_statement",
    "statement_report",
]

#: The options a statement may carry: ``talktime reconcile``'s, without their dashes.
KEYS: Final = (
    "source",
    "mapping",
    "tolerance",
    "window",
    "delay",
    "tally",
    "rate",
    "cost-entry",
    "money-tolerance",
)
STATEMENT_HELP: Final = (
    "A provider statement to reconcile: PROFILE=FILE, then talktime reconcile's options comma-separated "
    "(source=, mapping=, tolerance=, window=, delay=, tally=, rate=PRICE|inferred, cost-entry=, "
    "money-tolerance=); priced by --costs when it has an entry for the profile. Repeatable."
)
_OPTION: Final = re.compile(r"^([a-z][a-z-]*)=(.*)$", re.S)


@dataclass(frozen=True, slots=True)
class StatementSpec:
    """One statement to reconcile and ``talktime reconcile``'s options for it (None: the default)."""

    provider: str
    file: Path
    source: str | None = None
    mapping: Path | None = None
    tolerance: str = "1"
    window: str = "5"
    delay: str = "300"
    tally: str = "tally"
    rate: str | None = None  # a price per profile unit, or "inferred"
    cost_entry: str | None = None
    money_tolerance: str | None = None

    @property
    def label(self) -> str:
        """How a page names it: the profile and the file's name."""
        return f"{self.provider}: {self.file.name}"


def parse_statement(text: str, option: str = "--statement") -> StatementSpec:
    """``PROFILE=FILE[,key=value...]`` as a :class:`StatementSpec`; an error names ``option``, the text and
    what is wrong with it.

    >>> parse_statement("calls.csv")
    Traceback (most recent call last):
    talktime.errors.InputError: --statement 'calls.csv': give PROFILE=FILE, e.g. twilio-voice=twilio-calls.csv
    """
    where = f"{option} {text!r}"
    provider, equals, rest = text.partition("=")
    if not equals or not provider.strip() or not rest:
        raise InputError(f"{where}: give PROFILE=FILE, e.g. twilio-voice=twilio-calls.csv")
    parts = rest.split(",")
    options: dict[str, str] = {}
    while len(parts) > 1:  # options are at the end; the rest (commas and all) is the file's name
        found = _OPTION.match(parts[-1])
        if found is None:
            break
        key, value = found.groups()
        if key not in KEYS:
            raise InputError(f"{where}: unknown option {key!r} (options: {', '.join(KEYS)})")
        if key in options:
            raise InputError(f"{where}: {key} given twice")
        options[key] = value
        parts.pop()
    try:
        load_policy(provider.strip())
    except TalktimeError as error:
        raise InputError(f"{where}: {error}") from None
    file = Path(",".join(parts))
    if not file.is_file():
        raise InputError(f"{where}: {file}: no such file")
    mapping = Path(options["mapping"]) if "mapping" in options else None
    if mapping is not None and not mapping.is_file():
        raise InputError(f"{where}: mapping {mapping}: no such file")
    for key in ("tolerance", "window", "delay"):
        if key in options:
            seconds(options[key], f"{where}: {key}")
    if options.get("money-tolerance") is not None:
        amount(options["money-tolerance"], f"{where}: money-tolerance", "an amount")
    rate = options.get("rate")
    if rate is not None and rate != "inferred":
        amount(rate, f"{where}: rate", "a price")
    if rate is not None and "cost-entry" in options:
        raise InputError(f"{where}: give rate= or cost-entry=, not both")
    if options.get("tally", "tally") not in ("tally", "profile"):
        raise InputError(f"{where}: tally {options['tally']!r}: must be tally or profile")
    return StatementSpec(
        provider.strip(),
        file,
        source=options.get("source"),
        mapping=mapping,
        tolerance=options.get("tolerance", "1"),
        window=options.get("window", "5"),
        delay=options.get("delay", "300"),
        tally=options.get("tally", "tally"),
        rate=rate,
        cost_entry=options.get("cost-entry"),
        money_tolerance=options.get("money-tolerance"),
    )


def parse_statements(
    texts: list[str] | tuple[str, ...], option: str = "--statement"
) -> tuple[StatementSpec, ...]:
    """Every statement given, in order (see :func:`parse_statement`)."""
    return tuple(parse_statement(text, option) for text in texts)


def reconcile_statement(spec: StatementSpec, records: Path, costs: Path | CostCard) -> Result:
    """``talktime reconcile`` of ``spec`` against the record file ``records``, the lines priced by ``costs``
    (its entry for the profile) unless the spec gives a rate."""
    by_card = spec.rate is None
    return reconcile(
        spec.provider,
        spec.file,
        HistorySource(records),
        source=spec.source,
        mapping=spec.mapping,
        tolerance=spec.tolerance,
        window=spec.window,
        delay=spec.delay,
        tally=spec.tally,
        costs=costs if by_card else None,
        cost_entry=spec.cost_entry,
        rate=spec.rate if spec.rate not in (None, "inferred") else None,
        money_tolerance=spec.money_tolerance,
    )


@dataclass(frozen=True, slots=True)
class StatementReport:
    """A reconciled statement as a page shows it: the summary, the flagged lines as report lines (every
    number exact, as text; ``talktime reconcile --format json``'s ``lines``), how many lines there were,
    and the call of each flagged line's record (customer, session) when the records hold it."""

    spec: StatementSpec
    summary: Summary
    flagged: list[dict[str, Any]]
    lines: int
    calls: dict[str, tuple[str, str]]

    @property
    def money_causes(self) -> dict[str, Decimal]:
        """Each cause's amount (the seconds causes at the rate, then ``unexplained``, ``price`` and
        ``attempt_fees``); empty without a rate."""
        money = self.summary.money
        if money is None:
            return {}
        found = {cause: Decimal(value) for cause, value in money["causes"].items()}
        extra = {key: found.pop(key) for key in ("price", "attempt_fees") if key in found}
        return {**found, "unexplained": Decimal(money["unexplained_amount"]), **extra}


def statement_report(spec: StatementSpec, records: Path, costs: Path | CostCard) -> StatementReport:
    """:func:`reconcile_statement` with the flagged lines and the calls of their records."""
    import pyarrow.compute

    from talktime.core.reconcile.render import line_dicts

    pc: Any = pyarrow.compute  # its stubs type these calls over chunked arrays too narrowly

    result = reconcile_statement(spec, records, costs)
    table = result.lines
    flagged = table.filter(pc.fill_null(table.column("flagged"), False))
    rows = line_dicts(flagged.to_pylist(), result.scale)
    ids = {str(row["record_id"]) for row in rows if row["record_id"]}
    return StatementReport(spec, result.summary, rows, table.num_rows, call_keys(records, ids))


def call_keys(records: Path, ids: set[str]) -> dict[str, tuple[str, str]]:
    """The call (customer, session), keyed as the margin report keys it, of each record of ``ids`` that the
    Parquet file ``records`` holds."""
    import pyarrow as pa
    import pyarrow.compute
    import pyarrow.parquet as pq

    from talktime.core.rating.margin import NO_CUSTOMER

    if not ids:
        return {}
    pc: Any = pyarrow.compute
    table = pq.read_table(records, columns=["id", "customer", "session"])
    chosen = table.filter(pc.is_in(table.column("id"), value_set=pa.array(sorted(ids), pa.string())))
    found: dict[str, tuple[str, str]] = {}
    for row in chosen.to_pylist():
        rid = str(row["id"])
        customer = row["customer"] or NO_CUSTOMER
        found.setdefault(rid, (str(customer), str(row["session"] or f"record:{rid}")))
    return found
