"""``talktime margin`` written as it is read: the session view's rows made one at a time (``lazy``), the
JSON and CSV faces writing them part by part, and a card entry's parts metered in one statement. Each must
give exactly what the whole view, written at once, gives. The history is ``test_margin_vectorised``'s
(whole calls on month edges, quotas, tiers, a price change, per-part LLM prices)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

import talktime.ratecards
from rating.test_margin_grouped_passes import _reference_and_grouped
from rating.test_margin_vectorised import _history, _same_rows
from talktime.cli import billing
from talktime.core.rating.cards import CostCard
from talktime.core.rating.margin import MarginView, margin_view, session_margins
from talktime.io.ratecards import load_cost_card, load_price_card
from talktime.io.records_io import read_records, write_records
from talktime.simulate import margin_grouped

CARDS = Path(talktime.ratecards.__file__).parent


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("streamed")
    write_records(path / "history.parquet", _history())
    text = (CARDS / "costs-informative.toml").read_text(encoding="utf-8")
    start, end = text.index("[costs.elevenlabs-tts]"), text.index("[costs.deepgram-aura]")
    (path / "no-tts.toml").write_text(text[:start] + text[end:], encoding="utf-8")  # TTS uncosted
    return path


def _views(folder: Path, costs: CostCard) -> tuple[MarginView, MarginView]:
    prices = load_price_card(Path("plan-call-minute.toml"))
    report = session_margins(read_records(folder / "history.parquet"), costs, prices)
    return margin_view(report, "session"), margin_view(report, "session", lazy=True)


def _whole_json(view: MarginView) -> str:
    """The JSON face as it wrote the view: one document, dumped at once."""
    body: dict[str, object] = {
        "currency": view.currency,
        "by": view.by,
        "complete": not view.uncosted_records,
        "rows": [
            {k: billing._json_value(v) for k, v in billing._shown(row, billing._left_out(view)).items()}
            for row in view.rows
        ],
        "uncosted_records": list(view.uncosted_records),
    }
    if view.placeholder_entries:  # the informative card's LiveKit prices are placeholders
        body["placeholder_entries"] = list(view.placeholder_entries)
    return json.dumps(body, indent=2) + "\n"


def _whole_csv(view: MarginView) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    header = [*view.columns, "loss", "incomplete", "uncosted", "uncosted_modalities"]
    header += ["placeholder", "placeholder_entries"] if view.placeholder_entries else []
    writer.writerow(header)
    for row in view.rows:
        values = {**row, "uncosted_modalities": ";".join(row.get("uncosted_modalities") or [])}  # type: ignore[arg-type]
        values["placeholder_entries"] = ";".join(row.get("placeholder_entries") or [])  # type: ignore[arg-type]
        writer.writerow([billing._csv_value(values.get(c)) for c in header])
    return buffer.getvalue()


@pytest.mark.parametrize("costs", ["costs-informative.toml", "no-tts.toml"])
def test_rows_made_as_they_are_read_are_the_rows(folder: Path, costs: str) -> None:
    card = load_cost_card(folder / costs if costs == "no-tts.toml" else Path(costs))
    whole, lazy = _views(folder, card)
    assert len(lazy.rows) == len(whole.rows) > 10
    assert list(lazy.rows) == list(whole.rows)
    assert lazy.rows[3] == whole.rows[3] and list(lazy.rows[2:6]) == list(whole.rows[2:6])
    assert bool(whole.uncosted_records) is (costs == "no-tts.toml")  # both kinds of document are written


@pytest.mark.parametrize("costs", ["costs-informative.toml", "no-tts.toml"])
def test_json_and_csv_written_part_by_part_are_the_whole_documents(
    folder: Path, costs: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    card = load_cost_card(folder / costs if costs == "no-tts.toml" else Path(costs))
    whole, lazy = _views(folder, card)
    monkeypatch.setattr(billing, "_CHUNK", 100)  # a part every row or two
    assert "".join(billing._json_parts(lazy)) == _whole_json(whole)
    assert len(list(billing._csv_parts(lazy))) > 3
    assert "".join(billing._csv_parts(lazy)) == _whole_csv(whole)
    empty = MarginView("session", "USD", whole.columns, whole.modalities, (), ())
    assert "".join(billing._json_parts(empty)) == _whole_json(empty)
    assert "".join(billing._csv_parts(empty)) == _whole_csv(empty)


def test_a_file_is_replaced_only_once_written_whole(tmp_path: Path) -> None:
    out = tmp_path / "margins.csv"
    out.write_text("before\n", encoding="utf-8")

    def parts() -> object:
        yield "a,b\r\n"
        raise RuntimeError("stopped")

    with pytest.raises(RuntimeError):
        billing._write_parts(out, parts())  # type: ignore[arg-type]
    assert out.read_text(encoding="utf-8") == "before\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["margins.csv"]
    billing._write_parts(out, iter(["a,b\r\n", "1,2\r\n"]))
    assert out.read_bytes() == b"a,b\r\n1,2\r\n"


@pytest.mark.parametrize("by", ["customer", "period"])
def test_the_parts_of_an_entry_metered_in_one_statement_give_the_reference_rows(
    folder: Path, by: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    shared: list[bool] = []
    original = margin_grouped._Grouped.shared_passes

    def noting(self: margin_grouped._Grouped, *args: object) -> bool:
        done = original(self, *args)  # type: ignore[arg-type]
        shared.append(done)
        return done

    monkeypatch.setattr(margin_grouped._Grouped, "shared_passes", noting)
    reference, grouped = _reference_and_grouped(folder, "costs-informative.toml", "plan-call-minute.toml", by)
    assert True in shared  # the OpenAI parts (input, cached input, output) went in one statement
    _same_rows(reference, grouped)
