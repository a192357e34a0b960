"""Price catalogs read from libraries that ship their data: an IO edge, outside ``talktime.core``.

Owns: ``genai`` (LLM token prices from the ``genai-prices`` package, offline, exact Decimals). Does not own:
rating (``talktime.core.rating``) or metering policies (``talktime.providers``); a catalog only answers
"what does one unit cost at this moment, according to this pinned version".
"""

from __future__ import annotations

from talktime.catalog.genai import (
    PARTS,
    TokenPrices,
    UnknownModel,
    UnknownProvider,
    catalog_version,
    known_models,
    token_prices,
)

__all__ = [
    "PARTS",
    "TokenPrices",
    "UnknownModel",
    "UnknownProvider",
    "catalog_version",
    "known_models",
    "token_prices",
]
