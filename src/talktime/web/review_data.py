"""What the review pages (reconciliation, flagged records) are given and draw: the statements and guards a
dashboard was started with, the gap-by-cause chart, and the commands a person runs to review a record.

Owns: :class:`ReviewInputs`, the chart and the command lines. Does not own any
number: reconciliations are :mod:`talktime.app.statements`', held records :mod:`talktime.app.held_records`'.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from talktime.app.held_records import HeldMonth, HeldRecord, fields_to_check
from talktime.app.statements import StatementSpec
from talktime.core.reconcile.model import Summary
from talktime.web.overview import figure


@dataclass(frozen=True, slots=True)
class ReviewInputs:
    """The dashboard's ``--statement`` and ``--guards``, and its record file and cards as given on the
    command line (the commands the pages print name them)."""

    statements: tuple[StatementSpec, ...] = ()
    guards: Path | None = None
    records: str = ""
    costs: str = ""
    prices: str = ""
    #: Served mode (``talktime serve``): the store as the server names it, and the records' tenant.
    store: str = ""
    tenant: str = ""

    def command(self, *extra: str) -> str:
        """``talktime dashboard`` as it was started (its files), with ``extra`` options."""
        given = ["--records", self.records, "--costs", self.costs, "--prices", self.prices]
        if self.guards is not None:
            given += ["--guards", str(self.guards)]
        return shlex.join(["talktime", "dashboard", *given, *extra])

    def reconcile_command(self) -> str:
        """Served mode: ``talktime reconcile`` of a Twilio export against the tenant's stored records."""
        given = ["--provider", "twilio-voice", "--statement", "twilio-console.csv"]
        return shlex.join(["talktime", "reconcile", *given, "--store", self.store, "--tenant", self.tenant])


#: How the money chart names the causes that are not seconds (and the unexplained seconds, as the table does).
MONEY_NAMES = {"unexplained": "UNEXPLAINED", "price": "PRICE (charged - due)", "attempt_fees": "attempt fees"}


def cause_figure(summary: Summary, money: dict[str, Decimal], currency: str) -> str:
    """The gap by cause as Plotly JSON: each cause's seconds in the profile's unit, and beside them its money
    at the rate (with the price difference, a cause of its own); causes with nothing are left out."""
    unit = {"minute": "min", "hour": "h", "second": "s"}[summary.unit]
    causes = {c: s for c, s in summary.causes.items() if s != 0}
    if summary.unexplained_seconds != 0:
        causes["UNEXPLAINED"] = summary.unexplained_seconds
    names = [c.replace("_", " ") for c in causes]
    traces: list[dict[str, object]] = [
        {
            "type": "bar",
            "orientation": "h",
            "name": f"seconds gap ({unit})",
            "y": names,
            "x": [float(s / summary.unit_seconds) for s in causes.values()],
            "marker": {"color": "#1f3f6f"},
            "hovertemplate": f"%{{y}}: %{{x:+,.1f}} {unit}<extra></extra>",
        }
    ]
    layout: dict[str, object] = {
        "xaxis": {"title": {"text": f"gap ({unit}): provider billed minus our tally"}, "zeroline": True},
        "yaxis": {"automargin": True, "autorange": "reversed"},
    }
    if money:
        spent = {c: a for c, a in money.items() if a != 0}
        traces[0]["xaxis"] = "x"
        traces.append(
            {
                "type": "bar",
                "orientation": "h",
                "name": f"money gap ({currency})",
                "y": [MONEY_NAMES.get(c, c.replace("_", " ")) for c in spent],
                "x": [float(a) for a in spent.values()],
                "xaxis": "x2",
                "yaxis": "y2",
                "marker": {"color": "#7f9fbf", "pattern": {"shape": "/"}},
                "hovertemplate": f"%{{y}}: %{{x:+,.5f}} {currency}<extra></extra>",
            }
        )
        layout["xaxis"] = {**layout["xaxis"], "domain": [0, 0.45]}  # type: ignore[dict-item]
        layout["xaxis2"] = {
            "domain": [0.6, 1],
            "title": {"text": f"gap ({currency}) at the rate"},
            "zeroline": True,
        }
        layout["yaxis2"] = {"anchor": "x2", "automargin": True, "autorange": "reversed"}
    rows = max(len(causes), len(traces[-1]["y"]), 1)  # type: ignore[arg-type]
    layout["margin"] = {"l": 20, "r": 20, "t": 40, "b": 50}
    return figure(
        traces, "The gap by cause", "", **layout, showlegend=False, height=max(340, 120 + 32 * rows)
    )


def accept_commands(inputs: ReviewInputs, month: HeldMonth, ledger: Path | None) -> list[str]:
    """The commands that bill a held month as it is: its draft, and (with a ledger) finalising it.
    ``--allow-flagged`` bills every record of the month the guards flag, as it is."""
    given = ["--customer", month.customer, "--period", month.period, "--records", inputs.records]
    given += ["--prices", inputs.prices]
    if inputs.guards is not None:
        given += ["--guards", str(inputs.guards)]
    commands = [shlex.join(["talktime", "invoice", *given, "--allow-flagged"])]
    if ledger is not None:
        finalize = ["talktime", "invoice", "finalize", *given, "--ledger", str(ledger), "--allow-flagged"]
        commands.append(shlex.join(finalize))
    return commands


def store_commands(inputs: ReviewInputs, held: HeldRecord) -> list[str]:
    """Served mode: the commands that review one stored record (accept it as it is; correct the field behind
    its first reason), on the server's store and tenant."""
    where = ["--store", inputs.store, "--tenant", inputs.tenant]
    accept = shlex.join(
        ["talktime", "records", "accept", held.record.id, *where, "--note", "why it is right"]
    )
    fields = fields_to_check(held.codes) or ("FIELD",)
    correct = ["talktime", "records", "correct", held.record.id, *where, "--set", f"{fields[0]}=VALUE"]
    return [accept, shlex.join(correct)]


def correct_hint(held: HeldRecord) -> str:
    """The fields to look at in the record file for a held record, named by its reasons."""
    fields = fields_to_check(held.codes)
    return ", ".join(fields) if fields else "its fields"
