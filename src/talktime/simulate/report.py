"""Simulation and switch results as JSON-ready dicts and as one HTML report with the charts embedded.

Owns: the shapes of ``--format json`` and ``--format html``. Amounts are exact and unrounded (see
``talktime.core.rating.money``); the HTML shows them to 4 places, percentages to 2.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from decimal import Decimal
from html import escape
from pathlib import Path
from typing import Any

from talktime.core.decimals import quantize, text
from talktime.core.simulate.impact import PolicyImpact
from talktime.core.simulate.switch import CallChange, CustomerChange, Switch
from talktime.simulate.run import Simulation


def _num(value: Decimal | None, places: int = 6) -> str | None:
    return None if value is None else text(quantize(value, places))


def impact_dict(line: PolicyImpact) -> dict[str, Any]:
    return {
        "policy": line.policy,
        "rule": line.rule,
        "records": line.records,
        "exact_seconds": text(line.exact_seconds),
        "billable_seconds": text(line.billable_seconds),
        "exact_minutes": _num(line.exact_minutes),
        "billable_minutes": _num(line.billable_minutes),
        "extra_minutes": _num(line.extra_minutes),
        "extra_percent": _num(line.extra_percent, 4),
        "currency": line.currency,
        "cost": _num(line.cost),
        "exact_cost": _num(line.exact_cost),
        "extra_cost": _num(line.extra_cost),
        "cost_note": line.cost_note,
    }


def simulation_dict(sim: Simulation) -> dict[str, Any]:
    return {
        "source": sim.source,
        "calls": sim.calls,
        "records": sim.records,
        "seed": sim.seed,
        "channels": sim.channels or None,
        "participants": sim.participants or None,
        "rules_at": sim.at.isoformat(),
        "exact_means": "each record's actual seconds under the policy's basis, one charge per record",
        "policies": [impact_dict(line) for line in sim.impacts],
        "notes": sim.notes,
    }


def _customer(part: CustomerChange) -> dict[str, Any]:
    return {
        "customer": part.customer,
        "calls": part.calls,
        "billable_seconds_from": text(part.seconds_from),
        "billable_seconds_to": text(part.seconds_to),
        "cost_from": _num(part.cost_from),
        "cost_to": _num(part.cost_to),
        "cost_change": _num(part.delta),
        "cost_change_percent": _num(part.delta_percent, 4),
        "revenue": _num(part.revenue),
        "minutes_sold": _num(part.minutes_sold),
        "platform_cost": _num(part.platform_cost),
        "margin_percent": _num(None if part.margin_share is None else part.margin_share * 100, 4),
        "price_per_minute": _num(part.price_per_minute),
        "price_per_minute_to_keep_margin_percent": _num(part.price_keep_share),
        "price_per_minute_to_keep_margin_amount": _num(part.price_keep_amount),
    }


def _call(call: CallChange) -> dict[str, Any]:
    return {
        "customer": call.customer,
        "session": call.session,
        "records": call.records,
        "billable_seconds_from": text(call.seconds_from),
        "billable_seconds_to": text(call.seconds_to),
        "cost_from": _num(call.cost_from),
        "cost_to": _num(call.cost_to),
        "cost_change": _num(call.delta),
    }


def switch_dict(switch: Switch, top: int = 10) -> dict[str, Any]:
    return {
        "from": switch.from_policy.id,
        "to": switch.to_policy.id,
        "currency": switch.currency,
        "rules": "today's profile version and price on both sides, applied to every past call",
        "total": _customer(switch.total),
        "customers": [_customer(c) for c in switch.customers],
        "biggest_changes": [_call(c) for c in switch.biggest(top)],
        "calls": [_call(c) for c in switch.calls],
        "notes": list(switch.notes),
    }


# --- HTML ---------------------------------------------------------------------------------------------------

_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:64rem;margin:2rem auto;line-height:1.45}"
    "table{border-collapse:collapse;margin:1rem 0}td,th{border:1px solid #ccc;padding:.25rem .5rem}"
    "td{text-align:right}td:first-child{text-align:left}figure{margin:1.5rem 0}img{max-width:100%}"
)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, Decimal):
        return text(quantize(value, 4))
    return str(value)


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(_cell(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figures(figures: Mapping[str, Path]) -> str:
    parts = []
    for caption, path in figures.items():
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        parts.append(
            f'<figure><img alt="{escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{escape(caption)} ({escape(path.name)})</figcaption></figure>"
        )
    return "".join(parts)


def _page(title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{_STYLE}</style></head><body><h1>{escape(title)}</h1>{body}</body></html>\n"
    )


def simulation_html(sim: Simulation, figures: Mapping[str, Path]) -> str:
    rows = [
        (
            i.policy,
            i.rule,
            i.records,
            i.billable_minutes,
            i.exact_minutes,
            i.extra_minutes,
            None if i.extra_percent is None else quantize(i.extra_percent, 2),
            i.cost,
            i.exact_cost,
            i.extra_cost,
        )
        for i in sim.impacts
    ]
    header = (
        "policy",
        "rule",
        "records",
        "billable min",
        "exact min",
        "extra min",
        "extra %",
        "cost",
        "exact cost",
        "extra cost",
    )
    facts = f"{sim.source}; {sim.records:,} records; rules and prices in force on {sim.at.date().isoformat()}"
    body = f"<p>{escape(facts)}. Exact: each record's actual seconds, one charge per record.</p>"
    body += _table(header, rows)
    body += "".join(f"<p>{escape(n)}</p>" for n in sim.notes)
    return _page("Rounding impact by policy", body + _figures(figures))


def switch_html(switch: Switch, figures: Mapping[str, Path], top: int = 10) -> str:
    header = (
        "customer",
        "calls",
        "cost from",
        "cost to",
        "change",
        "change %",
        "price/min now",
        "price/min keep %",
        "price/min keep amount",
    )
    rows = [
        (
            c.customer,
            c.calls,
            c.cost_from,
            c.cost_to,
            c.delta,
            None if c.delta_percent is None else quantize(c.delta_percent, 2),
            c.price_per_minute,
            c.price_keep_share,
            c.price_keep_amount,
        )
        for c in [*switch.customers, switch.total]
    ]
    calls = [
        (c.session, c.customer, c.seconds_from, c.seconds_to, c.cost_from, c.cost_to, c.delta)
        for c in switch.biggest(top)
    ]
    title = f"Switching {switch.from_policy.id} -> {switch.to_policy.id} ({switch.currency})"
    body = "<p>Today's profile version and price on both sides, applied to every past call.</p>"
    body += _table(header, rows) + "<h2>Calls that change most</h2>"
    body += _table(
        ("call", "customer", "billable s from", "billable s to", "cost from", "cost to", "change"), calls
    )
    body += "".join(f"<p>{escape(n)}</p>" for n in switch.notes)
    return _page(title, body + _figures(figures))
