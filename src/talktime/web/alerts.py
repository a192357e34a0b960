"""The alerts page: the alerts open over the dashboard's record file (``talktime alerts check``'s, from
:mod:`talktime.app.alerts` over the rows the dashboard rated once), each with its customer, rule, value and
threshold in words and units, and how its delivery to the webhook went (read from the delivery state file
on every request, so a ``talktime alerts check --send`` shows up at once).

Wiring, for ``talktime dashboard --alerts CONFIG``: :func:`alerts_setup` checks the configuration before the
file is rated (a bad key stops the command at once), :func:`enable_alerts` queues the check on a
background worker of its own once the app exists; :func:`add_alerts_pages` is the route, registered by
:func:`talktime.web.app.create_app`. Without ``--alerts`` the page says how to turn alerts on.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse

from talktime.app.alert_delivery import Delivery, delivery_outcomes, delivery_words, state_file
from talktime.app.alerts import AlertCheck, alerts_of_rated, load_config
from talktime.core.alerts.config import AlertConfig
from talktime.core.alerts.model import RULE_NAMES, Alert, Rule
from talktime.errors import TalktimeError
from talktime.web.data import Dashboard
from talktime.web.jobs import Jobs
from talktime.web.numbers import fixed

Render = Callable[..., HTMLResponse]
JOB = "alerts"
CALL_RULES = frozenset({Rule.long_call, Rule.tokens_per_minute, Rule.stuck_call})


@dataclass(frozen=True, slots=True)
class AlertsSetup:
    """The configuration the dashboard checks alerts with, and the file it came from."""

    path: Path
    config: AlertConfig
    served: bool = False  # checked by ``talktime serve --alerts`` (web.served_alerts), not by this file's run

    @property
    def state(self) -> Path | None:
        webhook = self.config.webhook
        return None if webhook is None else state_file(self.path, webhook)


def alerts_setup(path: Path) -> AlertsSetup:
    """The configuration in ``path``, checked (every bad key named): call it before the file is rated."""
    return AlertsSetup(path, load_config(path))


def enable_alerts(app: FastAPI, board: Dashboard, setup: AlertsSetup) -> None:
    """Check the alerts over ``board`` in the background; the alerts page shows them when done. The check
    has a worker of its own: it takes a fraction of a second per 3,000 calls, and would otherwise wait
    behind the invoices and what-if runs (minutes over a large file)."""
    jobs = Jobs()

    def work() -> AlertCheck:
        rows = board.calls.rows(np.arange(board.calls.count, dtype=np.int64))
        return alerts_of_rated(rows, board.scan, setup.config, board.currency, source=board.source)

    jobs.submit(JOB, "alerts", work)
    app.state.alerts = (setup, jobs)


def quantity(value: Decimal, unit: str) -> str:
    """A value in its unit as the page shows it: seconds as minutes (hours from 2 h), money to the cent.

    >>> quantity(Decimal("3738.2"), "s"), quantity(Decimal("9000"), "s"), quantity(Decimal("12.346"), "USD")
    ('62.3 min', '2.5 h', '12.35 USD')
    """
    if unit == "s":
        return f"{fixed(value / 3600, 1)} h" if value >= 7200 else f"{fixed(value / 60, 1)} min"
    if unit == "min":
        return f"{fixed(value, 1)} min"
    if unit == "tokens/min":
        return f"{fixed(value, 0)} tokens/min"
    return f"{fixed(value, 2)} {unit}"


def add_alerts_pages(app: FastAPI, board: Dashboard, render_page: Render) -> None:
    @app.get("/alerts", response_class=HTMLResponse)
    def alerts(request: Request) -> HTMLResponse:
        enabled: tuple[AlertsSetup, Jobs] | None = getattr(app.state, "alerts", None)
        setup, job = (None, None) if enabled is None else (enabled[0], enabled[1].get(JOB))
        found: AlertCheck | None = job.result if job is not None and job.done else None
        outcomes: dict[str, Delivery] = {}
        state_error = ""
        if setup is not None and setup.state is not None:
            try:
                outcomes = delivery_outcomes(setup.state)
            except TalktimeError as error:  # served: a tenant is shown no path of the server's
                state_error = "the server could not read its delivery record" if setup.served else str(error)
        shown: list[Alert] = list(found.alerts) if found is not None else []
        partial = request.headers.get("HX-Request") == "true" and request.headers.get("HX-Target") == "alerts"
        return render_page(
            "alerts_body.html" if partial else "alerts.html",
            page="alerts",
            setup=setup,
            job=job,
            found=found,
            alerts=shown,
            counts=Counter(a.rule for a in shown),
            rule_names=RULE_NAMES,
            call_rules=CALL_RULES,
            on_board=lambda alert: board.calls.has(alert.customer, alert.subject),
            outcomes=outcomes,
            state_error=state_error,
            quantity=quantity,
            delivery_words=delivery_words,
        )
