"""FOCUS 1.2 and plain invoice-line exports, checked against the specification's column rules as written in
the FOCUS 1.2 spec (specification/columns/*.md at tag v1.2), not against the exporter's own tables.

The rules below are transcribed from the spec: each column's feature level, data type and nullability, the
allowed values, and the conditional rules between columns (ChargeClass, ConsumedQuantity, PricingQuantity,
units, unit prices, service subcategory parents). Then: BilledCost summed per InvoiceId equals the invoice's
total (the spec's rule for BilledCost), and a late event becomes a Usage row with ChargeClass Correction.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from talktime.cli.main import app
from talktime.core.records import UsageRecord
from talktime.io.records_io import write_records

from .test_invoice_pdf_cli import _records

runner = CliRunner()

# (column, type, nullable) for every Mandatory column of FOCUS 1.2.
MANDATORY = {
    "BilledCost": ("Decimal", False),
    "BillingAccountId": ("String", False),
    "BillingAccountName": ("String", True),
    "BillingCurrency": ("String", False),
    "BillingPeriodEnd": ("DateTime", False),
    "BillingPeriodStart": ("DateTime", False),
    "ChargeCategory": ("String", False),
    "ChargeClass": ("String", True),
    "ChargeDescription": ("String", True),
    "ChargePeriodEnd": ("DateTime", False),
    "ChargePeriodStart": ("DateTime", False),
    "ContractedCost": ("Decimal", False),
    "EffectiveCost": ("Decimal", False),
    "InvoiceIssuerName": ("String", False),
    "ListCost": ("Decimal", False),
    "PricingQuantity": ("Decimal", True),
    "PricingUnit": ("String", True),
    "ProviderName": ("String", False),
    "PublisherName": ("String", False),
    "ServiceCategory": ("String", False),
    "ServiceName": ("String", False),
}
# Recommended and Conditional columns we write, with their spec type and nullability.
OPTIONAL = {
    "ChargeFrequency": ("String", False),
    "ConsumedQuantity": ("Decimal", True),
    "ConsumedUnit": ("String", True),
    "ContractedUnitPrice": ("Decimal", True),
    "InvoiceId": ("String", True),
    "ListUnitPrice": ("Decimal", True),
    "PricingCategory": ("String", True),
    "ServiceSubcategory": ("String", False),
    "SkuId": ("String", True),
}
ALLOWED = {
    "ChargeCategory": {"Usage", "Purchase", "Tax", "Credit", "Adjustment"},
    "ChargeClass": {"Correction"},
    "ChargeFrequency": {"One-Time", "Recurring", "Usage-Based"},
    "PricingCategory": {"Standard", "Dynamic", "Committed", "Other"},
    "ServiceCategory": {
        "AI and Machine Learning", "Analytics", "Business Applications", "Compute", "Databases",
        "Developer Tools", "Multicloud", "Identity", "Integration", "Internet of Things",
        "Management and Governance", "Media", "Migration", "Mobile", "Networking", "Security", "Storage",
        "Web", "Other",
    },
}  # fmt: skip
# The subcategories we can meet, each with its one parent category (the spec's table).
SUBCATEGORY_PARENT = {
    "Bots": "AI and Machine Learning",
    "Generative AI": "AI and Machine Learning",
    "Natural Language Processing": "AI and Machine Learning",
    "Other (AI and Machine Learning)": "AI and Machine Learning",
    "Network Connectivity": "Networking",
    "Media Streaming": "Media",
    "Other (Other)": "Other",
}
NUMERIC = re.compile(r"^-?\d+(\.\d+)?(E-?\d+)?$")  # NumericFormat: no '+', no commas, no units
DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")  # DateTimeFormat: UTC, 'Z'
UNIT = re.compile(r"^(\d+ )?[A-Z][A-Za-z]*s$")  # UnitFormat: "<plural-units>" or "<quantity> <plural-units>"


def check_focus(rows: list[dict[str, str | None]]) -> None:
    """Every FOCUS 1.2 rule we can check on a row, on rows read from CSV (None for an empty cell)."""
    assert rows, "an export with no rows checks nothing"
    columns = set(rows[0])
    assert set(MANDATORY) <= columns, f"mandatory columns missing: {set(MANDATORY) - columns}"
    for name in columns - set(MANDATORY) - set(OPTIONAL):
        assert name.startswith("x_"), f"{name}: a column FOCUS does not define must start with x_"
    for row in rows:
        for name, (kind, nullable) in {**MANDATORY, **OPTIONAL}.items():
            value = row.get(name)
            if value is None:
                assert nullable, f"{name} must not be null: {row}"
                continue
            assert value.strip() == value and value, f"{name}: {value!r} is not a value (empty or padded)"
            if kind == "Decimal":
                assert NUMERIC.match(value), f"{name}: {value!r} breaks NumericFormat"
            if kind == "DateTime":
                assert DATETIME.match(value), f"{name}: {value!r} is not UTC 'YYYY-MM-DDTHH:mm:ssZ'"
            if name in ALLOWED:
                assert value in ALLOWED[name], f"{name}: {value!r} is not an allowed value"
        category, klass = row["ChargeCategory"], row["ChargeClass"]
        correction = klass == "Correction"
        usage_or_purchase = category in ("Usage", "Purchase") and not correction
        assert (row["ConsumedQuantity"] is None) or category == "Usage", "consumed only on Usage rows"
        if category == "Usage" and not correction:
            assert row["ConsumedQuantity"] is not None, "Usage rows say what was consumed"
        assert (row["ConsumedUnit"] is None) == (row["ConsumedQuantity"] is None)
        assert (row["PricingUnit"] is None) == (row["PricingQuantity"] is None)
        for unit in (row["ConsumedUnit"], row["PricingUnit"]):
            assert unit is None or UNIT.match(unit), f"{unit!r} breaks UnitFormat"
        if usage_or_purchase:
            for name in ("PricingQuantity", "PricingCategory", "SkuId"):
                assert row[name] is not None, f"{name} is required on a Usage or Purchase row"
        for price, cost in (("ListUnitPrice", "ListCost"), ("ContractedUnitPrice", "ContractedCost")):
            if row[price] is not None and row["PricingQuantity"] is not None and not correction:
                product = Decimal(row[price]) * Decimal(row["PricingQuantity"])
                assert product == Decimal(str(row[cost])), f"{price} x PricingQuantity must be {cost}"
                assert Decimal(row[price]) >= 0
            elif row[price] is None:
                assert row[cost] == row["BilledCost"], f"{cost} without a unit price matches BilledCost"
        if category != "Purchase":
            assert row["EffectiveCost"] == row["BilledCost"], "no amortisation here"
        else:
            assert row["ChargeFrequency"] != "Usage-Based", "a Purchase is not Usage-Based"
        sub = row["ServiceSubcategory"]
        assert sub is not None and SUBCATEGORY_PARENT[sub] == row["ServiceCategory"], "one parent category"
        assert row["BillingCurrency"] is not None and re.match(r"^[A-Z]{3}$", row["BillingCurrency"])
        assert str(row["ChargePeriodStart"]) < str(row["ChargePeriodEnd"])


def read_csv(text: str) -> list[dict[str, str | None]]:
    return [
        {k: (v if v != "" else None) for k, v in row.items()} for row in csv.DictReader(io.StringIO(text))
    ]


def late_records(path: Path) -> Path:
    """Two October calls that arrive after October was finalised (for a Correction row)."""
    start = datetime(2026, 10, 20, 9, tzinfo=UTC)
    late = [
        UsageRecord(
            id=f"late-{n}-caller",
            kind="sip",
            provider="livekit",
            product="rooms",
            customer="blue-bank",
            session=f"late-{n}",
            started_at=start + timedelta(hours=n),
            ended_at=start + timedelta(hours=n, seconds=150),
        )
        for n in range(2)
    ]
    november = UsageRecord(
        id="nov-caller",
        kind="sip",
        provider="livekit",
        product="rooms",
        customer="blue-bank",
        session="nov",
        started_at=datetime(2026, 11, 3, 9, tzinfo=UTC),
        ended_at=datetime(2026, 11, 3, 9, 1, 30, tzinfo=UTC),
    )
    from talktime.io.records_io import read_records

    write_records(path, [*read_records(path), *late, november])
    return path


def test_focus_rows_of_both_sides_follow_the_spec_and_bill_what_the_invoices_say(tmp_path: Path) -> None:
    records = _records(tmp_path / "records.csv")
    base = ["--records", str(records), "--prices", "plan-call-minute.toml"]
    ledger = ["--ledger", str(tmp_path / "ledger")]
    at = ["--at", "2026-11-01T09:00:00Z"]
    done = runner.invoke(
        app, ["invoice", "finalize", "-c", "blue-bank", "-p", "2026-10", *base, *ledger, *at]
    )
    assert done.exit_code == 0, done.output
    late_records(records)
    result = runner.invoke(
        app, ["export", "focus", "-p", "2026-11", *base, *ledger, "--costs", "costs-informative.toml"]
    )
    assert result.exit_code == 0, result.output
    rows = read_csv(result.stdout)
    check_focus(rows)
    sides = {row["x_Side"] for row in rows}
    assert sides == {"cost", "price"}
    price = [row for row in rows if row["x_Side"] == "price"]
    invoice = json.loads(
        runner.invoke(app, ["invoice", "-c", "blue-bank", "-p", "2026-11", *base, *ledger]).stdout
    )
    billed: dict[str | None, Decimal] = defaultdict(Decimal)
    for row in price:
        billed[row["InvoiceId"]] += Decimal(str(row["BilledCost"]))
    assert billed == {invoice["id"]: Decimal(invoice["total"])}, (
        "BilledCost per InvoiceId = the invoice total"
    )
    (correction,) = [row for row in price if row["ChargeClass"] == "Correction"]
    assert correction["ChargeCategory"] == "Usage" and correction["x_CorrectsPeriod"] == "2026-10"
    assert correction["ChargePeriodStart"] == "2026-09-30T22:00:00Z", "the corrected month, Berlin time"
    assert correction["BillingPeriodStart"] == "2026-10-31T23:00:00Z", "billed in November"
    assert Decimal(str(correction["BilledCost"])) == Decimal("0.72"), "2 late calls x 3 min x 0.12"
    usage = next(row for row in price if row["x_LineKind"] == "usage")
    assert (usage["ConsumedQuantity"], usage["PricingQuantity"]) == ("1.5", "2"), (
        "actual 90 s, billable 2 min"
    )
    cost = [row for row in rows if row["x_Side"] == "cost"]
    assert {row["ProviderName"] for row in cost} == {"livekit"}, "November has only room connections"
    assert all(row["InvoiceId"] is None for row in cost), "the providers' invoice ids are not known here"


def test_finalised_months_carry_their_number_as_invoice_id_and_parquet_keeps_types(tmp_path: Path) -> None:
    records = _records(tmp_path / "records.csv")
    base = ["--records", str(records), "--prices", "plan-call-minute.toml", "--ledger", str(tmp_path / "l")]
    done = runner.invoke(app, ["invoice", "finalize", "-c", "blue-bank", "-p", "2026-10", *base])
    assert done.exit_code == 0, done.output
    out = tmp_path / "focus.parquet"
    costs = ["--costs", "costs-informative.toml"]
    result = runner.invoke(
        app, ["export", "focus", "-p", "2026-10", *base, *costs, "-f", "parquet", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert table.schema.field("BilledCost").type == pa.decimal128(38, 12)
    assert table.schema.field("BillingPeriodStart").type == pa.timestamp("us", tz="UTC")
    assert table.schema.metadata[b"focus_version"] == b"1.2"
    rows = table.to_pylist()
    price = [row for row in rows if row["x_Side"] == "price"]
    assert {row["InvoiceId"] for row in price} == {"EV-000001"}
    assert sum(row["BilledCost"] for row in price) == Decimal("50.92"), "1.92 usage + 49 fee"
    twilio = next(row for row in rows if row["ProviderName"] == "twilio")
    assert twilio["PricingQuantity"] == 16 and twilio["BilledCost"] == Decimal("0.136"), "16 min x 0.0085"
    assert twilio["ServiceCategory"] == "Networking" and twilio["x_Customer"] == "blue-bank"
    as_text = [
        {
            k: None
            if v is None
            else (v.strftime("%Y-%m-%dT%H:%M:%SZ") if isinstance(v, datetime) else str(v))
            for k, v in row.items()
        }
        for row in rows
    ]
    for row in as_text:  # Parquet decimals carry 12 places: compare numbers, not text, on the product rule
        for key in ("BilledCost", "ListCost", "ContractedCost", "EffectiveCost"):
            row[key] = str(Decimal(str(row[key])).normalize())
    check_focus(as_text)


def test_invoice_lines_export_is_exact_in_csv_and_parquet(tmp_path: Path) -> None:
    records = _records(tmp_path / "records.csv")
    base = ["export", "invoice-lines", "-p", "2026-10", "--records", str(records), "--prices"]
    result = runner.invoke(app, [*base, "plan-call-minute.toml"])
    assert result.exit_code == 0, result.output
    rows = read_csv(result.stdout)
    usage = next(row for row in rows if row["kind"] == "usage")
    assert usage["actual_quantity"] == "14.233333333333" and usage["actual_base"] == "854"
    assert usage["billable_quantity"] == "16" and usage["amount"] == "1.92" and usage["status"] == "draft"
    out = tmp_path / "lines.parquet"
    assert (
        runner.invoke(app, [*base, "plan-call-minute.toml", "-f", "parquet", "-o", str(out)]).exit_code == 0
    )
    table = pq.read_table(out)
    assert table.schema.field("amount").type == pa.decimal128(38, 12)
    assert sum(table.column("amount").to_pylist()) == Decimal("50.92")


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["focus", "-p", "2026-10"], "needs --costs (cost side), --prices (price side) or both"),
        (["focus", "-p", "2026-13", "--prices", "plan-call-minute.toml"], "'2026-13' is not a month"),
        (["invoice-lines", "-p", "2026-10", "--prices", "plan-call-minute.toml", "-f", "parquet"], "--out"),
    ],
)
def test_bad_export_requests_say_what_is_wrong(tmp_path: Path, args: list[str], said: str) -> None:
    records = _records(tmp_path / "records.csv")
    result = runner.invoke(app, ["export", *args, "--records", str(records)])
    assert result.exit_code == 2 and said in result.output, result.output


def test_help_names_both_exports_and_their_options() -> None:
    shown = runner.invoke(app, ["export", "--help"]).stdout
    assert "focus" in shown and "invoice-lines" in shown
    focus = runner.invoke(app, ["export", "focus", "--help"]).stdout
    for option in ("--costs", "--prices", "--ledger", "--period", "--format", "--out", "--customer"):
        assert option in focus


def test_the_rule_check_rejects_rows_that_break_the_spec(tmp_path: Path) -> None:
    records = _records(tmp_path / "records.csv")
    args = [
        "export",
        "focus",
        "-p",
        "2026-10",
        "--records",
        str(records),
        "--prices",
        "plan-call-minute.toml",
    ]
    good = read_csv(runner.invoke(app, args).stdout)
    check_focus(good)
    for column, bad in (
        ("ChargeClass", "Correction"),  # a correction with a Usage row's consumed quantity is fine; but:
        ("ChargeCategory", "Refund"),
        ("BillingPeriodStart", "2026-10-01T00:00:00+02:00"),
        ("BilledCost", "1,92"),
        ("ServiceSubcategory", "Network Connectivity"),
        ("ListCost", "1.93"),
    ):
        broken = [dict(row) for row in good]
        broken[0][column] = bad
        if column == "ChargeClass":
            broken[0]["ChargeCategory"] = "Tax"  # a Tax row must not carry a consumed quantity
        with pytest.raises(AssertionError):
            check_focus(broken)
