"""Example rate cards (TOML), shipped as data. Prices are informative only: read from
shared/reference/provider-rules.md (gathered 2026-11); check each provider's current price list before
relying on them. A price marked "placeholder" in a card is not from any source.
"""
