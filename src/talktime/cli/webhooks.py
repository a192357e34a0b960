"""``talktime webhooks``: set, list and remove the per-tenant secrets provider webhooks are checked with.

The secrets live in the event store (:mod:`talktime.app.webhooks`). With the embedded DuckDB store
run these before ``talktime serve`` (one process per file); with PostgreSQL a running server picks a
change up within 10 seconds.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import typer

from talktime.app.webhooks import providers
from talktime.cli.guard import guarded
from talktime.cli.history import STORE_HELP

webhooks_app = typer.Typer(
    help="Provider webhook secrets (Twilio, Telnyx, Vapi, Retell), one per tenant and provider."
)


def _secret_help() -> str:
    kinds = "; ".join(f"{name}: {label}" for name, label in providers().items())
    return f"The secret ('-' reads it from standard input). {kinds}."


@webhooks_app.command("set-secret")
def set_secret(
    tenant: str = typer.Argument(..., help="The tenant whose records the webhooks write."),
    provider: str = typer.Argument(..., help=f"One of {', '.join(providers())}."),
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
        from talktime.app.webhooks import set_secret as keep
        from talktime.app.webhooks import webhook_url

        value = sys.stdin.readline().strip() if secret == "-" else secret
        kept = keep(store, tenant, provider, value, public_url=public_url, now=datetime.now(UTC))
        print(f"{provider} webhook secret set for tenant {tenant!r}. Point {provider}'s webhook at:")
        print(webhook_url(kept))

    guarded(run)


@webhooks_app.command("list")
def list_secrets(store: str = typer.Option("talktime-events.duckdb", "--store", help=STORE_HELP)) -> None:
    """Every tenant and provider with a secret, when it was set and its public URL (never the secret)."""

    def run() -> None:
        from talktime.app.webhooks import secrets

        for secret in secrets(store):
            print(
                f"{secret.tenant}\t{secret.provider}\t{secret.set_at.isoformat()}\t{secret.public_url or '-'}"
            )

    guarded(run)


@webhooks_app.command("remove")
def remove(
    tenant: str = typer.Argument(..., help="The tenant."),
    provider: str = typer.Argument(..., help=f"One of {', '.join(providers())}."),
    store: str = typer.Option("talktime-events.duckdb", "--store", help=STORE_HELP),
) -> None:
    """Forget TENANT's secret for PROVIDER: its webhooks are refused (401) from then on."""

    def run() -> None:
        from talktime.app.webhooks import remove_secret

        remove_secret(store, tenant, provider, now=datetime.now(UTC))
        print(f"{provider} webhook secret removed for tenant {tenant!r}")

    guarded(run)
