"""Reconciliation: golden attribution tables, invariants (causes + unexplained == gap; own metering = no gap),
exit codes."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from talktime.cli.main import app
from talktime.core.metering.meter import meter_records
from talktime.core.reconcile.model import Options
from talktime.core.records import UsageRecord, record_to_row
from talktime.engine.reconcile import reconcile
from talktime.importers.base import STATEMENT_SCHEMA
from talktime.io.records_io import records_table
from talktime.providers import builtin
from talktime.synth import seed_case

T0 = datetime(2026, 10, 14, 9, tzinfo=UTC)


def statement_from(records: list[UsageRecord], billed: dict[str, Decimal] | None = None) -> pa.Table:
    """Lines carrying each record's id, start and duration; billed seconds when given."""
    rows = []
    for n, r in enumerate(records):
        assert r.ended_at is not None
        start = r.answered_at or r.started_at
        rows.append(
            {
                "line": n + 2,
                "id": r.id,
                "started_at": start,
                "duration_us": (r.ended_at - start) // timedelta(microseconds=1),
                "billed_us": None if billed is None else int(billed[r.id].scaleb(6)),
                "channels": r.channels,
                "status": r.status,
                "amount": None,
                "currency": None,
            }
        )
    return pa.Table.from_pylist(rows, schema=STATEMENT_SCHEMA)


def test_seed_case_says_participants_and_rounding() -> None:
    records = seed_case()
    result = reconcile(
        records_table(records), statement_from(records), builtin("livekit-participant"), Options()
    )
    s = result.summary
    assert (s.provider_billable_seconds, s.internal_billable_seconds) == (Decimal(1320), Decimal(638))
    assert s.causes["participants"] == Decimal(660) and s.causes["rounding"] == Decimal(22)
    assert s.unexplained_seconds == 0
    assert s.story().startswith(
        "22.0 min billed vs 10.6 min tallied: participants +11.0 min (2 participants per call"
    )
    assert "rounding +0.4 min (11 connections rounded 60/60 up)" in s.story()


def leg(i: int, talk: str, status: str = "completed", channels: int = 1) -> UsageRecord:
    start = T0 + timedelta(minutes=10 * i)
    answered = start + timedelta(seconds=5) if status == "completed" else None
    return UsageRecord(
        id=f"CA{i}",
        kind="leg",
        provider="twilio",
        status=status,
        channels=channels,
        started_at=start,
        answered_at=answered,
        ended_at=start + timedelta(seconds=5) + timedelta(seconds=float(talk)),
    )


# (records, statement change, expected causes, why)
GOLDEN = [
    ([leg(0, "80")], {}, {"rounding": Decimal(40)}, "80 s rounds up 60/60 to 120 s"),
    ([leg(0, "20")], {}, {"rounding": Decimal(40)}, "20 s rounds up to one minute"),
    (
        [leg(0, "20"), leg(1, "30")],
        {"drop": "CA0"},
        {"rounding": Decimal(70), "unbilled": Decimal(-60)},
        "a leg the statement lacks is unbilled, not unexplained",
    ),
    (
        [leg(0, "20")],
        {"extra": True},
        {"rounding": Decimal(40), "missing": Decimal(60)},
        "a line with no record of ours is missing",
    ),
    (
        [leg(0, "20")],
        {"dup": True},
        {"rounding": Decimal(40), "duplicated": Decimal(60)},
        "the same Call SID twice is duplicated",
    ),
]


@pytest.mark.parametrize(("records", "change", "expected", "why"), GOLDEN, ids=[g[3] for g in GOLDEN])
def test_golden_attribution(
    records: list[UsageRecord], change: dict[str, object], expected: dict[str, Decimal], why: str
) -> None:
    lines = statement_from(records).to_pylist()
    if "drop" in change:
        lines = [line for line in lines if line["id"] != change["drop"]]
    if change.get("dup"):
        lines.append({**lines[0], "line": 99})
    if change.get("extra"):
        lines.append({**lines[0], "line": 98, "id": "CA-other", "started_at": T0 + timedelta(hours=5)})
    table = pa.Table.from_pylist(lines, schema=STATEMENT_SCHEMA)
    s = reconcile(
        records_table(records), table, builtin("twilio-voice"), Options(delay_seconds=Decimal(0))
    ).summary
    assert {k: v for k, v in s.causes.items() if v} == expected, why
    assert s.unexplained_seconds == 0


durations = st.decimals(min_value=Decimal("0.5"), max_value=Decimal(900), places=3)
statuses = st.sampled_from(["completed", "completed", "completed", "failed", "unanswered"])
POLICIES = ["twilio-voice", "livekit-participant", "telnyx-voice", "plivo-voice", "vonage-voice"]


def make(data: list[tuple[Decimal, str]], policy: str) -> list[UsageRecord]:
    kind = {"livekit-participant": "participant"}.get(policy, "leg")
    out = []
    for i, (talk, status) in enumerate(data):
        start = T0 + timedelta(minutes=10 * i)
        answered = start + timedelta(seconds=3) if status == "completed" else None
        out.append(
            UsageRecord(
                id=f"r{i}",
                kind=kind,
                status=status,
                started_at=start,
                answered_at=answered,
                ended_at=start + timedelta(seconds=3) + timedelta(microseconds=int(talk.scaleb(6))),
                session=f"s{i // 2}",
            )
        )
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(durations, statuses), min_size=1, max_size=8), st.sampled_from(POLICIES))
def test_statement_from_our_own_metering_is_fully_explained(
    data: list[tuple[Decimal, str]], policy_id: str
) -> None:
    """Billed = the reference meter's billable: every second of the gap lands on a cause; under
    ``--tally profile`` there is no gap at all."""
    policy = builtin(policy_id)
    records = make(data, policy_id)
    billed = {m.id: m.billable_seconds for m in meter_records(records, policy)}
    statement = statement_from(records, billed)
    s = reconcile(records_table(records), statement, policy, Options()).summary
    assert sum(s.causes.values(), Decimal(0)) + s.unexplained_seconds == s.gap_seconds
    assert s.unexplained_seconds == 0
    assert s.expected_seconds == s.provider_billable_seconds
    same = reconcile(records_table(records), statement, policy, Options(tally="profile")).summary
    assert same.gap_seconds == 0 and all(v == 0 for v in same.causes.values())


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.tuples(durations, statuses), min_size=1, max_size=8),
    st.lists(st.integers(min_value=-90, max_value=90), min_size=8, max_size=8),
)
def test_causes_and_unexplained_sum_to_the_gap(data: list[tuple[Decimal, str]], noise: list[int]) -> None:
    records = make(data, "twilio-voice")
    billed = {r.id: Decimal(max(0, 60 + noise[i])) for i, r in enumerate(records)}
    s = reconcile(
        records_table(records), statement_from(records, billed), builtin("twilio-voice"), Options()
    ).summary
    assert sum(s.causes.values(), Decimal(0)) + s.unexplained_seconds == s.gap_seconds


def write_records(path: Path, records: list[UsageRecord]) -> None:
    rows = [record_to_row(r) for r in records]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_cli_exit_codes(tmp_path: Path) -> None:
    fixtures = Path(__file__).parent.parent / "fixtures" / "statements"
    start = datetime(2026, 10, 14, 9, 0, 5, tzinfo=UTC)
    records = [
        UsageRecord(
            id=f"CA0000000000000000000000000000000{n}",
            kind="leg",
            provider="twilio",
            started_at=start,
            answered_at=start,
            ended_at=start + timedelta(seconds=80),
        )
        for n in (1, 2)
    ]
    path = tmp_path / "records.csv"
    write_records(path, records)
    runner = CliRunner()
    args = ["reconcile", "--provider", "twilio-voice", "--statement", str(fixtures / "twilio-calls.json")]
    # The two priced legs were charged 0.0085 and 0.013 a minute (inbound, outbound): one rate per run, so a
    # money tolerance of a cent a line lets both through; the seconds are explained.
    ok = runner.invoke(app, [*args, "--records", str(path), "--format", "json", "--money-tolerance", "0.01"])
    assert ok.exit_code == 0, ok.output
    assert '"provider_only": 1' in ok.output and '"rounding": "80"' in ok.output
    short = [
        UsageRecord(
            id=r.id,
            kind="leg",
            provider="twilio",
            started_at=start,
            answered_at=start,
            ended_at=start + timedelta(seconds=200),
        )
        for r in records
    ]
    write_records(path, short)
    flagged = runner.invoke(app, [*args, "--records", str(path)])
    assert flagged.exit_code == 1, flagged.output
    assert "UNEXPLAINED" in flagged.output
    bad = runner.invoke(
        app,
        [
            "reconcile",
            "--provider",
            "twilio-voice",
            "--statement",
            str(fixtures / "twilio-calls-bad.csv"),
            "--records",
            str(path),
        ],
    )
    assert bad.exit_code == 2 and "line 3" in bad.output
    assert bad.output.startswith("talktime: error: "), bad.output  # the same first words as every command


def test_a_count_policy_is_refused_by_name() -> None:
    """A statement is call durations: reconciling it under a token profile is an error, not a report."""
    from talktime.errors import PolicyError

    empty = pa.table({"id": pa.array([], pa.string())})
    with pytest.raises(PolicyError, match="'openai-chat' bills tokens; reconciliation compares statement"):
        reconcile(empty, pa.table({}), builtin("openai-chat"), Options())
