"""The review pages: reconciliation (``/reconcile``: each provider statement given with ``--statement``
against the records, as ``talktime reconcile`` reports it) and the flagged records (``/flagged``: the
records the plausibility guards hold back from each customer's invoices, with their reasons, what they
would bill, and how a person accepts or corrects them).

Both are computed on the dashboard's background worker (queued after the other pages' work, or on a
page's first request) and fill in by themselves, like the invoices page; but served (``talktime serve``),
``/flagged`` is read live from the store and takes an Accept and a Correct form per held record
(:mod:`talktime.web.review_forms`), and a records file's page prints the commands instead. A page
renders values only: :class:`talktime.app.statements.StatementReport` and
:class:`talktime.app.held_records.HeldMonth`, so a face that keeps records in a store feeds it the same
values.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from talktime.app.held_records import HeldMonth, fields_to_check, held_records
from talktime.app.statements import StatementReport, StatementSpec, statement_report
from talktime.core.reconcile.model import shown
from talktime.core.reconcile.render import html_values
from talktime.core.records import UsageRecord, record_to_row
from talktime.errors import TalktimeError
from talktime.web.data import Dashboard
from talktime.web.jobs import Job
from talktime.web.review_data import (
    ReviewInputs,
    accept_commands,
    cause_figure,
    correct_hint,
    store_commands,
)
from talktime.web.review_forms import (
    ACCEPT_PATH,
    CORRECT_PATH,
    CORRECTABLE,
    FORM_FIELD,
    Attempt,
    LiveHeld,
    StoreReview,
    form_token,
    post_review,
)

Render = Callable[..., HTMLResponse]
#: Rows a page lists of one statement's flagged lines, and of one month's held records; it says how many more.
ROW_LIMIT = 200


def _inputs(board: Dashboard) -> ReviewInputs:
    """The dashboard's statements and guards, and its files as given (for the commands the pages print); in
    served mode the store and tenant too (the commands there review a stored record)."""
    costs, prices = board.card_files
    tenant = str(getattr(board.served, "tenant", "")) if board.served is not None else ""
    options = getattr(getattr(board.served, "snapshots", None), "options", None)
    store = str(getattr(options, "store_label", "")) if tenant else ""
    return ReviewInputs(
        board.statements,
        board.guards,
        board.source,
        costs or "COSTS.toml",
        prices or "PRICES.toml",
        store=store or ("STORE" if tenant else ""),
        tenant=tenant,
    )


def _call_links(board: Dashboard) -> dict[str, object]:
    """What the flagged page links a held record's call with: ``call_link(customer, record)`` is its
    ``/call`` address, or "" when the call is not among the dashboard's (served: one that started before the
    window; its page would be a 404), and ``window`` the months the dashboard shows, said in its place."""

    def call_link(customer: str, record: UsageRecord) -> str:
        session = record.session or f"record:{record.id}"
        if board.calls.row(customer, session) is None:
            return ""
        return "/call?" + urlencode({"customer": customer, "session": session})

    months = sorted({period for _, period in board.months})
    since = getattr(board.served, "since", "")
    shown = f"{months[0]} to {months[-1]}" if len(months) > 1 else (months[0] if months else "none")
    window = f"months {shown}" + (f", calls started since {since}" if since else "")
    return {"call_link": call_link, "window": window}


def _customers(board: Dashboard) -> dict[str, list[str]]:
    found: dict[str, list[str]] = defaultdict(list)
    for customer, period in board.months:
        found[customer].append(period)
    return dict(found)


def queue_review_work(board: Dashboard) -> None:
    """Queue each statement's reconciliation, then each customer's held records (a key queued already keeps
    its job; served, the held records are read live from the store instead: :mod:`.review_forms`)."""
    inputs = _inputs(board)
    for number, spec in enumerate(inputs.statements):
        board.jobs.submit(f"reconcile:{number}", f"reconcile {spec.label}", _reconcile_of(board, spec))
    if StoreReview.of(board) is not None:
        return
    for customer, periods in _customers(board).items():
        board.jobs.submit(
            f"held:{customer}", f"{customer}'s held records", _held_of(board, customer, periods)
        )


def _reconcile_of(board: Dashboard, spec: StatementSpec) -> Callable[[], StatementReport]:
    return lambda: statement_report(spec, board.scan, board.costs)


def _held_of(board: Dashboard, customer: str, periods: list[str]) -> Callable[[], list[HeldMonth]]:
    def work() -> list[HeldMonth]:
        invoices = board.jobs.get(f"invoices:{customer}")  # the same drafts, queued before: done by now
        drafts = invoices.result if invoices is not None and invoices.done else None
        return held_records(
            lambda: board.records.of_customer(customer),  # read only for a month holding records back
            board.prices,
            customer,
            periods,
            ledger=board.ledger,
            guards=_inputs(board).guards,
            now=board.started,
            drafts=drafts,
        )

    return work


def _partial(request: Request, target: str) -> bool:
    return request.headers.get("HX-Request") == "true" and request.headers.get("HX-Target") == target


def statement_view(report: StatementReport, limit: int = ROW_LIMIT) -> dict[str, Any]:
    """What the page shows of one statement: the report's HTML values (``talktime reconcile --format
    html``'s) with its first ``limit`` flagged lines, the chart, and each line's call when the records hold
    it."""
    shown_lines = report.flagged[:limit]
    values = html_values(report.summary, shown_lines)
    money = report.summary.money
    currency = values["currency"]
    places = None if money is None else money["places"]
    # every line given is flagged, so html_values keeps their order (it sorts flagged lines first)
    for row, line in zip(values["lines"], shown_lines, strict=True):
        row["call"] = report.calls.get(row["record_id"])
        row["over"] = _over(line, places)
    return {
        **values,
        "report": report,
        "chart": cause_figure(report.summary, report.money_causes, currency),
        "places": places,
    }


def _over(line: dict[str, Any], places: int | None) -> str:
    """What a line was charged above our metering at the rate (``amount - expected_amount``), at the
    statement's precision with its sign."""
    if line.get("amount") is None or line.get("expected_amount") is None:
        return ""
    over = Decimal(line["amount"]) - Decimal(line["expected_amount"])
    written = shown(str(over), places)
    return f"+{written}" if over > 0 else written


def add_review_pages(app: FastAPI, board: Dashboard, render_page: Render) -> None:
    """Register ``/reconcile`` and ``/flagged`` and queue their work."""
    inputs = _inputs(board)
    customers = _customers(board)
    queue_review_work(board)
    drawn: dict[int, dict[str, Any]] = {}  # a statement's view is the same until the dashboard restarts

    def view(number: int, job: Job | None) -> dict[str, Any] | None:
        if job is None or not job.done or job.error:
            return None
        if number not in drawn:
            drawn[number] = statement_view(job.result)
        return drawn[number]

    @app.get("/reconcile", response_class=HTMLResponse)
    def reconcile_page(request: Request) -> HTMLResponse:
        jobs = [board.jobs.get(f"reconcile:{n}") for n in range(len(inputs.statements))]
        views = [view(number, job) for number, job in enumerate(jobs)]
        context = {
            "page": "reconcile",
            "statements": list(zip(inputs.statements, jobs, views, strict=True)),
            "pending": any(job is not None and not job.done for job in jobs),
            "inputs": inputs,
            "limit": ROW_LIMIT,
        }
        partial = _partial(request, "reconcile")
        return render_page("reconcile_body.html" if partial else "reconcile.html", **context)

    source = StoreReview.of(board)
    if source is not None:
        _add_served_flagged(app, source, inputs, render_page, _call_links(board))
        return

    @app.get("/flagged", response_class=HTMLResponse)
    def flagged_page(request: Request) -> HTMLResponse:
        jobs: dict[str, Job | None] = {c: board.jobs.get(f"held:{c}") for c in customers}
        done = [job for job in jobs.values() if job is not None and job.done and not job.error]
        months: list[HeldMonth] = [month for job in done for month in job.result]
        context = {
            "page": "flagged",
            "jobs": jobs,
            "months": months,
            "held_count": sum(len(m.records) for m in months),
            "pending": any(job is None or not job.done for job in jobs.values()),
            "failed": {c: job.error for c, job in jobs.items() if job is not None and job.error},
            "inputs": inputs,
            "accept_commands": lambda month: accept_commands(inputs, month, board.ledger),
            "correct_hint": correct_hint,
            "store_commands": lambda held: store_commands(inputs, held),
            "limit": ROW_LIMIT,
            "live": None,
            "forms": None,  # a records file: no store to keep a review in, the page prints the commands
            **_call_links(board),
        }
        partial = _partial(request, "flagged")
        return render_page("flagged_body.html" if partial else "flagged.html", **context)


def _add_served_flagged(
    app: FastAPI, source: StoreReview, inputs: ReviewInputs, render_page: Render, links: dict[str, object]
) -> None:
    """Served: ``/flagged`` read live from the store, with a form to accept or correct each held record
    (:mod:`.review_forms`; the dispatch checked the form token and the key's role before these run);
    ``links``: :func:`_call_links` of the snapshot's board."""
    from talktime.web.served import COOKIE

    live = LiveHeld(source)

    def page(request: Request, attempt: Attempt | None = None) -> HTMLResponse:
        try:
            found, error = live.get(), ""
        except TalktimeError as failed:  # shown on the page: the store could not be read, or a card
            found, error = None, str(failed)
        months = [] if found is None else found.months
        listed = {held.record.id for month in months for held in month.records[:ROW_LIMIT]}
        listed |= {j.record.id for j in ([] if found is None else found.elsewhere[:ROW_LIMIT])}
        reviewed = request.query_params.get("reviewed") if attempt is None else None
        context = {
            "page": "flagged",
            "jobs": {},
            "months": months,
            "held_count": sum(len(m.records) for m in months),
            "pending": False,
            "failed": {"the tenant": error} if error else {},
            "inputs": inputs,
            "accept_commands": lambda month: [],
            "correct_hint": correct_hint,
            "store_commands": lambda held: store_commands(inputs, held),
            "limit": ROW_LIMIT,
            "live": found,
            "forms": {
                "token": form_token(request.cookies.get(COOKIE)),
                "field": FORM_FIELD,
                "accept": ACCEPT_PATH,
                "correct": CORRECT_PATH,
                "correctable": CORRECTABLE,
                "fix": fields_to_check,
                "row": record_to_row,
                "codes": lambda reasons: tuple(reason.partition(":")[0] for reason in reasons),
                "attempt": attempt,
                "attempt_listed": attempt is not None and attempt.record in listed,
                "reviewed": reviewed,
                "action": request.query_params.get("action", ""),
                "still_held": request.query_params.get("held") == "yes",
            },
            **links,
        }
        return render_page("flagged.html", **context)

    @app.get("/flagged", response_class=HTMLResponse)
    def flagged_page(request: Request) -> HTMLResponse:
        answer = page(request)
        answer.headers["Cache-Control"] = "no-store"  # a review changes it: never a stale copy
        return answer

    async def reviewed(request: Request, action: str) -> Response:
        done = await post_review(request, source, action)
        if isinstance(done, Attempt):  # the page again, the error beside the record's form (200, as sign-in)
            return await run_in_threadpool(page, request, done)
        return done

    @app.post(ACCEPT_PATH, include_in_schema=False)
    async def accept_form(request: Request) -> Response:
        return await reviewed(request, "accept")

    @app.post(CORRECT_PATH, include_in_schema=False)
    async def correct_form(request: Request) -> Response:
        return await reviewed(request, "correct")
