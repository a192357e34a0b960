"""A person's acceptance travels with the limits (``Limits.accepted``): ``hold_back`` counts a flagged record
whose every reason, worded as of the acceptance's ``judged_at``, is among the reasons accepted; a reason
the acceptance did not name (another limit, or the same one by another amount) holds it back again; the
guards file knows no ``accepted`` key."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from talktime.core.plausibility import Accepted, GuardsError, Limits, check, guards_from_dict, hold_back
from talktime.core.records import UsageRecord, parse_record

NOW = datetime(2026, 11, 15, tzinfo=UTC)
RECEIVED = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)  # when the store first received the records


def rec(record_id: str, **fields: str) -> UsageRecord:
    base = {"started_at": "2026-11-10T10:00:00+00:00", "ended_at": "2026-11-10T10:05:00+00:00"}
    return parse_record({"id": record_id, **base, **fields})


LONG = rec("long", ended_at="2026-11-12T10:00:00+00:00")  # 48 h: call-too-long
AHEAD = rec("ahead", started_at="2026-11-13T10:00:00+00:00", ended_at="2026-11-13T10:05:00+00:00")


def held_ids(records: list[UsageRecord], limits: Limits, now: datetime = NOW) -> list[str]:
    return [record.id for record, _ in hold_back(records, limits, now)[1]]


def accepted(record: UsageRecord, limits: Limits, at: datetime = RECEIVED) -> Accepted:
    """An acceptance of the record's reasons as the review words them (as of its first receipt)."""
    return Accepted(frozenset(check(record, limits, at)), at)


def test_an_accepted_record_counts_and_the_rest_stay_held() -> None:
    limits = Limits()
    assert held_ids([LONG, AHEAD], limits, RECEIVED) == ["long", "ahead"]
    counting = replace(limits, accepted={"long": accepted(LONG, limits)})
    kept, held = hold_back([LONG, AHEAD], counting, RECEIVED)
    assert [r.id for r in kept] == ["long"], "accepted: billed as it is"
    assert [r.id for r, _ in held] == ["ahead"], "not accepted: still held, nothing lost"


def test_a_reason_the_acceptance_did_not_name_holds_the_record_back_again() -> None:
    limits = Limits()
    made = {"long": accepted(LONG, limits)}
    longer = replace(LONG, ended_at=LONG.started_at + timedelta(hours=50))  # the same limit, another amount
    assert held_ids([longer], replace(limits, accepted=made)) == ["long"]
    tighter = Limits(max_call_hours=12)  # the same record, a limit worded otherwise
    assert held_ids([LONG], replace(tighter, accepted=made)) == ["long"]


def test_a_reason_worded_with_a_moment_is_judged_as_of_the_acceptance() -> None:
    """``starts-in-future`` names the moment it was judged as of: the store judges a record as of its first
    receipt, the invoice as of its month's end or now; the acceptance carries the store's moment."""
    limits = Limits()
    assert held_ids([AHEAD], limits, RECEIVED) == ["ahead"], "more than 24 h after its receipt"
    made = accepted(AHEAD, limits)
    now = datetime(2026, 11, 11, 12, 0, tzinfo=UTC)  # still more than 24 h before it: flagged, worded apart
    assert check(AHEAD, limits, now) and set(check(AHEAD, limits, now)) != made.reasons
    assert held_ids([AHEAD], replace(limits, accepted={"ahead": made}), now) == []


def test_without_acceptances_nothing_changes_and_the_file_has_no_such_key() -> None:
    assert Limits() == replace(Limits(), accepted={})
    assert hash(Limits()) == hash(replace(Limits(), accepted={"long": accepted(LONG, Limits())}))
    with pytest.raises(GuardsError, match="accepted: not a guard"):
        guards_from_dict({"accepted": 1})
