"""Alerts: per customer, thresholds on a billing period's spend and billable minutes, and the anomalies a
voice platform meets (a call far longer than the customer's usual, LLM tokens per minute far above the
customer's norm, a call left open and billing by the hour).

Owns: the rules (one module each: :mod:`.usage` for spend and minutes, :mod:`.long_call`,
:mod:`.tokens_rate`, :mod:`.stuck_call`), the robust statistic they share (:mod:`.robust`), the alert
configuration and its checks (:mod:`.config`), and the alert as data with its stable id and its webhook body
(:mod:`.model`). Pure: no files, no clock, no network; the check's time ``now`` is an input.

Does not own: rating (the spend and minutes are the price card's, from the margin report
:mod:`talktime.app` makes), reading the config file, or delivering alerts (:mod:`talktime.app.alerts`).
"""
