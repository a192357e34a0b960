"""Which records each cost entry prices, in SQL (``card_sql.taken_sql``), against the card's own answer
(``CostCard.entries_for``): the SQL names only the entries that could take a record of the entry's match,
and still picks exactly the records the card gives the entry."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import product
from pathlib import Path

import duckdb

from talktime.app.cards import cost_card
from talktime.core.records import UsageRecord
from talktime.simulate.card_sql import taken_sql

CARD = Path(__file__).parents[2] / "src" / "talktime" / "ratecards" / "costs-informative.toml"


def _values(card_fields: list[tuple[str, ...]], *, free: bool = True) -> list[str | None]:
    """Every value the card names for a field, and none; for a ``free`` field (not a record kind, which
    must be one of the kinds records know) also one in upper case and one the card never names."""
    named = sorted({v for allowed in card_fields for v in allowed})
    return [*named, *((named[0].upper(), "other") if free else ()), None]


def test_each_entry_prices_the_records_the_card_gives_it_and_no_others() -> None:
    costs = cost_card(CARD)
    fields = ("provider", "kind", "product", "attr.model")
    values = [
        _values([e.match.fields[f] for e in costs.entries if f in e.match.fields], free=f != "kind")
        for f in fields
    ]
    records = [
        UsageRecord(
            id=f"r{i}",
            started_at=datetime(2026, 1, 1, tzinfo=UTC),
            ended_at=datetime(2026, 1, 1, 0, 1, tzinfo=UTC),
            provider=provider,
            kind=kind,
            product=made,
            attrs={"model": model} if model is not None else {},
        )
        for i, (provider, kind, made, model) in enumerate(product(*values))
    ]
    connection = duckdb.connect()
    connection.execute(
        'CREATE TABLE r (i INTEGER, provider VARCHAR, kind VARCHAR, product VARCHAR, "attr.model" VARCHAR)'
    )
    connection.executemany(
        "INSERT INTO r VALUES (?, ?, ?, ?, ?)",
        [(i, r.provider, r.kind, r.product, r.attrs.get("model")) for i, r in enumerate(records)],
    )
    taken = taken_sql(costs)
    priced: dict[str, set[int]] = {}
    for entry, where in taken:
        priced[entry.group] = {
            int(i) for (i,) in connection.execute(f"SELECT i FROM r WHERE {where}").fetchall()
        }
    expected: dict[str, set[int]] = {group: set() for group in priced}
    for i, record in enumerate(records):
        for entry in costs.entries_for(record):
            expected[entry.group].add(i)
    assert priced == expected
    assert sum(map(len, expected.values())) > 20  # the records reach many entries, the additional one too
    assert expected["livekit-agent"]


def test_an_entry_names_only_the_earlier_entries_that_could_take_its_records() -> None:
    costs = cost_card(CARD)
    where = {entry.group: sql for entry, sql in taken_sql(costs)}
    llm = next(group for group in where if group.startswith("openai-gpt-4o-mini"))
    assert "'twilio'" not in where[llm] and "'deepgram'" not in where[llm]
    assert "'participant'" in where["livekit-agent"]  # the agent's records are the participant entry's
