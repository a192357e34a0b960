"""``serve``: what ``talktime serve`` needs before it listens, every input checked before the store is
opened (a bad card, guards or alerts file, or a missing alerts secret, leaves no new store file behind); the
store itself is :func:`talktime.app.stores.opened_store`.

The HTTP face (:func:`talktime.api.create_app`) and the dashboard are made by the command from these; the
layer draws nothing and runs no server.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from talktime.errors import InputError

if TYPE_CHECKING:
    from talktime.app.alerts import AlertSending
    from talktime.core.plausibility import Guards
    from talktime.core.rating.cards import CostCard, PriceCard
    from talktime.store.base import EventStore

__all__ = ["ServeInputs", "known_hashes", "serve_inputs"]


@dataclass(frozen=True, slots=True)
class ServeInputs:
    """The files ``serve`` was given, read: the price card (invoices), the cost card (the dashboard, with the
    price card), the plausibility guards (None: the safe defaults) and the alerts the server checks after
    each new snapshot (``--alerts``: the configuration and its signing secret; None: no alerts)."""

    prices: PriceCard | None
    costs: CostCard | None
    guards: Guards | None
    alerts: AlertSending | None = None


def serve_inputs(
    prices: Path | None,
    costs: Path | None,
    guards: Path | None,
    alerts: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> ServeInputs:
    """Every file read and checked, in the order the errors have always come: the combination, the price
    card, the guards, the cost card, then the alerts configuration and the secret its ``[webhook]`` names
    (from ``environ``, default the process's environment), each error naming the file."""
    from talktime.app.alerts import alert_sending
    from talktime.app.cards import cost_card, price_card
    from talktime.app.guards import guards_of

    if costs is not None and prices is None:
        raise InputError("--costs serves the dashboard, which also needs --prices (the price card)")
    if alerts is not None and (costs is None or prices is None):
        raise InputError(
            "--alerts checks the alerts over the dashboard's snapshots: it needs --costs and --prices"
        )
    card = price_card(prices)
    limits = None if guards is None else guards_of(guards)
    chosen = None if costs is None else cost_card(costs)
    sending = None
    if alerts is not None:
        try:
            sending = alert_sending(alerts, environ)
        except InputError as error:
            if str(alerts) in str(error):
                raise
            raise InputError(f"{alerts}: {error}") from None
    return ServeInputs(card, chosen, limits, sending)


def known_hashes(store: EventStore) -> dict[str, int] | None:
    """The embedded store's dedup sets loaded now (ADR 0009), not by the first batch a client sends: how
    many event and record hashes, and their bytes; None for a store that keeps none in memory."""
    warm = getattr(store, "known_hashes", None)
    return None if warm is None else dict(warm())
