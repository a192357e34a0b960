"""The alerts use case over a record file: the calls' facts read on DuckDB are the ones plain Python works out
from the records, a CSV and its Parquet copy give the same alerts, and each period's spend and minutes are
``talktime margin --by customer``'s price and minutes (on the per-record reference)."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from alerts.planted import COSTS, LONG_CALL, OPEN_CALL, PRICES, TOKENS_CALL, facts, planted_month
from talktime.app.alerts import check_alerts, record_facts
from talktime.app.history import HistorySource
from talktime.app.margin import MarginBy, MarginEngine, margin
from talktime.core.alerts.config import AlertConfig, CustomerRules
from talktime.errors import InputError
from talktime.io.records_io import write_records

CONFIG = AlertConfig(CustomerRules(spend=Decimal(15), minutes=Decimal(250)))


@pytest.fixture(scope="module")
def month(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("planted")
    records = planted_month()
    parquet, csv = folder / "month.parquet", folder / "month.csv"
    write_records(parquet, records)
    write_records(csv, records)
    return parquet, csv


def test_duckdb_reads_the_facts_plain_python_works_out(month: tuple[Path, Path]) -> None:
    read = record_facts(month[0], CONFIG)
    calls, spans = facts(planted_month(), timedelta(minutes=240))
    assert sorted(read.calls, key=lambda c: (c.customer, c.session)) == sorted(
        calls, key=lambda c: (c.customer, c.session)
    )
    assert sorted(read.spans, key=lambda s: s.record_id) == sorted(spans, key=lambda s: s.record_id)
    assert read.latest == max(max(r.started_at, r.ended_at or r.started_at) for r in planted_month())


def test_every_planted_anomaly_fires_and_the_thresholds_too(month: tuple[Path, Path]) -> None:
    found = check_alerts(month[0], Path(COSTS), Path(PRICES), CONFIG)
    anomalies = {(a.rule.value, a.subject) for a in found.alerts if a.rule.value not in ("spend", "minutes")}
    assert anomalies == {
        ("long-call", LONG_CALL),
        ("tokens-per-minute", TOKENS_CALL),
        ("stuck-call", OPEN_CALL),
    }
    assert found.now == record_facts(month[0], CONFIG).latest


def test_spend_and_minutes_are_the_margin_reports(month: tuple[Path, Path]) -> None:
    found = check_alerts(month[0], Path(COSTS), Path(PRICES), CONFIG)
    history = HistorySource(month[0])
    report = margin(history, Path(COSTS), Path(PRICES), by=MarginBy.customer, engine=MarginEngine.reference)
    rows = report.view.rows
    expected = {(str(r["customer"]), str(r["period"])): (r["price"], r["minutes"]) for r in rows}
    assert {(p.customer, p.period): (p.spend, p.minutes) for p in found.periods} == expected
    spend = {a.subject: a.value for a in found.alerts if a.rule.value == "spend"}
    for (customer, period), (price, _) in expected.items():
        alert = next((a for a in found.alerts if a.id == f"spend/{customer}/{period}"), None)
        assert (alert is not None) == (price > 15), (customer, period)
    assert spend  # the month's periods pass 15 USD


def test_a_csv_and_its_parquet_copy_give_the_same_alerts(month: tuple[Path, Path]) -> None:
    from_parquet = check_alerts(month[0], Path(COSTS), Path(PRICES), CONFIG)
    from_csv = check_alerts(month[1], Path(COSTS), Path(PRICES), CONFIG)
    assert from_csv.alerts == from_parquet.alerts


def test_a_customer_of_its_own_is_checked_by_its_own_rules(month: tuple[Path, Path]) -> None:
    quiet = dataclasses.replace(CONFIG, customers={"blue-bank": CustomerRules()})
    found = check_alerts(month[0], Path(COSTS), Path(PRICES), quiet)
    assert not [a for a in found.alerts if a.customer == "blue-bank" and a.rule.value in ("spend", "minutes")]
    assert [a for a in found.alerts if a.customer == "acme-health" and a.rule.value == "spend"]


def test_a_check_time_without_offset_is_refused(month: tuple[Path, Path]) -> None:
    with pytest.raises(InputError, match="needs a UTC offset"):
        check_alerts(month[0], Path(COSTS), Path(PRICES), CONFIG, now=datetime(2026, 11, 1))
