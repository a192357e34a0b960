"""Vectorised metering and rating on DuckDB for the what-if commands and the margin report, by concern:

* ``pass_engine.py``: :class:`Passes`, one connection metering filtered, relabelled views of one file;
* ``card_sql.py``: which records each card entry takes, as SQL (first entry first, as the margin report);
* ``rate_groups.py``: rating a pass per key (call, customer, the whole) with the charge models;
* ``key_costs.py``: every cost entry's cost per key, the records no entry takes, entries ``--at`` left off.

``compare`` (``switch_run.py``) and ``simulate`` (``run.py``) rate through these; ``margin``
(``margin_run.py``, ``margin_grouped.py``, ``margin_providers.py``) meters through
``margin_passes.SessionPasses``.
This module names them all in one place for the callers that import them from here.
"""

from __future__ import annotations

from talktime.simulate.card_sql import (
    CUT_LENGTH,
    attrs_of,
    card_attrs,
    customer_month_sql,
    cut_sql,
    group_firsts,
    group_sql,
    lit,
    match_sql,
    modality_sql,
    month_sql,
    relabel_sql,
    taken_sql,
    uncosted_sql,
)
from talktime.simulate.key_costs import cost_by_modality, cost_passes, left_off_notes, missing_by
from talktime.simulate.pass_engine import Passes
from talktime.simulate.rate_groups import Rated, entry_supported, rate_pass, supported, version_sql

__all__ = [
    "CUT_LENGTH",
    "Passes",
    "Rated",
    "attrs_of",
    "card_attrs",
    "cost_by_modality",
    "cost_passes",
    "customer_month_sql",
    "cut_sql",
    "entry_supported",
    "group_firsts",
    "group_sql",
    "left_off_notes",
    "lit",
    "match_sql",
    "missing_by",
    "modality_sql",
    "month_sql",
    "rate_pass",
    "relabel_sql",
    "supported",
    "taken_sql",
    "uncosted_sql",
    "version_sql",
]
