"""Hypothesis invariants of the scalar reference meter: properties a user relies on whatever the data.

The rounding oracle below is written from the reference formula ("A/B increments" in provider-rules.md),
independently of ``round_increments``.
"""

from __future__ import annotations

import importlib.util
import random
import sys
from collections import defaultdict
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from math import ceil, floor
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from talktime.core.metering import meter_records, summarize
from talktime.core.metering.meter import MeteredRecord
from talktime.core.records import UsageRecord


def _load_strategies() -> Any:
    # Loaded by path under its own name, so a tests/strategies.py elsewhere can never shadow it.
    name = "talktime_tests_property_strategies"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("strategies.py"))
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


S = _load_strategies()

SETTINGS = settings(deadline=None, max_examples=60)


def reference_round(seconds: Decimal, first: Decimal, increment: Decimal, direction: str) -> Decimal:
    """billed(d) = A if d <= A, else A + blocks((d - A) / B) x B; zero stays zero."""
    if direction == "exact" or seconds <= 0:
        return seconds if seconds > 0 else Decimal(0)

    def blocks(value: Decimal) -> int:
        ratio = Fraction(value) / Fraction(increment)
        if direction == "up":
            return ceil(ratio)
        if direction == "down":
            return floor(ratio)
        return floor(ratio + Fraction(1, 2))

    if first != increment:
        return first if seconds <= first else first + blocks(seconds - first) * increment
    return blocks(seconds) * increment


def reference_minimum(seconds: Decimal, minimum: Decimal) -> Decimal:
    return minimum if 0 < seconds < minimum else seconds


def billables(metered: list[MeteredRecord]) -> dict[str, tuple[Decimal, str, Decimal]]:
    return {m.id: (m.billable_seconds, m.meter, m.billable_quantity) for m in metered}


def with_params(params: dict[str, Any], **changes: Any) -> Any:
    return S.build_policy({**params, **changes})


# --- rounding direction -------------------------------------------------------------------------------------


@SETTINGS
@given(
    params=S.metering_params(rounding=("up",), scopes=("record",)),
    records=S.record_lists(min_size=1, statuses=("completed",)),
)
def test_up_never_bills_less_than_the_raw_basis(params: dict[str, Any], records: list[UsageRecord]) -> None:
    policy = with_params(params, factor="1", open_cap_seconds=None)
    params = policy.current.params
    for m in meter_records(records, policy):
        if m.actual_seconds < params.free_below_seconds:
            assert m.billable_seconds == 0  # exempt: the short-call rule, judged on raw time
        else:
            assert m.billable_seconds >= m.actual_seconds, m.trail()


@SETTINGS
@given(
    params=S.metering_params(rounding=("up",), scopes=("session", "period")),
    records=S.record_lists(min_size=1, statuses=("completed",)),
)
def test_up_never_bills_a_session_or_period_less_than_its_raw_time(
    params: dict[str, Any], records: list[UsageRecord]
) -> None:
    policy = with_params(params, factor="1", open_cap_seconds=None, free_below_seconds="0")
    totals = summarize(records, policy)
    assert totals.all.billable_seconds >= totals.all.actual_seconds


@SETTINGS
@given(
    params=S.metering_params(rounding=("up",), scopes=("record",)),
    records=S.record_lists(min_size=1, statuses=("completed",)),
)
def test_up_bills_the_smallest_a_b_value_at_or_above_the_raw_time(
    params: dict[str, Any], records: list[UsageRecord]
) -> None:
    policy = with_params(params, factor="1", channels="per_call", open_cap_seconds=None)
    p = policy.current.params
    first, block = p.first_block_seconds, p.increment_seconds
    for m in meter_records(records, policy):
        if m.actual_seconds <= 0 or m.actual_seconds < p.free_below_seconds:
            assert m.billable_seconds == 0
            continue
        billed = m.billable_seconds
        if billed == p.minimum_seconds and billed > first:
            continue  # the minimum took over
        # A multiple of the increment past A (or of B when A == B) ...
        if first == block:
            assert billed % block == 0, m.trail()
        else:
            assert billed == first or (billed - first) % block == 0, m.trail()
        # ... and the smallest one that covers the raw time.
        assert billed >= m.actual_seconds
        if billed > first:
            assert billed - m.actual_seconds < block, m.trail()


@SETTINGS
@given(
    params=S.metering_params(rounding=("nearest",), scopes=("record",), extras=False),
    records=S.record_lists(min_size=1, statuses=("completed",)),
)
def test_nearest_is_within_half_an_increment(params: dict[str, Any], records: list[UsageRecord]) -> None:
    params = {k: v for k, v in params.items() if k != "initial_seconds"}  # A == B
    policy = with_params(params, channels="per_call")
    half = policy.current.params.increment_seconds / 2
    for m in meter_records(records, policy):
        assert abs(m.billable_seconds - m.actual_seconds) <= half, m.trail()


@SETTINGS
@given(
    params=S.metering_params(scopes=("record",)),
    records=S.record_lists(min_size=1, statuses=("completed",)),
)
def test_record_scope_matches_the_reference_formula(
    params: dict[str, Any], records: list[UsageRecord]
) -> None:
    # Mono, no factor: billable = minimum(round(basis)), or 0 when exempt.
    policy = with_params(params, factor="1", channels="per_call", open_cap_seconds=None)
    p = policy.current.params
    for m in meter_records(records, policy):
        if m.actual_seconds < p.free_below_seconds:
            expected = Decimal(0)
        else:
            rounded = reference_round(
                m.actual_seconds, p.first_block_seconds, p.increment_seconds, p.rounding
            )
            expected = reference_minimum(rounded, p.minimum_seconds)
        assert m.billable_seconds == expected, m.trail()


# --- order, totals and groups -------------------------------------------------------------------------------


@SETTINGS
@given(params=S.metering_params(), records=S.record_lists(), seed=st.integers(0, 2**32 - 1))
def test_per_record_results_do_not_depend_on_record_order(
    params: dict[str, Any], records: list[UsageRecord], seed: int
) -> None:
    policy = S.build_policy(params)
    shuffled = list(records)
    random.Random(seed).shuffle(shuffled)
    assert billables(meter_records(shuffled, policy)) == billables(meter_records(records, policy))
    assert summarize(shuffled, policy).all.billable_seconds == summarize(records, policy).all.billable_seconds


@SETTINGS
@given(params=S.metering_params(), records=S.record_lists())
def test_summarize_totals_equal_the_sum_of_per_record_results(
    params: dict[str, Any], records: list[UsageRecord]
) -> None:
    policy = S.build_policy(params)
    metered = meter_records(records, policy)
    totals = summarize(records, policy)
    assert totals.all.records == len(records) == len(metered)
    assert totals.all.billable_seconds == sum((m.billable_seconds for m in metered), Decimal(0))
    assert totals.all.actual_seconds == sum((m.actual_seconds for m in metered), Decimal(0))
    reported = [m.provider_reported_seconds for m in metered if m.provider_reported_seconds is not None]
    assert totals.all.provider_reported_seconds == sum(reported, Decimal(0))
    per_meter: dict[str, Decimal] = defaultdict(Decimal)
    counts: dict[str, int] = defaultdict(int)
    for m in metered:
        per_meter[m.meter] += m.billable_seconds
        counts[m.meter] += 1
    assert {name: t.billable_seconds for name, t in totals.meters.items()} == dict(per_meter)
    assert {name: t.records for name, t in totals.meters.items()} == dict(counts)
    assert (
        sum((t.billable_seconds for t in totals.meters.values()), Decimal(0)) == totals.all.billable_seconds
    )


def group_key(record: UsageRecord, meter: str, scope: str, zone: str) -> tuple[str, ...]:
    if scope == "session":
        return (meter, record.session or f"record:{record.id}")
    local = record.started_at.astimezone(ZoneInfo(zone))
    return (meter, record.customer or "", f"{local.year}-{local.month}")


@SETTINGS
@given(params=S.metering_params(scopes=("session", "period")), records=S.record_lists(min_size=1))
def test_session_and_period_sum_then_round(params: dict[str, Any], records: list[UsageRecord]) -> None:
    # Each group's per-record billables add up to round(sum of the group's unrounded amounts), the minimum
    # applied to the group total; unrounded amounts are what the policy bills with exact, per-record rounding.
    policy = S.build_policy(params)
    p = policy.current.params
    unrounded = S.build_policy({**params, "rounding": "exact", "minimum_seconds": "0", "scope": "record"})
    raw = {m.id: m for m in meter_records(records, unrounded)}
    groups: dict[tuple[str, ...], list[MeteredRecord]] = defaultdict(list)
    for m in meter_records(records, policy):
        record = next(r for r in records if r.id == m.id)
        groups[group_key(record, m.meter, p.scope, p.period_timezone)].append(m)
    for members in groups.values():
        total = sum((raw[m.id].billable_seconds for m in members), Decimal(0))
        rounded = reference_round(total, p.first_block_seconds, p.increment_seconds, p.rounding)
        expected = reference_minimum(rounded, p.minimum_seconds)
        assert sum((m.billable_seconds for m in members), Decimal(0)) == expected
        # No record bills a negative amount. A gain sits on the last billing record (latest start, then
        # highest id); a loss is taken from the billing records from the last one back.
        ordered = sorted(members, key=lambda m: (m.started_at, m.id))
        shares = [m.billable_seconds - raw[m.id].billable_seconds for m in ordered]
        assert all(m.billable_seconds >= 0 for m in ordered)
        if expected >= total:
            billing = [i for i, m in enumerate(ordered) if raw[m.id].billable_seconds > 0]
            receivers = [i for i, share in enumerate(shares) if share != 0]
            assert receivers == ([billing[-1]] if expected > total else [])
        else:
            # Taking from the back: once a record keeps something, every earlier record keeps all it had.
            kept_some = [i for i, m in enumerate(ordered) if m.billable_seconds > 0]
            if kept_some:
                assert all(share == 0 for share in shares[: kept_some[-1]])


# --- splitting and channels ---------------------------------------------------------------------------------


@SETTINGS
@given(
    params=S.metering_params(scopes=("record",)),
    records=S.record_lists(min_size=1),
    cut=st.integers(0, S.SPAN_SECONDS),
)
def test_splitting_a_period_at_a_time_boundary_keeps_per_record_results_under_record_scope(
    params: dict[str, Any], records: list[UsageRecord], cut: int
) -> None:
    from datetime import timedelta

    policy = S.build_policy(params)
    boundary = S.EPOCH + timedelta(seconds=cut)
    before = [r for r in records if r.started_at < boundary]
    after = [r for r in records if r.started_at >= boundary]
    split = {**billables(meter_records(before, policy)), **billables(meter_records(after, policy))}
    assert split == billables(meter_records(records, policy))
    whole, first, second = summarize(records, policy), summarize(before, policy), summarize(after, policy)
    assert whole.all.billable_seconds == first.all.billable_seconds + second.all.billable_seconds


@SETTINGS
@given(
    params=S.metering_params(scopes=("period",)),
    records=S.record_lists(min_size=1),
    month=st.integers(2, 3),
)
def test_splitting_period_scope_at_a_month_boundary_of_its_zone_changes_nothing(
    params: dict[str, Any], records: list[UsageRecord], month: int
) -> None:
    policy = S.build_policy(params)
    boundary = datetime(2024, month, 1, tzinfo=ZoneInfo(policy.current.params.period_timezone))
    before = [r for r in records if r.started_at < boundary]
    after = [r for r in records if r.started_at >= boundary]
    split = {**billables(meter_records(before, policy)), **billables(meter_records(after, policy))}
    assert split == billables(meter_records(records, policy))


@SETTINGS
@given(
    params=S.metering_params(scopes=("record",)),
    record=S.usage_records(statuses=("completed", "failed")),
    channels=st.integers(1, 8),
)
def test_per_channel_with_n_channels_is_n_times_mono(
    params: dict[str, Any], record: UsageRecord, channels: int
) -> None:
    from dataclasses import replace

    policy = with_params(params, channels="per_channel", extra_channel_factor="1")
    (mono,) = meter_records([replace(record, channels=1)], policy)
    (multi,) = meter_records([replace(record, channels=channels)], policy)
    assert multi.billable_seconds == channels * mono.billable_seconds
    assert multi.actual_seconds == mono.actual_seconds


@SETTINGS
@given(
    params=S.metering_params(scopes=("record",)),
    record=S.usage_records(),
    channels=st.integers(1, 8),
)
def test_extra_channel_discount_is_one_plus_discounted_extras(
    params: dict[str, Any], record: UsageRecord, channels: int
) -> None:
    from dataclasses import replace

    policy = with_params(params, channels="per_channel", extra_channel_factor="0.5")
    (mono,) = meter_records([replace(record, channels=1)], policy)
    (multi,) = meter_records([replace(record, channels=channels)], policy)
    assert multi.billable_seconds == (1 + Decimal("0.5") * (channels - 1)) * mono.billable_seconds


@SETTINGS
@given(
    params=S.metering_params(), records=S.record_lists(statuses=("failed", "unanswered", "busy", "canceled"))
)
def test_records_the_policy_does_not_bill_are_zero_but_still_counted(
    params: dict[str, Any], records: list[UsageRecord]
) -> None:
    metered = meter_records(records, S.build_policy(params))
    assert len(metered) == len(records)
    assert all(m.billable_seconds == 0 for m in metered)
    assert all("not billed" in m.explain[-1].rule or "not billed" in m.trail() for m in metered)
