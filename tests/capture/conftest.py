"""Fixtures of the capture tests: a real talktime server on loopback, up or not yet, and ``talktime meter``
run on the records it made (helpers in ``serving``)."""

from capture.serving import down_server, meter, server

__all__ = ["down_server", "meter", "server"]
