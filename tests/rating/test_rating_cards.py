"""Rate cards: the shipped examples load, charge versions are effective-dated, bad cards report every
problem at once, and margins put per-call cost beside price with a loss flag."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from talktime.core.rating.cards import RateCardError, cost_card_from_dict, price_card_from_dict
from talktime.core.rating.margin import margin_rows, session_margins
from talktime.core.rating.rate import rate_entry
from talktime.core.records import UsageRecord, parse_record
from talktime.io.ratecards import example_names, load_cost_card, load_price_card
from talktime.providers import load_policy

D = Decimal


def resolve(spec: object, where: str) -> Any:
    return load_policy(str(spec))


def call(
    record_id: str, start: str, seconds: int, *, provider: str = "bland", kind: str = "leg", **extra: Any
) -> UsageRecord:
    began = datetime.fromisoformat(start)
    values: dict[str, Any] = {
        "id": record_id,
        "started_at": began.isoformat(),
        "answered_at": began.isoformat(),
        "ended_at": (began + timedelta(seconds=seconds)).isoformat(),
        "provider": provider,
        "kind": kind,
        "customer": "acme",
        "session": record_id.split("-")[0],
        **extra,
    }
    return parse_record(values)


def test_shipped_example_cards_load() -> None:
    assert {"costs-informative.toml", "plan-call-minute.toml", "plan-per-component.toml"} <= set(
        example_names()
    )
    costs = load_cost_card(Path("costs-informative.toml"))
    assert costs.informative and costs.currency == "USD"
    assert {e.id for e in costs.entries} >= {"twilio-voice", "deepgram-streaming", "bland"}
    for name in ("plan-call-minute.toml", "plan-per-component.toml"):
        assert load_price_card(Path(name)).informative


BLAND = {
    "kind": "cost",
    "currency": "USD",
    "costs": {
        "bland": {
            "match": {"provider": "bland"},
            "versions": [
                {
                    "effective_from": "2020-01-01",
                    "model": "per_attempt",
                    "fee": "0.015",
                    "unit_price": "0.09",
                },
                {"effective_from": "2025-12-05", "unit_price": "0.14"},
            ],
        }
    },
}


def test_charge_versions_are_effective_dated_per_record_start() -> None:
    card = cost_card_from_dict(BLAND, resolve, where="test")
    records = [
        call("a-1", "2025-12-04T23:59:00+00:00", 60),
        call("b-1", "2025-12-05T00:00:00+00:00", 60),
        call("c-1", "2025-12-05T01:00:00+00:00", 0, status="failed"),
    ]
    groups = rate_entry(card.entries[0], records)
    amounts = {item.record_id: item.amount for g in groups for item in g.items}
    assert amounts == {"a-1": D("0.09"), "b-1": D("0.14"), "c-1": D("0.015")}, (
        "before 2025-12-05 $0.09/min, from it $0.14/min; a failed call pays the $0.015 attempt fee"
    )


def test_a_bad_card_reports_every_problem_at_once() -> None:
    bad = {
        "kind": "cost",
        "currency": "usd",
        "costs": {
            "bland": {"versions": [{"effective_from": "2020-01-01", "model": "per_minute"}]},
            "twilio-voice": {"unit": "fortnight", "versions": [{"model": "per_unit", "unit_price": "1"}]},
        },
    }
    with pytest.raises(RateCardError) as caught:
        cost_card_from_dict(bad, resolve, where="bad.toml")
    message = str(caught.value)
    for expected in ("bad.toml", "currency", "per_minute", "fortnight", "effective_from"):
        assert expected in message


def test_a_float_in_a_card_is_refused() -> None:
    card = {
        "kind": "price",
        "currency": "USD",
        "components": {
            "calls": {
                "policy": "bland",
                "versions": [{"effective_from": "2020-01-01", "model": "per_unit", "unit_price": 0.1}],
            }
        },
    }
    with pytest.raises(RateCardError, match="float"):
        price_card_from_dict(card, resolve, where="plan.toml")


PLAN = {
    "kind": "price",
    "currency": "USD",
    "components": {
        "minutes": {
            "policy": "bland",
            "versions": [{"effective_from": "2020-01-01", "model": "per_unit", "unit_price": "0.10"}],
        }
    },
}


def test_margin_flags_minutes_that_cost_more_than_they_sell_for() -> None:
    costs = cost_card_from_dict(BLAND, resolve, where="costs")
    prices = price_card_from_dict(PLAN, resolve, where="plan")
    records = [
        call("ok-1", "2026-01-05T10:00:00+00:00", 120),  # cost 2 x 0.14 = 0.28, price 2 x 0.10 = 0.20
        call("short-1", "2026-01-05T11:00:00+00:00", 3),  # cost max(0.015, 0.007) = 0.015, price 0.005
    ]
    report = session_margins(records, costs, prices)
    by_session = {s.session: s for s in report.sessions}
    assert by_session["ok"].cost == D("0.28") and by_session["ok"].price == D("0.20")
    assert by_session["ok"].loss, "Bland at $0.14 costs more than a $0.10 minute sells for"
    assert by_session["short"].cost == D("0.015"), "the per-attempt fee, not 3 s of usage"
    assert by_session["short"].price == D("0.005")
    rows = margin_rows(report, "customer")
    assert rows[0].cost == D("0.295") and rows[0].loss_sessions == 2
    provider_rows = margin_rows(report, "provider")
    assert [r.key for r in provider_rows] == ["bland"]
    assert provider_rows[0].price == D("0.205")


def test_records_no_cost_entry_takes_are_listed_not_free() -> None:
    costs = cost_card_from_dict(BLAND, resolve, where="costs")
    prices = price_card_from_dict(PLAN, resolve, where="plan")
    stray = call("x-1", "2026-01-05T10:00:00+00:00", 60, provider="twilio")
    report = session_margins([stray], costs, prices)
    assert report.uncosted_records == ("x-1",)
