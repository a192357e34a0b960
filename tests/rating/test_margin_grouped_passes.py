"""How ``margin --by customer|period`` meters on DuckDB, against the per-record reference: each pass read as
it runs (no table between metering and rating) or metered into a table first, an included quota from each
group's first records only, and the fast trim of ids and session keys. The history and cards are those of
``test_margin_vectorised`` (whole calls on month edges, quotas, tiers, a price change, per-part LLM prices).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from rating.test_margin_vectorised import PLAN, TIERED, _history, _same_rows
from talktime.core.rating.margin import margin_view, session_margins
from talktime.io.ratecards import load_cost_card, load_price_card
from talktime.io.records_io import read_records, write_records
from talktime.simulate import margin_grouped
from talktime.simulate.margin_grouped import grouped_view
from talktime.simulate.pass_engine import Passes, _trimmed, fast_trims

CARDS = [
    ("costs-informative.toml", "plan-call-minute.toml"),
    ("tiered.toml", "plan.toml"),
]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("grouped")
    write_records(path / "history.parquet", _history())
    (path / "tiered.toml").write_text(TIERED, encoding="utf-8")
    (path / "plan.toml").write_text(PLAN, encoding="utf-8")
    return path


def _reference_and_grouped(
    folder: Path, costs: str, prices: str, by: str = "customer"
) -> tuple[object, object]:
    cost_card = load_cost_card(folder / costs if costs == "tiered.toml" else Path(costs))
    price_card = load_price_card(folder / prices if prices == "plan.toml" else Path(prices))
    path = folder / "history.parquet"
    reference = margin_view(session_margins(read_records(path), cost_card, price_card), by)
    return reference, grouped_view(path, cost_card, price_card, by)


@pytest.mark.parametrize(("costs", "prices"), CARDS)
def test_passes_metered_into_a_table_first_give_the_same_rows(
    folder: Path, costs: str, prices: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The path a pass takes when it cannot be read as it runs (and after a bad record or a value past 64
    bits) gives the reference's rows too."""
    monkeypatch.setattr(Passes, "metering_sql", lambda *_: None)
    reference, grouped = _reference_and_grouped(folder, costs, prices, "period")
    _same_rows(reference, grouped)


@pytest.mark.parametrize(("costs", "prices"), CARDS)
def test_a_quota_read_from_a_few_first_records_at_a_time_is_the_reference_quota(
    folder: Path, costs: str, prices: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two first records per group at first: the tiered card's small quotas are used up within them (every
    later record pays for all of its time), the informative card's large ones are not, so more are read."""
    monkeypatch.setattr(margin_grouped, "first_records", lambda *_: 2)
    reference, grouped = _reference_and_grouped(folder, costs, prices)
    _same_rows(reference, grouped)


@pytest.mark.parametrize(
    "value",
    [
        "call-1",
        " call-1",
        "call-1 ",
        "  ",
        "",
        "call-1\t",
        "\tcall-1",
        "call-1\u3000",
        "\u3000call-1",
        "appel-\u00e9t\u00e9",
        " appel-\u00e9t\u00e9 ",
        "~tilde",
        "call 1",
        None,
    ],
)
def test_an_id_read_by_the_fast_trim_is_the_id_trim_reads(value: str | None) -> None:
    """Ids and session keys (a value per record) skip DuckDB's TRIM when they cannot change under it;
    padded, empty, tabbed and non-ASCII values still go through it, so every id reads as before."""
    sql = f"SELECT {_trimmed('id')}, NULLIF(TRIM(id), '') FROM (SELECT CAST(? AS VARCHAR) AS id)"
    fast, trimmed = duckdb.execute(sql, [value]).fetchall()[0]
    assert fast == trimmed


def test_the_fast_trim_replaces_the_compiled_trims_of_ids_and_sessions() -> None:
    query = """SELECT NULLIF(TRIM("id"), '') AS id, NULLIF(TRIM("session"), '') AS "session", """
    query += """NULLIF(TRIM("customer"), '') AS "customer" FROM t"""
    fast = fast_trims(query)
    assert fast.count('THEN "id" ELSE') == 1 and fast.count('THEN "session" ELSE') == 1
    assert """NULLIF(TRIM("customer"), '') AS "customer\"""" in fast  # few distinct values: TRIM is cheap
