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
from talktime.core.rating.margin import MODALITIES
from talktime.core.simulate.costs import Stack
from talktime.core.simulate.impact import PolicyImpact
from talktime.core.simulate.switch import CallChange, CustomerChange, Switch
from talktime.simulate.run import Simulation


def _num(value: Decimal | None, places: int = 6) -> str | None:
    return None if value is None else text(quantize(value, places))


def _by_modality(values: Mapping[str, Decimal] | None) -> dict[str, str | None] | None:
    if values is None:
        return None
    return {m: _num(values.get(m, Decimal(0))) for m in MODALITIES if m != "other" or values.get(m)}


def impact_dict(line: PolicyImpact) -> dict[str, Any]:
    return {
        "policy": line.policy,
        "rule": line.rule,
        "unit": line.unit,
        "modality": line.modality,
        "records": line.records,
        "exact_seconds": text(line.exact_seconds) if line.is_time else None,
        "billable_seconds": text(line.billable_seconds) if line.is_time else None,
        "exact_minutes": _num(line.exact_minutes) if line.is_time else None,
        "billable_minutes": _num(line.billable_minutes) if line.is_time else None,
        "extra_minutes": _num(line.extra_minutes) if line.is_time else None,
        "exact_quantity": _num(line.exact_quantity),
        "billable_quantity": _num(line.billable_quantity),
        "extra_quantity": _num(line.extra_quantity),
        "quantity_unit": line.quantity_unit,
        "extra_percent": _num(line.extra_percent, 4),
        "currency": line.currency,
        "cost": _num(line.cost),
        "exact_cost": _num(line.exact_cost),
        "extra_cost": _num(line.extra_cost),
        "cost_note": line.cost_note,
        "modality_cost_now": _num(line.cost_now),
        "modality_cost_now_complete": not line.own_incomplete,
        "other_modalities_cost": _num(line.others_cost),
        "calls_cost": _num(line.calls_cost),
        "complete": not line.missing,
        "missing_costs": line.missing.as_dict(),
        **_placeholders(line.placeholder, line.placeholder_now),
    }


def _placeholders(own: Sequence[str], now: Sequence[str] = ()) -> dict[str, Any]:
    """A line's cost entries with placeholder prices (``placeholder_entries``: those that price its cost,
    ``placeholder_entries_now``: its records' today); no field when there are none (JSON as before)."""
    out: dict[str, Any] = {}
    if own or now:
        out["placeholder_entries"] = list(own)
        out["placeholder_entries_now"] = list(now)
    return out


def stack_dict(stack: Stack | None) -> dict[str, Any] | None:
    if stack is None:
        return None
    return {
        "by_modality": _by_modality(stack.by_modality),
        "total": _num(stack.total),
        "complete": not stack.missing,
        "missing_costs": stack.missing.as_dict(),
        **({"placeholder_entries": list(stack.placeholder)} if stack.placeholder else {}),
    }


def simulation_dict(sim: Simulation) -> dict[str, Any]:
    return {
        "source": sim.source,
        "calls": sim.calls,
        "records": sim.records,
        "seed": sim.seed,
        "channels": sim.channels or None,
        "participants": sim.participants or None,
        "rules": sim.rules.label,
        "rules_at": None if sim.rules.at is None else sim.rules.at.isoformat(),
        "exact_means": "each record's actual quantity under the policy's basis, one charge per record",
        "policies": [impact_dict(line) for line in sim.impacts],
        "cost_stack_now": stack_dict(sim.stack),
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
        "other_costs_by_modality": _by_modality(part.other_by_modality),
        "margin_percent": _num(None if part.margin_share is None else part.margin_share * 100, 4),
        "price_per_minute": _num(part.price_per_minute),
        "price_per_minute_to_keep_margin_percent": _num(part.price_keep_share),
        "price_per_minute_to_keep_margin_amount": _num(part.price_keep_amount),
        "complete": not part.missing,
        "missing_costs": part.missing.as_dict(),
        **({"placeholder_entries": list(part.placeholder)} if part.placeholder else {}),
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
        "from": switch.from_entry.group or switch.from_policy.id,
        "to": switch.to_entry.group or switch.to_policy.id,
        "from_policy": switch.from_policy.id,
        "to_policy": switch.to_policy.id,
        "currency": switch.currency,
        "rules": switch.rules.label,
        "rules_at": None if switch.rules.at is None else switch.rules.at.isoformat(),
        **({"from_placeholder": True} if switch.from_entry.placeholder else {}),
        **({"to_placeholder": True} if switch.to_entry.placeholder else {}),
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


def _money(value: Decimal | None, lower_bound: bool = False, made_up: bool = False) -> str:
    """An amount for a table; ``>=`` a lower bound, ``*`` priced in part by a placeholder price."""
    if value is None:
        return "-"
    return ("* " if made_up else "") + (">= " if lower_bound else "") + text(quantize(value, 4))


def _pct(value: Decimal | None, made_up: bool = False) -> str:
    """A change in percent; ``*`` when a placeholder price prices either side of it."""
    return "-" if value is None else ("* " if made_up else "") + f"{quantize(value, 2):+}%"


def _quantity(value: Decimal, unit: str) -> str:
    return f"{text(quantize(value, 2))} {unit}"


def simulation_table(sim: Simulation) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """The simulation's rows as every face shows them (the table, the HTML report): header and text cells.

    On history each row also shows its modality's cost today, the calls' whole cost with the policy in that
    modality (``>=`` when some record has no cost entry) and those records, by provider and product."""
    history = sim.stack is not None
    header: tuple[str, ...] = ("policy", "rule", "records", "billable", "exact", "extra", "extra %")
    header += ("cost", "exact cost", "extra cost")
    if history:
        header += ("modality", "own providers' cost", "calls cost", "missing costs")
    rows = []
    for i in sim.impacts:
        row: tuple[str, ...] = (
            i.policy,
            i.rule,
            f"{i.records:,}",
            _quantity(i.billable_quantity, i.quantity_unit),
            _quantity(i.exact_quantity, i.quantity_unit),
            _quantity(i.extra_quantity, i.quantity_unit),
            _pct(i.extra_percent),
            _money(i.cost, made_up=bool(i.placeholder)),
            _money(i.exact_cost, made_up=bool(i.placeholder)),
            _money(i.extra_cost, made_up=bool(i.placeholder)),
        )
        if history:
            whole = sim.stack.placeholder if sim.stack is not None else ()
            row += (
                i.modality or "-",
                _money(i.cost_now, i.own_incomplete, bool(i.placeholder_now)),
                _money(i.calls_cost, bool(i.missing), bool(i.placeholder or whole)),
                i.missing.short(),
            )
        rows.append(row)
    return header, rows


def stack_line(stack: Stack) -> str:
    """The history's cost today, by modality, and what is missing from it."""
    parts = ", ".join(f"{m} {_money(v)}" for m, v in stack.by_modality.items() if m != "other" or v)
    total = _money(stack.total, bool(stack.missing), bool(stack.placeholder))
    line = f"these records' cost by their own providers (same rules): {parts}; total {total}"
    if stack.missing:
        line += f"; {stack.missing.describe()} (their cost is unknown, not zero)"
    return line


def switch_table(switch: Switch) -> tuple[tuple[str, ...], list[tuple[str, ...]]]:
    """The switch's customer rows as every face shows them: header and text cells. ``missing costs`` counts
    the customer's records no cost entry takes (the platform cost is then a lower bound, ``>=``); ``*`` marks
    a cost priced in part by placeholder prices (the switch's notes name them)."""
    was, will = switch.from_entry.placeholder, switch.to_entry.placeholder
    header: tuple[str, ...] = ("customer", "calls", "cost from", "cost to", "change", "change %")
    header += ("platform cost now",)
    header += ("price/min now", "keep margin %", "keep margin amount", "missing costs")
    rows: list[tuple[str, ...]] = [
        (
            c.customer,
            str(c.calls),
            _money(c.cost_from, made_up=was),
            _money(c.cost_to, made_up=will),
            _money(c.delta, made_up=was or will),
            _pct(c.delta_percent, made_up=was or will),
            _money(c.platform_cost, c.incomplete, bool(c.placeholder)),
            _money(c.price_per_minute),
            _money(c.price_keep_share, made_up=bool(c.placeholder) or was or will),
            _money(c.price_keep_amount, made_up=was or will),
            c.missing.short(),
        )
        for c in [*switch.customers, switch.total]
    ]
    return header, rows


def simulation_html(sim: Simulation, figures: Mapping[str, Path]) -> str:
    header, rows = simulation_table(sim)
    facts = f"{sim.source}; {sim.records:,} records; {sim.rules.label}"
    body = f"<p>{escape(facts)}. Exact: each record's actual quantity, one charge per record.</p>"
    body += _table(header, rows)
    if sim.stack is not None:
        body += f"<p>{escape(stack_line(sim.stack))}</p>"
    body += "".join(f"<p>{escape(n)}</p>" for n in sim.notes)
    return _page("Rounding impact by policy", body + _figures(figures))


def switch_html(switch: Switch, figures: Mapping[str, Path], top: int = 10) -> str:
    header, rows = switch_table(switch)
    calls = [
        (c.session, c.customer, c.seconds_from, c.seconds_to, c.cost_from, c.cost_to, c.delta)
        for c in switch.biggest(top)
    ]
    title = f"Switching {switch.name} ({switch.currency})"
    body = f"<p>Both sides: {escape(switch.rules.label)}.</p>"
    body += _table(header, rows) + "<h2>Calls that change most</h2>"
    body += _table(
        ("call", "customer", "billable from", "billable to", "cost from", "cost to", "change"), calls
    )
    body += "".join(f"<p>{escape(n)}</p>" for n in switch.notes)
    return _page(title, body + _figures(figures))
