"""Reconciliation in money: a line charged above its due amount is flagged as a price difference, with a
cost card or with the rate inferred from the statement; every output shows the money and names the rate."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from talktime.cli.main import app
from talktime.core.records import UsageRecord, record_to_row

FIXTURES = Path(__file__).parent.parent / "fixtures" / "statements"
CONSOLE = FIXTURES / "twilio-console.csv"


def records_file(tmp_path: Path) -> Path:
    """Our legs for the console export: answered calls of 150 s, 80 s, 150 s and 150 s, one unanswered."""
    day = datetime(2026, 10, 14, tzinfo=UTC)
    legs = [(1, 9, 0, 150), (2, 9, 10, 80), (3, 10, 0, 150), (5, 12, 0, 150)]
    records = [
        UsageRecord(
            id=f"CA1000000000000000000000000000000{n}",
            kind="leg",
            provider="twilio",
            started_at=day + timedelta(hours=h, minutes=m, seconds=3),
            answered_at=day + timedelta(hours=h, minutes=m, seconds=5),
            ended_at=day + timedelta(hours=h, minutes=m, seconds=5 + talk),
        )
        for n, h, m, talk in legs
    ]
    records.append(
        UsageRecord(
            id="CA10000000000000000000000000000004",
            kind="leg",
            provider="twilio",
            status="unanswered",
            started_at=day + timedelta(hours=11),
            ended_at=day + timedelta(hours=11, seconds=20),
        )
    )
    rows = [record_to_row(r) for r in records]
    path = tmp_path / "records.csv"
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def run(tmp_path: Path, *extra: str) -> tuple[int, str]:
    args = ["reconcile", "--provider", "twilio-voice", "--statement", str(CONSOLE)]
    result = CliRunner().invoke(app, [*args, "--records", str(records_file(tmp_path)), *extra])
    return result.exit_code, result.output


def line_of(document: dict[str, object], number: int) -> dict[str, object]:
    lines = document["lines"]
    assert isinstance(lines, list)
    return next(x for x in lines if x["line"] == number)


def test_an_overcharged_line_is_mispriced_and_flagged_with_the_card(tmp_path: Path) -> None:
    """0.05 charged for three minutes at 0.0085: 0.0255 was due; the seconds agree, the price does not."""
    code, out = run(tmp_path, "--costs", "costs-informative.toml", "--format", "json")
    assert code == 1, out
    document = json.loads(out)
    over = line_of(document, 4)
    assert (over["class"], over["flags"], over["flagged"]) == ("mispriced", "price", True)
    assert (over["amount"], over["due"], over["price"], over["rate"]) == (
        "0.05",
        "0.0255",
        "0.0245",
        "0.0085",
    )
    assert over["unexplained"] == "0"
    fair = line_of(document, 2)
    assert (fair["class"], fair["flags"], fair["price"]) == ("matched", "", "0")
    money = document["summary"]["money"]
    assert money["rate_source"] == "card" and money["pricing"].endswith("entry twilio-voice")
    assert money["causes"]["price"] == "0.0245" and money["price_flagged_lines"] == 1
    assert (money["statement_amount"], money["due_amount"]) == ("0.118", "0.0935")
    assert document["summary"]["mispriced"] == 1 and document["summary"]["seconds_flagged_lines"] == 0


def test_the_inferred_rate_is_the_most_common_one_and_does_not_absorb_an_overcharge(tmp_path: Path) -> None:
    code, out = run(tmp_path, "--format", "json")
    assert code == 1, out
    document = json.loads(out)
    money = document["summary"]["money"]
    assert money["rate_source"] == "inferred"
    assert money["pricing"].startswith(
        "inferred: 0.0085 per minute, the most common rate on the statement (3 of 4"
    )
    assert line_of(document, 4)["price"] == "0.0245"
    # Every amount an exact decimal string: no float noise.
    amounts = [x[k] for x in document["lines"] for k in ("amount", "due", "expected_amount", "price") if x[k]]
    assert all(len(a.partition(".")[2]) <= 12 for a in amounts)
    assert money["tolerance"] == "0.00001"  # one unit of the statement's 5 places


def test_a_generous_money_tolerance_lets_the_line_through(tmp_path: Path) -> None:
    code, out = run(tmp_path, "--money-tolerance", "0.03")
    assert code == 0, out


def test_table_shows_money_at_the_statements_precision_and_marks_flagged_lines(tmp_path: Path) -> None:
    code, out = run(tmp_path)
    assert code == 1
    assert "rate: 0.0085 per minute (inferred: 0.0085 per minute" in out
    assert "FLAGGED line 4 CA10000000000000000000000000000003" in out
    assert "PRICE charged 0.05000, due 0.02550 at 0.0085 (+0.02450)" in out
    assert "PRICE +0.02450 USD (1 lines over the money tolerance 0.00001)" in out


def test_csv_names_the_rate_source_on_every_priced_line(tmp_path: Path) -> None:
    code, out = run(tmp_path, "--costs", "costs-informative.toml", "--format", "csv")
    assert code == 1
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {r["rate_source"] for r in rows} == {"card"}
    assert [r["flags"] for r in rows if r["flagged"] == "True"] == ["price"]


def test_html_has_the_summary_first_and_flagged_rows_marked_with_a_word(tmp_path: Path) -> None:
    code, out = run(tmp_path, "--format", "html")
    assert code == 1
    assert out.index("<h2>Summary</h2>") < out.index("<h2>Lines")
    assert "FLAGGED: PRICE" in out and "<style>" in out
    assert out.count("FLAGGED:") == 1
    assert "inferred: 0.0085 per minute" in out


def test_html_flags_the_overcharged_line_with_its_amounts_and_prints_every_column(tmp_path: Path) -> None:
    """The flag cell says what was charged and due (so the amount is with the flag, as in the table), the
    price difference is signed like the table's, and printed on paper the page is landscape: on A4
    portrait the money columns fell off the right edge."""
    code, out = run(tmp_path, "-f", "html")
    assert code == 1
    row = next(r for r in out.split("<tr") if "FLAGGED:" in r)
    assert "CA10000000000000000000000000000003" in row
    assert "PRICE charged 0.05000, due 0.02550 at 0.0085 (+0.02450)" in row
    assert '<td class="num">+0.02450</td>' in row
    assert "@page { size: A4 landscape" in out


def test_a_negative_tolerance_is_refused_in_plain_words(tmp_path: Path) -> None:
    code, out = run(tmp_path, "--money-tolerance", "-1")
    assert code == 2 and "--money-tolerance '-1': must be a non-negative amount" in out
    code, out = run(tmp_path, "--rate", "-0.01")
    assert code == 2 and "--rate '-0.01': must be a non-negative price" in out


def test_a_card_without_an_entry_for_the_profile_is_bad_input(tmp_path: Path) -> None:
    card = tmp_path / "card.toml"
    card.write_text(
        'kind = "cost"\ncurrency = "USD"\n[costs.plivo-voice]\n[[costs.plivo-voice.versions]]\n'
        'effective_from = 2021-01-01\nmodel = "per_unit"\nunit_price = "0.0085"\n'
    )
    code, out = run(tmp_path, "--costs", str(card))
    assert code == 2 and "no entry prices 'twilio-voice' (entries: plivo-voice (plivo-voice))" in out


def test_a_tiered_card_entry_cannot_price_a_line(tmp_path: Path) -> None:
    card = tmp_path / "card.toml"
    card.write_text(
        'kind = "cost"\ncurrency = "USD"\n[costs.twilio-voice]\nmatch = { provider = "twilio" }\n'
        '[[costs.twilio-voice.versions]]\neffective_from = 2021-01-01\nmodel = "graduated"\n'
        'tiers = [{ up_to = "1000", unit_price = "0.01" }, { unit_price = "0.005" }]\n'
    )
    code, out = run(tmp_path, "--costs", str(card))
    assert code == 2 and "model 'graduated' prices a period's total, not a line" in out


def test_a_card_in_another_currency_is_refused(tmp_path: Path) -> None:
    card = tmp_path / "card.toml"
    card.write_text(
        'kind = "cost"\ncurrency = "EUR"\n[costs.twilio-voice]\nmatch = { provider = "twilio" }\n'
        '[[costs.twilio-voice.versions]]\neffective_from = 2021-01-01\nmodel = "per_unit"\n'
        'unit_price = "0.008"\n'
    )
    code, out = run(tmp_path, "--costs", str(card))
    assert code == 2 and "prices in EUR, the statement is in USD (no FX here)" in out


def test_card_and_rate_exclude_each_other(tmp_path: Path) -> None:
    code, out = run(tmp_path, "--costs", "costs-informative.toml", "--rate", "0.01")
    assert code == 2 and "not both" in out


def test_help_documents_every_exit_code() -> None:
    out = CliRunner().invoke(app, ["reconcile", "--help"]).output
    assert "Exit codes: 0" in out and "1 some line flagged" in out and "2 bad input" in out


def test_a_line_before_the_cards_first_price_is_named(tmp_path: Path) -> None:
    card = tmp_path / "card.toml"
    card.write_text(
        'kind = "cost"\ncurrency = "USD"\n[costs.twilio-voice]\nmatch = { provider = "twilio" }\n'
        '[[costs.twilio-voice.versions]]\neffective_from = 2027-01-01\nmodel = "per_unit"\n'
        'unit_price = "0.01"\n'
    )
    code, out = run(tmp_path, "--costs", str(card))
    assert code == 2 and "statement line 2 started 2026-10-14, before cost card" in out
