"""A count past 64 bits (2**64 + 7 tokens) is kept to the last digit, or refused with its field named.

orjson, which decodes the API's bodies and the store's JSON, reads a whole number past 64 bits as a float:
18446744073709551623 became 18446744073709552000, and writing one raised a TypeError (a 500 that rolled back
the whole batch). Now a count sent as text, or handed to ingest as a Python int, is stored and read back
exactly (the guards flag it: it is far over any token limit, and a person can look at it), and a JSON number
past 2**53 is refused with the field and what to send instead. A real ``talktime serve`` on loopback.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from api.served import make_key, serve
from support.events import record_event
from talktime.app import service
from talktime.store import open_store

BIG = 2**64 + 7
BATCH = "application/cloudevents-batch+json"


def _event(event_id: str, data: dict[str, object]) -> dict[str, object]:
    return {"specversion": "1.0", "id": event_id, "source": "/tests", "type": "talktime.record", "data": data}


def test_a_count_past_64_bits_is_kept_exactly_or_refused_by_name(tmp_path: Path) -> None:
    store = str(tmp_path / "events.duckdb")
    given = record_event(
        "from-python", kind="llm", provider="openai", product="chat", input_tokens=BIG, output_tokens=10
    )
    opened = open_store(store)
    try:
        assert service.ingest(opened, "t1", [given]).rejected == 0  # a Python int: no JSON number in between
    finally:
        opened.close()
    key = make_key(store, "t1")
    data = {k: v for k, v in given["data"].items() if k != "input_tokens"}  # type: ignore[union-attr]
    as_text = _event("as-text", {**data, "id": "as-text", "input_tokens": str(BIG)})
    as_number = _event("as-number", {**data, "id": "as-number", "input_tokens": BIG})
    with serve(store, tmp_path / "serve.log") as served:
        headers = {"Authorization": f"Bearer {key}", "Content-Type": BATCH}
        body = json.dumps([as_text, as_number])  # the standard library writes the number with every digit
        answer = httpx.post(f"{served.url}/v1/events", content=body, headers=headers, timeout=60)
        assert answer.status_code == 200, answer.text
        results = {r["id"]: r for r in answer.json()["results"]}
        assert results["as-text"]["status"] == "accepted"
        refused = results["as-number"]
        assert refused["status"] == "rejected"
        assert refused["errors"][0]["field"] == "data.input_tokens"
        assert "send it as text" in refused["errors"][0]["reason"]
        for record_id in ("from-python", "as-text"):
            read = httpx.get(
                f"{served.url}/v1/records/{record_id}",
                params={"policy": "openai-chat"},
                headers=headers,
                timeout=60,
            )
            assert read.status_code == 200, read.text
            assert read.json()["billable_quantity"] == str(BIG), read.json()
            assert read.json()["held"] is True  # far over the token limit: a person looks at it
        listed = httpx.get(f"{served.url}/v1/records", headers=headers, timeout=60)
        assert listed.status_code == 200, listed.text
        lines = [json.loads(line) for line in listed.text.splitlines() if line.strip()]
        assert {line["id"]: line["input_tokens"] for line in lines} == {"from-python": BIG, "as-text": BIG}
