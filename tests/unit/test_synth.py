"""The synthetic month behind the demo and the benchmarks must be valid usage, whatever the seed."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from talktime.core.records import seconds_between
from talktime.synth import seed_case, synthetic_month


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32))
def test_every_seed_gives_valid_records(seed: int) -> None:
    # Records validate at construction: a call shorter than the STT set-up, a transfer near hang-up or an
    # agent joining after the caller left used to make invalid times and stop the generator.
    records = list(synthetic_month(1500, seed=seed))
    assert len({r.id for r in records}) == len(records)
    for record in records:
        if record.audio_seconds is not None and record.first_audio_at and record.last_audio_at:
            assert record.audio_seconds == seconds_between(record.first_audio_at, record.last_audio_at)


def test_the_support_thread_case_is_eleven_calls_of_two_participants() -> None:
    records = seed_case()
    assert len(records) == 22
    assert len({r.session for r in records}) == 11
    assert all(r.ended_at and seconds_between(r.started_at, r.ended_at) < 60 for r in records)
