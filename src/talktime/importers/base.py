"""Statement lines: the one table every importer produces, and the vectorised parsing they share.

An importer maps a provider's export to *raw* text columns (see :data:`RAW_COLUMNS`) plus how to read them
(:class:`Reading`); :func:`normalize` parses every row at once on DuckDB and either returns the typed
statement table (:data:`STATEMENT_SCHEMA`) or raises one :class:`StatementError` listing the bad rows, each
naming the file, line, field and why. No row is ever dropped: a row that cannot be read stops the import.

Statement columns (durations are integer microseconds, money an exact decimal; never float):

    line         where the row is in the file (CSV line number, or JSON array index)
    id           the provider's id for what it billed (Call SID, request_id, transcript id), may be null
    started_at   when the billed thing started (UTC)
    duration_us  the provider's own measure of it (Twilio duration, Deepgram duration, audio_duration, ...)
    billed_us    the seconds the provider says it billed, when the export says so (else null: derived)
    channels     channels the provider counted (null: 1)
    status       the provider's outcome in talktime's words (completed, failed, unanswered, busy, canceled)
    amount       what the provider charged for the line, positive, in ``currency`` (null: not stated)
    amount_places  decimal places the amount was written with (the statement's precision; null: no amount)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Final, Literal

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from talktime.core.records import STATUSES
from talktime.errors import StatementError

RAW_COLUMNS: Final = (
    "line",
    "id",
    "started_at",
    "ended_at",
    "duration",
    "billed",
    "channels",
    "status",
    "amount",
    "currency",
)
STATEMENT_SCHEMA: Final[pa.Schema] = pa.schema(
    [  # type: ignore[arg-type]  # pyarrow stubs: Field[Any]
        pa.field("line", pa.int64()),
        pa.field("id", pa.string()),
        pa.field("started_at", pa.timestamp("us", tz="UTC")),
        pa.field("duration_us", pa.int64()),
        pa.field("billed_us", pa.int64()),
        pa.field("channels", pa.int64()),
        pa.field("status", pa.string()),
        pa.field("amount", pa.decimal128(38, 10)),
        pa.field("currency", pa.string()),
        pa.field("amount_places", pa.int64()),
    ]
)
CLOSED_STATUSES: Final = tuple(sorted(STATUSES - {"open"}))
#: Providers' words for how a call ended, in talktime's words (compared without case): the statuses every
#: importer and a generic mapping understand unless they say otherwise.
COMMON_STATUSES: Final[dict[str, str]] = {
    **{s: s for s in CLOSED_STATUSES},
    **dict.fromkeys(("answered", "answer", "success", "normal_clearing"), "completed"),
    **dict.fromkeys(("error", "rejected", "call_rejected"), "failed"),
    **dict.fromkeys(("user_busy",), "busy"),
    **dict.fromkeys(("no-answer", "no answer", "no_answer", "noanswer", "timeout"), "unanswered"),
    **dict.fromkeys(("cancelled", "cancel", "originator_cancel"), "canceled"),
}
_RFC2822: Final = "%a, %d %b %Y %H:%M:%S %z"
_DECIMAL: Final = r"^[0-9]+(\.[0-9]{1,6})?$"
_MONEY: Final = r"^[+-]?[0-9]+(\.[0-9]{1,10})?$"
_ISO_OFFSET: Final = r"(Z|z|[+-][0-9]{2}(:?[0-9]{2})?)$"
_ISO_NAIVE: Final = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?$"
_ZONE_NAME: Final = r" (UTC|GMT)$"


@dataclass(frozen=True, slots=True)
class Reading:
    """How to read an importer's raw text columns.

    ``time_format`` is ``iso`` (ISO 8601 with an offset, or followed by `` UTC``), ``rfc2822`` (Twilio's
    ``Tue, 10 Aug 2010 08:02:17 +0000``) or ``either``. ``naive_utc``: an ISO time without an offset is UTC
    (an export whose columns say so). ``duration_unit`` and ``billed_unit`` are seconds per unit of those
    columns. ``negate_amount``: the export writes charges as negative numbers; ``absolute_amount``: the
    amount is a charge whatever its sign (Twilio writes ``price`` negative in its API, either way in exports).
    ``statuses`` maps the provider's status words to talktime's; a word not listed is an error.
    ``field_names`` maps raw columns to the provider's own field names, for error messages.
    """

    where: Callable[[int], str]
    time_format: Literal["iso", "rfc2822", "either"] = "iso"
    duration_unit: Decimal = Decimal(1)
    billed_unit: Decimal = Decimal(1)
    negate_amount: bool = False
    statuses: dict[str, str] = field(default_factory=lambda: dict(COMMON_STATUSES))
    naive_utc: bool = False
    absolute_amount: bool = False
    field_names: dict[str, str] = field(default_factory=dict)


def raw_table(rows: Sequence[dict[str, str | None]]) -> pa.Table:
    """Raw rows (one dict per line, keys from :data:`RAW_COLUMNS`) as a table of text columns."""
    columns = {name: [row.get(name) for row in rows] for name in RAW_COLUMNS}
    arrays = [pa.array(columns[name], pa.string()) for name in RAW_COLUMNS]
    return pa.Table.from_arrays(arrays, names=list(RAW_COLUMNS))


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _blank(column: str) -> str:
    """A raw text column trimmed, empty as null."""
    return f"NULLIF(TRIM({column}), '')"


def _trimmed(column: str) -> str:
    """``_blank``, skipping the copy ``TRIM`` makes when neither end can be whitespace (printable ASCII)."""
    ends = f"ascii({column}) BETWEEN 33 AND 126 AND ascii({column}[-1]) BETWEEN 33 AND 126"
    return f"(CASE WHEN {ends} THEN {column} ELSE {_blank(column)} END)"


def _time(column: str, reading: Reading, blank: Callable[[str], str] = _blank) -> tuple[str, str]:
    """(parse expression, why-it-failed expression) for a time column."""
    text = blank(column)
    rfc = f"TRY_STRPTIME({text}, {_lit(_RFC2822)})"
    rfc_why = 'an RFC 2822 time like "Tue, 10 Aug 2010 08:02:17 +0000"'
    zoned = f"regexp_replace({text}, {_lit(_ZONE_NAME)}, '+00:00')"
    arms = f"WHEN regexp_matches({zoned}, {_lit(_ISO_OFFSET)}) THEN TRY_CAST({zoned} AS TIMESTAMPTZ)"
    iso_why = "an ISO 8601 time with a UTC offset (e.g. 2026-10-14T09:00:00+00:00)"
    if reading.naive_utc:
        naive = f"TRY_CAST({text} || '+00:00' AS TIMESTAMPTZ)"
        arms += f" WHEN regexp_matches({text}, {_lit(_ISO_NAIVE)}) THEN {naive}"
        iso_why = "an ISO 8601 time (UTC unless it has an offset, e.g. 2026-10-14 09:00:00)"
    iso = f"(CASE {arms} END)"
    if reading.time_format == "rfc2822":
        return rfc, _lit(f"is not {rfc_why}")
    if reading.time_format == "either":
        return f"COALESCE({rfc}, {iso})", _lit(f"is not {rfc_why} or {iso_why}")
    return iso, _lit(f"is not {iso_why}")


def _micros(column: str, unit: Decimal, blank: Callable[[str], str] = _blank) -> tuple[str, str]:
    """A non-negative decimal text column in ``unit`` seconds as integer microseconds, exactly."""
    text = blank(column)
    scaled = unit.scaleb(6)
    if scaled != scaled.to_integral_value():
        raise ValueError(f"unit {unit} is finer than a microsecond")
    parsed = (
        f"(CASE WHEN regexp_matches({text}, {_lit(_DECIMAL)}) "
        f"THEN TRY_CAST(CAST({text} AS DECIMAL(38, 6)) * {int(scaled)} AS HUGEINT) END)"
    )
    # Too large for microseconds in 64 bits (about 292,000 years) is null here, so the row is named.
    why = "'is not a non-negative decimal number of seconds (6 places at most) under 292,000 years'"
    return f"TRY_CAST({parsed} AS BIGINT)", why


#: Raw text columns every row is parsed from (``line`` aside).
_TEXT: Final = tuple(c for c in RAW_COLUMNS if c != "line")


def _parse(reading: Reading, blank: Callable[[str], str]) -> str:
    """The parsed columns' select list; ``blank(column)`` is a raw column trimmed, empty as null."""
    start, _ = _time("started_at", reading, blank)
    end, _ = _time("ended_at", reading, blank)
    duration, _ = _micros("duration", reading.duration_unit, blank)
    billed, _ = _micros("billed", reading.billed_unit, blank)
    status = blank("status")
    status_map = " ".join(
        f"WHEN LOWER({status}) = {_lit(k)} THEN {_lit(v)}" for k, v in reading.statuses.items()
    )
    amount = f"CAST({blank('amount')} AS DECIMAL(38, 10))"
    if reading.absolute_amount:
        amount = f"ABS({amount})"
    elif reading.negate_amount:
        amount = f"-{amount}"
    return f"""CAST(line AS BIGINT) AS line, {blank("id")} AS id,
               {start} AS _start, {end} AS _end,
               {duration} AS _duration, {billed} AS _billed,
               TRY_CAST({blank("channels")} AS BIGINT) AS _channels,
               CASE WHEN {status} IS NULL THEN 'completed' {status_map} END AS _status,
               CASE WHEN regexp_matches({blank("amount")}, {_lit(_MONEY)}) THEN {amount} END AS _amount,
               CASE WHEN regexp_matches({blank("amount")}, {_lit(_MONEY)})
                    THEN length(regexp_extract({blank("amount")}, '[.]([0-9]*)$', 1)) END AS _places"""


def normalize(raw: pa.Table, reading: Reading) -> pa.Table:
    """Typed statement lines from raw text columns, or a :class:`StatementError` naming every bad row."""
    con = duckdb.connect()
    try:
        con.register("raw", raw)
        _, start_why = _time("started_at", reading)
        _, end_why = _time("ended_at", reading)
        _, duration_why = _micros("duration", reading.duration_unit)
        _, billed_why = _micros("billed", reading.billed_unit)
        parsed = f"SELECT {_parse(reading, _blank)}, * FROM raw"
        us = "(epoch_us(_end) - epoch_us(_start))"
        checks = [
            (
                "_status IS NULL",
                "status",
                _lit(f"is not a finished status ({', '.join(sorted(reading.statuses))})"),
            ),
            ("_start IS NULL AND NULLIF(TRIM(started_at), '') IS NULL", "started_at", "'is required'"),
            ("_start IS NULL", "started_at", start_why),
            ("_end IS NULL AND NULLIF(TRIM(ended_at), '') IS NOT NULL", "ended_at", end_why),
            ("_end IS NOT NULL AND _end < _start", "ended_at", "'is before the start time'"),
            ("_duration IS NULL AND NULLIF(TRIM(duration), '') IS NOT NULL", "duration", duration_why),
            (
                "_duration IS NULL AND _end IS NULL AND _status = 'completed'",
                "duration",
                "'is required (or an end time)'",
            ),
            ("_billed IS NULL AND NULLIF(TRIM(billed), '') IS NOT NULL", "billed", billed_why),
            (
                "_channels IS NULL AND NULLIF(TRIM(channels), '') IS NOT NULL OR _channels < 1",
                "channels",
                "'is not a positive whole number'",
            ),
            (
                "_amount IS NULL AND NULLIF(TRIM(amount), '') IS NOT NULL",
                "amount",
                "'is not a decimal amount'",
            ),
        ]
        problems = " ".join(
            f"WHEN {cond} THEN {_lit(name)} || '\t' || COALESCE({name}, '') || '\t' || {why}"
            for cond, name, why in checks
        )
        # Parse every row once (each field's parse evaluated once; text columns reduced to "given" flags)
        # and flag the rows any check fails, in one pass; only when a row is bad, name the bad rows.
        given = ("started_at", "ended_at", "duration", "billed", "channels", "amount")

        def on_flags(cond: str) -> str:
            for name in given:
                cond = cond.replace(f"NULLIF(TRIM({name}), '') IS NOT NULL", f"_given_{name}")
                cond = cond.replace(f"NULLIF(TRIM({name}), '') IS NULL", f"NOT _given_{name}")
            return f"COALESCE(({cond}), FALSE)"

        bad = " OR ".join(on_flags(cond) for cond, _, _ in checks)
        trimmed = ", ".join(f"{_trimmed(c)} AS {c}" for c in _TEXT)
        flags = ", ".join(f"{name} IS NOT NULL AS _given_{name}" for name in given)
        result = con.sql(
            f"""SELECT line, id, _start AS started_at,
                       COALESCE(_duration, {us}, 0) AS duration_us, _billed AS billed_us,
                       COALESCE(_channels, 1) AS channels, _status AS status, _amount AS amount, currency,
                       CAST(_places AS BIGINT) AS amount_places,
                       {bad} AS _bad
                FROM (SELECT {_parse(reading, lambda c: c)}, UPPER(currency) AS currency, {flags}
                      FROM (SELECT line, {trimmed} FROM raw))
                ORDER BY line"""
        ).to_arrow_table()
        error_count = int(pc.sum(pc.cast(result.column("_bad"), pa.int64())).as_py() or 0)
        if error_count:
            errors = con.execute(
                f"SELECT line, CASE {problems} END AS e FROM ({parsed}) "
                "WHERE e IS NOT NULL ORDER BY line LIMIT 50"
            ).fetchall()
            messages = []
            for line, text in errors:
                name, value, why = str(text).split("\t", 2)
                shown = reading.field_names.get(name, name)
                messages.append(f"{reading.where(int(line))}: field {shown!r}: {value!r} {why}")
            if error_count > len(errors):
                messages.append(f"{error_count - len(errors)} more bad rows not shown")
            raise StatementError(messages)
    finally:
        con.close()
    typed: pa.Table = result.drop_columns(["_bad"]).cast(STATEMENT_SCHEMA)
    return typed
