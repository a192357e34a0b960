"""``alerts``: the alerts open over a record file rated with its cards: spend and billable minutes per
customer period above their thresholds, calls far longer than the customer's usual, LLM tokens per minute far
above its norm, calls left open (the rules: :mod:`talktime.core.alerts`; docs/alerts.md).

It reads the configuration file (TOML, floats as exact decimals), rates the records the way ``talktime
margin --by session`` does (:func:`talktime.app.calls.call_margins`) for each customer period's spend and
minutes, and reads each call's span, LLM tokens and open or long records from the same file on DuckDB. A
face that has rated the file already (the dashboard) passes its rows to :func:`alerts_of_rated`. Delivery is
:mod:`talktime.app.alert_delivery`.

A server checks a tenant's alerts as its events arrive with :func:`send_new_alerts`, after each new snapshot
of the tenant's records: the alerts open then are checked (over the snapshot's file and the records still
open that it leaves out, :func:`with_open`, so a call left open is seen as it is in a record file that holds
it) and each one not delivered before is POSTed,
remembered in the tenant's own state file (it survives a restart, as ``talktime alerts check --send``'s
does). :func:`alert_sending` reads the configuration and the signing secret once, when the server starts.
"""

from __future__ import annotations

import tempfile
import time
import tomllib
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from talktime.app.alert_delivery import (
    Delivery,
    Post,
    deliver,
    delivery_outcomes,
    post_json,
    signing_secret,
    state_file,
    tenant_state_file,
)
from talktime.core.alerts.check import open_alerts
from talktime.core.alerts.config import AlertConfig, AlertConfigError, parse_config
from talktime.core.alerts.model import Alert, CallFacts, PeriodUsage, RecordSpan
from talktime.errors import InputError

if TYPE_CHECKING:
    from talktime.core.rating.cards import CostCard, PriceCard
    from talktime.store.record_files import OpenRecord

__all__ = [
    "AlertCheck",
    "AlertSending",
    "Facts",
    "SentAlerts",
    "alert_sending",
    "alerts_of_rated",
    "check_alerts",
    "load_config",
    "open_spans",
    "periods_of",
    "record_facts",
    "send_new_alerts",
    "with_open",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def load_config(path: Path) -> AlertConfig:
    """The alert configuration in the TOML file ``path``; every bad key named (:class:`AlertConfigError`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such alert configuration file") from None
    try:
        data = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as error:
        raise AlertConfigError(str(path), [f"not valid TOML: {error}"]) from None
    return parse_config(data, str(path))


@dataclass(frozen=True, slots=True)
class Facts:
    """What the anomaly rules read from the records: every call, the records open or long, and the latest
    time the records mention (the check's time when none is given)."""

    calls: tuple[CallFacts, ...]
    spans: tuple[RecordSpan, ...]
    latest: datetime | None


@dataclass(frozen=True, slots=True)
class AlertCheck:
    """The alerts open at ``now`` over ``source``, with what they were drawn from."""

    alerts: tuple[Alert, ...]
    now: datetime
    currency: str
    source: str
    calls: int
    periods: tuple[PeriodUsage, ...]
    config: AlertConfig


def _time(micros: int) -> datetime:
    return _EPOCH + timedelta(microseconds=micros)


def record_facts(scan: Path, config: AlertConfig) -> Facts:
    """Each call's span and LLM tokens, and the records open or longer than the shortest ``max_minutes`` of
    any customer, from the Parquet record file ``scan`` (the canonical layout), on DuckDB."""
    import duckdb
    import pyarrow.parquet as pq

    present = set(pq.ParquetFile(scan).schema_arrow.names)

    def column(name: str, kind: str) -> str:
        return f'"{name}"' if name in present else f"CAST(NULL AS {kind})"

    customer = f"coalesce(nullif({column('customer', 'VARCHAR')}, ''), '-')"
    session = f"coalesce({column('session', 'VARCHAR')}, 'record:' || id)"
    status = f"coalesce({column('status', 'VARCHAR')}, 'completed')"
    start, end = "epoch_us(started_at)", f"epoch_us({column('ended_at', 'TIMESTAMPTZ')})"
    tokens = " + ".join(f"coalesce({column(n, 'BIGINT')}, 0)" for n in ("input_tokens", "output_tokens"))
    rules = [config.defaults, *config.customers.values()]
    longest = min(r.stuck_call.max_minutes for r in rules) * 60_000_000
    source = "read_parquet(?)"
    connection = duckdb.connect()
    try:
        calls = connection.execute(
            f"SELECT {customer} AS c, {session} AS s, min({start}), max({end}), "
            f"bool_or({end} IS NULL OR {status} = 'open'), CAST(sum({tokens}) AS HUGEINT) "
            f"FROM {source} GROUP BY c, s",
            [str(scan)],
        ).fetchall()
        spans = connection.execute(
            f"SELECT id, {customer}, {session}, {column('kind', 'VARCHAR')}, "
            f"{column('provider', 'VARCHAR')}, {status}, {start}, {end} FROM {source} "
            f"WHERE {end} IS NULL OR {status} = 'open' OR {end} - {start} > ?",
            [str(scan), int(longest)],
        ).fetchall()
        latest = connection.execute(
            f"SELECT max(greatest({start}, coalesce({end}, {start}))) FROM {source}", [str(scan)]
        ).fetchone()
    finally:
        connection.close()
    return Facts(
        tuple(
            CallFacts(str(c), str(s), _time(first), None if still_open else last - first, int(used or 0))
            for c, s, first, last, still_open, used in calls
        ),
        tuple(
            RecordSpan(
                str(i), str(c), str(s), k or "", p or "", str(st), _time(a), None if b is None else _time(b)
            )
            for i, c, s, k, p, st, a, b in spans
        ),
        None if latest is None or latest[0] is None else _time(int(latest[0])),
    )


def open_spans(records: Iterable[OpenRecord]) -> tuple[RecordSpan, ...]:
    """The records still open that a file leaves out (a snapshot's
    :attr:`~talktime.app.snapshot.Snapshot.open_records`) as the stuck-call rule reads them, named as
    :func:`record_facts` names a record of a file: no customer is ``-``, no session is the record's own call
    (``record:`` and its id)."""
    return tuple(
        RecordSpan(
            r.id,
            r.customer or "-",
            f"record:{r.id}" if r.session is None else r.session,
            r.kind or "",
            r.provider or "",
            "open",
            r.started_at,
            None,
        )
        for r in records
    )


def with_open(facts: Facts, spans: Iterable[RecordSpan]) -> Facts:
    """``facts`` of a file joined by ``spans`` of records still open that the file does not hold, as
    :func:`record_facts` reads a file that holds them too: each span is the stuck-call rule's; a call with an
    open record is open (no duration: no norm counts it, no duration or rate rule judges it), starting at
    its first record; a call of open records only is one more call. The open records' tokens are not added
    (an open call has no rate to read them by)."""
    spans = tuple(spans)
    if not spans:
        return facts
    opened: dict[tuple[str, str], datetime] = {}
    for span in spans:
        key = (span.customer, span.session)
        opened[key] = min(opened.get(key, span.started_at), span.started_at)
    calls = []
    for call in facts.calls:
        start = opened.pop((call.customer, call.session), None)
        if start is not None:
            call = CallFacts(call.customer, call.session, min(call.started_at, start), None, call.tokens)
        calls.append(call)
    calls.extend(
        CallFacts(customer, session, start, None, 0) for (customer, session), start in opened.items()
    )
    latest = max(s.started_at for s in spans)
    return Facts(
        tuple(calls),
        (*facts.spans, *spans),
        latest if facts.latest is None else max(facts.latest, latest),
    )


def periods_of(rows: Iterable[Mapping[str, object]]) -> tuple[PeriodUsage, ...]:
    """Each customer period's spend (the calls' price) and billable minutes, added up from the rows of
    ``talktime margin --by session``; calls without a customer are nobody's spend and are left out."""
    spend: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    minutes: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    calls: dict[tuple[str, str], int] = defaultdict(int)
    for row in rows:
        customer = str(row["customer"])
        if customer == "-":
            continue
        key = (customer, str(row["period"]))
        price, sold = row["price"], row["minutes"]
        assert isinstance(price, Decimal) and isinstance(sold, Decimal)
        spend[key] += price
        minutes[key] += sold
        calls[key] += 1
    return tuple(PeriodUsage(c, p, spend[(c, p)], minutes[(c, p)], calls[(c, p)]) for c, p in sorted(calls))


def alerts_of_rated(
    rows: Iterable[Mapping[str, object]],
    scan: Path,
    config: AlertConfig,
    currency: str,
    *,
    source: str = "",
    now: datetime | None = None,
    open_records: Iterable[OpenRecord] = (),
) -> AlertCheck:
    """The alerts over records already rated: ``rows`` are the rows of ``talktime margin --by session`` over
    the Parquet file ``scan``; ``open_records``: records still open that the file leaves out (a
    snapshot's). ``now`` defaults to the latest time the records mention."""
    periods = periods_of(rows)
    facts = with_open(record_facts(scan, config), open_spans(open_records))
    at = now or facts.latest or datetime.now(UTC)
    if at.tzinfo is None:
        raise InputError(f"the check's time {at.isoformat()} needs a UTC offset (Z or +02:00)")
    found = open_alerts(config, periods, facts.calls, facts.spans, currency, at)
    return AlertCheck(found, at, currency, source or str(scan), len(facts.calls), periods, config)


def check_alerts(
    records: Path,
    costs: Path | CostCard,
    prices: Path | PriceCard,
    config: Path | AlertConfig,
    *,
    now: datetime | None = None,
    open_records: Iterable[OpenRecord] = (),
) -> AlertCheck:
    """The alerts over the record file ``records`` (CSV, JSON Lines or Parquet), rated with the cards as
    ``talktime margin --by session`` rates it, and the records still open it leaves out (``open_records``,
    a snapshot's)."""
    from talktime.app.calls import call_margins, scannable_copy

    chosen = load_config(config) if isinstance(config, Path) else config
    with tempfile.TemporaryDirectory(prefix="talktime-alerts-") as folder:
        scan = scannable_copy(records, Path(folder))
        margins = call_margins(scan, costs, prices)
        return alerts_of_rated(
            margins.view.rows,
            scan,
            chosen,
            margins.view.currency,
            source=str(records),
            now=now,
            open_records=open_records,
        )


@dataclass(frozen=True, slots=True)
class AlertSending:
    """How a server checks and sends alerts (``talktime serve --alerts FILE``): the configuration, the file
    it was read from (the delivery state is kept beside it) and the signing secret, read and checked when
    the server starts ("" without a ``[webhook]`` table: alerts are checked, not sent)."""

    path: Path
    config: AlertConfig
    secret: str = ""

    def state(self, tenant: str) -> Path | None:
        """Where ``tenant``'s deliveries are remembered (None without a webhook)."""
        webhook = self.config.webhook
        return None if webhook is None else tenant_state_file(state_file(self.path, webhook), tenant)


def alert_sending(path: Path, environ: Mapping[str, str] | None = None) -> AlertSending:
    """The configuration in ``path`` (every bad key named) and, with a ``[webhook]`` table, the secret from
    the environment variable it names (missing or malformed: :class:`InputError`), for a server to start
    with: a bad file or secret stops it before it serves."""
    config = load_config(path)
    secret = "" if config.webhook is None else signing_secret(config.webhook, environ)
    return AlertSending(path, config, secret)


@dataclass(frozen=True, slots=True)
class SentAlerts:
    """One check of a tenant's alerts: what is open, each open alert's delivery (remembered or made now) by
    id, and the ids POSTed by this check (delivered now, or failed again: tried on the next check)."""

    check: AlertCheck
    deliveries: dict[str, Delivery]
    posted: tuple[str, ...]

    @property
    def undelivered(self) -> tuple[str, ...]:
        """Open alerts not delivered yet (a webhook is configured and they failed)."""
        return tuple(i for i, d in self.deliveries.items() if not d.delivered)


def send_new_alerts(
    records: Path,
    costs: Path | CostCard,
    prices: Path | PriceCard,
    sending: AlertSending,
    *,
    tenant: str,
    now: datetime,
    rated: tuple[Iterable[Mapping[str, object]], str] | None = None,
    open_records: Iterable[OpenRecord] = (),
    post: Post = post_json,
    sleep: Callable[[float], None] = time.sleep,
) -> SentAlerts:
    """Check ``tenant``'s alerts over its records as of ``now`` (a snapshot's moment) and POST each one not
    delivered before: the stable ids and the tenant's state file mean an alert is delivered once, across
    checks and restarts; one that failed is tried again on the next check. ``records``: the snapshot's
    record file; ``rated``: the rows of ``talktime margin --by session`` over it and their currency, when
    the caller rated it already (then ``records`` is that Parquet file), else it is rated here;
    ``open_records``: the snapshot's records still open, not in its file (a call left open is one).
    ``post`` and ``sleep``: how :func:`~talktime.app.alert_delivery.deliver` POSTs and waits.

    It waits for the webhook (up to ``attempts`` x ``timeout_seconds`` plus the back-off per alert): call
    it on a worker of its own, not where pages are answered or snapshots made."""
    if rated is None:
        found = check_alerts(records, costs, prices, sending.config, now=now, open_records=open_records)
    else:
        rows, currency = rated
        found = alerts_of_rated(
            rows, records, sending.config, currency, source=str(records), now=now, open_records=open_records
        )
    webhook, state = sending.config.webhook, sending.state(tenant)
    if webhook is None or state is None:
        return SentAlerts(found, {}, ())
    before = delivery_outcomes(state)
    outcomes = deliver(found.alerts, webhook, sending.secret, state, tenant=tenant, post=post, sleep=sleep)
    posted = tuple(i for i, d in outcomes.items() if before.get(i) != d)
    return SentAlerts(found, outcomes, posted)
