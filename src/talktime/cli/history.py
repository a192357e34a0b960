"""Where the commands that look back (invoice, margin, reconcile, simulate, compare) get usage records:
a record file, or the records the event store keeps for one tenant, as of now.

A DuckDB store that a running ``talktime serve`` holds (DuckDB lets one process open a file for writing,
and no other process open it at all) is read through that server instead: see :mod:`talktime.app.served`.
"""

from __future__ import annotations

from pathlib import Path

import typer

from talktime.core.records import UsageRecord

STORE_HELP = "An embedded DuckDB file path, or a postgresql:// URL."

RECORDS_OPTION = typer.Option(None, "--records", "-r", help="Usage records: .csv, .jsonl or .parquet.")
STORE_OPTION = typer.Option(None, "--store", help=STORE_HELP + " Read instead of --records.")
TENANT_OPTION = typer.Option(None, "--tenant", help="The tenant whose events --store holds.")


def history(records: Path | None, store: str | None, tenant: str | None) -> list[UsageRecord]:
    """Records from exactly one of a file or a store (:func:`talktime.app.history.records_of`)."""
    from talktime.app.history import HistorySource, records_of

    return records_of(HistorySource(records, store, tenant))
