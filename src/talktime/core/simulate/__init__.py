"""What-if: rounding impact over a distribution of calls, and re-metering history under another provider.

Owns: the distribution and mix specs (``spec.py``), which rules and prices apply (``rules.py``: each
record's own, or one date's pinned, ADR 0004), the rest of a call's cost and the records no entry prices
(``costs.py``), the per-policy impact line (``impact.py``) and the provider-switch comparison
(``switch.py``). Pure: no files, no clock, no engine. Does not own: generating calls at volume or running an
engine (``talktime.simulate``), charts or reports.
"""
