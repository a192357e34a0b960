"""The dashboard's HTTP app: one route per page, each rendering a template over :class:`Dashboard`.

``/calls`` answers an htmx request (a sort, filter or page change) with the table alone, and a plain
request with the whole page, so every view has its own address and works without JavaScript too.
"""

from __future__ import annotations

import functools
import html
import importlib.util
import re
from collections.abc import Iterable
from importlib.resources import files
from pathlib import Path
from typing import Annotated

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from talktime.app.methodology import PageFormat
from talktime.app.methodology import page as methodology_page
from talktime.app.plan_fees import plan_fees
from talktime.core.rating.cards import Entry
from talktime.errors import InputError, TalktimeError
from talktime.web import numbers
from talktime.web.alerts import add_alerts_pages
from talktime.web.calls_table import CallsQuery
from talktime.web.data import Dashboard
from talktime.web.overview import by_key_figure, minutes_figure, usage_rows
from talktime.web.pages import add_invoice_pages, add_whatif_pages, queue_work
from talktime.web.review_pages import add_review_pages

MODALITY_NAMES = {
    "telephony": "telephony",
    "stt": "STT",
    "llm": "LLM",
    "tts": "TTS",
    "platform": "platform",
    "other": "other",
}
COLUMN_NAMES = {
    "customer": "customer",
    "session": "call",
    "started_at": "started (UTC)",
    "minutes": "minutes sold",
    "cost": "cost",
    "price": "price",
    "margin": "margin",
    "margin_percent": "margin %",
    "cost_per_minute": "cost / min",
}


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("talktime.web", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["fixed"] = numbers.fixed
    env.filters["exact"] = numbers.exact
    env.globals["uplift"] = numbers.uplift
    env.globals["modality_names"] = MODALITY_NAMES
    env.globals["column_names"] = COLUMN_NAMES
    return env


def plotly_js() -> Path:
    """Plotly's bundle as the ``plotly`` package ships it (the version its Python side was built with)."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("the dashboard's charts need plotly: pip install 'talktime[dashboard]'")
    return Path(spec.submodule_search_locations[0]) / "package_data" / "plotly.min.js"


def _invoiced(board: Dashboard) -> list[dict[str, object]]:
    """The overview's customer months that are invoices (a served window's oldest month of a customer west of
    UTC began before the window: a PART row, no invoice, so no fee)."""
    whole = set(board.months)
    return [row for row in board.customers.rows if (row.get("customer"), row.get("period")) in whole]


def _entries(board: Dashboard, ids: Iterable[str]) -> list[Entry]:
    """The cost entries named ``ids`` (those with placeholder prices a page names), in card order."""
    wanted = set(ids)
    return [e for e in board.costs.entries if e.id in wanted]


def create_app(board: Dashboard) -> FastAPI:
    """The dashboard over ``board`` (a record file rated once)."""
    env = _environment()
    bundle = plotly_js()  # a missing plotly stops the command before it serves
    app = FastAPI(title="talktime dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    static = files("talktime.web").joinpath("static")
    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    stack = board.calls.stack
    sortable = board.calls.sortable
    modality_of = {e.id: e.modality for e in board.costs.entries}

    def placeholder_modalities(row: dict[str, object]) -> set[str]:
        """The modalities of a call's costs priced by placeholder prices (its stack's marked columns)."""
        return {modality_of.get(str(e), "other") for e in row.get("placeholder_entries") or ()}  # type: ignore[attr-defined]

    def render(name: str, **context: object) -> HTMLResponse:
        base = {"board": board, "currency": board.currency, "source": board.source}
        return HTMLResponse(env.get_template(name).render(**base, **context))

    @app.get("/static-lib/plotly.min.js", include_in_schema=False)
    def plotly_bundle() -> FileResponse:
        return FileResponse(bundle, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})

    @functools.cache
    def overview_page() -> HTMLResponse:
        """The overview is the same until the file is loaded again: drawn once."""
        usage = board.usage
        return render(
            "overview.html",
            page="overview",
            totals=board.totals(),
            calls=board.calls.count,
            loss_calls=board.calls.loss_calls,
            incomplete_calls=board.calls.incomplete_calls,
            placeholder_calls=board.calls.placeholder_calls,
            placeholder_entries=_entries(board, board.calls.placeholder_entries),
            customers=board.customers,
            fees=plan_fees(board.prices, _invoiced(board)),  # the price shown leaves them out: said
            providers=board.providers,
            customer_usage=usage_rows(usage.by_customer, with_meter=False),
            provider_usage=usage_rows(usage.by_provider, with_meter=True),
            sold_chart=minutes_figure(usage.by_customer, "Minutes sold per day: actual and billable"),
            customer_chart=by_key_figure(usage.by_customer, "Billable minutes per day by customer"),
            provider_chart=by_key_figure(usage.by_provider, "Billable provider minutes per day by provider"),
        )

    overview_page()  # drawn while the command starts (seconds at 1M records), not on a reader's request

    @app.get("/", response_class=HTMLResponse)
    def overview() -> HTMLResponse:
        return overview_page()

    @app.get("/calls", response_class=HTMLResponse)
    def calls(
        request: Request,
        customer: str = "",
        provider: str = "",
        loss: Annotated[str, Query()] = "",
        incomplete: Annotated[str, Query()] = "",
        sort: str = "started_at",
        dir: str = "asc",
        page: int = 1,
        placeholder: Annotated[str, Query()] = "",
    ) -> HTMLResponse:
        query = CallsQuery(
            customer,
            provider,
            loss not in ("", "0"),
            incomplete not in ("", "0"),
            sort if sort in sortable else "started_at",
            dir == "desc",
            page,
            placeholder not in ("", "0"),
        )
        found = board.calls.select(query)
        context = {
            "page": "calls",
            "query": query,
            "found": found,
            "stack": stack,
            "sortable": sortable,
            "customers": board.calls.customers,
            "providers": board.calls.providers,
            "placeholder_entries": _entries(board, board.calls.placeholder_entries),
            "placeholder_modalities": placeholder_modalities,
        }
        partial = request.headers.get("HX-Request") == "true" and request.headers.get("HX-Target") == "calls"
        return render("calls_table.html" if partial else "calls.html", **context)

    @app.get("/call", response_class=HTMLResponse)
    def call(customer: str, session: str) -> HTMLResponse:
        row = board.calls.row(customer, session)
        if row is None:
            raise HTTPException(404, f"no call {session!r} of customer {customer!r} in {board.source}")
        made_up = _entries(board, row.get("placeholder_entries") or ())  # type: ignore[arg-type]
        return render(
            "call.html",
            page="calls",
            row=row,
            stack=stack,
            records=board.trails((customer, session)),
            placeholder_entries=made_up,
            placeholder_modalities={e.modality for e in made_up},
            placeholder_providers={e.policy.provider or e.id for e in made_up},
        )

    add_invoice_pages(app, board, render)
    add_whatif_pages(app, board, render)
    queue_work(board)
    add_review_pages(app, board, render)  # /reconcile, /flagged: queued after the pages' work above
    add_alerts_pages(app, board, render)  # /alerts: checked when the CLI enables them (--alerts)

    @app.get("/jobs", include_in_schema=False)
    def jobs() -> dict[str, str]:
        """Each background job's state (queued, running, done, failed): for scripts and the benchmark."""
        return board.jobs.states()

    @app.get("/methodology", response_class=HTMLResponse)
    def methodology_list() -> HTMLResponse:
        return render("methodology_list.html", page="methodology", policies=board.policies)

    @app.get("/methodology/{policy_id}", response_class=HTMLResponse)
    def methodology(policy_id: str) -> HTMLResponse:
        if policy_id not in board.policies:
            raise HTTPException(404, f"no policy {policy_id!r} on these cards")
        on_cards = {e.policy.id: e.policy for e in (*board.costs.entries, *board.prices.components)}
        try:  # the card's own policy object: a card may define one inline (plan-call-minute's call-minute)
            body = _body(methodology_page(on_cards[policy_id], PageFormat.html))
        except TalktimeError as error:
            raise HTTPException(404, str(error)) from None
        return render("methodology.html", page="methodology", policy_id=policy_id, body=body)

    @app.exception_handler(HTTPException)
    def not_found(request: Request, error: HTTPException) -> Response:
        return HTMLResponse(
            env.get_template("error.html").render(
                board=board, currency=board.currency, source=board.source, page="", message=error.detail
            ),
            status_code=error.status_code,
        )

    return app


_BODY = re.compile(r"<body>(.*)</body>", re.S)


def _body(page: str) -> str:
    """The content of ``talktime methodology --format html`` (a whole page) for the dashboard's layout."""
    found = _BODY.search(page)
    return found.group(1) if found else f"<pre>{html.escape(page)}</pre>"
