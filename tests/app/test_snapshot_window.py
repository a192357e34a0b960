"""The snapshot's window opens early enough that every zone's months in it are whole, and no earlier than it
needs to: for any moment, window length and set of the price card's zones, each zone's month from its oldest
on (the operator's oldest UTC month, or the zone's own if it is still a month behind: west of UTC, the hours
after UTC's month began) begins at or after the window opens (listed, whole), each month before it begins
before (never listed), and one of the zones (or UTC) begins an oldest month exactly then."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from talktime.app.snapshot import card_zones, whole_months, window_start
from talktime.core.invoicing.periods import month_period
from talktime.core.rating.cards import Customer, PriceCard

#: From UTC-11 to UTC+14, with daylight saving time north and south, and a zone on a half hour.
ZONES = (
    "Pacific/Pago_Pago",
    "America/Los_Angeles",
    "America/New_York",
    "America/Sao_Paulo",
    "Europe/Berlin",
    "Asia/Kolkata",
    "Asia/Tokyo",
    "Australia/Adelaide",
    "Pacific/Auckland",
    "Pacific/Kiritimati",
)


def _label(index: int) -> str:
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


@given(
    as_of=st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC)
    ),
    months=st.integers(1, 13),
    zones=st.lists(st.sampled_from(ZONES), min_size=1, max_size=4, unique=True),
)
def test_every_zones_months_from_the_oldest_are_whole_and_the_ones_before_are_not_listed(
    as_of: datetime, months: int, zones: list[str]
) -> None:
    card = PriceCard(
        "plan",
        "plan",
        "USD",
        zones[0],
        (),
        customers={f"c-{zone}": Customer(f"c-{zone}", zone, zone) for zone in zones[1:]},
    )
    opens = window_start(as_of, months, card_zones(card))
    operators = as_of.year * 12 + as_of.month - 1 - (months - 1)  # the operator's (UTC) oldest month

    def oldest(zone: str) -> int:
        """The zone's oldest month: the operator's, or its own count's if it is still a month behind."""
        local = as_of.astimezone(ZoneInfo(zone))
        return min(operators, local.year * 12 + local.month - 1 - (months - 1))

    starts = [month_period(_label(oldest(zone)), zone).start for zone in ("UTC", *zones)]
    assert min(starts) == opens, "it opens at the earliest local midnight of an oldest month"
    zone_of = {c: card.customer(c).timezone for c in ["someone-not-on-the-card", *card.customers]}
    candidates = [(c, _label(oldest(z) + step)) for c, z in zone_of.items() for step in (-1, 0, 1, 2)]
    listed = whole_months(candidates, card, opens)
    assert listed == [(c, p) for c, p in candidates if p >= _label(oldest(zone_of[c]))], (
        "every customer's months from its oldest on (its current month too), none before"
    )


def test_a_customer_at_utc_plus_14_and_one_at_utc_minus_11() -> None:
    """The operator's October (UTC) opens at midnight on 1 October on Kiritimati, 10:00 UTC on 30 September;
    Pago Pago's October begins 21 hours later, its September's last hours are in the window, not listed."""
    as_of = datetime(2026, 11, 30, 12, tzinfo=UTC)
    opens = window_start(as_of, 2, ["Pacific/Pago_Pago", "Pacific/Kiritimati"])
    assert opens == datetime(2026, 9, 30, 10, tzinfo=UTC)
    west = month_period("2026-10", "Pacific/Pago_Pago").start
    assert west == datetime(2026, 10, 1, 11, tzinfo=UTC) and west > opens
