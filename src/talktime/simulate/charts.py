"""Charts as PNG files (matplotlib, Agg backend: no display needed): call durations with each policy's
billable steps over them, cost by policy, and a provider switch's per-customer deltas.

Owns: drawing. Numbers reach here already computed (exact Decimals); they become floats only to be drawn.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Final

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import Formatter, MaxNLocator

from talktime.core.decimals import quantize
from talktime.core.metering.policy import Policy
from talktime.core.simulate.impact import PolicyImpact, billable_steps
from talktime.core.simulate.switch import Switch

DPI: Final = 120
#: Points on each policy's step line (at most; never finer than a millisecond).
STEP_POINTS: Final = 1500
_COLORS: Final = ("#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def _save(figure: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=DPI, format="png")
    plt.close(figure)
    return path


def tick_labels(values: Sequence[float]) -> list[str]:
    """Labels for an axis's ticks: thousands separators and the fewest decimals (at most 6) that tell every
    tick apart and show each as the round number it is, so ticks at 0, 0.25, 0.5, ... read so and not
    ``0 0 0 1 1``.

    >>> tick_labels([0.0, 0.25, 0.5, 0.75, 1.0]), tick_labels([0.0, 2000.0, 4000.0])
    (['0.00', '0.25', '0.50', '0.75', '1.00'], ['0', '2,000', '4,000'])
    >>> tick_labels([0.0, 0.002, 0.004]), tick_labels([])
    (['0.000', '0.002', '0.004'], [])
    """
    exact = [Decimal(repr(float(v))) for v in values]  # the shortest decimal that reads back as the tick
    for places in range(7):
        shown = [quantize(v, places) for v in exact]
        near = all(abs(a - b) < Decimal("1e-9") for a, b in zip(shown, exact, strict=True))
        if near and len(set(shown)) == len(shown):
            break
    return [f"{v:,.{places}f}" for v in shown]


class _TickLabels(Formatter):
    """:func:`tick_labels` as a matplotlib formatter (one number of decimals over all ticks)."""

    def __call__(self, x: float, pos: int | None = None) -> str:
        return tick_labels([x])[0]

    def format_ticks(self, values: Sequence[float]) -> list[str]:
        return tick_labels(list(values))


def _readable(axis: Axes) -> None:
    """Few ticks with thousands separators, as many decimals as tell them apart, room for labels, the
    legend under the bars."""
    axis.xaxis.set_major_locator(MaxNLocator(5))
    axis.xaxis.set_major_formatter(_TickLabels())
    axis.margins(x=0.22)
    axis.legend(fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, frameon=False)


def step_lengths(longest: Decimal) -> list[Decimal]:
    """Call lengths at which the steps are drawn: 0 to ``longest`` in whole milliseconds."""
    top = max(longest, Decimal(1))
    step = max(Decimal("0.001"), (top / STEP_POINTS).quantize(Decimal("0.001")))
    count = int(top / step) + 1
    return [step * n for n in range(count + 1)]


def durations_chart(
    path: Path,
    histogram: Sequence[tuple[Decimal, int]],
    bin_width: Decimal,
    longest: Decimal,
    policies: Sequence[Policy],
    title: str,
) -> Path:
    """Calls by duration (bars) with each time policy's billable seconds for a call of that length (steps);
    a count policy (tokens, characters) has no steps over duration and is left out."""
    policies = [p for p in policies if not p.is_count]
    figure, calls_axis = plt.subplots(figsize=(10, 5.5))
    starts = [float(start) for start, _ in histogram]
    counts = [count for _, count in histogram]
    calls_axis.bar(starts, counts, width=float(bin_width), align="edge", color="#c7c7c7", label="calls")
    calls_axis.set_xlabel("call duration (s)")
    calls_axis.set_ylabel("calls (records) per bin", color="#555555")
    billed_axis = calls_axis.twinx()
    lengths = step_lengths(longest)
    xs = [float(x) for x in lengths]
    billed_axis.plot(xs, xs, linestyle="--", color="black", linewidth=1, label="exact duration")
    drawn: dict[tuple[Decimal, ...], str] = {}
    for index, policy in enumerate(policies):
        steps = tuple(billable_steps(policy, lengths))
        same = drawn.setdefault(steps, policy.id)
        label = policy.id if same == policy.id else f"{policy.id} (same steps as {same})"
        if steps == tuple(lengths):
            label += " (exact)"
        color = _COLORS[index % len(_COLORS)]
        width = 1.4 + 1.6 * (len(policies) - 1 - index) / max(1, len(policies) - 1)  # overlaps stay visible
        ys = [float(y) for y in steps]
        billed_axis.plot(xs, ys, drawstyle="steps-post", color=color, linewidth=width, label=label, alpha=0.9)
    billed_axis.set_ylabel("billable seconds for a mono call of that length")
    billed_axis.set_ylim(bottom=0)
    calls_axis.set_xlim(0, float(longest) * 1.02 or 1)
    handles, labels = calls_axis.get_legend_handles_labels()
    more_handles, more_labels = billed_axis.get_legend_handles_labels()
    billed_axis.legend(handles + more_handles, labels + more_labels, loc="upper left", fontsize=9)
    calls_axis.set_title(title)
    return _save(figure, path)


def cost_chart(path: Path, impacts: Sequence[PolicyImpact], title: str) -> Path:
    """Billable minutes (time policies) and cost per policy, each beside what exact billing would give."""
    return _save(cost_figure(impacts, title), path)


def cost_figure(impacts: Sequence[PolicyImpact], title: str) -> Figure:
    """The figure of :func:`cost_chart`."""
    priced = [i for i in impacts if i.cost is not None and i.exact_cost is not None]
    impacts = [i for i in impacts if i.is_time]
    panels = 2 if priced else 1
    figure, axes = plt.subplots(1, panels, figsize=(6 * panels, 0.6 * len(impacts) + 2.8), squeeze=False)
    names = [i.policy for i in impacts]
    rows = list(range(len(impacts)))
    minutes = axes[0][0]
    minutes.barh([r + 0.2 for r in rows], [float(i.billable_minutes) for i in impacts], 0.4, label="billed")
    minutes.barh([r - 0.2 for r in rows], [float(i.exact_minutes) for i in impacts], 0.4, label="exact")
    for row, item in zip(rows, impacts, strict=True):
        pct = item.extra_percent
        if pct is not None:
            minutes.annotate(f" {float(pct):+.1f}%", (float(item.billable_minutes), row + 0.2), va="center")
    minutes.set_yticks(rows, names)
    minutes.invert_yaxis()
    minutes.set_xlabel("minutes")
    minutes.set_title("billable minutes")
    _readable(minutes)
    if priced:
        money = axes[0][1]
        currency = priced[0].currency or ""
        prow = list(range(len(priced)))
        money.barh([r + 0.2 for r in prow], [float(i.cost or 0) for i in priced], 0.4, label="billed")
        money.barh([r - 0.2 for r in prow], [float(i.exact_cost or 0) for i in priced], 0.4, label="exact")
        money.set_yticks(prow, [i.policy for i in priced])
        money.invert_yaxis()
        money.set_xlabel(currency)
        money.set_title(f"cost at the card's price ({currency})")
        _readable(money)
    figure.suptitle(title)
    return figure


def switch_chart(path: Path, switch: Switch) -> Path:
    """Each customer's cost change from the switch (red: costs more, green: costs less)."""
    parts = list(switch.customers)
    figure, axis = plt.subplots(figsize=(9, 0.5 * len(parts) + 2.2))
    rows = list(range(len(parts)))
    deltas = [float(p.delta) for p in parts]
    axis.barh(rows, deltas, color=["#d62728" if d > 0 else "#2ca02c" for d in deltas])
    for row, part in zip(rows, parts, strict=True):
        pct = part.delta_percent
        label = f" {float(part.delta):+.2f}" + ("" if pct is None else f" ({float(pct):+.1f}%)")
        axis.annotate(label, (float(part.delta), row), va="center", ha="left" if part.delta >= 0 else "right")
    axis.axvline(0, color="black", linewidth=0.8)
    axis.set_yticks(rows, [p.customer for p in parts])
    axis.invert_yaxis()
    axis.set_xlabel(f"cost change ({switch.currency})")
    axis.set_title(f"{switch.name}: cost change per customer")
    axis.margins(x=0.25)
    return _save(figure, path)
