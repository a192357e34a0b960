"""Billing periods: calendar months in the customer's time zone, half-open ``[start, end)``.

A record belongs to the period in which it *started* (in the customer's zone): a call from 23:58 on
31 October to 00:03 on 1 November, local time, is billed whole on October's invoice.

>>> p = month_period("2026-10", "Europe/Berlin")
>>> p.start.isoformat(), p.end.isoformat()
('2026-10-01T00:00:00+02:00', '2026-11-01T00:00:00+01:00')
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from talktime.errors import InputError

_LABEL = re.compile(r"^(\d{4})-(\d{2})$")


@dataclass(frozen=True, slots=True)
class Period:
    label: str
    timezone: str
    start: datetime
    end: datetime

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end

    def in_words(self) -> str:
        """The period as a reader says it, in the customer's zone: ``1–31 October 2026 (Europe/Berlin)``.

        >>> month_period("2026-02", "Asia/Tokyo").in_words()
        '1–28 February 2026 (Asia/Tokyo)'
        """
        first = self.start.astimezone(ZoneInfo(self.timezone))
        last = (self.end.astimezone(ZoneInfo(self.timezone)) - timedelta(days=1)).date()
        return f"{first.day}\u2013{last.day} {MONTHS[first.month - 1]} {first.year} ({self.timezone})"


MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


def date_in_words(day: date) -> str:
    """``5 October 2026``: a date no reader can take for another (no 10/05 versus 05/10).

    >>> date_in_words(date(2026, 10, 5))
    '5 October 2026'
    """
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


def _parse(label: str) -> tuple[int, int]:
    found = _LABEL.match(label)
    if not found or not 1 <= int(found.group(2)) <= 12:
        raise InputError(f"period: {label!r} is not a month written YYYY-MM")
    return int(found.group(1)), int(found.group(2))


def next_label(label: str) -> str:
    year, month = _parse(label)
    return f"{year + month // 12:04d}-{month % 12 + 1:02d}"


def previous_label(label: str) -> str:
    year, month = _parse(label)
    return f"{year - (month == 1):04d}-{(month - 2) % 12 + 1:02d}"


def month_period(label: str, timezone: str) -> Period:
    """The month ``label`` (YYYY-MM) in ``timezone``, from local midnight on the 1st to the next 1st."""
    year, month = _parse(label)
    zone = ZoneInfo(timezone)
    start = datetime(year, month, 1, tzinfo=zone)
    ny, nm = _parse(next_label(label))
    return Period(label, timezone, start, datetime(ny, nm, 1, tzinfo=zone))


def period_label(moment: datetime, timezone: str) -> str:
    """The month (YYYY-MM) that ``moment`` falls in, in ``timezone``."""
    local = moment.astimezone(ZoneInfo(timezone))
    return f"{local.year:04d}-{local.month:02d}"
