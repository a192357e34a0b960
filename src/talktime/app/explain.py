"""``explain``: how one record's billable number was reached, one step per line.

The lines are the trail as every face shows it (the CLI prints them; an API or a dashboard shows the same
words), so their wording lives here, once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from talktime.app.meter import record_source
from talktime.app.methodology import policy as load
from talktime.app.progress import Ticker, no_ticks
from talktime.core.decimals import text
from talktime.core.metering.meter import MeteredRecord, meter_iter
from talktime.core.metering.policy import Policy
from talktime.errors import InputError


@dataclass(frozen=True, slots=True)
class Explanation:
    """A record metered under a policy: one item per part when the policy meters several quantities."""

    policy: Policy
    record_id: str
    items: tuple[MeteredRecord, ...]

    def lines(self) -> list[str]:
        """Every part's trail, as :func:`trail_lines` writes it."""
        return [line for item in self.items for line in trail_lines(item, self.policy.id)]


def explain(path: Path, policy: str | Policy, record_id: str, *, ticks: Ticker = no_ticks) -> Explanation:
    """Meter the file under ``policy`` with the reference meter and keep the record ``record_id``."""
    chosen = load(policy)
    with record_source(path, ticks) as records:
        found = tuple(m for m in meter_iter(records, chosen) if m.id == record_id)
    if not found:
        raise InputError(f"{path}: no record with id {record_id!r}")
    return Explanation(chosen, record_id, found)


def trail_lines(found: MeteredRecord, policy_id: str) -> list[str]:
    """The record and meter, each numbered step (input -> output), the three quantities, the trail."""
    unit = found.symbol
    lines = [f"record {found.id} under {policy_id} (version {found.version}), meter {found.meter}"]
    for number, step in enumerate(found.explain, start=1):
        before = "" if step.input_seconds is None else f"{text(step.input_seconds)} {unit} -> "
        sep = " " if step.rule.endswith("=") else ": "  # a weighted count reads "a 10 - b 2 = 8 tokens"
        lines.append(
            f"  {number}. {step.step:<10} {step.rule}{sep}{before}{text(step.output_seconds)} {unit}"
        )
    reported = found.provider_reported_seconds
    lines.append(
        f"actual {text(found.actual_seconds)} {unit}, provider-reported "
        f"{'-' if reported is None else text(reported) + ' s'}"
        f", billable {text(found.billable_seconds)} {unit} = {text(found.billable_quantity)} {found.unit}(s)"
    )
    lines.append(found.trail())
    return lines
