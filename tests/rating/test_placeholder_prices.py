"""A cost priced by a placeholder price says so wherever the number is shown: the informative cost card's
LiveKit entries carry ``placeholder = true`` (no published unit price), and ``talktime margin`` marks every
call, row and total their prices reach, in the table (a ``*`` and a legend), JSON and CSV (fields), on
both engines, while a Twilio call beside it stays unmarked and no amount changes. A card whose
``placeholder`` is not true or false is refused, naming the entry and the field."""

from __future__ import annotations

import csv
import io
import json
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from talktime.cli.main import app

runner = CliRunner()
PRICES = "plan-call-minute.toml"
LIVEKIT = ["livekit-agent", "livekit-participant", "livekit-sip"]
RECORDS = [
    # a LiveKit call: the caller over SIP and the agent (participant minutes, then agent session minutes)
    {"id": "lk-sip", "session": "lk-call", "kind": "sip", "provider": "livekit", "minute": 10},
    {"id": "lk-agent", "session": "lk-call", "kind": "agent", "provider": "livekit", "minute": 10},
    # a Twilio call: one carrier leg, priced by a published price
    {"id": "tw-leg", "session": "tw-call", "kind": "leg", "provider": "twilio", "minute": 11},
]


def _records(path: Path, chosen: list[dict[str, Any]] = RECORDS) -> Path:
    lines = []
    for r in chosen:
        start, end = f"2026-10-05T{r['minute']}:00:00+00:00", f"2026-10-05T{r['minute']}:03:00+00:00"
        line = {k: v for k, v in r.items() if k != "minute"}
        line |= {"customer": "acme-health", "started_at": start, "ended_at": end}
        if r["kind"] == "leg":
            line["answered_at"] = start
        lines.append(json.dumps(line))
    path.write_text("\n".join(lines) + "\n")
    return path


def _informative() -> str:
    return files("talktime.ratecards").joinpath("costs-informative.toml").read_text()


def _margin(records: Path, *options: str, costs: str = "costs-informative.toml") -> str:
    done = runner.invoke(
        app, ["margin", "--records", str(records), "--costs", costs, "--prices", PRICES, *options]
    )
    assert done.exit_code == 0, done.output
    return done.stdout


@pytest.mark.parametrize("engine", ["duckdb", "reference"])
def test_the_livekit_call_is_marked_in_json_and_the_twilio_call_is_not(engine: str, tmp_path: Path) -> None:
    body = json.loads(
        _margin(_records(tmp_path / "r.jsonl"), "--by", "session", "-f", "json", "--engine", engine)
    )
    rows = {row["session"]: row for row in body["rows"]}
    assert rows["lk-call"]["placeholder"] is True
    assert rows["lk-call"]["placeholder_entries"] == LIVEKIT
    assert rows["tw-call"]["placeholder"] is False and rows["tw-call"]["placeholder_entries"] == []
    assert body["placeholder_entries"] == LIVEKIT  # the report as a whole includes placeholder prices

    by_customer = json.loads(
        _margin(tmp_path / "r.jsonl", "--by", "customer", "-f", "json", "--engine", engine)
    )
    (month,) = by_customer["rows"]  # the customer's month adds both calls: its total includes them
    assert month["placeholder"] is True and month["placeholder_sessions"] == 1
    assert month["placeholder_entries"] == LIVEKIT

    by_provider = json.loads(
        _margin(tmp_path / "r.jsonl", "--by", "provider", "-f", "json", "--engine", engine)
    )
    marked = {row["provider"]: row["placeholder"] for row in by_provider["rows"]}
    assert marked == {
        "livekit-agent": True,
        "livekit-participant": True,
        "livekit-sip": True,
        "twilio-voice": False,
    }


def test_csv_has_a_placeholder_column(tmp_path: Path) -> None:
    text = _margin(_records(tmp_path / "r.jsonl"), "--by", "session", "-f", "csv")
    rows = {row["session"]: row for row in csv.DictReader(io.StringIO(text))}
    assert rows["lk-call"]["placeholder"] == "yes"
    assert rows["lk-call"]["placeholder_entries"] == ";".join(LIVEKIT)
    assert rows["tw-call"]["placeholder"] == "" and rows["tw-call"]["placeholder_entries"] == ""


def _header(table: str) -> list[str]:
    line = next(line for line in table.splitlines() if line.startswith("┃ customer"))
    return [cell.strip() for cell in line.split("┃")[1:-1]]


def test_the_table_marks_the_row_and_says_what_the_mark_means(tmp_path: Path) -> None:
    text = _margin(_records(tmp_path / "r.jsonl"), "--by", "session")
    (livekit,) = [line for line in text.splitlines() if "lk-call" in line]
    (twilio,) = [line for line in text.splitlines() if "tw-call" in line]
    assert "*0.03000" in livekit.split() and "*0.33000" in livekit.split()  # the cost and margin, marked
    cells = dict(zip(_header(text), (c.strip() for c in livekit.split("│")[1:-1]), strict=True))
    # the modalities the LiveKit entries price (SIP: telephony; participant and agent: platform), and what
    # is worked out from the cost, carry the mark; a modality no placeholder price reaches does not
    assert [cells[c][:1] for c in ("telephony", "platform", "margin %", "cost/min", "STT")] == [*"****", "0"]
    assert "*" not in twilio
    (legend,) = [line for line in text.splitlines() if line.startswith("* PLACEHOLDER")]
    assert "1 row(s)" in legend and "livekit-agent, livekit-participant, livekit-sip" in legend
    assert "not real" in legend

    total = _margin(tmp_path / "r.jsonl", "--by", "period")
    (month,) = [line for line in total.splitlines() if "2026-10" in line and line.startswith("│")]
    assert "*0.05550" in month.split()  # the period's total includes the LiveKit call's cost
    assert "* PLACEHOLDER: 1 row(s)" in total


def test_marking_changes_no_amount_and_adds_no_field_without_placeholders(tmp_path: Path) -> None:
    records = _records(tmp_path / "r.jsonl")
    plain = tmp_path / "plain.toml"  # the same card with its prices taken as real
    plain.write_text(_informative().replace("placeholder = true\n", ""))
    marked = json.loads(_margin(records, "--by", "session", "-f", "json"))
    unmarked = json.loads(_margin(records, "--by", "session", "-f", "json", costs=str(plain)))
    assert "placeholder_entries" not in unmarked
    assert all(not k.startswith("placeholder") for row in unmarked["rows"] for k in row)
    fields = ("placeholder", "placeholder_entries")
    assert [{k: v for k, v in r.items() if k not in fields} for r in marked["rows"]] == unmarked["rows"]
    only_twilio = _records(tmp_path / "twilio.jsonl", [RECORDS[2]])
    header = _margin(only_twilio, "--by", "session", "-f", "csv").splitlines()[0]
    assert "placeholder" not in header  # a report no placeholder price reaches is written as before


def test_a_placeholder_that_is_not_true_or_false_is_refused(tmp_path: Path) -> None:
    card = tmp_path / "costs.toml"
    text = _informative()
    line = "\nplaceholder = true\n"  # the first is livekit-sip's
    card.write_text(text.replace(line, '\nplaceholder = "yes"\n', 1))
    done = runner.invoke(
        app,
        [
            "margin",
            "--records",
            str(_records(tmp_path / "r.jsonl")),
            "--costs",
            str(card),
            "--prices",
            PRICES,
        ],
    )
    assert done.exit_code == 2
    assert "costs.livekit-sip.placeholder: 'yes' is not true or false" in " ".join(done.output.split())


def test_a_focus_cost_row_says_its_price_is_a_placeholder(tmp_path: Path) -> None:
    records = _records(tmp_path / "r.jsonl")
    card = tmp_path / "costs.toml"  # Twilio's price taken as a placeholder, its description silent on it
    text = _informative()
    head = "[costs.twilio-voice]\n"
    assert head in text
    card.write_text(text.replace(head, head + "placeholder = true\n", 1))
    done = runner.invoke(
        app, ["export", "focus", "--period", "2026-10", "--records", str(records), "--costs", str(card)]
    )
    assert done.exit_code == 0, done.output
    rows = {row["SkuId"]: row for row in csv.DictReader(io.StringIO(done.stdout))}
    assert rows["twilio-voice"]["ChargeDescription"].endswith("(price: placeholder)")
    assert rows["livekit-agent"]["ChargeDescription"].count("placeholder") == 1  # its own words say it
