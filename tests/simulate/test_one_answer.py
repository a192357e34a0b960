"""One answer everywhere (ADR 0004): the same records give the same billable quantities in ``meter``,
``margin``, ``invoice``, ``simulate`` and ``compare``, and ``--at`` means the same in both what-if commands.

History: Telnyx legs of two customers, 30 in October 2026 and 20 in November. telnyx-voice bills 6/6 until
2026-10-31 and 60/60 from 2026-11-01, so a record started in October is billed 6/6 by every command, and
only ``--at 2026-11-15`` (November's rules applied to every record) bills it 60/60, in simulate and compare
alike.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from talktime.cli.main import app
from talktime.core.metering.meter import meter_records
from talktime.core.records import UsageRecord
from talktime.core.simulate.rules import at_date, pin_policy
from talktime.errors import InputError
from talktime.io.records_io import write_records
from talktime.providers import builtin

COSTS = """
kind = "cost"
name = "one-answer card (tests)"
currency = "USD"

[costs.telnyx-voice]
[[costs.telnyx-voice.versions]]
effective_from = 2020-01-01
model = "per_unit"
unit_price = "0.01"

[costs.twilio-voice]
match = { provider = "twilio", kind = ["leg"] }
[[costs.twilio-voice.versions]]
effective_from = 2020-01-01
model = "per_unit"
unit_price = "0.0085"
"""

PRICES = """
kind = "price"
name = "telnyx minutes (tests)"
currency = "USD"
timezone = "UTC"
[components.minutes]
policy = "telnyx-voice"
match = { kind = ["leg"] }
[[components.minutes.versions]]
effective_from = 2020-01-01
model = "per_unit"
unit_price = "0.10"
"""

CUSTOMERS = ("acme", "beta")
PERIODS = ("2026-10", "2026-11")


def _legs() -> list[UsageRecord]:
    rng = random.Random(11)
    out = []
    for number in range(50):
        began = datetime(2026, 10 if number < 30 else 11, 2, 8, tzinfo=UTC) + timedelta(hours=number * 13)
        talk = timedelta(milliseconds=rng.randint(1_000, 200_000))
        out.append(
            UsageRecord(
                id=f"leg-{number}",
                customer=CUSTOMERS[number % 2],
                session=f"call-{number}",
                provider="telnyx",
                product="voice",
                kind="leg",
                started_at=began,
                answered_at=began + timedelta(seconds=4),
                ended_at=began + timedelta(seconds=4) + talk,
            )
        )
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("one-answer")
    paths = {"records": folder / "legs.csv", "costs": folder / "costs.toml", "prices": folder / "prices.toml"}
    write_records(paths["records"], _legs())
    paths["costs"].write_text(COSTS, encoding="utf-8")
    paths["prices"].write_text(PRICES, encoding="utf-8")
    return paths


def _run(command: str) -> Any:
    """A talktime command line (paths without spaces) whose JSON output is returned."""
    result = CliRunner().invoke(app, command.split())
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _by_start() -> Decimal:
    """The reference: each record metered by the version in force when it started."""
    return sum((m.billable_seconds for m in meter_records(_legs(), builtin("telnyx-voice"))), Decimal(0))


def _as_of(day: str) -> Decimal:
    pinned = pin_policy(builtin("telnyx-voice"), at_date(day))
    return sum((m.billable_seconds for m in meter_records(_legs(), pinned)), Decimal(0))


def test_the_version_change_matters_for_this_history() -> None:
    """Otherwise the commands below could agree by accident: October's rules bill less than November's."""
    assert _as_of("2026-10-15") < _by_start() < _as_of("2026-11-15")


def test_every_command_bills_each_record_by_the_version_in_force_when_it_started(
    files: dict[str, Path],
) -> None:
    records, costs, prices = files["records"], files["costs"], files["prices"]
    expected = _by_start()
    billable: dict[str, Decimal] = {}

    meter = _run(f"meter {records} --policy telnyx-voice --summary --format json")
    billable["meter"] = Decimal(meter["totals"]["billable_seconds"])

    margin = _run(f"margin --records {records} --costs {costs} --prices {prices} --by provider -f json")
    (row,) = margin["rows"]
    billable["margin (cost quantity)"] = Decimal(row["quantity"]) * 60
    by_period = _run(f"margin --records {records} --costs {costs} --prices {prices} --by period -f json")
    billable["margin (minutes sold)"] = sum(
        (Decimal(r["minutes"]) * 60 for r in by_period["rows"]), Decimal(0)
    )

    invoiced = Decimal(0)
    for customer in CUSTOMERS:
        for period in PERIODS:
            invoice = _run(
                f"invoice --customer {customer} --period {period} --records {records} --prices {prices}"
            )
            invoiced += sum(
                (Decimal(line["billable_quantity"]) * 60 for line in invoice["lines"]), Decimal(0)
            )
    billable["invoice"] = invoiced

    simulate = _run(f"simulate --records {records} --policies telnyx-voice --costs {costs} -f json")
    billable["simulate"] = Decimal(simulate["policies"][0]["billable_seconds"])

    for engine in ("duckdb", "reference"):
        compare = _run(
            f"compare --from telnyx-voice --to twilio-voice --records {records} --costs {costs} "
            f"--prices {prices} --engine {engine} -f json"
        )
        billable[f"compare --engine {engine}"] = Decimal(compare["total"]["billable_seconds_from"])

    assert billable == dict.fromkeys(billable, expected)


def test_at_applies_one_date_s_rules_to_every_record_in_simulate_and_compare_alike(
    files: dict[str, Path],
) -> None:
    records, costs = files["records"], files["costs"]
    simulate = _run(
        f"simulate --records {records} --policies telnyx-voice --costs {costs} --at 2026-11-15 -f json"
    )
    outputs = [simulate]
    for engine in ("duckdb", "reference"):
        outputs.append(
            _run(
                f"compare --from telnyx-voice --to telnyx-voice --records {records} --costs {costs} "
                f"--at 2026-11-15 --engine {engine} -f json"
            )
        )
    expected = _as_of("2026-11-15")
    assert Decimal(simulate["policies"][0]["billable_seconds"]) == expected
    for compare in outputs[1:]:
        assert Decimal(compare["total"]["billable_seconds_from"]) == expected
        assert Decimal(compare["total"]["billable_seconds_to"]) == expected
    labels = {(o["rules"], o["rules_at"]) for o in outputs}
    assert labels == {
        (
            "the rules and prices in force on 2026-11-15, applied to every record",
            "2026-11-15T00:00:00+00:00",
        )
    }
    # the rule shown is the one applied, not the current one over older records
    assert simulate["policies"][0]["rule"] == "answered, 60/60 up, per record"


def test_without_at_both_say_each_record_is_under_its_own_rules(files: dict[str, Path]) -> None:
    records, costs = files["records"], files["costs"]
    simulate = _run(f"simulate --records {records} --policies telnyx-voice --costs {costs} -f json")
    compare = _run(
        f"compare --from telnyx-voice --to twilio-voice --records {records} --costs {costs} -f json"
    )
    label = "each record under the rules and prices in force when it started"
    assert simulate["rules"] == compare["rules"] == label
    assert simulate["rules_at"] is None and compare["rules_at"] is None
    assert "records before 2026-11-01 by their own version" in simulate["policies"][0]["rule"]


def test_the_to_side_bills_what_meter_bills_under_the_to_profile(files: dict[str, Path]) -> None:
    """The switch reads the records as the other provider's; its billable quantity is that profile's."""
    records, costs = files["records"], files["costs"]
    meter = _run(f"meter {records} --policy twilio-voice --summary --format json")
    compare = _run(
        f"compare --from telnyx-voice --to twilio-voice --records {records} --costs {costs} -f json"
    )
    assert compare["total"]["billable_seconds_to"] == meter["totals"]["billable_seconds"]


def test_at_before_a_profile_starts_is_refused_naming_it(files: dict[str, Path]) -> None:
    for command in (
        ["simulate", "--records", files["records"], "--policies", "telnyx-voice"],
        ["compare", "--from", "telnyx-voice", "--to", "twilio-voice", "--records", files["records"]],
    ):
        result = CliRunner().invoke(
            app, [*map(str, command), "--costs", str(files["costs"]), "--at", "2019-06-01"]
        )
        assert result.exit_code == 2, result.output
        assert "--at 2019-06-01" in result.output and "2020-01-01" in result.output
    with pytest.raises(InputError, match="YYYY-MM-DD"):
        at_date("15/11/2026")
