"""``margin``: each call's cost stack (telephony, STT, LLM, TTS, platform), price and margin, by call or
added up per customer month, period or provider.

The engine is chosen here: DuckDB (vectorised) or the per-record reference, ``auto`` taking DuckDB unless a
card uses a charge model or a policy it does not handle, or a record has a value DuckDB's typed columns
cannot hold (seconds with more than 6 decimals, an SDK's float; a count past 64 bits), and saying why in a
note; ``--engine duckdb`` refuses such a record, naming it and the field. So are the rules on
records no cost entry takes: named with why the first one is not taken, and refused with ``strict``.

Given "now", the records the plausibility guards hold back (``--guards``, else the safe defaults, as
``talktime invoice`` reads them) are marked on the rows that include them: priced as the card prices them,
and not invoiced until a person accepts or corrects them. A record a person accepted (guards whose limits
carry a store's acceptances: read with ``--store``'s records, or the served dashboard's snapshot's) is not
marked while its acceptance covers its reasons, exactly as the invoices count it, on both engines (DuckDB
re-judges in Python only the few held records that have an acceptance: ``simulate.margin_held``).
"""

from __future__ import annotations

import gc
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from talktime.app.cards import cost_card, required_price_card
from talktime.app.guards import limits_of
from talktime.app.history import HistorySource, accepted_of, named_at_store, records_of, require_one
from talktime.errors import InputError

if TYPE_CHECKING:  # the domain modules load when a use case runs, so `talktime meter` starts quickly
    from talktime.app.calls import CallMargins
    from talktime.core.plausibility import Accepted, Guards
    from talktime.core.rating.cards import CostCard, PriceCard
    from talktime.core.rating.margin import Guard, MarginView
    from talktime.core.rating.margin import MarginReport as CoreMarginReport
    from talktime.core.records import UsageRecord


class MarginBy(StrEnum):
    customer = "customer"
    provider = "provider"
    period = "period"
    session = "session"


#: What ``--engine duckdb`` says of a record its typed columns cannot hold.
REFERENCE_HINT = "--engine reference (or auto, the default) rates it exactly"


class MarginEngine(StrEnum):
    auto = "auto"
    duckdb = "duckdb"
    reference = "reference"


@dataclass(frozen=True, slots=True)
class MarginReport:
    """The margin rows, and why no cost entry takes the first uncosted record ("" when all are costed);
    ``placeholder_modality``: the modality each cost entry with placeholder prices prices (a face marks that
    modality's cost on a row those entries price)."""

    view: MarginView
    miss: str
    placeholder_modality: Mapping[str, str] = field(default_factory=dict)


def margin(
    history: HistorySource,
    costs: Path | CostCard,
    prices: Path | PriceCard,
    *,
    by: MarginBy = MarginBy.customer,
    engine: MarginEngine = MarginEngine.auto,
    strict: bool = False,
    per_minute: bool = False,
    note: Callable[[str], None] = lambda _: None,
    stream: bool = False,
    guards: Path | Guards | None = None,
    now: datetime | None = None,
) -> MarginReport:
    """The margin report. ``note`` hears at once when ``auto`` fell back to the reference, and why. With
    ``strict`` a record no cost entry takes is an error; ``per_minute`` gives costs per customer minute sold
    (rows that sell minutes only: not by provider). ``stream``: by session, each row is made as the face
    reads it (for a face that writes the rows once: see ``margin_view``'s ``lazy``). With ``now``, the
    rows mark the records ``guards`` (None: the safe defaults) hold back as of ``now``."""
    from talktime.core.rating.margin import per_minute as per_minute_view

    # A report has a few objects per call and no cycles: while it is made, the cycle collector would only
    # scan its millions of objects again and again (half the time of a large view).
    collecting = gc.isenabled()
    gc.disable()
    try:
        guard = None if now is None else guard_of(guards, history.tenant, now, accepted_of(history))
        card = cost_card(costs)
        view, fallback = _margin_view(
            history, card, required_price_card(prices), engine, by.value, lazy=stream, guard=guard
        )
        if fallback:
            note(fallback)
        miss = first_miss(view.uncosted_records, history, costs)
        if strict and view.uncosted_records:
            raise InputError(
                uncosted_message(view.uncosted_records, modalities(view.rows), miss)
                + "; add cost entries or drop --strict"
            )
    finally:
        if collecting:
            gc.enable()
    if per_minute:
        if by is MarginBy.provider:
            raise InputError("--per-minute needs rows that sell minutes: --by session, customer or period")
        view = per_minute_view(view)
    return MarginReport(view, miss, {e.id: e.modality for e in card.entries if e.placeholder})


def _margin_view(
    history: HistorySource,
    costs: CostCard,
    prices: PriceCard,
    engine: MarginEngine,
    by: str,
    *,
    lazy: bool = False,
    guard: Guard | None = None,
) -> tuple[MarginView, str]:
    """The margin rows on the chosen engine, and a note when ``auto`` fell back to the reference. Rows
    added up per customer month or period come from DuckDB without an object per call; by session or
    provider each call's report is made first (the rows need each call's own amounts)."""
    from talktime.core.rating.margin import margin_view
    from talktime.engine.compile import UnsupportedPolicy
    from talktime.io.records_io import BeyondTypedLayout
    from talktime.simulate.margin_grouped import GROUPED_BY, TooLarge, grouped_view
    from talktime.simulate.margin_run import margin_supported

    grouped = by in GROUPED_BY and engine is not MarginEngine.reference
    if grouped and margin_supported(costs, prices) is None:
        require_one(history, " (with --tenant)")
        try:
            with _history_file(history) as path:
                return grouped_view(path, costs, prices, by, guard=guard), ""
        except (TooLarge, UnsupportedPolicy, BeyondTypedLayout):
            pass  # past the engine's integers, a policy it cannot compile, a value its columns cannot hold
    report, fallback = session_report(history, costs, prices, engine, guard)
    return margin_view(report, by, lazy=lazy), fallback


def guard_of(
    guards: Path | Guards | None,
    tenant: str | None,
    now: datetime,
    accepted: Mapping[str, Accepted] | None = None,
) -> Guard:
    """The guards' limits for ``tenant`` (the file named, or the safe defaults) and "now", as ``talktime
    invoice`` applies them; ``accepted``: the latest acceptance of each record a person accepted (a
    store's), counted as ``GET /v1/invoices`` counts it."""
    from talktime.core.rating.margin import Guard

    limits = limits_of(guards, tenant, accepted=accepted)
    assert limits is not None  # never None unless flagged records are allowed
    return Guard(limits, now)


@contextmanager
def _history_file(history: HistorySource) -> Iterator[Path]:
    """The history as a file the engines scan: the record file, or the store's records written to a
    temporary Parquet file for as long as the block runs (a record its typed columns cannot hold is kept
    whole in its ``_exact`` column: the engines refuse the file, and ``auto`` takes the reference)."""
    from talktime.io.records_io import write_records

    if history.records is not None:
        yield history.records
        return
    with tempfile.TemporaryDirectory(prefix="talktime-margin-") as folder:
        path = Path(folder) / "history.parquet"
        write_records(path, records_of(HistorySource(None, history.store, history.tenant)))
        yield path


def session_report(
    history: HistorySource,
    costs: CostCard,
    prices: PriceCard,
    engine: MarginEngine = MarginEngine.auto,
    guard: Guard | None = None,
) -> tuple[CoreMarginReport, str]:
    """Every call's cost by provider and modality, price and margin (the report ``--by session`` and
    ``--by provider`` show, and the dashboard's calls), on the chosen engine; with a note when ``auto``
    fell back to the reference, saying why. Both engines give the same report, Decimal for Decimal, and
    with ``guard`` mark the same held records."""
    from talktime.core.rating.margin import session_margins
    from talktime.engine.compile import UnsupportedPolicy
    from talktime.io.records_io import BeyondTypedLayout
    from talktime.simulate.margin_run import margin_supported, margin_vectorised

    if engine is MarginEngine.reference:
        return session_margins(records_of(history), costs, prices, guard), ""
    require_one(history, " (with --tenant)")
    why = margin_supported(costs, prices)
    if why is None:
        try:
            with _history_file(history) as path:
                return margin_vectorised(path, costs, prices, guard=guard), ""
        except (UnsupportedPolicy, BeyondTypedLayout) as error:
            if isinstance(error, BeyondTypedLayout):
                error = named_at_store(error, history)
            if engine is MarginEngine.duckdb:
                if isinstance(error, BeyondTypedLayout):
                    raise error.hinted(REFERENCE_HINT) from None
                raise error from None
            why = str(error)
    elif engine is MarginEngine.duckdb:
        raise InputError(f"--engine duckdb cannot rate these cards: {why}; use --engine reference")
    return session_margins(records_of(history), costs, prices, guard), f"used the reference: {why}"


def guarded_calls(
    records: Path,
    costs: Path | CostCard,
    prices: Path | PriceCard,
    *,
    guards: Path | Guards | None,
    now: datetime,
    tenant: str | None = None,
    accepted: Mapping[str, Accepted] | None = None,
) -> CallMargins:
    """:func:`talktime.app.calls.call_margins` with the records ``guards`` (None: the safe defaults; the
    limits of ``tenant``) hold back as of ``now`` marked on their calls and the rows that add them up (the
    dashboard's calls and months); a record in ``accepted`` (a store's acceptances) is not marked while its
    acceptance covers its reasons, as the invoices count it."""
    from talktime.app.calls import CallMargins
    from talktime.core.rating.margin import margin_view

    guard = guard_of(guards, tenant, now, accepted)
    report, note = session_report(
        HistorySource(records), cost_card(costs), required_price_card(prices), guard=guard
    )
    return CallMargins(report, margin_view(report, "session"), note)


def uncosted_message(ids: tuple[str, ...], kinds: set[str], miss: str = "") -> str:
    """The records no cost entry takes (the first five), their modalities, and why the first is not taken."""
    shown = ", ".join(ids[:5]) + (" ..." if len(ids) > 5 else "")
    named = f" ({', '.join(sorted(kinds))}, by their kind)" if kinds else ""
    return (
        f"{len(ids)} record(s) matched no cost entry (cost unknown, not zero){named}: {shown}; an entry "
        "takes a record when its provider, product, kind and attr.<name> match (see docs/pricing.md)"
        + (f"; {miss}" if miss else "")
    )


def first_miss(ids: tuple[str, ...], history: HistorySource, costs: Path | CostCard) -> str:
    """Why no cost entry takes the first uncosted record (the closest entry and the fields it fails)."""
    if not ids:
        return ""
    from talktime.core.rating.unmatched import why_uncosted
    from talktime.io.records_io import RecordFile

    found: Iterable[UsageRecord] = (
        RecordFile(history.records)
        if history.records is not None
        else records_of(HistorySource(None, history.store, history.tenant))
    )
    record = next((r for r in found if r.id == ids[0]), None)
    return "" if record is None else why_uncosted(record, cost_card(costs))


def modalities(rows: Iterable[object]) -> set[str]:
    """The modalities of the uncosted records, from the sessions or view rows that carry them."""
    found: set[str] = set()
    for row in rows:
        value = (
            row.get("uncosted_modalities")
            if isinstance(row, dict)
            else getattr(row, "uncosted_modalities", ())
        )
        found.update(str(m) for m in value or ())
    return found
