"""The what-if page's charts: each policy's exact beside billable quantity (the rounding impact, from
``talktime simulate`` over the file) and each customer's cost before and after a provider switch (from
``talktime compare``), as Plotly JSON. The tables beside them carry the exact numbers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from talktime.web.overview import figure

if TYPE_CHECKING:
    from talktime.core.simulate.impact import PolicyImpact
    from talktime.core.simulate.switch import Switch

IN_USE = "#1f3f6f"
OTHER = "#7f9fbf"


def rounding_figure(impacts: Sequence[PolicyImpact], in_use: frozenset[str], modality: str) -> str:
    """Bars of exact and billable minutes for every time policy of one modality, side by side; the
    products in use drawn dark and named so."""
    chosen = [i for i in impacts if i.modality == modality and i.is_time]
    names = [f"{i.policy} (in use)" if i.policy in in_use else i.policy for i in chosen]
    traces: list[dict[str, object]] = [
        {
            "type": "bar",
            "name": "exact minutes (each record's own length)",
            "x": names,
            "y": [float(i.exact_quantity) for i in chosen],
            "marker": {"color": "#c9d6e3", "line": {"color": "#1b1f24", "width": 1}},
            "hovertemplate": "%{x}<br>exact %{y:,.0f} min<extra></extra>",
        },
        {
            "type": "bar",
            "name": "billable minutes (the policy's rounding)",
            "x": names,
            "y": [float(i.billable_quantity) for i in chosen],
            "marker": {
                "color": [IN_USE if i.policy in in_use else OTHER for i in chosen],
                "pattern": {"shape": "/"},
            },
            "text": [_percent(i) for i in chosen],
            "textposition": "outside",
            "hovertemplate": "%{x}<br>billable %{y:,.0f} min (%{text})<extra></extra>",
        },
    ]
    return figure(
        traces,
        f"{modality_title(modality)}: exact and billable minutes by policy",
        "minutes",
        barmode="group",
        xaxis={"type": "category", "title": {"text": "policy"}},
    )


def _percent(impact: PolicyImpact) -> str:
    extra = impact.extra_percent
    return "-" if extra is None else f"{extra:+.1f}% billed"


def switch_figure(switch: Switch) -> str:
    """Each customer's cost of the switched product, now and after the switch (and everyone's change)."""
    rows = list(switch.customers)
    names = [c.customer for c in rows]
    traces: list[dict[str, object]] = [
        {
            "type": "bar",
            "name": f"cost now ({switch.from_entry.group or switch.from_policy.id})",
            "x": names,
            "y": [float(c.cost_from) for c in rows],
            "marker": {"color": IN_USE},
            "hovertemplate": "%{x}<br>now %{y:,.2f} " + switch.currency + "<extra></extra>",
        },
        {
            "type": "bar",
            "name": f"cost after the switch ({switch.to_entry.group or switch.to_policy.id})",
            "x": names,
            "y": [float(c.cost_to) for c in rows],
            "marker": {"color": OTHER, "pattern": {"shape": "/"}},
            "text": [_change(c.delta_percent) for c in rows],
            "textposition": "outside",
            "hovertemplate": "%{x}<br>after %{y:,.2f} " + switch.currency + " (%{text})<extra></extra>",
        },
    ]
    return figure(
        traces,
        f"Cost of {switch.name} per customer",
        switch.currency,
        barmode="group",
        xaxis={"type": "category", "title": {"text": "customer"}},
    )


def _change(percent: object) -> str:
    return "-" if percent is None else f"{percent:+.1f}%"


def modality_title(modality: str) -> str:
    return {"stt": "STT", "llm": "LLM", "tts": "TTS"}.get(modality, modality.capitalize())
