"""A real PDF rendered by WeasyPrint with its text checked, and the invoice and margin commands end to end."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from talktime.cli.main import app
from talktime.core.records import UsageRecord
from talktime.io.records_io import write_records

runner = CliRunner()


def _records(path: Path) -> Path:
    start = datetime(2026, 10, 5, 14, tzinfo=UTC)
    records = []
    for number, seconds in enumerate([134, 59, 61, 600]):
        began = start + timedelta(hours=number)
        common = {"customer": "blue-bank", "session": f"call-{number}", "started_at": began}
        records += [
            UsageRecord(
                id=f"call-{number}-leg",
                kind="leg",
                provider="twilio",
                product="voice",
                answered_at=began,
                ended_at=began + timedelta(seconds=seconds),
                **common,  # type: ignore[arg-type]
            ),
            UsageRecord(
                id=f"call-{number}-caller",
                kind="sip",
                provider="livekit",
                product="rooms",
                ended_at=began + timedelta(seconds=seconds),
                **common,  # type: ignore[arg-type]
            ),
        ]
    write_records(path, records)
    return path


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) is not installed")
def test_a_real_pdf_shows_actual_and_billable_quantities(tmp_path: Path) -> None:
    records = _records(tmp_path / "records.csv")
    pdf = tmp_path / "invoice.pdf"
    args = ["invoice", "--customer", "blue-bank", "--period", "2026-10", "--records", str(records)]
    result = runner.invoke(
        app, [*args, "--prices", "plan-call-minute.toml", "--format", "pdf", "--out", str(pdf)]
    )
    assert result.exit_code == 0, result.output
    assert pdf.read_bytes().startswith(b"%PDF")
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, check=True, text=True)
    page = text.stdout
    for expected in ("Invoice", "DRAFT", "blue-bank-2026-10", "Blue Bank GmbH", "call-minutes"):
        assert expected in page
    assert "Example Voice AI Ltd." in page and "GB000000000" in page, "the seller block from [seller]"
    assert "draft, no number" in page and "due 30 days after the issue date" in page
    assert "1\u201331 October 2026 (Europe/Berlin)" in page, "the period in words, in the customer's zone"
    assert "14.23" in page and "14.233333" not in page, "actual minutes: 854 s, to 2 decimals on paper"
    assert "16.00" in page, "billable minutes: 3 + 1 + 2 + 10 = 16 under 60/60 up"
    assert "1.92" in page and "49.00" in page and "50.92" in page, "16 x 0.12 + 49 platform fee"
    assert "https://example.com/methodology/call-minute" in page, "the footer links the methodology"
    appendix = page[page.index("Appendix") :]
    assert "2026-10-05 16:00:00" in appendix, "each call's start in the customer's zone (14:00 UTC)"
    assert "2.23" in appendix and "3.00" in appendix and "0.3600" in appendix, "call-0: 134 s -> 3 min"


def test_invoice_then_finalize_then_adjust(tmp_path: Path) -> None:
    records = _records(tmp_path / "records.csv")
    ledger = tmp_path / "ledger"
    base = ["--customer", "blue-bank", "--records", str(records), "--prices", "plan-call-minute.toml"]
    shown = runner.invoke(app, ["invoice", *base, "--period", "2026-10"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["total"] == "50.92"
    done = runner.invoke(
        app,
        [
            "invoice",
            "finalize",
            *base,
            "--period",
            "2026-10",
            "--ledger",
            str(ledger),
            "--at",
            "2026-11-01T09:00:00Z",
        ],
    )
    assert done.exit_code == 0, done.output
    assert (
        "finalised blue-bank-2026-10 as invoice EV-000001, issued 2026-11-01, due 2026-12-01" in done.stdout
    )
    again = runner.invoke(app, ["invoice", "finalize", *base, "--period", "2026-10", "--ledger", str(ledger)])
    assert again.exit_code == 2 and "already finalised" in again.output
    nov = runner.invoke(
        app, ["invoice", *base, "--period", "2026-11", "--ledger", str(ledger), "--format", "csv"]
    )
    assert nov.exit_code == 0 and "platform" in nov.stdout
    missing = runner.invoke(app, ["invoice", "--customer", "blue-bank"])
    assert missing.exit_code == 2 and "--period" in missing.output


def test_margin_command(tmp_path: Path) -> None:
    records = _records(tmp_path / "records.csv")
    args = ["margin", "--records", str(records), "--costs", "costs-informative.toml"]
    result = runner.invoke(
        app, [*args, "--prices", "plan-call-minute.toml", "--by", "provider", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    rows = {row["provider"]: row for row in json.loads(result.stdout)["rows"]}
    assert rows["twilio-voice"]["cost"] == "0.136", "16 billable Twilio minutes x 0.0085"
    assert rows["livekit-sip"]["cost"] == "0", "inside the 1,000 free SIP minutes"
    bad = runner.invoke(
        app, ["margin", "--records", str(records), "--costs", "nope.toml", "--prices", "x.toml"]
    )
    assert bad.exit_code == 2 and "nope.toml" in bad.output
