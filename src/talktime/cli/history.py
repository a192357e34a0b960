"""The options of the commands that look back (invoice, margin, reconcile, export): where they get usage
records, a record file or the records the event store keeps for one tenant, as of now
(:class:`talktime.app.history.HistorySource`).

A DuckDB store that a running ``talktime serve`` holds (DuckDB lets one process open a file for writing,
and no other process open it at all) is read through that server instead: see :mod:`talktime.app.served`.
"""

from __future__ import annotations

import typer

STORE_HELP = "An embedded DuckDB file path, or a postgresql:// URL."

RECORDS_OPTION = typer.Option(None, "--records", "-r", help="Usage records: .csv, .jsonl or .parquet.")
STORE_OPTION = typer.Option(None, "--store", help=STORE_HELP + " Read instead of --records.")
TENANT_OPTION = typer.Option(None, "--tenant", help="The tenant whose events --store holds.")
