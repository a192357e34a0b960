"""The overview page's figures: usage per day (actual beside billable), per customer and per provider, and
the month's cost, price and margin per customer. Charts are Plotly figures as JSON (the page draws them);
the tables beside them carry the exact numbers.

The margin report's price is the usage price of the calls: the plan's fees (``[fees.<id>]``, per customer
month) and a minimum commitment's true-up are period items on the invoices, in no call
(:mod:`talktime.core.rating.margin`). :func:`talktime.app.plan_fees.plan_fees` says how much the fees add,
so the page names its price for what it is beside the figure."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from talktime.app.usage_series import UsagePoint
from talktime.web.numbers import minutes

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One key's (customer's or provider meter's) usage over the whole file."""

    key: str
    meter: str
    unit: str  # "min" for time meters, else the count unit
    records: int
    actual: Decimal  # minutes for time meters
    billable: Decimal


def usage_rows(points: Iterable[UsagePoint], *, with_meter: bool) -> list[UsageRow]:
    """Points added up per key (and meter): time in minutes."""
    sums: dict[tuple[str, str, str], list[Decimal]] = {}
    for p in points:
        found = sums.setdefault((p.key, p.meter if with_meter else "", p.unit), [ZERO, ZERO, ZERO])
        found[0] += p.records
        found[1] += p.actual
        found[2] += p.billable
    rows = []
    for (key, meter, unit), (records, actual, billable) in sorted(sums.items()):
        time = unit == "s"
        rows.append(
            UsageRow(
                key,
                meter,
                "min" if time else unit,
                int(records),
                minutes(actual) if time else actual,
                minutes(billable) if time else billable,
            )
        )
    return rows


def _days(points: Iterable[UsagePoint]) -> list[date]:
    return sorted({p.day for p in points})


def minutes_figure(points: tuple[UsagePoint, ...], title: str) -> str:
    """Bars of actual and billable minutes per day, side by side (time meters only), as Plotly JSON."""
    timed = [p for p in points if p.unit == "s"]
    actual: dict[date, Decimal] = defaultdict(Decimal)
    billable: dict[date, Decimal] = defaultdict(Decimal)
    for p in timed:
        actual[p.day] += p.actual
        billable[p.day] += p.billable
    days = _days(timed)
    x = [d.isoformat() for d in days]
    traces: list[dict[str, object]] = [
        {
            "type": "bar",
            "name": "actual minutes",
            "x": x,
            "y": [float(minutes(actual[d])) for d in days],
            "marker": {"color": "#7f9fbf"},
            "hovertemplate": "%{x}<br>actual %{y:,.1f} min<extra></extra>",
        },
        {
            "type": "bar",
            "name": "billable minutes",
            "x": x,
            "y": [float(minutes(billable[d])) for d in days],
            "marker": {"color": "#1f3f6f", "pattern": {"shape": "/"}},
            "hovertemplate": "%{x}<br>billable %{y:,.1f} min<extra></extra>",
        },
    ]
    return figure(traces, title, "minutes", barmode="group")


def by_key_figure(points: tuple[UsagePoint, ...], title: str) -> str:
    """Billable minutes per day, one line per key (customer or provider), as Plotly JSON."""
    timed = [p for p in points if p.unit == "s"]
    days = _days(timed)
    per_key: dict[str, dict[date, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for p in timed:
        per_key[p.key][p.day] += p.billable
    dashes = ("solid", "dot", "dash", "longdash", "dashdot", "longdashdot")
    traces: list[dict[str, object]] = [
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": key,
            "x": [d.isoformat() for d in days],
            "y": [float(minutes(values.get(d, ZERO))) for d in days],
            "line": {"dash": dashes[i % len(dashes)]},
            "hovertemplate": f"{key}<br>%{{x}}: %{{y:,.1f}} billable min<extra></extra>",
        }
        for i, (key, values) in enumerate(sorted(per_key.items()))
    ]
    return figure(traces, title, "billable minutes")


def figure(traces: list[dict[str, object]], title: str, y_title: str, **layout: object) -> str:
    body = {
        "data": traces,
        "layout": {
            "title": {"text": title, "x": 0, "font": {"size": 15}},
            "xaxis": {"title": {"text": "day (UTC)"}, "type": "date"},
            "yaxis": {"title": {"text": y_title}, "rangemode": "tozero"},
            "legend": {"orientation": "h", "y": -0.25},
            "margin": {"l": 60, "r": 20, "t": 40, "b": 60},
            "height": 340,
            **layout,
        },
    }
    return json.dumps(body).replace("</", "<\\/")  # safe inside a <script type="application/json">
