"""``talktime serve`` checks every file it is given before it opens the store: a bad guards file or card is
refused with one error line naming the file, and leaves no new store file behind (it used to make the
DuckDB file first, then refuse)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from talktime.app.serve import serve_inputs
from talktime.cli.main import app
from talktime.errors import InputError

PRICES = Path(__file__).parents[2] / "src" / "talktime" / "ratecards" / "plan-call-minute.toml"
COSTS = PRICES.with_name("costs-informative.toml")


def _serve(store: Path, *options: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["serve", "--store", str(store), "--port", "0", *options])
    return result.exit_code, result.stderr


@pytest.mark.parametrize(
    ("name", "text", "option", "why"),
    [
        ("guards.toml", "max_call_hours = 12\n[tenants\n", "--guards", "not valid TOML"),
        ("guards.toml", "max_call_hour = 12\n", "--guards", "max_call_hour: not a guard"),
        ("prices.toml", 'kind = "price"\n', "--prices", "prices.toml"),
    ],
)
def test_a_bad_file_is_refused_before_the_store_is_made(
    tmp_path: Path, name: str, text: str, option: str, why: str
) -> None:
    bad = tmp_path / name
    bad.write_text(text, encoding="utf-8")
    store = tmp_path / "events.duckdb"

    code, stderr = _serve(store, option, str(bad))

    assert code == 2
    assert stderr.startswith("talktime: error: ") and why in stderr
    assert str(bad) in stderr or name in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no store file, no WAL


def test_a_bad_cost_card_for_the_dashboard_is_refused_before_the_store_is_made(tmp_path: Path) -> None:
    bad = tmp_path / "costs.toml"
    bad.write_text('kind = "cost"\nname = "x"\ncurrency = "USD"\n[costs.a]\nmatch = 3\n', encoding="utf-8")

    code, stderr = _serve(tmp_path / "events.duckdb", "--prices", str(PRICES), "--costs", str(bad))

    assert code == 2 and "costs.toml" in stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["costs.toml"]


def test_costs_without_prices_is_refused_before_the_store_is_made(tmp_path: Path) -> None:
    code, stderr = _serve(tmp_path / "events.duckdb", "--costs", str(COSTS))

    assert code == 2 and "--costs serves the dashboard, which also needs --prices" in stderr
    assert list(tmp_path.iterdir()) == []


def test_the_inputs_are_read_once_for_the_server_and_the_dashboard(tmp_path: Path) -> None:
    guards = tmp_path / "guards.toml"
    guards.write_text("max_call_hours = 2\n[tenants.acme]\nmax_call_hours = 5\n", encoding="utf-8")

    given = serve_inputs(PRICES, COSTS, guards)

    assert given.prices is not None and given.costs is not None and given.guards is not None
    assert given.guards.limits_for("acme").max_call_hours == 5
    assert given.guards.limits_for("other").max_call_hours == 2
    assert serve_inputs(None, None, None) == type(given)(None, None, None)  # the defaults: none read
    with pytest.raises(InputError, match="--costs serves the dashboard"):
        serve_inputs(None, COSTS, None)
