"""``reconcile``: a provider statement against our records (a file or a store), every second and every
cent of the gap on a cause.

Options come as the user wrote them or as values: a number given as text is checked here (a
non-negative number of seconds, a non-negative amount), with the same words for every face. A line is
priced by a cost card's entry for the profile, or by a given rate, or else by the statement's most common
rate (named as inferred).
"""

from __future__ import annotations

import tempfile
from contextlib import ExitStack
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING

from talktime.app.history import HistorySource, named_at_store, require_one, stored_records
from talktime.core.rating.cards import CostCard
from talktime.errors import InputError

if TYPE_CHECKING:
    from talktime.core.metering.policy import Policy
    from talktime.engine.reconcile import Result


def amount(value: str | Decimal, name: str, what: str) -> Decimal:
    """``value`` as a non-negative finite Decimal; ``what`` is its kind with an article ("an amount")."""
    try:
        parsed = Decimal(value)
    except InvalidOperation:
        raise InputError(f"{name} {value!r}: not {what}") from None
    if not parsed.is_finite() or parsed < 0:
        raise InputError(f"{name} {value!r}: must be a non-negative {what.split(' ', 1)[1]}")
    return parsed


def seconds(value: str | Decimal, name: str) -> Decimal:
    """``value`` as a non-negative finite number of seconds."""
    return amount(value, name, "a number of seconds")


def reconcile(
    provider: str | Policy,
    statement: Path,
    history: HistorySource,
    *,
    source: str | None = None,
    mapping: Path | None = None,
    tolerance: str | Decimal = "1",
    window: str | Decimal = "5",
    delay: str | Decimal = "300",
    tally: str = "tally",
    costs: Path | CostCard | None = None,
    cost_entry: str | None = None,
    rate: str | Decimal | None = None,
    money_tolerance: str | Decimal | None = None,
) -> Result:
    """Match ``statement`` (an export of type ``source``, detected when None; a generic CSV read by
    ``mapping``) to the history metered by ``provider``. ``tally``: ``tally`` (our own count) or ``profile``
    (our metering). Flagged lines are in ``result.summary.flagged_lines``."""
    import pyarrow.parquet as pq

    from talktime.app.cards import cost_card
    from talktime.app.methodology import policy as load_policy
    from talktime.core.reconcile.model import Options
    from talktime.core.reconcile.money import card_pricing, given_rate
    from talktime.engine.compile import attr_columns
    from talktime.engine.reconcile import PROVIDER_ID
    from talktime.engine.reconcile import reconcile as run
    from talktime.engine.sources import canonical_parquet
    from talktime.importers import read_statement
    from talktime.io.records_io import BeyondTypedLayout, write_records

    require_one(history)
    if tally not in ("tally", "profile"):
        raise InputError(f"--tally {tally!r}: must be tally or profile")
    options = Options(
        tolerance_seconds=seconds(tolerance, "--tolerance"),
        window_seconds=seconds(window, "--window"),
        delay_seconds=seconds(delay, "--delay"),
        tally="profile" if tally == "profile" else "tally",
        money_tolerance=(
            None if money_tolerance is None else amount(money_tolerance, "--money-tolerance", "an amount")
        ),
    )
    policy = load_policy(provider)
    if costs is not None and rate is not None:
        raise InputError("give --costs CARD or --rate PRICE, not both")
    if cost_entry is not None and costs is None:
        raise InputError("--cost-entry names an entry of --costs CARD: give the card")
    if costs is not None:
        pricing = card_pricing(cost_card(costs), policy.id, cost_entry)
        options = replace(options, pricing=pricing)
    elif rate is not None:
        unit_price = amount(rate, "--rate", "a price")
        options = replace(options, pricing=given_rate(unit_price, policy.unit, policy.unit_seconds))
    lines = read_statement(statement, source, mapping)
    with ExitStack() as stack:
        records = history.records
        if history.store is not None:  # the store's records, through the same file path as --records
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="talktime-rec-")))
            records = folder / "history.parquet"
            write_records(records, stored_records(history.store, history.tenant))
        assert records is not None
        if not records.is_file():
            raise InputError(f"{records}: no such file")
        attrs = sorted({*attr_columns(policy), PROVIDER_ID})
        try:
            scanned = stack.enter_context(canonical_parquet(records, attrs))
        except BeyondTypedLayout as error:
            hint = "reconcile matches on DuckDB alone; correct the record to reconcile"
            raise named_at_store(error, history).hinted(hint) from None
        table = pq.read_table(scanned.path)
        if "_line" in table.column_names:
            table = table.drop(["_line"])
        return run(table, lines, policy, options, where=scanned.where)
