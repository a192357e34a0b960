"""The invoices and what-if pages: their work is queued on the dashboard's background worker when it starts
(:func:`queue_work`), and each page shows what is ready and polls (htmx, every 2 s) for the rest.

Invoices are ``talktime invoice``'s, one customer at a time (:mod:`talktime.app.month_invoices`), their PDF
rendered by the same function as ``talktime invoice --format pdf``. The what-if page is ``talktime
simulate`` over the file for the policies :mod:`talktime.app.what_if` picks, and ``talktime compare`` for
each switch it offers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from talktime.app.compare import compare_totals
from talktime.app.history import HistorySource
from talktime.app.month_invoices import customer_invoices, finalised_invoices
from talktime.app.simulate import simulate
from talktime.app.what_if import Switch, WhatIfChoices
from talktime.io.invoices import call_count, calls_csv, render
from talktime.web.data import Dashboard
from talktime.web.jobs import Job
from talktime.web.whatif import modality_title, rounding_figure, switch_figure

if TYPE_CHECKING:
    from talktime.core.invoicing.invoice import Invoice

Render = Callable[..., HTMLResponse]
#: On paper, calls are listed in an appendix up to this many (``talktime invoice --appendix-limit``).
APPENDIX_LIMIT = 300


def _periods(board: Dashboard) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for customer, period in board.months:
        found[customer].append(period)
    return dict(found)


def _switch_key(switch: Switch) -> str:
    return f"switch:{switch.from_}->{switch.to}"


#: A background run: its job key, its label, the use case and its arguments.
WhatIf = tuple[str, str, Callable[..., Any], tuple[Any, ...], dict[str, Any]]


def what_ifs(choices: WhatIfChoices, history: HistorySource, costs: Any, prices: Any) -> list[WhatIf]:
    """The what-if runs a dashboard offers, the ones its page opens on first (the rounding impact, then each
    switch, per-customer totals only: :func:`~talktime.app.compare.compare_totals`). ``costs`` and
    ``prices``: the cards, or their paths (a served dashboard runs each in a worker process)."""
    runs: list[WhatIf] = []
    if choices.rounding:
        label = f"rounding impact of {len(choices.rounding)} policies"
        runs.append(("rounding", label, simulate, (list(choices.rounding), costs), {"history": history}))
    for switch in choices.switches:
        label = f"switch {switch.from_} -> {switch.to}"
        runs.append(
            (
                _switch_key(switch),
                label,
                compare_totals,
                (switch.from_, switch.to, history, costs, prices),
                {},
            )
        )
    return runs


def _here(work: Callable[..., Any], *args: Any, **kwargs: Any) -> Callable[[], Any]:
    return lambda: work(*args, **kwargs)


def queue_work(board: Dashboard) -> None:
    """Queue the what-if runs and every customer's invoices: the rounding impact and the first switch
    first (the what-if page opens on them), then the invoices, then the other switches. A job already
    queued under the same key (a served dashboard's, in a worker process) is kept."""
    runs = what_ifs(board.choices, HistorySource(board.scan), board.costs, board.prices)
    opening = (1 if board.choices.rounding else 0) + 1
    for key, label, work, args, kwargs in runs[:opening]:
        board.jobs.submit(key, label, _here(work, *args, **kwargs))
    for customer, periods in _periods(board).items():
        board.jobs.submit(
            f"invoices:{customer}", f"{customer}'s invoices", _invoices_of(board, customer, periods)
        )
    if board.ledger is not None:
        ledger = board.ledger
        board.jobs.submit("ledger", f"finalised invoices in {ledger}", lambda: finalised_invoices(ledger))
    for key, label, work, args, kwargs in runs[opening:]:
        board.jobs.submit(key, label, _here(work, *args, **kwargs))


def _invoices_of(board: Dashboard, customer: str, periods: list[str]) -> Callable[[], dict[str, Invoice]]:
    def work() -> dict[str, Invoice]:
        return customer_invoices(
            board.records.of_customer(customer),
            board.prices,
            customer,
            periods,
            ledger=board.ledger,
            guards=board.guards,
            now=board.started,
        )

    return work


def _partial(request: Request, target: str) -> bool:
    return request.headers.get("HX-Request") == "true" and request.headers.get("HX-Target") == target


def _invoice(board: Dashboard, customer: str, period: str) -> Invoice:
    """A ready invoice of the file's months or of the ledger; 404 otherwise (409 while still computing)."""
    job = board.jobs.get(f"invoices:{customer}")
    if job is not None:
        if not job.done:
            raise HTTPException(409, f"{customer}'s invoices are still being computed; try again shortly")
        if job.result is not None and period in job.result:
            found: Invoice = job.result[period]
            return found
    ledger = board.jobs.get("ledger")
    if ledger is not None and ledger.done and ledger.result:
        listed: list[Invoice] = ledger.result
        for invoice in listed:
            if invoice.customer == customer and invoice.period.label == period:
                return invoice
    raise HTTPException(404, f"no invoice of {customer!r} for {period!r} in {board.source}")


def add_invoice_pages(app: FastAPI, board: Dashboard, render_page: Render) -> None:
    periods = _periods(board)

    @app.get("/invoices", response_class=HTMLResponse)
    def invoices(request: Request) -> HTMLResponse:
        jobs = {c: board.jobs.get(f"invoices:{c}") for c in periods}
        ledger = board.jobs.get("ledger")
        pending = any(j is not None and not j.done for j in (*jobs.values(), ledger))
        return render_page(
            "invoices.html",
            page="invoices",
            periods=periods,
            jobs=jobs,
            ledger=ledger,
            ledger_dir=board.ledger,
            pending=pending,
            call_count=call_count,
            limit=APPENDIX_LIMIT,
        )

    drawn: dict[tuple[str, str], bytes | str] = {}  # an invoice's PDF is the same until the file changes

    @app.get("/invoices/{customer}/{period}.pdf")
    def invoice_pdf(customer: str, period: str) -> Response:
        invoice = _invoice(board, customer, period)
        listing = f"{invoice.id}.calls.csv" if call_count(invoice) > APPENDIX_LIMIT else None
        key = (customer, period)
        if key not in drawn:
            drawn[key] = render(invoice, "pdf", listing, APPENDIX_LIMIT)
        body = drawn[key]
        headers = {"Content-Disposition": f'inline; filename="{invoice.number or invoice.id}.pdf"'}
        return Response(body, media_type="application/pdf", headers=headers)

    @app.get("/invoices/{customer}/{period}.calls.csv")
    def invoice_calls(customer: str, period: str) -> Response:
        invoice = _invoice(board, customer, period)
        headers = {"Content-Disposition": f'attachment; filename="{invoice.id}.calls.csv"'}
        return Response(calls_csv(invoice), media_type="text/csv", headers=headers)


def add_whatif_pages(app: FastAPI, board: Dashboard, render_page: Render) -> None:
    choices = board.choices

    @app.get("/whatif", response_class=HTMLResponse)
    def whatif(request: Request, switch: int = 0) -> HTMLResponse:
        chosen = choices.switches[switch] if 0 <= switch < len(choices.switches) else None
        rounding = board.jobs.get("rounding")
        switch_job: Job | None = None
        if chosen is not None:
            history = HistorySource(board.scan)
            switch_job = board.jobs.submit(  # queued on first request if not yet (each switch once)
                _switch_key(chosen),
                f"switch {chosen.from_} -> {chosen.to}",
                lambda: compare_totals(chosen.from_, chosen.to, history, board.costs, board.prices),
            )
        context: dict[str, Any] = {
            "page": "whatif",
            "choices": choices,
            "chosen": switch if chosen is not None else -1,
            "rounding": rounding,
            "rounding_charts": _rounding_charts(rounding, choices.in_use),
            "switch_job": switch_job,
            "switch_chart": _switch_chart(switch_job),
            "records_count": len(board.records),
            "modality_title": modality_title,
        }
        partial = _partial(request, "whatif")
        return render_page("whatif_body.html" if partial else "whatif.html", **context)


def _rounding_charts(job: Job | None, in_use: frozenset[str]) -> list[tuple[str, str]]:
    if job is None or not job.done or job.result is None:
        return []
    impacts = job.result.simulation.impacts
    modalities = list(dict.fromkeys(i.modality for i in impacts if i.is_time and i.modality))
    return [(m, rounding_figure(impacts, in_use, m)) for m in modalities]


def _switch_chart(job: Job | None) -> str:
    if job is None or not job.done or job.result is None:
        return ""
    return switch_figure(job.result)
