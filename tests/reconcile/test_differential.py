"""Differential: a generated statement (seeded) reconciled end to end must give the recorded report exactly.

The fixture was recorded from the implementation before the speed work; any change to reading or
reconciling that changes one digit of the JSON report fails here. The statement has every class in it:
matched by id (own id and ``attr.provider_id``), matched by time window (no sid, foreign sid, start a few
seconds off), mismatched durations, duplicated sids, provider-only lines, internal-only records (unbilled
and near the period edge), failed and unanswered calls, unpriced lines and channels.

Re-record (only when the report is meant to change): ``TALKTIME_RECORD=1 .venv/bin/pytest tests/reconcile``.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from talktime.core.reconcile.model import Options
from talktime.core.reconcile.money import (
    PriceVersion,
    Pricing,
    line_money,
    line_rates,
    modal_rate,
    written,
)
from talktime.core.reconcile.render import LINE_COLUMNS, as_json_document, line_dicts
from talktime.core.records import UsageRecord
from talktime.engine.reconcile import reconcile
from talktime.errors import TalktimeError
from talktime.importers import read_statement
from talktime.io.records_io import records_table
from talktime.providers import builtin

FIXTURE = Path(__file__).parent.parent / "fixtures" / "reconcile" / "differential.json"
T0 = datetime(2026, 10, 1, tzinfo=UTC)
RFC2822 = "%a, %d %b %Y %H:%M:%S +0000"
HEADER = "sid,parent_call_sid,status,direction,start_time,end_time,duration,price,price_unit\n"


def generate(n: int = 2000, seed: int = 20261001) -> tuple[list[UsageRecord], str, str]:
    """(records, Twilio CSV text, Twilio JSON page text) with planted differences."""
    rng = random.Random(seed)
    records: list[UsageRecord] = []
    csv_rows: list[str] = []
    calls: list[dict[str, Any]] = []

    def line(sid: str, status: str, start: datetime, seconds: int, price: str | None) -> None:
        shown = start.strftime(RFC2822)
        end = (start + timedelta(seconds=seconds)).strftime(RFC2822) if rng.random() < 0.5 else ""
        csv_rows.append(f'{sid},,{status},outbound-api,"{shown}","{end}",{seconds},{price or ""},USD\n')
        calls.append(
            {
                "sid": sid or None,
                "parent_call_sid": None,
                "status": status,
                "direction": "outbound-api",
                "start_time": shown,
                "end_time": end or None,
                "duration": str(seconds),
                "price": price,
                "price_unit": "USD",
            }
        )

    starts = sorted(rng.randrange(0, 3 * 86_400_000_000) for _ in range(n))
    for i in range(1, n):  # bursts: calls starting within two seconds of each other (ambiguous windows)
        if rng.random() < 0.1:
            starts[i] = starts[i - 1] + rng.randrange(0, 2_000_000)
    for i, offset in enumerate(starts):
        start = T0 + timedelta(microseconds=offset)
        status = rng.choices(["completed", "failed", "busy", "no-answer"], [90, 4, 3, 3])[0]
        ring = timedelta(microseconds=rng.randrange(1_000_000, 12_000_000))
        talk_us = rng.randrange(400_000, 900_000_000) if status == "completed" else 0
        answered = start + ring if status == "completed" else None
        ended = (answered or start) + timedelta(microseconds=talk_us)
        sid = f"CA{i:032x}"
        how = rng.random()
        attrs = {}
        rid = sid
        if how < 0.15:
            rid, attrs = f"rec-{i}", {"provider_id": sid}
        elif how < 0.25:
            rid = f"rec-{i}"  # no id in common: matched by time window only
        records.append(
            UsageRecord(
                id=rid,
                kind="leg",
                provider="twilio",
                status={"no-answer": "unanswered"}.get(status, status),
                channels=2 if rng.random() < 0.03 else 1,
                session=f"S{i // 2}" if rng.random() < 0.05 else None,
                started_at=start,
                answered_at=answered,
                ended_at=ended,
                attrs=attrs,
            )
        )
        fate = rng.random()
        if fate < 0.03:
            continue  # internal-only (unbilled, or within the delay window near the end)
        seconds = -(-talk_us // 1_000_000)
        if fate < 0.06:
            seconds += rng.randrange(1, 200)  # mismatched
        elif fate < 0.08 and seconds > 3:
            seconds -= rng.randrange(1, 3)
        billed_start = answered or start
        if 0.08 <= fate < 0.11:
            billed_start += timedelta(seconds=rng.randrange(-3, 4))  # window match a little off
        shown_sid = sid
        if how >= 0.15 and how < 0.25:
            shown_sid = "" if rng.random() < 0.5 else f"CX{i:032x}"
        minutes = -(-seconds // 60)
        price = None if rng.random() < 0.05 else f"-{minutes * 13 / 1000:.5f}"
        line(shown_sid, status, billed_start, seconds, price)
        if rng.random() < 0.02:
            line(shown_sid or sid, status, billed_start, seconds, price)  # duplicated
    for j in range(n // 50):  # provider-only: ids and times of nothing we have
        start = T0 + timedelta(microseconds=rng.randrange(0, 3 * 86_400_000_000))
        seconds = rng.randrange(0, 600)
        line(f"CZ{j:032x}" if rng.random() < 0.7 else "", "completed", start, seconds, "-0.01300")
    window_cases(records, line)
    order = list(range(len(csv_rows)))
    rng.shuffle(order)
    csv_text = HEADER + "".join(csv_rows[k] for k in order)
    json_text = json.dumps({"calls": [calls[k] for k in order], "page": 0, "page_size": len(order)})
    return records, csv_text, json_text


def window_cases(records: list[UsageRecord], line: Any) -> None:
    """Matching's edges, after the random calls: ties, the window's bounds, repeated ids, padded ids."""

    def record(rid: str, start: datetime, seconds: int, attrs: dict[str, str] | None = None) -> None:
        end = start + timedelta(seconds=seconds)
        records.append(
            UsageRecord(
                id=rid,
                kind="leg",
                provider="twilio",
                started_at=start,
                answered_at=start,
                ended_at=end,
                attrs=attrs or {},
            )
        )

    second = timedelta(seconds=1)
    for k in range(40):
        s = T0 + timedelta(days=3, hours=2, minutes=k)
        case = k % 5
        if case == 0:  # two records at one start, two unnamed lines a second later: durations decide
            record(f"wa{k}", s, 60)
            record(f"wb{k}", s, 62)
            line("", "completed", s + second, 62, None)
            line("", "completed", s + second, 60, None)
        elif case == 1:  # two identical records, one unnamed line: the lower row takes it
            record(f"wc{k}", s, 45)
            record(f"wd{k}", s, 45)
            line("", "completed", s, 45, None)
        elif case == 2:  # exactly the window apart matches; a microsecond more does not
            record(f"we{k}", s, 30)
            line("", "completed", s + 5 * second, 35, None)
            record(f"wf{k}", s + 20 * second - timedelta(microseconds=1), 30)
            line("", "completed", s + 25 * second, 30, None)
            record(f"wg{k}", s + 40 * second, 30)  # a line may also start the window before its record
            line("", "completed", s + 35 * second, 25, None)
        elif case == 3:  # one id on two records: the first takes the named line, the other an unnamed one
            record(f"DUP{k}", s, 20)
            record(f"DUP{k}", s + 10 * second, 20)
            line(f"DUP{k}", "completed", s, 20, None)
            line("", "completed", s + 10 * second, 20, None)
        else:  # a provider id with blanks around it, and an empty one (the record's own id counts)
            record(f"wp{k}", s, 33, {"provider_id": f"  CP{k}  "})
            line(f"CP{k}", "completed", s + 2 * second, 33, None)
            record(f"wq{k}", s + 10 * second, 33, {"provider_id": ""})
            line(f"wq{k}", "completed", s + 10 * second, 33, None)


#: A card with two versions (the second mid-statement, per attempt: at least 0.01 a line).
CARD = Pricing(
    "card",
    "cost card test, entry twilio-voice",
    "minute",
    60,
    (
        PriceVersion(datetime(2026, 1, 1, tzinfo=UTC), Decimal("0.013")),
        PriceVersion(datetime(2026, 10, 2, 12, tzinfo=UTC), Decimal("0.0085"), Decimal("0.01")),
    ),
    "USD",
)
CASES = {
    "csv-tally": ("calls.csv", Options()),
    "csv-card-versions": ("calls.csv", Options(pricing=CARD, money_tolerance=Decimal("0.0001"))),
    "csv-profile": (
        "calls.csv",
        Options(
            tally="profile", tolerance_seconds=Decimal(0), window_seconds=Decimal(3), delay_seconds=Decimal(0)
        ),
    ),
    "json-tally-rate": ("calls.json", Options(delay_seconds=Decimal(3600), rate_per_unit=Decimal("0.0140"))),
}


def reports(tmp_path: Path) -> dict[str, Any]:
    records, csv_text, json_text = generate()
    (tmp_path / "calls.csv").write_text(csv_text)
    (tmp_path / "calls.json").write_text(json_text)
    table = records_table(records, ["provider_id"])
    out: dict[str, Any] = {}
    for name, (file, options) in CASES.items():
        lines = read_statement(tmp_path / file)
        result = reconcile(table, lines, builtin("twilio-voice"), options)
        out[name] = as_json_document(result.summary, line_dicts(result.lines.to_pylist(), result.scale))
    return json.loads(json.dumps(out))  # type: ignore[no-any-return]


def dump(document: dict[str, Any]) -> str:
    """One report line per text line (values in ``LINE_COLUMNS`` order), so a difference reads as a diff."""
    parts = []
    for name, report in document.items():
        rows = [[row[c] for c in LINE_COLUMNS] for row in report["lines"]]
        lines = ",\n".join("    " + json.dumps(row, separators=(",", ":")) for row in rows)
        summary = json.dumps(report["summary"], sort_keys=True)
        parts.append(f'"{name}": {{\n  "summary": {summary},\n  "lines": [\n{lines}\n  ]}}')
    return "{\n" + ",\n".join(parts) + "\n}\n"


def test_reports_equal_the_recorded_fixture(tmp_path: Path) -> None:
    document = reports(tmp_path)
    if os.environ.get("TALKTIME_RECORD"):
        FIXTURE.parent.mkdir(parents=True, exist_ok=True)
        FIXTURE.write_text(dump(document))
        pytest.skip("fixture recorded")
    expected = json.loads(FIXTURE.read_text())
    assert document.keys() == expected.keys()
    for name in document:
        assert document[name]["summary"] == expected[name]["summary"], name
        got = [[row[c] for c in LINE_COLUMNS] for row in document[name]["lines"]]
        want = expected[name]["lines"]
        assert len(got) == len(want), name
        for a, b in zip(got, want, strict=True):
            assert a == b, name


def _seconds(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


@pytest.mark.parametrize("name", list(CASES))
def test_engine_amounts_equal_the_python_reference(tmp_path: Path, name: str) -> None:
    """Every line's due, expected amount and price difference, its price flag, the inferred rate and the
    money totals: the engine's SQL (integer numerators) equals ``core.reconcile.money`` (exact fractions)."""
    from fractions import Fraction

    records, csv_text, json_text = generate()
    file, options = CASES[name]
    (tmp_path / file).write_text(csv_text if file.endswith(".csv") else json_text)
    statement = read_statement(tmp_path / file)
    result = reconcile(records_table(records, ["provider_id"]), statement, builtin("twilio-voice"), options)
    lines = line_dicts(result.lines.to_pylist(), result.scale)
    money = result.summary.money
    assert money is not None
    starts = {row["line"]: row["started_at"] for row in statement.to_pylist()}
    record_starts: dict[str, datetime] = {}
    for r in records:
        record_starts.setdefault(r.id, r.started_at)
    places = max(row["amount_places"] for row in statement.to_pylist() if row["amount"] is not None)
    pricing = options.pricing
    if pricing is None and options.rate_per_unit is None:  # inferred: the reference's most common rate
        priced = [(_seconds(x["amount"]), Decimal(x["provider"])) for x in lines if x["line"] is not None]
        pricing = modal_rate(line_rates(priced, 60, places), "minute", 60, places)
        assert pricing is not None and money["pricing"] == pricing.label
    elif pricing is None:
        assert money["rate_source"] == "given"
        pricing = Pricing(
            "given", "", "minute", 60, (PriceVersion(datetime(1970, 1, 1, tzinfo=UTC), Decimal("0.014")),)
        )
    tolerance = options.money_tolerance or Decimal(1).scaleb(-places)
    totals = dict.fromkeys(("statement", "due", "expected", "price"), Fraction(0))
    flagged = 0
    for x in lines:
        moment = starts[x["line"]] if x["line"] is not None else record_starts[x["record_id"]]
        ref = line_money(
            pricing,
            moment,
            None if x["line"] is None else Decimal(x["provider"]),
            None if x["record_id"] is None else Decimal(x["expected"]),
            _seconds(x["amount"]),
            tolerance,
        )
        assert Decimal(x["due"]) == written(ref.due), x
        assert Decimal(x["expected_amount"]) == written(ref.expected), x
        assert (x["price"] is None) == (ref.price is None), x
        if ref.price is not None:
            assert Decimal(x["price"]) == written(ref.price), x
            totals["statement"] += Fraction(Decimal(x["amount"]))
            totals["price"] += ref.price
        assert ("price" in x["flags"]) == ref.flagged, x
        flagged += ref.flagged
        totals["due"] += ref.due
        totals["expected"] += ref.expected
    assert money["price_flagged_lines"] == flagged > 0
    for key, total in (
        ("statement_amount", totals["statement"]),
        ("due_amount", totals["due"]),
        ("expected_amount", totals["expected"]),
    ):
        assert Decimal(money[key]) == written(total), key
    assert Decimal(money["causes"]["price"]) == written(totals["price"])


def test_generated_statement_has_every_class() -> None:
    for report in json.loads(FIXTURE.read_text()).values():
        summary = report["summary"]
        assert all(summary[c] > 0 for c in ("matched", "mismatched", "provider_only", "internal_only"))
        assert summary["duplicates"] > 0
    causes = json.loads(FIXTURE.read_text())["json-tally-rate"]["summary"]["causes"]
    assert all(causes[c] != "0" for c in ("rounding", "missing", "unbilled", "billing_delay", "duplicated"))


def test_128_bit_retry_gives_the_same_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Quantities are 64-bit integers; a value that overflows reruns on 128 bits with the same result."""
    import duckdb

    from talktime.engine import reconcile as engine

    run = engine._run
    widths: list[str] = []

    def overflow_once(con: Any, q: Any, *args: Any) -> Any:
        widths.append(q.num)
        if q.num == "BIGINT":
            raise duckdb.OutOfRangeException("Overflow in multiplication of INT64")
        return run(con, q, *args)

    monkeypatch.setattr(engine, "_run", overflow_once)
    document = reports(tmp_path)
    assert widths == ["BIGINT", "HUGEINT"] * len(CASES)
    expected = json.loads(FIXTURE.read_text())
    for name in document:
        assert document[name]["summary"] == expected[name]["summary"], name
        got = [[row[c] for c in LINE_COLUMNS] for row in document[name]["lines"]]
        assert got == expected[name]["lines"], name


PROFILES_FIXTURE = FIXTURE.with_name("differential-profiles.json")
MICROSECOND = timedelta(microseconds=1)


def heard(record: UsageRecord) -> Decimal:
    """Seconds from answer (or start) to end: the audio a record carries for audio-measured profiles."""
    assert record.ended_at is not None
    return Decimal((record.ended_at - (record.answered_at or record.started_at)) // MICROSECOND).scaleb(-6)


def profile_reports(tmp_path: Path) -> dict[str, Any]:
    """Every built-in profile, tally and profile mode, on a smaller generated statement whose records have
    no provider and the profile's first kind (so every profile meters them): the summary and a digest of
    the lines (the full lines of 40 reports would make a large fixture)."""
    from dataclasses import replace

    from talktime.providers import builtin_ids

    records, csv_text, _ = generate(800, 7)
    (tmp_path / "calls.csv").write_text(csv_text)
    lines = read_statement(tmp_path / "calls.csv")
    out: dict[str, Any] = {}
    for name in sorted(builtin_ids()):
        policy = builtin(name)
        if policy.is_count:  # statements are durations; a count policy is refused (tested on its own)
            continue
        kinds = policy.current.params.kinds
        own = [
            replace(
                r, provider=None, kind=kinds[0] if kinds else r.kind, audio_seconds=talk, speech_seconds=talk
            )
            for r in records
            for talk in [heard(r)]
        ]
        table = records_table(own, ["provider_id"])
        for tally in ("tally", "profile"):
            try:
                result = reconcile(table, lines, policy, Options(tally=tally))
            except TalktimeError as error:
                out[f"{name}/{tally}"] = f"{type(error).__name__}: {error}"
                continue
            rows = line_dicts(result.lines.to_pylist(), result.scale)
            digest = hashlib.sha256(json.dumps(rows, sort_keys=True).encode()).hexdigest()
            summary = json.loads(json.dumps(as_json_document(result.summary, [])["summary"]))
            out[f"{name}/{tally}"] = {"summary": summary, "lines_sha256": digest, "lines": len(rows)}
    return out


def test_every_profile_equals_the_recorded_fixture(tmp_path: Path) -> None:
    document = profile_reports(tmp_path)
    if os.environ.get("TALKTIME_RECORD"):
        PROFILES_FIXTURE.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
        pytest.skip("fixture recorded")
    expected = json.loads(PROFILES_FIXTURE.read_text())
    assert document.keys() == expected.keys()
    for name in document:
        assert document[name] == expected[name], name
