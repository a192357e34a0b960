"""The margin report on DuckDB against the per-record reference: the same report, Decimal for Decimal.

History: ``synthetic_month`` (whole calls: legs, STT streams, rooms, LLM tokens, TTS characters; 1,200 calls,
three customers) from 20 October, so calls fall in two provider months and two customer months; some calls
are moved onto a month's edge (UTC, New York, Berlin, Tokyo), so their records fall in two months. The file
is also written newest first, so the reference meets November before October. Cards: the informative cost
card with both example plans; a card made to stress the per-call split (graduated tiers with flat fees behind
an included quota, a package behind a quota, volume tiers, a flat fee, per attempt, a price change inside the
history, a New York provider month, a session-rounded policy, per-part LLM prices) with no TTS entry, so
answered calls are incomplete; and a plan with a graduated, included tier and a period-rounded component.
"""

from __future__ import annotations

import json
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from talktime.cli.billing import amount_text, column_places
from talktime.cli.main import app
from talktime.core.rating.cards import CostCard, PriceCard
from talktime.core.rating.margin import (
    MarginReport,
    MarginView,
    SessionMargin,
    margin_view,
    per_minute,
    session_margins,
)
from talktime.core.records import UsageRecord
from talktime.core.simulate.rules import pin_costs, pin_prices
from talktime.io.ratecards import load_cost_card, load_price_card
from talktime.io.records_io import read_records, write_records
from talktime.simulate import margin_grouped, margin_run
from talktime.simulate.margin_grouped import GROUPED_BY, grouped_view
from talktime.simulate.margin_run import margin_supported, margin_vectorised
from talktime.synth import synthetic_month

runner = CliRunner()

TIERED = """
kind = "cost"
name = "tiered card (tests)"
currency = "USD"
period_timezone = "America/New_York"

[costs.twilio-voice]
match = { provider = "twilio", kind = ["leg"] }
[[costs.twilio-voice.versions]]
effective_from = 2021-07-08
model = "graduated"
included = "40"
tiers = [{ up_to = "300", unit_price = "0.013", flat_fee = "0.5" }, { up_to = "900", unit_price = "0.0085" },
         { unit_price = "0.007" }]
[[costs.twilio-voice.versions]]
effective_from = 2026-11-03
model = "per_unit"
unit_price = "0.0091"

[costs.deepgram-streaming]
match = { provider = "deepgram", kind = ["stream"] }
[[costs.deepgram-streaming.versions]]
effective_from = 2020-01-01
model = "volume"
tiers = [{ up_to = "500", unit_price = "0.0077" }, { unit_price = "0.0059", flat_fee = "1.25" }]

[costs.livekit-sip]
match = { provider = "livekit", kind = ["sip"] }
[[costs.livekit-sip.versions]]
effective_from = 2025-01-01
model = "package"
included = "30"
size = "7"
price = "0.05"

[costs.livekit-participant]
match = { provider = "livekit", kind = ["participant", "agent"] }
[[costs.livekit-participant.versions]]
effective_from = 2025-01-01
model = "per_unit"
unit_price = "0.0005"
included = "700"

[costs.agent-sessions]
description = "agent minutes rounded up per session (a session-rounded policy)"
match = { provider = "livekit", kind = ["agent"] }
additional = true
[costs.agent-sessions.policy]
id = "agent-session-minutes"
name = "Agent minutes per session"
provider = "livekit"
unit = "minute"
modality = "platform"
[[costs.agent-sessions.policy.versions]]
effective_from = 2025-01-01
basis = "connection"
rounding = "up"
increment_seconds = 60
scope = "session"
[[costs.agent-sessions.versions]]
effective_from = 2025-01-01
model = "flat_fee"
amount = "3.33"

[costs.openai-gpt-4o-mini]
policy = "openai-chat"
match = { provider = "openai", kind = ["llm"] }
[costs.openai-gpt-4o-mini.parts.input]
unit = "million_tokens"
[[costs.openai-gpt-4o-mini.parts.input.versions]]
effective_from = 2024-01-01
model = "per_unit"
unit_price = "0.15"
[costs.openai-gpt-4o-mini.parts.cached_input]
unit = "thousand_tokens"
[[costs.openai-gpt-4o-mini.parts.cached_input.versions]]
effective_from = 2024-01-01
model = "per_attempt"
fee = "0.00001"
unit_price = "0.000075"
[costs.openai-gpt-4o-mini.parts.output]
unit = "million_tokens"
[[costs.openai-gpt-4o-mini.parts.output.versions]]
effective_from = 2024-01-01
model = "graduated"
tiers = [{ up_to = "0.5", unit_price = "0.60" }, { unit_price = "0.40" }]
"""

PLAN = """
kind = "price"
name = "graduated plan with an included tier (tests)"
currency = "USD"
timezone = "Europe/Berlin"

[customers.cobalt-retail]
timezone = "Asia/Tokyo"

[components.call-minutes]
match = { kind = ["participant", "sip"] }
[components.call-minutes.policy]
id = "call-minute"
name = "Call minute"
unit = "minute"
[[components.call-minutes.policy.versions]]
effective_from = 2025-01-01
basis = "connection"
rounding = "up"
increment_seconds = 60
[[components.call-minutes.versions]]
effective_from = 2025-01-01
model = "graduated"
included = "150"
tiers = [{ up_to = "400", unit_price = "0.12" }, { unit_price = "0.10", flat_fee = "2" }]

[components.transcripts]
description = "STT minutes rounded up per customer month (a period-rounded policy)"
match = { provider = "deepgram", kind = ["stream"] }
[components.transcripts.policy]
id = "stt-monthly"
name = "STT minutes per month"
unit = "minute"
[[components.transcripts.policy.versions]]
effective_from = 2025-01-01
basis = "audio_sent"
rounding = "up"
increment_seconds = 60
scope = "period"
period_timezone = "Asia/Tokyo"
[[components.transcripts.versions]]
effective_from = 2025-01-01
model = "per_unit"
unit_price = "0.01"
"""

#: Month edges as UTC instants: the provider month (UTC), New York's, Berlin's and Tokyo's November.
EDGES = (
    datetime(2026, 11, 1, tzinfo=UTC),
    datetime(2026, 11, 1, 4, tzinfo=UTC),
    datetime(2026, 10, 31, 23, tzinfo=UTC),
    datetime(2026, 10, 31, 15, tzinfo=UTC),
)


def _history() -> list[UsageRecord]:
    """Whole calls; every 20th call moved so its first record starts 4 s before a month's edge."""
    records = list(synthetic_month(1200, seed=11, month=datetime(2026, 10, 20, tzinfo=UTC), whole_call=True))
    firsts: dict[str, datetime] = {}
    for record in records:
        key = record.session_key
        firsts[key] = min(firsts.get(key, record.started_at), record.started_at)
    moved: dict[str, timedelta] = {}
    for number, (key, first) in enumerate(sorted(firsts.items())):
        if number % 20 == 0:
            moved[key] = EDGES[number // 20 % len(EDGES)] - timedelta(seconds=4) - first
    out = []
    for record in records:
        shift = moved.get(record.session_key)
        if shift is None:
            out.append(record)
            continue
        times = ("started_at", "ended_at", "answered_at", "first_audio_at", "last_audio_at")
        changes = {name: getattr(record, name) + shift for name in times if getattr(record, name) is not None}
        out.append(replace(record, **changes))
    return out


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("margin")
    history = _history()
    write_records(path / "history.parquet", history)
    write_records(path / "newest-first.csv", list(reversed(history)))
    (path / "tiered.toml").write_text(TIERED, encoding="utf-8")
    (path / "plan.toml").write_text(PLAN, encoding="utf-8")
    return path


def _same(reference: MarginReport, vectorised: MarginReport) -> None:
    """Every field of every session equal; dicts in the same order too (a session's cost adds its entries
    in that order, so an order the reference does not have could change the last digit)."""
    assert vectorised.currency == reference.currency
    assert vectorised.uncosted_records == reference.uncosted_records
    assert len(vectorised.sessions) == len(reference.sessions)
    names = [f.name for f in fields(SessionMargin)]
    for want, got in zip(reference.sessions, vectorised.sessions, strict=True):
        for name in names:
            mine, theirs = getattr(got, name), getattr(want, name)
            assert mine == theirs, (want.session, name)
            if isinstance(theirs, dict):
                assert list(mine) == list(theirs), (want.session, name)
        assert got.cost == want.cost and got.margin == want.margin


CASES = [
    ("costs-informative.toml", "plan-call-minute.toml", "history.parquet"),
    ("costs-informative.toml", "plan-per-component.toml", "history.parquet"),
    ("tiered.toml", "plan.toml", "history.parquet"),
    ("tiered.toml", "plan-per-component.toml", "newest-first.csv"),
    ("costs-informative.toml", "plan.toml", "newest-first.csv"),
]


@pytest.mark.parametrize(("costs", "prices", "history"), CASES)
def test_the_vectorised_report_is_the_reference_report(
    folder: Path, costs: str, prices: str, history: str
) -> None:
    cost_card = load_cost_card(folder / costs if costs == "tiered.toml" else Path(costs))
    price_card = load_price_card(folder / prices if prices == "plan.toml" else Path(prices))
    assert margin_supported(cost_card, price_card) is None
    path = folder / history
    reference = session_margins(read_records(path), cost_card, price_card)
    vectorised = margin_vectorised(path, cost_card, price_card)
    _same(reference, vectorised)
    assert len(reference.sessions) > 1000


def test_the_history_has_what_the_cases_need(folder: Path) -> None:
    """Calls in two months, incomplete calls under the tiered card, a price change inside the history."""
    records = list(read_records(folder / "history.parquet"))
    report = session_margins(
        records, load_cost_card(folder / "tiered.toml"), load_price_card(folder / "plan.toml")
    )
    spans: dict[str, list[datetime]] = {}
    for record in records:
        spans.setdefault(record.session_key, []).append(record.started_at)
    across = [k for k, starts in spans.items() if any(min(starts) < e <= max(starts) for e in EDGES)]
    assert len(across) >= 30
    assert sum(1 for s in report.sessions if s.incomplete) > 500
    assert {r.started_at.date() for r in records} >= {
        datetime(2026, 11, 3).date(),
        datetime(2026, 10, 30).date(),
    }


def test_a_quota_the_rounding_did_not_use_up_is_rated_over_the_whole_group(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The records that may use a quota are found by an exact running sum; should the model's own sum
    leave some quota after them, the whole group goes through the model. Forced here by a bound of 0."""
    monkeypatch.setattr(margin_run, "ceil", lambda _: 0)
    costs, prices = load_cost_card(Path("costs-informative.toml")), load_price_card(folder / "plan.toml")
    path = folder / "history.parquet"
    _same(session_margins(read_records(path), costs, prices), margin_vectorised(path, costs, prices))


@pytest.mark.parametrize("by", ["session", "customer", "provider", "period"])
def test_the_command_gives_the_same_json_on_either_engine(folder: Path, by: str) -> None:
    outputs = []
    for engine in ("reference", "duckdb", "auto"):
        args = [
            "margin",
            "--records",
            str(folder / "newest-first.csv"),
            "--costs",
            str(folder / "tiered.toml"),
        ]
        args += ["--prices", "plan-call-minute.toml", "--by", by, "--format", "json", "--engine", engine]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        outputs.append(json.loads(result.stdout))
    assert outputs[0] == outputs[1] == outputs[2]
    assert outputs[0]["complete"] is False and outputs[0]["rows"]


def test_auto_uses_the_reference_with_a_note_when_a_card_needs_it(folder: Path) -> None:
    plan = folder / "customer-rule.toml"
    plan.write_text(
        PLAN.replace(
            'period_timezone = "Asia/Tokyo"',
            'period_timezone = "Asia/Tokyo"\nrules = [{ name = "acme", when = { customer = "acme-health" }, '
            "set = { increment_seconds = 30 } }]",
        ),
        encoding="utf-8",
    )
    base = ["margin", "--records", str(folder / "history.parquet"), "--costs", "costs-informative.toml"]
    base += ["--prices", str(plan), "--format", "json"]
    auto = runner.invoke(app, base)
    assert auto.exit_code == 0, auto.output
    assert "note: used the reference: transcripts: a policy that rounds per calendar period" in auto.stderr
    reference = runner.invoke(app, [*base, "--engine", "reference"])
    assert json.loads(auto.stdout) == json.loads(reference.stdout) and not reference.stderr
    refused = runner.invoke(app, [*base, "--engine", "duckdb"])
    assert refused.exit_code == 2 and "--engine duckdb cannot rate these cards" in refused.stderr


def test_a_record_before_its_price_is_the_reference_error(folder: Path) -> None:
    early = folder / "early.toml"
    early.write_text(
        TIERED.replace("effective_from = 2020-01-01", "effective_from = 2026-10-25"), encoding="utf-8"
    )
    costs, prices = load_cost_card(early), load_price_card(Path("plan-call-minute.toml"))
    path = folder / "history.parquet"
    with pytest.raises(Exception) as reference:
        session_margins(read_records(path), costs, prices)
    named = str(reference.value).split(" starts")[0]  # record '<id>'
    for run in (  # a grouped pass keeps the file's rows, the per-call path the session's code in them
        lambda: margin_vectorised(path, costs, prices),
        lambda: grouped_view(path, costs, prices, "customer"),
    ):
        with pytest.raises(Exception) as vectorised:
            run()
        assert type(vectorised.value) is type(reference.value)
        assert "is before 'deepgram-streaming' has a price (from 2026-10-25)" in str(vectorised.value)
        assert str(vectorised.value).startswith(named)


def test_no_records_no_sessions(tmp_path: Path) -> None:
    path = tmp_path / "empty.csv"
    write_records(path, [])
    costs, prices = (
        load_cost_card(Path("costs-informative.toml")),
        load_price_card(Path("plan-call-minute.toml")),
    )
    assert margin_vectorised(path, costs, prices) == MarginReport("USD", (), ())
    assert session_margins([], costs, prices) == MarginReport("USD", (), ())


def test_a_bad_record_no_entry_takes_is_refused_as_the_reference_refuses_it(tmp_path: Path) -> None:
    """The reference reads every record; a Parquet file scanned as it is gets every record's format checked,
    not only the records some entry meters."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    good = tmp_path / "good.parquet"
    write_records(good, synthetic_month(20, whole_call=True))
    table = pq.read_table(good)
    bad: dict[str, list[object]] = {name: [None] for name in table.column_names}
    bad |= {"id": ["odd-1"], "provider": ["acme"], "kind": ["leg"]}
    bad |= {
        "started_at": [datetime(2026, 10, 5, tzinfo=UTC)],
        "ended_at": [datetime(2026, 10, 4, tzinfo=UTC)],
    }
    path = tmp_path / "bad.parquet"
    pq.write_table(pa.concat_tables([table, pa.table(bad, schema=table.schema)]), path)
    for engine in ("reference", "duckdb"):
        args = ["margin", "--records", str(path), "--costs", "costs-informative.toml"]
        result = runner.invoke(app, [*args, "--prices", "plan-call-minute.toml", "--engine", engine])
        assert result.exit_code == 2
        assert "record 'odd-1': field 'ended_at'" in result.stderr and "is before started_at" in result.stderr


def test_a_records_month_by_the_month_edges_is_its_month_in_the_zone(tmp_path: Path) -> None:
    """Passes find a record's month by comparing it with the month edges of the file's range (a time zone
    conversion per record costs as much as metering it): the same month, near the edges too, in zones that
    change their clocks at midnight or by half an hour."""
    import random

    from talktime.engine.sources import canonical_parquet
    from talktime.simulate.passes import Passes, month_sql

    draw = random.Random(3)
    records = []
    for number in range(6000):
        year, month = 2025 + draw.randrange(2), draw.randrange(1, 13)
        moment = datetime(year, month, 1, tzinfo=UTC) + timedelta(minutes=draw.randrange(-1500, 1500))
        if number % 3 == 0:
            moment += timedelta(days=draw.randrange(2, 25))
        end = moment + timedelta(seconds=5)
        records.append(
            UsageRecord(id=f"r{number}", kind="leg", provider="x", started_at=moment, ended_at=end)
        )
    # Santiago ends summer time at midnight: on 1 April 2029 the clocks go back to 23:00 on 31 March
    for minute in range(0, 120, 7):
        moment = datetime(2029, 4, 1, 2, 30, tzinfo=UTC) + timedelta(minutes=minute)
        end = moment + timedelta(seconds=5)
        records.append(
            UsageRecord(id=f"s{minute}", kind="leg", provider="x", started_at=moment, ended_at=end)
        )
    path = tmp_path / "edges.parquet"
    write_records(path, records)
    zones = ("UTC", "America/Santiago", "Asia/Beirut", "Australia/Lord_Howe", "Asia/Tokyo", "Pacific/Chatham")
    with canonical_parquet(path, []) as source:
        engine = Passes(source)
        try:
            for zone in zones:
                fast, slow = engine.months(zone), month_sql(zone)
                query = (
                    f"SELECT count(*) FILTER (WHERE {fast} IS DISTINCT FROM {slow}) FROM {engine.history()}"
                )
                assert engine.connection.execute(query).fetchall() == [(0,)], zone
        finally:
            engine.close()


# --- rows added up on DuckDB (--by customer, --by period), no object per call --------------------------


def _same_rows(reference: MarginView, grouped: MarginView) -> None:
    """Every row's keys, counts and flags equal; every amount equal to 12 places (what JSON and CSV show)
    and within 10^-20 (the reference adds 28-digit Decimals call by call, the engine adds exactly)."""
    assert grouped.columns == reference.columns and grouped.modalities == reference.modalities
    assert grouped.uncosted_records == reference.uncosted_records
    assert len(grouped.rows) == len(reference.rows)
    for want, got in zip(reference.rows, grouped.rows, strict=True):
        assert list(got) == list(want)
        for name, theirs in want.items():
            mine = got[name]
            if isinstance(theirs, dict):
                assert list(mine) == list(theirs), name  # type: ignore[call-overload]
                pairs = [(mine[k], v) for k, v in theirs.items()]  # type: ignore[index]
            else:
                pairs = [(mine, theirs)]
            for a, b in pairs:
                if isinstance(b, Decimal):
                    assert isinstance(a, Decimal) and abs(a - b) < Decimal("1e-20"), (want, name, a, b)
                    assert a.quantize(Decimal("1e-12")) == b.quantize(Decimal("1e-12")), (want, name)
                else:
                    assert a == b, (want, name)


def _cards(folder: Path, costs: str, prices: str) -> tuple[CostCard, PriceCard]:
    cost_card = load_cost_card(folder / costs if costs == "tiered.toml" else Path(costs))
    price_card = load_price_card(folder / prices if prices == "plan.toml" else Path(prices))
    return cost_card, price_card


@pytest.mark.parametrize("by", GROUPED_BY)
@pytest.mark.parametrize(("costs", "prices", "history"), CASES)
def test_rows_added_up_on_duckdb_are_the_reference_rows(
    folder: Path, costs: str, prices: str, history: str, by: str
) -> None:
    """Incomplete rows and their uncosted modalities (the tiered card has no TTS entry), catalog token
    prices, additional entries, quotas, tiers, packages, per-attempt fees, a price change in the history."""
    cost_card, price_card = _cards(folder, costs, prices)
    path = folder / history
    reference = margin_view(session_margins(read_records(path), cost_card, price_card), by)
    grouped = grouped_view(path, cost_card, price_card, by)
    _same_rows(reference, grouped)
    _same_rows(per_minute(reference), per_minute(grouped))


def test_rows_under_cards_pinned_to_a_date_are_the_reference_rows(folder: Path) -> None:
    """``--at``: every record under the versions in force on one date (the tiered card's graduated Twilio
    price for November's calls too)."""
    at = datetime(2026, 10, 25, tzinfo=UTC)
    cost_card, left_off = pin_costs(load_cost_card(folder / "tiered.toml"), at)
    price_card = pin_prices(load_price_card(folder / "plan.toml"), at)
    assert not left_off
    path = folder / "history.parquet"
    reference = margin_view(session_margins(read_records(path), cost_card, price_card), "customer")
    _same_rows(reference, grouped_view(path, cost_card, price_card, "customer"))


def test_sessions_near_zero_margin_are_judged_exactly(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With session margins in SQL at whole currency units, the flooring bound covers almost every session:
    they are then added up exactly in Python, with the same loss counts."""
    monkeypatch.setattr(margin_grouped, "SCALE", 0)
    cost_card, price_card = _cards(folder, "tiered.toml", "plan.toml")
    path = folder / "history.parquet"
    reference = margin_view(session_margins(read_records(path), cost_card, price_card), "customer")
    assert sum(int(str(r["loss_sessions"])) for r in reference.rows) > 10
    _same_rows(reference, grouped_view(path, cost_card, price_card, "customer"))


def test_an_amount_past_128_bits_takes_the_per_call_path(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(margin_grouped, "_HUGEINT", 1)
    cost_card, price_card = _cards(folder, "costs-informative.toml", "plan-call-minute.toml")
    with pytest.raises(margin_grouped.TooLarge):
        grouped_view(folder / "history.parquet", cost_card, price_card, "customer")
    args = ["margin", "--records", str(folder / "history.parquet"), "--costs", "costs-informative.toml"]
    args += ["--prices", "plan-call-minute.toml", "--format", "json"]
    fallback = runner.invoke(app, [*args, "--engine", "duckdb"])
    reference = runner.invoke(app, [*args, "--engine", "reference"])
    assert fallback.exit_code == 0, fallback.output
    assert json.loads(fallback.stdout) == json.loads(reference.stdout)


# --- how the command shows the rows -----------------------------------------------------------------------


def test_calls_by_session_come_per_customer_in_the_order_they_started(folder: Path) -> None:
    args = ["margin", "--records", str(folder / "newest-first.csv"), "--costs", "costs-informative.toml"]
    result = runner.invoke(app, [*args, "--prices", "plan-call-minute.toml", "--by", "session", "-f", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["rows"]
    keys = [(r["customer"], datetime.fromisoformat(r["started_at"]), r["session"]) for r in rows]
    assert keys == sorted(keys)
    assert len({r["customer"] for r in rows}) == 3
    csv_rows = runner.invoke(
        app, [*args, "--prices", "plan-call-minute.toml", "--by", "session", "-f", "csv"]
    )
    assert csv_rows.stdout.splitlines()[0].startswith("customer,session,started_at,period,")


def test_a_call_costing_a_few_cents_shows_its_digits_in_the_table(folder: Path) -> None:
    """A $0.0739964 call reads 0.07400, not 0.07: a column of amounts shows the first four significant
    digits of its smallest amount under one unit, and every row of it the same decimals (they line up)."""
    args = ["margin", "--records", str(folder / "history.parquet"), "--costs", "costs-informative.toml"]
    args += ["--prices", "plan-call-minute.toml", "--by", "session"]
    rows = json.loads(runner.invoke(app, [*args, "-f", "json"]).stdout)["rows"]
    cheap = next(r for r in rows if Decimal("0.01") < Decimal(r["cost"]) < Decimal("0.1"))
    table = runner.invoke(app, args).stdout
    places = column_places((Decimal(r["cost"]) for r in rows), 4)
    assert places >= 5
    line = next(line for line in table.splitlines() if cheap["session"] in line)
    # a placeholder-priced cost reads *0.07400 (the table's legend says what * means)
    assert amount_text(Decimal(cheap["cost"]), places) in [cell.removeprefix("*") for cell in line.split()]
    header = next(line for line in table.splitlines() if "┃ customer" in line)
    at = next(i for i, cell in enumerate(header.split("┃")) if cell.strip() == "cost")
    body = [line.split("│") for line in table.splitlines() if line.startswith("│")]
    assert {len(cells[at].strip().removeprefix(">= ").lstrip("*").split(".")[1]) for cells in body} == {
        places
    }
    assert column_places([Decimal("0.0739964"), Decimal("12.3")], 2) == 5
    assert amount_text(Decimal("0.0739964"), 5) == "0.07400"
    assert amount_text(Decimal("1234.5678"), 2) == "1234.57"
    assert column_places([Decimal("-0.00004")], 4) == 6


# --- each pass's records carry their session in their row number --------------------------------------------


def test_sessions_that_share_a_hash_are_told_apart_by_their_keys(
    folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sessions are joined by a 64-bit hash of customer and key; when two sessions share one, by the keys
    themselves. Forced here by a hash every session shares."""
    from talktime.simulate import margin_passes

    monkeypatch.setattr(margin_passes, "_HASH", "CAST(1 AS UBIGINT)")
    cost_card, price_card = _cards(folder, "tiered.toml", "plan.toml")
    path = folder / "history.parquet"
    reference = session_margins(read_records(path), cost_card, price_card)
    _same(reference, margin_vectorised(path, cost_card, price_card))
    _same_rows(margin_view(reference, "customer"), grouped_view(path, cost_card, price_card, "customer"))


def test_a_bad_record_in_a_pass_is_the_first_in_the_file_as_the_reference_names_it(tmp_path: Path) -> None:
    """A pass's row numbers hold each record's session; the error still names the first bad record in the
    file (not the first session's), with its row, as the reference does."""
    records = list(synthetic_month(40, seed=5, whole_call=True))
    llm = [i for i, r in enumerate(records) if r.kind == "llm"]
    for index in (llm[3], llm[-2]):
        records[index] = replace(records[index], input_tokens=None, cached_input_tokens=None)
    path = tmp_path / "late-first.parquet"
    write_records(path, list(reversed(records)))  # the later call's record comes first in the file
    costs, prices = (
        load_cost_card(Path("costs-informative.toml")),
        load_price_card(Path("plan-call-minute.toml")),
    )
    with pytest.raises(Exception) as reference:
        session_margins(read_records(path), costs, prices)
    for run in (
        lambda: margin_vectorised(path, costs, prices),
        lambda: grouped_view(path, costs, prices, "customer"),
    ):
        with pytest.raises(Exception) as vectorised:
            run()
        assert type(vectorised.value) is type(reference.value)
        named = str(reference.value).split(":")[0]  # record '<id>'
        assert named == f"record {records[llm[-2]].id!r}"
        assert f"{path} row {len(records) - llm[-2]}, {named}" in str(vectorised.value)
