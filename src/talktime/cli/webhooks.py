"""``talktime webhooks``: set, list and remove the per-tenant secrets provider webhooks are checked with.

The secrets live in the event store (``talktime.ingest.webhooks.secrets``). With the embedded DuckDB store
run these before ``talktime serve`` (one process per file); with PostgreSQL a running server picks a
change up within 10 seconds.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import typer

from talktime.cli.guard import guarded
from talktime.ingest.webhooks import PROVIDERS

STORE_HELP = "An embedded DuckDB file path, or a postgresql:// URL."
webhooks_app = typer.Typer(
    help="Provider webhook secrets (Twilio, Telnyx, Vapi, Retell), one per tenant and provider."
)


def _secret_help() -> str:
    kinds = "; ".join(f"{name}: {provider.secret_label}" for name, provider in sorted(PROVIDERS.items()))
    return f"The secret ('-' reads it from standard input). {kinds}."


@webhooks_app.command("set-secret")
def set_secret(
    tenant: str = typer.Argument(..., help="The tenant whose records the webhooks write."),
    provider: str = typer.Argument(..., help=f"One of {', '.join(sorted(PROVIDERS))}."),
    secret: str = typer.Argument(..., help=_secret_help()),
    store: str = typer.Option("talktime-events.duckdb", "--store", help=STORE_HELP),
    public_url: str | None = typer.Option(
        None,
        "--public-url",
        help="Twilio only: the scheme and host Twilio calls (https://t.example.com) when talktime runs "
        "behind a proxy; Twilio signs the full URL it called.",
    ),
) -> None:
    """Keep TENANT's secret for PROVIDER (replacing the one before) and print the URL to give the provider."""

    def run() -> None:
        from talktime.ingest.webhooks.secrets import set_secret as store_secret
        from talktime.store import open_store

        value = sys.stdin.readline().strip() if secret == "-" else secret
        opened = open_store(store)
        try:
            kept = store_secret(opened, tenant, provider, value, public_url=public_url, now=datetime.now(UTC))
        finally:
            opened.close()
        base = kept.public_url or "https://YOUR-HOST"
        print(f"{provider} webhook secret set for tenant {tenant!r}. Point {provider}'s webhook at:")
        print(f"{base}/v1/webhooks/{provider}/{tenant}?customer=CUSTOMER")

    guarded(run)


@webhooks_app.command("list")
def list_secrets(store: str = typer.Option("talktime-events.duckdb", "--store", help=STORE_HELP)) -> None:
    """Every tenant and provider with a secret, when it was set and its public URL (never the secret)."""

    def run() -> None:
        from talktime.ingest.webhooks.secrets import all_secrets
        from talktime.store import open_store

        opened = open_store(store)
        try:
            found = all_secrets(opened)
        finally:
            opened.close()
        for (tenant, provider), secret in sorted(found.items()):
            print(f"{tenant}\t{provider}\t{secret.set_at.isoformat()}\t{secret.public_url or '-'}")

    guarded(run)


@webhooks_app.command("remove")
def remove(
    tenant: str = typer.Argument(..., help="The tenant."),
    provider: str = typer.Argument(..., help=f"One of {', '.join(sorted(PROVIDERS))}."),
    store: str = typer.Option("talktime-events.duckdb", "--store", help=STORE_HELP),
) -> None:
    """Forget TENANT's secret for PROVIDER: its webhooks are refused (401) from then on."""

    def run() -> None:
        from talktime.ingest.webhooks.secrets import remove_secret
        from talktime.store import open_store

        opened = open_store(store)
        try:
            remove_secret(opened, tenant, provider, now=datetime.now(UTC))
        finally:
            opened.close()
        print(f"{provider} webhook secret removed for tenant {tenant!r}")

    guarded(run)
