"""The plausibility guards a use case applies: a limits file a user named, guards already read, or the safe
defaults; and the limits of one tenant, or none when records are to be billed as they are.

Every face that holds flagged records back (``invoice``, ``export``, ``serve``'s invoices) reads them here,
so the same file gives the same limits everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from talktime.core.plausibility import Guards, Kept, Limits

if TYPE_CHECKING:
    from talktime.core.plausibility import Accepted

__all__ = ["guards_of", "limits_of"]


def guards_of(guards: Path | Guards | None) -> Guards:
    """Guards already read, the TOML file named (docs/guards.md), or the safe defaults (None)."""
    from talktime.io.guards import load_guards

    if guards is None:
        return Guards()
    return guards if isinstance(guards, Guards) else load_guards(guards)


def limits_of(
    guards: Path | Guards | None,
    tenant: str | None,
    *,
    allow_flagged: bool = False,
    accepted: Mapping[str, Accepted] | None = None,
) -> Limits | None:
    """The limits ``tenant``'s records are judged by; None with ``allow_flagged`` (every record billed as it
    is, and the guards file not read). ``accepted``: the latest acceptance of each record a person accepted
    (a store's), counted beside the limits as ``GET /v1/invoices`` counts it; a store's word on the records
    read from it (:class:`~talktime.core.plausibility.Kept`, even empty) also has their time-worded limits
    judged as of the store's first receipt, as there."""
    if allow_flagged:
        return None
    limits = guards_of(guards).limits_for(tenant)
    return replace(limits, accepted=accepted) if accepted or isinstance(accepted, Kept) else limits
