"""Ingestion: raw CloudEvents in, usage records out.

Owns: the event types talktime accepts and their validation (``events``: every error of an event reported at
once, each with a field path and a reason), and sessionization (``sessionize``: a pure function from events
to usage records, whatever order they came in). Does not own: storing events (``talktime.store``), HTTP
(``talktime.api``) or metering (``talktime.core.metering``).
"""
