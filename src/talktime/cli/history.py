"""Where the commands that look back (invoice, margin, reconcile, simulate, compare) get usage records:
a record file, or the records the event store keeps for one tenant, as of now.

A DuckDB store that a running ``talktime serve`` holds (DuckDB lets one process open a file for writing,
and no other process open it at all) is read through that server instead: see :mod:`talktime.cli.served`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer

from talktime.core.records import UsageRecord
from talktime.errors import InputError
from talktime.io.records_io import read_records

STORE_HELP = "An embedded DuckDB file path, or a postgresql:// URL."

RECORDS_OPTION = typer.Option(None, "--records", "-r", help="Usage records: .csv, .jsonl or .parquet.")
STORE_OPTION = typer.Option(None, "--store", help=STORE_HELP + " Read instead of --records.")
TENANT_OPTION = typer.Option(None, "--tenant", help="The tenant whose events --store holds.")


def stored_records(store: str, tenant: str | None, as_of: datetime | None = None) -> list[UsageRecord]:
    """The tenant's usage records in the event store as of ``as_of`` (now): the records the store keeps, or
    when ``talktime serve`` holds the store, the records that server reads from it."""
    from talktime.api.service import current_records
    from talktime.cli.served import held_by_server, records_from_server
    from talktime.store import open_store

    if not tenant:
        raise InputError("--store needs --tenant: the tenant whose events are read")
    server = held_by_server(store)
    if server is not None:
        found = records_from_server(server, store, tenant)
    else:
        opened = open_store(store)
        try:
            found = [c.record for c in current_records(opened, tenant, as_of or datetime.now(UTC))]
        finally:
            opened.close()
    if not found:
        raise InputError(f"--store {store!r}: tenant {tenant!r} has no usage records")
    return found


def history(records: Path | None, store: str | None, tenant: str | None) -> list[UsageRecord]:
    """Records from exactly one of a file or a store."""
    if (records is None) == (store is None):
        raise InputError("give exactly one of --records FILE or --store URL (with --tenant)")
    if records is not None:
        return list(read_records(records))
    assert store is not None
    return stored_records(store, tenant)
