"""Customer-ready invoices: the seller from the price card, numbers given at finalisation (gap-free, never
reused, kept with the ledger), issue and due dates from payment terms, the period in words, quantities at a
readable precision on paper and exact in JSON, the calls behind each line (in the PDF or a CSV beside it)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import subprocess
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from talktime.cli.main import app
from talktime.core.invoicing.invoice import build_invoice, finalise
from talktime.core.invoicing.paper import paper_quantity
from talktime.core.invoicing.serialize import invoice_dict
from talktime.core.rating.cards import RateCardError
from talktime.io.invoices import (
    HASH_CHARS,
    LedgerError,
    _canonical,
    calls_csv,
    content_hash,
    numbers_log,
    read_ledger,
    store_finalised,
    to_json,
)

from .test_invoice_build import D, call, card
from .test_invoice_pdf_cli import _records

runner = CliRunner()
SELLER = {
    "id": "voice-co",
    "name": "Voice Co Ltd.",
    "address": ["1 Main Street", "Dublin D01 X2Y3", "Ireland"],
    "tax_id": "IE1234567X",
    "email": "billing@voice.example",
    "invoice_prefix": "VC-",
    "methodology_url": "https://voice.example/methodology/{policy}",
}


def sold(**extra: Any) -> Any:
    return card(tz="America/New_York", seller=SELLER, payment_terms_days=30, **extra)


def test_the_seller_and_payment_terms_are_validated_all_at_once() -> None:
    bad = {"name": "", "email": "not-an-address", "fax": "1", "invoice_prefix": "has space"}
    with pytest.raises(RateCardError) as error:
        card(seller=bad, payment_terms_days=-3, customers={"a": {"payment_terms_days": "30"}})
    said = str(error.value)
    for expected in (
        "seller.name: is required",
        "seller.email: 'not-an-address' is not an e-mail address",
        "seller.fax: unknown key",
        "seller.invoice_prefix",
        "payment_terms_days: -3 is not a whole number of days from 0 to 365",
        "customers.a.payment_terms_days: '30' is not a whole number",
    ):
        assert expected in said
    plan = card(seller={"name": "Voice Co Ltd."}, customers={"acme": {"payment_terms_days": 14}})
    assert plan.seller is not None and plan.seller.id == "voice-co-ltd", "id defaults to the name, slugged"
    assert plan.terms_days("acme") == 14 and plan.terms_days("other") == 0, "0: due on receipt"


def test_finalising_gives_issue_and_due_dates_in_the_customer_zone() -> None:
    draft = build_invoice([call("a", "2026-10-05T14:00:00+00:00", "60")], sold(), "acme", "2026-10")
    assert draft.number is None and draft.issued_on is None
    final = finalise(draft, datetime(2026, 11, 1, 3, 30, tzinfo=UTC))
    assert final.issued_on == date(2026, 10, 31), "03:30 UTC is still 31 October in New York"
    assert final.due_on == date(2026, 11, 30), "30 days of payment terms"
    assert draft.period.in_words() == "1\u201331 October 2026 (America/New_York)"


def test_numbers_are_gap_free_per_seller_and_part_of_the_finalised_record(tmp_path: Path) -> None:
    at = datetime(2026, 11, 2, tzinfo=UTC)
    records = [call("a", "2026-10-05T14:00:00+00:00", "60", customer=c) for c in ("acme", "beta")]
    numbers = []
    for customer in ("acme", "beta"):
        _, stored = store_finalised(
            tmp_path, finalise(build_invoice(records, sold(), customer, "2026-10"), at)
        )
        numbers.append(stored.number)
    assert numbers == ["VC-000001", "VC-000002"]
    again = finalise(build_invoice(records, sold(), "acme", "2026-10"), at)
    with pytest.raises(LedgerError, match="already finalised"):
        store_finalised(tmp_path, again)
    _, third = store_finalised(tmp_path, finalise(build_invoice(records, sold(), "acme", "2026-11"), at))
    assert third.number == "VC-000003", "a refused finalisation used no number"
    ledger = {inv.number: inv for inv in read_ledger(tmp_path)}
    assert set(ledger) == {"VC-000001", "VC-000002", "VC-000003"}, "the number is in the stored invoice"
    other = card(seller={"name": "Other Seller", "invoice_prefix": "OS-"})
    _, first = store_finalised(tmp_path, finalise(build_invoice(records, other, "acme", "2026-09"), at))
    assert first.number == "OS-000001", "each seller has its own sequence"
    path = next((tmp_path / "beta").glob("2026-10.*.json"))
    path.write_text(path.read_text().replace("VC-000002", "VC-000009"))
    with pytest.raises(LedgerError, match="does not match"):
        read_ledger(tmp_path)


def test_a_number_never_issued_is_taken_again_and_a_missing_invoice_stops_numbering(tmp_path: Path) -> None:
    at = datetime(2026, 11, 2, tzinfo=UTC)
    records = [call("a", "2026-10-05T14:00:00+00:00", "60", customer=c) for c in ("acme", "beta", "cara")]
    store_finalised(tmp_path, finalise(build_invoice(records, sold(), "acme", "2026-10"), at))
    log = numbers_log(tmp_path, "voice-co")
    stopped = {"sequence": 2, "number": "VC-000002", "invoice": "beta-2026-10", "file": "beta/2026-10.x.json"}
    log.write_text(log.read_text() + json.dumps(stopped) + "\n" + '{"sequence": 3, "num')  # stopped mid-way
    _, beta = store_finalised(tmp_path, finalise(build_invoice(records, sold(), "beta", "2026-10"), at))
    assert beta.number == "VC-000002", "the number whose invoice was never written was never issued"
    assert [json.loads(line)["sequence"] for line in log.read_text().splitlines()] == [1, 2]
    next((tmp_path / "acme").glob("*.json")).unlink()
    with pytest.raises(LedgerError, match=r"VC-000001 was issued on acme-2026-10, but .* is missing"):
        store_finalised(tmp_path, finalise(build_invoice(records, sold(), "cara", "2026-10"), at))


def test_ledger_files_finalised_before_numbers_still_read(tmp_path: Path) -> None:
    old = invoice_dict(
        finalise(
            build_invoice([call("a", "2026-10-05T14:00:00+00:00", "60")], card(), "acme", "2026-10"),
            datetime(2026, 11, 2, tzinfo=UTC),
        )
    )
    for key in ("number", "issued_on", "due_on", "payment_terms_days", "period_words", "seller"):
        del old[key]
    for line in old["lines"]:
        for key in ("policy_id", "base_unit", "actual_base", "billable_base", "calls"):
            del line[key]
    body = _canonical(old)
    (tmp_path / "acme").mkdir()
    (tmp_path / "acme" / f"2026-10.{hashlib.sha256(body).hexdigest()[:HASH_CHARS]}.json").write_bytes(body)
    (stored,) = read_ledger(tmp_path)
    assert stored.number is None and stored.total.amount == D("0.10") and stored.lines[0].calls == ()


def test_json_is_exact_where_paper_is_readable() -> None:
    invoice = build_invoice([call("a", "2026-10-05T14:00:00+00:00", "2433.113")], sold(), "acme", "2026-10")
    line = json.loads(to_json(invoice))["lines"][0]
    assert line["actual_base"] == "2433.113" and line["base_unit"] == "s", "exact seconds"
    assert line["actual_quantity"] == "40.551883", "6 places in the line's unit, as before"
    assert line["calls"][0]["actual_base"] == "2433.113" and line["calls"][0]["amount"] == "4.1"
    assert paper_quantity(invoice.lines[0].actual_quantity, "minute") == "40.55"
    assert paper_quantity(D("1234567"), "token") == "1,234,567"
    assert paper_quantity(D("12.3456"), "second") == "12.3"
    rows = list(csv.DictReader(io.StringIO(calls_csv(invoice))))
    assert rows[0]["actual_quantity"] == "40.551883333333" and rows[0]["started_at"].endswith("-04:00")
    assert content_hash(invoice) != content_hash(finalise(invoice, datetime(2026, 11, 2, tzinfo=UTC)))


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) is not installed")
def test_a_long_month_lists_its_calls_in_a_csv_beside_the_pdf(tmp_path: Path) -> None:
    records = _records(tmp_path / "records.csv")
    pdf = tmp_path / "out" / "oct.pdf"
    base = ["invoice", "-c", "blue-bank", "-p", "2026-10", "--records", str(records), "--prices"]
    result = runner.invoke(
        app, [*base, "plan-call-minute.toml", "-f", "pdf", "-o", str(pdf), "--appendix-limit", "3"]
    )
    assert result.exit_code == 0, result.output
    listing = tmp_path / "out" / "oct.calls.csv"
    rows = list(csv.DictReader(listing.open()))
    assert [r["record"] for r in rows] == [f"call-{n}-caller" for n in range(4)]
    assert [r["billable_base"] for r in rows] == ["180", "60", "120", "600"], "60/60 up, exact seconds"
    page = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, check=True, text=True).stdout
    assert "Appendix" not in page and "oct.calls.csv" in page, "4 calls > 3: the PDF names the CSV"


def test_finalise_on_the_command_line_prints_the_number_and_the_pdf_shows_it(tmp_path: Path) -> None:
    records = _records(tmp_path / "records.csv")
    common = [
        "-c",
        "blue-bank",
        "-p",
        "2026-10",
        "--records",
        str(records),
        "--prices",
        "plan-call-minute.toml",
    ]
    ledger = ["--ledger", str(tmp_path / "ledger")]
    done = runner.invoke(app, ["invoice", "finalize", *common, *ledger, "--at", "2026-11-03T10:00:00+01:00"])
    assert done.exit_code == 0 and "as invoice EV-000001, issued 2026-11-03, due 2026-12-03" in done.stdout
    shown = runner.invoke(app, ["invoice", *common, *ledger])
    data = json.loads(shown.stdout)
    assert (data["number"], data["issued_on"], data["due_on"]) == ("EV-000001", "2026-11-03", "2026-12-03")
    html = runner.invoke(app, ["invoice", *common, *ledger, "-f", "html"]).stdout
    assert "EV-000001" in html and "3 December 2026" in html and "draft, no number" not in html
