"""Invoicing: per customer, per billing period (a month in the customer's time zone, half-open), lines that
carry the actual and the billable quantity and the policy that made the minute; draft, then finalised.

Owns: building an invoice from records and a price card, adjustments for events that arrive after a period
was finalised, and the invoice's plain-data form. Does not own: files (the ledger and renderers live in
``talktime.io``), clocks (the finalisation time is passed in) or prices (``talktime.core.rating``).
"""
