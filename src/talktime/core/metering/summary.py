"""What each row of a totals table shows, so that no cell can be read as more than it is.

Owns: the cells of ``talktime meter --summary`` (and of the totals under ``talktime meter``): one row per
meter, then one for all records. Does not own: the sums (:class:`~talktime.core.metering.meter.Totals`) or
printing them (``talktime.cli``).

* ``not-counted``: how many records the policy does not count (a kind it does not bill). They are not
  measured (actual ``-``), their provider's figure is not this product's (provider-reported ``-``), and
  they bill 0.
* a meter: sums over its records. Provider-reported seconds are summed over the records that carry a
  figure: ``-`` when none does, ``48 (2 of 3 records)`` when only some do, so a partial sum is never set
  against the actual seconds of every record as if it covered them all.
* ``all``: every record read, counted or not; the sums are over the counted records, the meters' rows
  added up.

>>> from decimal import Decimal
>>> from talktime.core.metering.meter import MeterTotals, Totals
>>> totals = Totals(unit="minute", unit_seconds=Decimal(60))
>>> totals.meters["not-counted"] = MeterTotals(records=5)
>>> totals.meters["calls"] = MeterTotals(3, Decimal("54.3"), Decimal(48), 2, Decimal(120))
>>> totals.all = MeterTotals(8, Decimal("54.3"), Decimal(48), 2, Decimal(120))
>>> [row.cells() for row in summary_rows(totals)]  # doctest: +NORMALIZE_WHITESPACE
[('calls', '3', '54.3', '48 (2 of 3 records)', '120', '2'),
 ('not-counted', '5', '-', '-', '0', '0'),
 ('all', '8', '54.3', '48 (2 of 3 records)', '120', '2')]
"""

from __future__ import annotations

from dataclasses import dataclass

from talktime.core.decimals import text
from talktime.core.metering.meter import NOT_COUNTED, MeterTotals, Totals

NOT_MEASURED = "-"


@dataclass(frozen=True, slots=True)
class SummaryRow:
    """One row of a totals table, every cell as it is shown."""

    meter: str
    records: str
    actual: str
    provider_reported: str
    billable: str
    quantity: str

    def cells(self) -> tuple[str, str, str, str, str, str]:
        return (self.meter, self.records, self.actual, self.provider_reported, self.billable, self.quantity)


def summary_rows(totals: Totals) -> list[SummaryRow]:
    """The meters in name order, then ``all`` (see the module's docstring for what each row shows)."""
    rows = [_row(totals, name, part) for name, part in sorted(totals.meters.items())]
    not_counted = totals.meters.get(NOT_COUNTED, MeterTotals()).records
    return [*rows, _row(totals, "all", totals.all, counted=totals.all.records - not_counted)]


def _row(totals: Totals, name: str, part: MeterTotals, counted: int | None = None) -> SummaryRow:
    if name == NOT_COUNTED:
        return SummaryRow(name, str(part.records), NOT_MEASURED, NOT_MEASURED, "0", "0")
    return SummaryRow(
        meter=name,
        records=str(part.records),
        actual=text(part.actual_seconds),
        provider_reported=_reported(part, part.records if counted is None else counted),
        billable=text(part.billable_seconds),
        quantity=text(totals.quantity(part)),
    )


def _reported(part: MeterTotals, counted: int) -> str:
    """The provider's seconds, and over how many of the counted records when not all of them carry one."""
    if part.provider_reported_records == 0:
        return NOT_MEASURED
    figure = text(part.provider_reported_seconds)
    if part.provider_reported_records >= counted:
        return figure
    return f"{figure} ({part.provider_reported_records} of {counted} records)"
