"""``talktime alerts check``: the alerts open over a record file, and with ``--send`` each one POSTed to the
configured webhook (signed, retried, once). The rules and the configuration are in docs/alerts.md; the
numbers come from :mod:`talktime.app.alerts`, the delivery from :mod:`talktime.app.alert_delivery`."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime
from enum import StrEnum
from pathlib import Path

import typer

from talktime.app.alert_delivery import (
    Delivery,
    deliver,
    delivery_outcomes,
    delivery_words,
    signing_secret,
    state_file,
)
from talktime.app.alerts import AlertCheck, check_alerts, load_config
from talktime.cli.guard import guarded
from talktime.core.alerts.model import Alert, webhook_body
from talktime.core.decimals import text
from talktime.errors import InputError

EXIT_CODES = (
    "Exit codes: 0 no alert open; 1 alerts open (listed; with --send each delivered now or before); "
    "2 bad input (records, cards, configuration, a missing secret); 3 with --send, an alert still not "
    "delivered after its attempts (tried again on the next --send)."
)

alerts_app = typer.Typer(
    help="Alerts on spend, minutes and anomalous calls, shown and sent to a webhook (docs/alerts.md).",
    no_args_is_help=True,
)


@alerts_app.callback()
def alerts() -> None:
    """Alerts on spend, minutes and anomalous calls, shown and sent to a webhook (docs/alerts.md)."""


class AlertsFormat(StrEnum):
    text = "text"
    json = "json"


def _time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        found = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(f"--now {value!r} is not an ISO 8601 time (2026-10-31T23:00:00Z)") from None
    if found.tzinfo is None:
        raise InputError(f"--now {value!r} needs a UTC offset (Z or +02:00)")
    return found


def _value(alert: Alert) -> str:
    if alert.unit == "s":
        return f"{text(alert.value)} s (threshold {text(alert.threshold)} s)"
    return f"{text(alert.value)} {alert.unit} (threshold {text(alert.threshold)} {alert.unit})"


def _print(found: AlertCheck, outcomes: dict[str, Delivery], output: AlertsFormat) -> None:
    if output is AlertsFormat.json:
        alerts = []
        for alert in found.alerts:
            data = webhook_body(alert, found.now)["data"]
            known = outcomes.get(alert.id)
            data["delivery"] = (
                None if known is None else {k: v for k, v in asdict(known).items() if k != "alert_id"}
            )
            alerts.append(data)
        document = {
            "source": found.source,
            "now": found.now.isoformat(),
            "calls": found.calls,
            "alerts": alerts,
        }
        typer.echo(json.dumps(document, indent=2))
        return
    typer.echo(
        f"{len(found.alerts)} alert(s) open over {found.calls:,} calls of {found.source} "
        f"as of {found.now.isoformat()}"
    )
    for alert in found.alerts:
        typer.echo(f"\n{alert.customer} · {alert.rule_name} · {alert.subject}  [{alert.id}]")
        typer.echo(f"  {alert.message}")
        typer.echo(f"  value {_value(alert)}")
        typer.echo(f"  delivery: {delivery_words(outcomes.get(alert.id), found.config.webhook is not None)}")


@alerts_app.command("check", epilog=EXIT_CODES)
def check(
    records: Path = typer.Option(..., "--records", "-r", help="Usage records: .csv, .jsonl or .parquet."),
    costs: Path = typer.Option(..., "--costs", help="Cost card TOML (or costs-informative.toml)."),
    prices: Path = typer.Option(..., "--prices", help="Price card TOML (or plan-call-minute.toml)."),
    config: Path = typer.Option(..., "--config", help="Alert configuration TOML (docs/alerts.md)."),
    send: bool = typer.Option(
        False, "--send", help="POST each alert not delivered before to the webhook url, signed and retried."
    ),
    now: str | None = typer.Option(
        None,
        "--now",
        help="The check's time, ISO 8601 with offset (default: the latest time in the records).",
    ),
    output: AlertsFormat = typer.Option(AlertsFormat.text, "--format", help="text or json."),
) -> None:
    """The alerts open over a record file: spend and billable minutes per customer period above their
    thresholds, calls far longer than the customer's usual, LLM tokens per minute far above its norm, calls
    left open. Each names the customer, the rule, the value and the threshold, and how its delivery went."""
    code = 0

    def run() -> None:
        nonlocal code
        chosen = load_config(config)
        webhook = chosen.webhook
        if send and webhook is None:
            raise InputError(f"{config}: --send needs a [webhook] table with url and secret_env")
        secret = signing_secret(webhook) if send and webhook is not None else ""
        found = check_alerts(records, costs, prices, chosen, now=_time(now))
        outcomes: dict[str, Delivery] = {}
        if webhook is not None:
            state = state_file(config, webhook)
            outcomes = deliver(found.alerts, webhook, secret, state) if send else delivery_outcomes(state)
        _print(found, outcomes, output)
        if send and any(not outcomes[a.id].delivered for a in found.alerts):
            code = 3
        elif found.alerts:
            code = 1

    guarded(run)
    raise typer.Exit(code)
