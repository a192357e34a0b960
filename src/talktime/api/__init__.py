"""The HTTP face: a FastAPI app factory (``app.create_app``) over an event store.

Owns: routes, auth, request limits, and the one table mapping error categories to HTTP status codes
(``errors``). Does not own: validation or sessionization (``talktime.ingest``), storage (``talktime.store``),
metering (``talktime.core.metering``); ``service`` holds the use cases the routes call.
"""

from talktime.api.app import create_app

__all__ = ["create_app"]
