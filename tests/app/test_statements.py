"""``talktime.app.statements``: a statement given as ``PROFILE=FILE[,option=value...]`` (the dashboard's
``--statement``) is checked when it is given, in ``talktime reconcile``'s words; reconciled, it gives the
flagged lines the command gives, with the call of each line's record."""

from __future__ import annotations

import dataclasses
import doctest
import importlib
import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from support.statements import near_a_minute, twilio_console
from talktime.app.statements import parse_statement, parse_statements, statement_report
from talktime.errors import InputError
from talktime.io.records_io import write_records
from talktime.synth import synthetic_month

COSTS = Path("costs-informative.toml")
OVERCHARGED = "call-000010-leg1"


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """A generated month, its Twilio export with one line overcharged 0.05 USD and one 4 s too long (a
    minute more), and the id of the latter's record."""
    folder = tmp_path_factory.mktemp("statements")
    records = list(synthetic_month(120, seed=7, whole_call=True))
    long = near_a_minute(records).id
    statement = folder / "twilio.csv"
    twilio_console(statement, records, overcharge={OVERCHARGED: Decimal("0.05")}, extra_seconds={long: 4})
    path = folder / "month.parquet"
    write_records(path, records)
    return path, statement, long


@pytest.mark.parametrize("module", ["talktime.app.statements", "talktime.app.held_records"])
def test_the_examples_in_the_docstrings(module: str) -> None:
    assert doctest.testmod(importlib.import_module(module)).failed == 0


def test_a_statement_and_its_options(tmp_path: Path) -> None:
    file = tmp_path / "calls,march.csv"  # a comma in the name stays in the name
    file.write_text("x")
    spec = parse_statement(f"twilio-voice={file},tolerance=2,money-tolerance=0.001,rate=inferred")
    assert (spec.provider, spec.file, spec.tolerance) == ("twilio-voice", file, "2")
    assert (spec.money_tolerance, spec.rate, spec.window, spec.mapping) == ("0.001", "inferred", "5", None)
    assert spec.label == "twilio-voice: calls,march.csv"
    assert parse_statements([f"telnyx-voice={file}"])[0].provider == "telnyx-voice"


@pytest.mark.parametrize(
    ("tail", "message"),
    [
        ("", "give PROFILE=FILE"),
        ("={file}", "give PROFILE=FILE"),
        ("twilio-voice=nowhere.csv", "nowhere.csv: no such file"),
        ("twilio-vox={file}", "'twilio-vox' is neither a built-in profile nor a .toml file"),
        ("twilio-voice={file},speed=9", "unknown option 'speed' \\(options: source, mapping"),
        ("twilio-voice={file},window=soon", "window 'soon': not a number of seconds"),
        ("twilio-voice={file},tolerance=-1", "tolerance '-1': must be a non-negative number of seconds"),
        ("twilio-voice={file},rate=cheap", "rate 'cheap': not a price"),
        ("twilio-voice={file},rate=0.01,cost-entry=x", "give rate= or cost-entry=, not both"),
        ("twilio-voice={file},tally=ours", "tally 'ours': must be tally or profile"),
        ("twilio-voice={file},mapping=none.toml", "mapping none.toml: no such file"),
        ("twilio-voice={file},window=1,window=2", "window given twice"),
    ],
)
def test_a_bad_statement_is_refused_naming_the_option_and_the_fault(
    tmp_path: Path, tail: str, message: str
) -> None:
    file = tmp_path / "calls.csv"
    file.write_text("x")
    text = tail.format(file=file)
    with pytest.raises(InputError, match=message) as raised:
        parse_statement(text)
    assert str(raised.value).startswith(f"--statement {text!r}: ")


def test_the_flagged_lines_are_reconciles_and_name_their_calls(month: tuple[Path, Path, str]) -> None:
    records, statement, long = month
    report = statement_report(parse_statement(f"twilio-voice={statement}"), records, COSTS)
    flagged = {line["record_id"]: line for line in report.flagged}
    assert set(flagged) == {OVERCHARGED, long}
    assert flagged[OVERCHARGED]["flags"] == "price" and Decimal(flagged[OVERCHARGED]["price"]) == Decimal(
        "0.05"
    )
    assert flagged[long]["flags"] == "seconds" and Decimal(flagged[long]["unexplained"]) == 60
    assert report.calls == {OVERCHARGED: ("blue-bank", "call-000010"), long: (_customer(long), long[:11])}
    money = report.money_causes
    assert money["price"] == Decimal("0.05") and money["unexplained"] == Decimal(
        "0.0085"
    )  # a minute at the rate
    assert list(money)[-3:] == ["unexplained", "price", "attempt_fees"]
    assert report.summary.money is not None and report.summary.money["rate_source"] == "card"
    command = [sys.executable, "-m", "talktime", "reconcile", "--provider", "twilio-voice", "--statement"]
    command += [str(statement), "--records", str(records), "--costs", str(COSTS), "--format", "json"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    assert done.returncode == 1  # some line flagged
    cli = json.loads(done.stdout)
    assert [line for line in cli["lines"] if line["flagged"]] == report.flagged
    assert cli["summary"]["story"] == report.summary.story()
    assert report.lines == len(cli["lines"])


def test_a_rate_given_or_inferred_prices_the_lines_instead_of_the_card(month: tuple[Path, Path, str]) -> None:
    records, statement, _ = month
    inferred = statement_report(parse_statement(f"twilio-voice={statement},rate=inferred"), records, COSTS)
    assert inferred.summary.money is not None and inferred.summary.money["rate_source"] == "inferred"
    given = statement_report(parse_statement(f"twilio-voice={statement},rate=0.0170"), records, COSTS)
    assert (
        given.summary.money is not None and given.summary.money["pricing"] == "given: --rate 0.017 per minute"
    )
    assert len(given.flagged) > len(inferred.flagged)  # at twice the rate nearly every line is off


def _customer(record_id: str) -> str:
    number = int(record_id[5:11])
    return ("acme-health", "blue-bank", "cobalt-retail")[number % 3]


def test_records_the_file_does_not_hold_have_no_call(month: tuple[Path, Path, str]) -> None:
    from talktime.app.statements import call_keys

    records, _, _ = month
    assert call_keys(records, {OVERCHARGED, "not-a-record"}) == {OVERCHARGED: ("blue-bank", "call-000010")}
    assert call_keys(records, set()) == {}


def test_a_record_without_customer_or_session_is_its_own_call(tmp_path: Path) -> None:
    from talktime.app.statements import call_keys

    record = next(r for r in synthetic_month(3, seed=7) if r.kind == "leg")
    path = tmp_path / "one.parquet"
    write_records(path, [dataclasses.replace(record, customer=None, session=None)])
    assert call_keys(path, {record.id}) == {record.id: ("-", f"record:{record.id}")}
