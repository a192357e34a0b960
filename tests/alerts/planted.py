"""What the alert tests share: a month of whole calls with anomalies planted in it, each call's facts worked
out in plain Python (to check the DuckDB read against), a webhook receiver on loopback, and the dashboard
started with an alert configuration."""

from __future__ import annotations

import dataclasses
import http.server
import json
import socket
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from talktime.core.alerts.model import CallFacts, RecordSpan
from talktime.core.records import UsageRecord
from talktime.synth import synthetic_month

COSTS = "costs-informative.toml"
PRICES = "plan-call-minute.toml"
#: blue-bank's call that lasts 100 minutes (its usual is about a minute).
LONG_CALL = "call-long"
LONG_CUSTOMER = "blue-bank"
#: acme-health's three-minute call whose agent used 210,000 tokens (its usual is about 6,000 a minute).
TOKENS_CALL = "call-tokens"
TOKENS_CUSTOMER = "acme-health"
#: cobalt-retail's call whose AssemblyAI stream was never closed (open 5 hours at the end of the month).
OPEN_CALL = "call-open"
OPEN_CUSTOMER = "cobalt-retail"
MONTH_END = datetime(2026, 10, 31, 23, 0, tzinfo=UTC)


def _leg_and_caller(customer: str, session: str, start: datetime, length: timedelta) -> list[UsageRecord]:
    end = start + length
    return [
        UsageRecord(
            id=f"{session}-leg1",
            kind="leg",
            provider="twilio",
            product="voice",
            customer=customer,
            session=session,
            started_at=start,
            answered_at=start + timedelta(seconds=3),
            ended_at=end,
        ),
        UsageRecord(
            id=f"{session}-caller",
            kind="sip",
            provider="livekit",
            product="rooms",
            customer=customer,
            session=session,
            started_at=start + timedelta(seconds=3),
            ended_at=end,
        ),
    ]


def planted() -> list[UsageRecord]:
    """The planted records alone (see the constants)."""
    long_start = datetime(2026, 10, 14, 10, tzinfo=UTC)
    records = _leg_and_caller(LONG_CUSTOMER, LONG_CALL, long_start, timedelta(minutes=100))
    tokens_start = datetime(2026, 10, 20, 15, tzinfo=UTC)
    records += _leg_and_caller(TOKENS_CUSTOMER, TOKENS_CALL, tokens_start, timedelta(minutes=3))
    records.append(
        UsageRecord(
            id=f"{TOKENS_CALL}-llm",
            kind="llm",
            provider="openai",
            product="chat",
            customer=TOKENS_CUSTOMER,
            session=TOKENS_CALL,
            started_at=tokens_start + timedelta(seconds=4),
            ended_at=tokens_start + timedelta(minutes=3),
            input_tokens=200_000,
            output_tokens=10_000,
            attrs={"model": "gpt-4o-mini"},
        )
    )
    open_start = MONTH_END - timedelta(hours=5)
    records += _leg_and_caller(OPEN_CUSTOMER, OPEN_CALL, open_start, timedelta(minutes=2))
    records.append(
        UsageRecord(
            id=f"{OPEN_CALL}-stt",
            kind="stream",
            provider="assemblyai",
            product="streaming",
            status="open",
            customer=OPEN_CUSTOMER,
            session=OPEN_CALL,
            started_at=open_start + timedelta(seconds=4),
            ended_at=None,
        )
    )
    return records


def normal_month(calls: int = 300, seed: int = 7) -> list[UsageRecord]:
    """A month of whole calls with nothing planted (October 2026)."""
    return list(synthetic_month(calls, seed=seed, whole_call=True))


def planted_month(calls: int = 300, seed: int = 7) -> list[UsageRecord]:
    return normal_month(calls, seed) + planted()


def facts(records: Iterable[UsageRecord], longer_than: timedelta) -> tuple[list[CallFacts], list[RecordSpan]]:
    """Each call's facts and the records open or longer than ``longer_than``, in plain Python."""
    calls: dict[tuple[str, str], list[UsageRecord]] = defaultdict(list)
    spans = []
    for r in records:
        customer = r.customer or "-"
        calls[(customer, r.session_key)].append(r)
        still_open = r.status == "open" or r.ended_at is None
        if still_open or (r.ended_at is not None and r.ended_at - r.started_at > longer_than):
            spans.append(
                RecordSpan(
                    r.id,
                    customer,
                    r.session_key,
                    r.kind or "",
                    r.provider or "",
                    r.status,
                    r.started_at,
                    r.ended_at,
                )
            )
    out = []
    for (customer, session), own in calls.items():
        first = min(r.started_at for r in own)
        still_open = any(r.status == "open" or r.ended_at is None for r in own)
        last = max(r.ended_at for r in own if r.ended_at is not None) if not still_open else None
        tokens = sum((r.input_tokens or 0) + (r.output_tokens or 0) for r in own)
        duration = None if last is None else (last - first) // timedelta(microseconds=1)
        out.append(CallFacts(customer, session, first, duration, tokens))
    return out, spans


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclasses.dataclass
class Receiver:
    """A webhook receiver on loopback: answers each POST with the next planned status (then 200) and keeps
    every request's headers and body."""

    url: str
    plan: list[int]
    received: list[tuple[dict[str, str], bytes, int]]

    def bodies(self, status: int = 200) -> list[dict[str, Any]]:
        return [json.loads(body) for _, body, answered in self.received if answered == status]


@contextmanager
def receiver(plan: Iterable[int] = (), delay: float = 0.0) -> Iterator[Receiver]:
    """A real HTTP server on a free loopback port; ``delay`` seconds before each answer."""
    found = Receiver("", list(plan), [])
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            with lock:
                status = found.plan.pop(0) if found.plan else 200
                found.received.append(({k.lower(): v for k, v in self.headers.items()}, body, status))
            time.sleep(delay)
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    found.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/talktime"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        server.shutdown()
        server.server_close()
