"""Metering: policies that say what a billable unit is, and the scalar reference meter that applies them."""

from talktime.core.metering.meter import (
    MeteredRecord,
    MeterTotals,
    Step,
    Totals,
    meter_iter,
    meter_record,
    meter_records,
    round_increments,
    summarize,
)
from talktime.core.metering.policy import MeteringParams, Policy, PolicyVersion, policy_from_dict

__all__ = [
    "MeterTotals",
    "MeteredRecord",
    "MeteringParams",
    "Policy",
    "PolicyVersion",
    "Step",
    "Totals",
    "meter_iter",
    "meter_record",
    "meter_records",
    "policy_from_dict",
    "round_increments",
    "summarize",
]
