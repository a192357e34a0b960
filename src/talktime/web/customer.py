"""The customer's own pages (a customer-scoped key signed in to ``talktime serve``'s dashboard): its usage
this period, its calls with actual and billable duration, its invoices and the methodology of its minute.

Every number is from the customer's invoices (``talktime invoice``'s, :mod:`talktime.app.month_invoices`,
computed over the tenant's snapshot, :mod:`talktime.web.served`): each line's actual and billable quantity,
and the calls behind each line (the usage chart's days too). Nothing here reads a cost, a margin, a
provider's price or another customer's record: the pages only see the customer's own invoices and the price
card's policies and time zones. Any other path (the operator's pages included) is a 403 page.

"This month" is the customer's billing period as of the snapshot: the calendar month in the customer's time
zone on the price card, as on its invoice (:mod:`talktime.core.invoicing.periods`), and the pages show times
and days in that zone. The pages list only the months the snapshot's window holds whole
(:attr:`talktime.web.data.Dashboard.months`; the window opens at the earliest local midnight of its oldest
month among the card's zones, :func:`talktime.app.snapshot.window_start`): a month of a customer west of UTC
that began before the window opened is partly in it and is not listed, nor made an invoice of; a page asked
for such a month says so. "This month" is always whole: the window opens early enough for every zone's
current month.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final
from zoneinfo import ZoneInfo

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from talktime.app.methodology import PageFormat
from talktime.app.methodology import page as methodology_page
from talktime.app.usage_series import UsagePoint
from talktime.core.invoicing.periods import month_period, period_label
from talktime.errors import TalktimeError
from talktime.io.invoices import call_count, calls_csv, render
from talktime.web.overview import minutes_figure
from talktime.web.pages import APPENDIX_LIMIT

if TYPE_CHECKING:
    from talktime.core.invoicing.invoice import Invoice
    from talktime.core.metering.policy import Policy
    from talktime.web.jobs import Job
    from talktime.web.served import Snapshots, TenantView

PAGE_ROWS: Final = 100
#: Invoices whose calls are kept worked out (a few per customer of a tenant looked at).
KEPT_INVOICES: Final = 32
ZERO: Final = Decimal(0)


@dataclass(frozen=True, slots=True)
class CustomerCall:
    """One call of the customer in a month, as a page shows it: when it started, each minute line's actual
    and billable seconds, and what it adds to the invoice (its share of every line's amount)."""

    session: str
    started_at: datetime
    seconds: dict[str, tuple[Decimal, Decimal]]  # meter -> actual, billable
    amount: Decimal


#: A call as it is kept: (session, start, amount, then each meter's actual and billable seconds in the order
#: of the meters, None for a meter the call has no line of). One flat tuple of immutable values: the cycle
#: collector stops tracking it at its first collection (a tuple holding a tuple may stay tracked a while), so
#: the calls of a large month (hundreds of thousands on a server) never make its full collections walk them.
CallRow = tuple[Any, ...]


def calls_of(invoice: Invoice) -> tuple[list[str], list[CallRow]]:
    """The meters of the invoice's minute lines, and its calls (from each line's calls), by start."""
    meters = [line.meter for line in invoice.lines if line.base_unit == "s" and line.calls]
    column = {meter: 3 + 2 * i for i, meter in enumerate(meters)}
    calls: dict[str, list[Any]] = {}
    for line in invoice.lines:
        for item in line.calls:
            key = item.session or item.record
            call = calls.setdefault(key, [key, item.started_at, ZERO, *([None] * (2 * len(meters)))])
            call[1] = min(call[1], item.started_at)
            call[2] += item.amount
            if line.base_unit == "s" and line.meter in column:
                i = column[line.meter]
                call[i] = (call[i] or ZERO) + item.actual_base
                call[i + 1] = (call[i + 1] or ZERO) + item.billable_base
    return meters, sorted((tuple(call) for call in calls.values()), key=lambda c: (c[1], c[0]))


def _pairs(row: CallRow) -> list[tuple[Decimal, Decimal] | None]:
    """Each meter's (actual, billable) seconds of a kept call, in the order of the meters."""
    return [None if row[i] is None else (row[i], row[i + 1]) for i in range(3, len(row), 2)]


def call_shown(meters: list[str], row: CallRow) -> CustomerCall:
    """A kept call as the calls page shows it."""
    pairs = {meter: pair for meter, pair in zip(meters, _pairs(row), strict=True) if pair is not None}
    return CustomerCall(row[0], row[1], pairs, row[2])


def _view(request: Request) -> tuple[TenantView, str]:
    state: Any = request.state
    return state.view, state.customer


def _periods(view: TenantView, customer: str) -> list[str]:
    return [p for c, p in view.board.months if c == customer]


def _job(view: TenantView, customer: str) -> Job | None:
    return view.board.jobs.get(f"invoices:{customer}")


def _zone(view: TenantView, customer: str) -> str:
    """The customer's time zone on the price card: its invoices' months start at local midnight there."""
    return view.board.prices.customer(customer).timezone


def _this_period(view: TenantView, customer: str) -> str:
    """The customer's billing period (YYYY-MM) the snapshot's moment falls in: its month, in its zone."""
    return period_label(view.as_of, _zone(view, customer))


def _before_window(view: TenantView, period: str, zone: str) -> str:
    """What a page says of the customer's month ``period`` when the snapshot's window opened during it (the
    window holds only a part of it, so no page lists it), else ""."""
    month = month_period(period, zone)
    if not month.start < view.since < month.end:
        return ""
    opened = view.since.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"Your month {period} began before the records this dashboard reads (since {opened}): only a part "
        "of it is here, so it is not shown (its invoice counts every call of the month)."
    )


def daily_figure(rows: list[CallRow], zone: str, title: str) -> str:
    """Actual beside billable minutes per day in ``zone`` (by each call's start), from the invoice's calls:
    the bars add up to the page's totals. Empty when no call has minutes."""
    local = ZoneInfo(zone)
    sums: dict[date, list[Decimal]] = defaultdict(lambda: [ZERO, ZERO, ZERO])
    for row in rows:
        pairs = [pair for pair in _pairs(row) if pair is not None]
        if pairs:
            day = sums[row[1].astimezone(local).date()]
            day[0] += sum((actual for actual, _ in pairs), ZERO)
            day[1] += sum((billable for _, billable in pairs), ZERO)
            day[2] += 1
    if not sums:
        return ""
    points = tuple(UsagePoint(d, "", "", "s", a, b, int(n)) for d, (a, b, n) in sorted(sums.items()))
    drawn = json.loads(minutes_figure(points, title))
    drawn["layout"]["xaxis"]["title"]["text"] = f"day ({zone})"
    return json.dumps(drawn).replace("</", "<\\/")


def create_customer_app(snapshots: Snapshots) -> FastAPI:
    """The customer pages; :class:`~talktime.web.served.ServedDashboard` puts the tenant's view and the
    key's customer in the request's state before calling it."""
    from talktime.web.app import _environment

    env = _environment()
    app = FastAPI(title="talktime customer view", docs_url=None, redoc_url=None, openapi_url=None)

    def render_page(request: Request, name: str, status: int = 200, **context: object) -> HTMLResponse:
        view, customer = _view(request)
        base = {
            "view": view,
            "customer": customer,
            "currency": view.board.currency,
            "as_of": view.as_of.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "updating": snapshots.updating(view.tenant),
            "utc": UTC,
            "zone_name": _zone(view, customer),
            "zone": ZoneInfo(_zone(view, customer)),
            "page_rows": PAGE_ROWS,
        }
        return HTMLResponse(env.get_template(name).render(**base, **context), status_code=status)

    lock = threading.Lock()
    kept: OrderedDict[int, tuple[Invoice, list[str], list[CallRow]]] = OrderedDict()

    def listed(
        invoice: Invoice, worked: tuple[list[str], list[CallRow]] | None = None
    ) -> tuple[list[str], list[CallRow]]:
        """The invoice's calls, worked out once per invoice (a month of a large customer has tens of
        thousands): the last few invoices asked for are kept, each with the invoice (so its id stays its).
        ``worked``: :func:`calls_of` of the invoice worked out elsewhere (a worker process), kept as it is."""
        with lock:
            found = kept.get(id(invoice))
            if found is not None:
                kept.move_to_end(id(invoice))
                return found[1], found[2]
        meters, rows = calls_of(invoice) if worked is None else worked
        with lock:
            kept[id(invoice)] = (invoice, meters, rows)
            while len(kept) > KEPT_INVOICES:
                kept.popitem(last=False)
        return meters, rows

    app.state.listed = listed  # served.py has each customer's calls worked out ahead, with their invoices

    charts: OrderedDict[int, tuple[Invoice, tuple[str, Decimal, Decimal]]] = OrderedDict()

    def chart_of(invoice: Invoice, zone: str) -> tuple[str, Decimal, Decimal]:
        """The usage page's chart of the invoice and its actual and billable minutes (the chart's bars add up
        to them), worked out once per invoice (kept as its calls are) from its calls as kept: a served
        invoice's calls are packed (``web.served.PackedCalls``), not read at each request."""
        with lock:
            found = charts.get(id(invoice))
        if found is not None:
            return found[1]
        title = f"Your minutes per day in {invoice.period.label}: actual and billable"
        rows = listed(invoice)[1]
        pairs = [pair for row in rows for pair in _pairs(row) if pair is not None]
        actual = sum((a for a, _ in pairs), ZERO) / 60
        billable = sum((b for _, b in pairs), ZERO) / 60
        drawn = (daily_figure(rows, zone, title), actual, billable)
        with lock:
            charts[id(invoice)] = (invoice, drawn)
            while len(charts) > KEPT_INVOICES:
                charts.popitem(last=False)
        return drawn

    def invoice_of(request: Request, period: str) -> tuple[Invoice | None, Job | None]:
        view, customer = _view(request)
        job = _job(view, customer)
        if job is None or not job.done or job.result is None:
            return None, job
        found: Invoice | None = job.result.get(period)
        return found, job

    @app.get("/", response_class=HTMLResponse)
    def usage(request: Request) -> HTMLResponse:
        view, customer = _view(request)
        zone = _zone(view, customer)
        period = _this_period(view, customer)
        invoice, job = invoice_of(request, period)
        chart, actual, billable = ("", ZERO, ZERO) if invoice is None else chart_of(invoice, zone)
        return render_page(
            request,
            "customer_usage.html",
            page="usage",
            period=period,
            period_words=month_period(period, zone).in_words(),
            invoice=invoice,
            job=job,
            known=period in _periods(view, customer),
            before_window=_before_window(view, period, zone),
            actual=actual,
            billable=billable,
            chart=chart,
        )

    @app.get("/calls", response_class=HTMLResponse)
    def calls(request: Request, period: str = "", page: int = 1) -> HTMLResponse:
        view, customer = _view(request)
        months, now = _periods(view, customer), _this_period(view, customer)
        try:
            month_period(period or now, _zone(view, customer))
        except (TalktimeError, ValueError):
            raise HTTPException(
                400, f"period={period!r} is not a month: give it as YYYY-MM, e.g. {now}"
            ) from None
        chosen = period or now
        opened = "" if chosen in months else _before_window(view, chosen, _zone(view, customer))
        if chosen not in months and chosen != now:  # not silently another month
            shown = ", ".join(months) or "none yet"
            if opened:  # a part of it is in the snapshot: not shown as if it were the month
                raise HTTPException(404, f"{opened} Your months here are {shown}.")
            raise HTTPException(404, f"You have no invoice for {chosen}: your months here are {shown}.")
        invoice, job = invoice_of(request, chosen)
        meters, rows = listed(invoice) if invoice is not None else ([], [])
        pages = max(1, -(-len(rows) // PAGE_ROWS))
        page = min(max(page, 1), pages)
        return render_page(
            request,
            "customer_calls.html",
            page="calls",
            period=chosen,
            before_window=opened,
            months=months,
            invoice=invoice,
            job=job,
            meters=meters,
            rows=[call_shown(meters, row) for row in rows[(page - 1) * PAGE_ROWS : page * PAGE_ROWS]],
            count=len(rows),
            current=page,
            pages=pages,
        )

    @app.get("/invoices", response_class=HTMLResponse)
    def invoices(request: Request) -> HTMLResponse:
        view, customer = _view(request)
        job = _job(view, customer)
        return render_page(
            request,
            "customer_invoices.html",
            page="invoices",
            periods={customer: _periods(view, customer)},
            jobs={customer: job},
            ledger=None,
            ledger_dir=None,
            pending=job is not None and not job.done,
            call_count=call_count,
            limit=APPENDIX_LIMIT,
            customer_view=True,  # no operator's command on the customer's page
        )

    def own_invoice(request: Request, customer: str, period: str) -> Invoice:
        _, mine = _view(request)
        if customer != mine:
            raise HTTPException(
                403, f"This key belongs to customer {mine!r}: it sees only that customer's invoices."
            )
        invoice, job = invoice_of(request, period)
        if invoice is None:
            if job is not None and not job.done:
                raise HTTPException(409, "your invoices are still being computed; try again shortly")
            raise HTTPException(404, f"no invoice for {period!r}")
        return invoice

    drawn: dict[tuple[int, str], bytes | str] = {}

    @app.get("/invoices/{customer}/{period}.pdf")
    def invoice_pdf(request: Request, customer: str, period: str) -> Response:
        invoice = own_invoice(request, customer, period)
        listing = f"{invoice.id}.calls.csv" if call_count(invoice) > APPENDIX_LIMIT else None
        key = (id(invoice), period)
        if key not in drawn:
            drawn.clear()  # one at a time: a customer looks at one PDF, the next snapshot makes new ones
            drawn[key] = render(invoice, "pdf", listing, APPENDIX_LIMIT)
        headers = {"Content-Disposition": f'inline; filename="{invoice.number or invoice.id}.pdf"'}
        return Response(drawn[key], media_type="application/pdf", headers=headers)

    @app.get("/invoices/{customer}/{period}.calls.csv")
    def invoice_calls(request: Request, customer: str, period: str) -> Response:
        invoice = own_invoice(request, customer, period)
        headers = {"Content-Disposition": f'attachment; filename="{invoice.id}.calls.csv"'}
        return Response(calls_csv(invoice), media_type="text/csv", headers=headers)

    def policies(request: Request) -> dict[str, Policy]:
        """The policies of the customer's plan (the price card), by id: how its minute is billed."""
        view, _ = _view(request)
        return {c.policy.id: c.policy for c in view.board.prices.components}

    @app.get("/methodology", response_class=HTMLResponse)
    def methodology_list(request: Request) -> HTMLResponse:
        return render_page(
            request, "customer_methodology_list.html", page="methodology", policies=list(policies(request))
        )

    @app.get("/methodology/{policy_id}", response_class=HTMLResponse)
    def methodology(request: Request, policy_id: str) -> HTMLResponse:
        chosen = policies(request).get(policy_id)
        if chosen is None:
            raise HTTPException(404, f"no policy {policy_id!r} on your plan")
        try:
            body = _body(methodology_page(chosen, PageFormat.html))
        except TalktimeError as error:
            raise HTTPException(404, str(error)) from None
        return render_page(
            request, "customer_methodology.html", page="methodology", policy_id=policy_id, body=body
        )

    @app.api_route("/{rest:path}", methods=["GET", "POST", "HEAD"], include_in_schema=False)
    def operators_only(request: Request, rest: str) -> HTMLResponse:
        raise HTTPException(
            403,
            "This page is for the platform's operators. Your key shows your own usage, calls and invoices.",
        )

    @app.exception_handler(HTTPException)
    def refused(request: Request, error: HTTPException) -> Response:
        titles = {403: "Not yours to see", 404: "Not found", 409: "Not ready yet"}
        return render_page(
            request,
            "customer_error.html",
            status=error.status_code,
            page="",
            title=titles.get(error.status_code, "Error"),
            message=error.detail,
        )

    return app


def _body(page: str) -> str:
    from talktime.web.app import _body as body_of

    return body_of(page)
