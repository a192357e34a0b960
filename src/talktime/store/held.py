"""The plausibility guards as SQL over the stored records: one predicate per reason, made from the limits.

:func:`talktime.core.plausibility.check` is the rule; this is the same rule written over the ``records``
columns, so ``GET /v1/usage`` leaves flagged records out of the compiled policy's query without reading
them into Python, and a change of limits applies at the next read. ``tests/contract/test_held.py`` holds
each predicate to ``check`` over drawn records, on DuckDB and PostgreSQL. Reasons' text always comes from
``check``: SQL only says which records to look at.

"Now" for the time checks is the moment the store first received the record (``first_received``), or the
read's "now" if that is earlier (a server replaying with a clock in the past): fixed for a stored record,
so a rebuild and the batch-by-batch rows give the same answer (``core.plausibility.receipt_moment``).
:func:`receipt_matters` picks the records whose receipt a face reading them needs to judge them so
(:class:`~talktime.core.plausibility.Kept`): the time predicates with the loosest limits a file can set.

Owns: the predicates. Does not own: the limits (``core.plausibility``), the relation (``usage.py``).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Final

from talktime.core.plausibility import RECEIPT_BOUNDS, Limits
from talktime.engine.dialects import POSTGRES, Dialect

#: The counts ``check`` compares with ``max_tokens`` and ``max_characters``.
TOKEN_FIELDS: Final = (
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "audio_input_tokens",
    "audio_output_tokens",
)
CHARACTER_FIELDS: Final = ("characters", "ssml_characters", "cjk_characters")
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def _us(d: Dialect, column: str) -> str:
    """A time column as exact epoch microseconds."""
    if d is POSTGRES:
        return f"(extract(epoch from {column}) * 1000000)"
    return f"epoch_us({column})"


def _now_us(d: Dialect, as_of: datetime) -> str:
    """ "Now" for the time checks, in epoch microseconds: first received, or the read's now if earlier."""
    micros = (as_of - _EPOCH) // timedelta(microseconds=1)
    return f"least({_us(d, 'first_received')}, {micros})"


def predicates(d: Dialect, ended: str, as_of: datetime, limits: Limits) -> dict[str, str]:
    """Per reason code, SQL true when :func:`~talktime.core.plausibility.check` gives that code; ``ended``
    is the end as of the read (the idle timeout applied)."""
    max_call_us = limits.max_call_hours * 3600 * 1_000_000
    max_call = limits.max_call_hours * 3600
    slack_us = limits.slack_seconds * 1_000_000
    span = f"({_us(d, ended)} - {_us(d, 'started_at')})"
    audio = []
    for name in ("audio_seconds", "speech_seconds"):
        audio.append(
            f"({name} IS NOT NULL AND (({ended} IS NOT NULL AND {name} * 1000000 > {span} + {slack_us}) "
            f"OR ({ended} IS NULL AND {name} > {max_call})))"
        )
    now = _now_us(d, as_of)
    started = _us(d, "started_at")
    return {
        "call-too-long": f"({ended} IS NOT NULL AND {span} > {max_call_us})",
        "audio-longer-than-call": "(" + " OR ".join(audio) + ")",
        "speech-longer-than-audio": (
            "(speech_seconds IS NOT NULL AND audio_seconds IS NOT NULL AND "
            f"speech_seconds > audio_seconds + {limits.slack_seconds})"
        ),
        "reported-longer-than-limit": f"(provider_reported_seconds > {max_call})",
        "tokens-over-limit": "(" + " OR ".join(f"{n} > {limits.max_tokens}" for n in TOKEN_FIELDS) + ")",
        "characters-over-limit": (
            "(" + " OR ".join(f"{n} > {limits.max_characters}" for n in CHARACTER_FIELDS) + ")"
        ),
        "starts-in-future": f"({started} > {now} + {limits.max_future_hours * 3600 * 1_000_000})",
        "starts-long-ago": f"({started} < {now} - {limits.max_past_days * 86400 * 1_000_000})",
    }


def any_reason(d: Dialect, ended: str, as_of: datetime, limits: Limits) -> str:
    """SQL true when the record breaks some limit (NULL comparisons count as false)."""
    return (
        "(" + " OR ".join(f"coalesce({p}, false)" for p in predicates(d, ended, as_of, limits).values()) + ")"
    )


#: The loosest time-worded limits (:data:`~talktime.core.plausibility.RECEIPT_BOUNDS`), as limits.
LOOSEST: Final = Limits(
    max_future_hours=RECEIPT_BOUNDS[0] // timedelta(hours=1), max_past_days=RECEIPT_BOUNDS[1].days
)


def receipt_matters(d: Dialect, as_of: datetime, limits: Limits = LOOSEST) -> str:
    """SQL true for a record received more than :data:`~talktime.core.plausibility.RECEIPT_BOUNDS` before its
    start or after it (as of its receipt, or ``as_of`` if earlier): one some time-worded limit could flag, so
    a face judging it needs that moment. The predicates' own SQL with the loosest limits; given the
    ``limits`` a face judges by, only the records those flag in time as of their receipt (a backfill of
    on-time records, received days after they started, then needs no moment at all)."""
    found = predicates(d, "ended_at", as_of, limits)
    return f"({found['starts-in-future']} OR {found['starts-long-ago']})"
