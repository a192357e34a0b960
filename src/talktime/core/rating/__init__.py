"""Rating: what usage costs (provider cost cards) and what it is sold for (customer price cards).

Owns: money and its rounding rule (``money.py``), one module per charge model (``charges/``), rate cards as
validated values (``cards.py``), rating an entry's records (``rate.py``) and per-call margins
(``margin.py``). Does not own: reading card files (``talktime.io.ratecards``), metering (billable seconds
come from ``talktime.core.metering``) or invoices (``talktime.core.invoicing``).

Everything here is exact ``Decimal``; a float anywhere on the money path is refused.
"""
