"""The opening handshake through the proxy, as pure functions: the upstream URL, which headers cross, what
the client's own ``X-Talktime-*`` headers and ``talktime_*`` query parameters say, and the close code a client
gets when the upstream refuses.

Headers that describe one hop (``Connection``, ``Upgrade``, the ``Sec-WebSocket-*`` keys and extensions,
``Host``, lengths, proxy credentials) are the proxy's own on each side; every other header crosses
unchanged: ``Authorization`` and ``Origin`` go up, the provider's request id and error headers come back.
The subprotocols the client offers go up too (Deepgram's browser authentication is the subprotocol pair
``token, KEY``), and the one the upstream picks is the one the client gets.
"""

from __future__ import annotations

import http
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qsl, urlsplit, urlunsplit

#: Headers that belong to one hop of the connection, never forwarded in either direction.
HOP_HEADERS: Final = frozenset(
    {
        "host",
        "connection",
        "upgrade",
        "keep-alive",
        "te",
        "trailer",
        "transfer-encoding",
        "content-length",
        "proxy-authorization",
        "proxy-authenticate",
        "proxy-connection",
        "sec-websocket-key",
        "sec-websocket-accept",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
        "user-agent",  # forwarded, but through the WebSocket client's own User-Agent setting
        "date",
    }
)
#: Header and query parameter prefixes that speak to the proxy; stripped before the upstream sees them.
HEADER_PREFIX: Final = "x-talktime-"
QUERY_PREFIX: Final = "talktime_"
#: Close code for an upstream that could not be reached (RFC 6455 registry: 1014 Bad Gateway).
BAD_GATEWAY: Final = 1014
#: An upstream's HTTP refusal becomes close code 4000 + status (4401, 4429, 4503): lossless, in the range
#: RFC 6455 leaves to applications.
REFUSAL_BASE: Final = 4000
_MAX_REASON_BYTES: Final = 123


def upstream_url(base: str, path: str) -> str:
    """The upstream URL for a client's request path: the base's path prefix, then the client's path and
    query (the base's own query first).

    >>> upstream_url("wss://api.deepgram.com", "/v1/listen?encoding=linear16")
    'wss://api.deepgram.com/v1/listen?encoding=linear16'
    >>> upstream_url("wss://h.example/v3/ws?speech_model=u3", "/?sample_rate=8000")
    'wss://h.example/v3/ws?speech_model=u3&sample_rate=8000'
    """
    parts = urlsplit(base)
    client = urlsplit(path)
    prefix = parts.path.rstrip("/")
    joined = (prefix + client.path) if client.path not in ("", "/") else (parts.path or "/")
    query = "&".join(q for q in (parts.query, client.query) if q)
    return urlunsplit((parts.scheme, parts.netloc, joined, query, ""))


def strip_own_parameters(path: str) -> tuple[str, dict[str, str]]:
    """The request path without ``talktime_*`` query parameters, and their values (prefix removed).

    The other parameters are kept byte for byte, in their order.

    >>> strip_own_parameters("/v1/listen?talktime_session=call-9&encoding=mulaw&sample_rate=8000")
    ('/v1/listen?encoding=mulaw&sample_rate=8000', {'session': 'call-9'})
    """
    base, _, query = path.partition("?")
    kept, own = [], {}
    for piece in query.split("&") if query else []:
        if piece.startswith(QUERY_PREFIX):
            for name, value in parse_qsl(piece, keep_blank_values=True):
                own[name[len(QUERY_PREFIX) :]] = value
        else:
            kept.append(piece)
    return (base + "?" + "&".join(kept)) if kept else base, own


def query_values(path: str) -> dict[str, str]:
    """The query parameters of a path, the first value of each.

    >>> query_values("/v1/listen?encoding=linear16&sample_rate=16000&channels=2")
    {'encoding': 'linear16', 'sample_rate': '16000', 'channels': '2'}
    """
    found: dict[str, str] = {}
    for name, value in parse_qsl(urlsplit(path).query, keep_blank_values=True):
        found.setdefault(name, value)
    return found


def forwarded(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The headers that cross the proxy (hop headers and ``X-Talktime-*`` removed), in order, repeats kept.

    >>> forwarded([("Host", "proxy"), ("Authorization", "Token k"), ("X-Talktime-Session", "c")])
    [('Authorization', 'Token k')]
    """
    return [
        (name, value)
        for name, value in headers
        if name.lower() not in HOP_HEADERS and not name.lower().startswith(HEADER_PREFIX)
    ]


def own_headers(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The ``X-Talktime-*`` headers, by their lower-case name without the prefix.

    >>> own_headers([("X-Talktime-Customer", "acme"), ("Authorization", "Token k")])
    {'customer': 'acme'}
    """
    return {
        name.lower()[len(HEADER_PREFIX) :]: value
        for name, value in headers
        if name.lower().startswith(HEADER_PREFIX)
    }


def reason_text(text: str) -> str:
    """``text`` cut to the 123 bytes of UTF-8 a close frame's reason may hold, on a character boundary.

    >>> len(reason_text("é" * 100).encode())
    122
    """
    data = text.encode()[:_MAX_REASON_BYTES]
    return data.decode(errors="ignore")


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why the upstream connection was not made: the HTTP status it answered (None: unreachable), the
    close code and reason the client gets, and the attribute text kept on the failed record."""

    status: int | None
    close_code: int
    close_reason: str
    detail: str


def refused(status: int, body: bytes, headers: Mapping[str, str] | None = None) -> Refusal:
    """The refusal for an upstream's HTTP answer other than 101.

    >>> r = refused(401, b'{"err_code":"INVALID_AUTH"}')
    >>> r.close_code, r.close_reason
    (4401, 'upstream refused: HTTP 401 Unauthorized: {"err_code":"INVALID_AUTH"}')
    """
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        phrase = ""
    said = " ".join(body.decode(errors="replace").split())
    detail = f"HTTP {status} {phrase}".rstrip()
    reason = reason_text(f"upstream refused: {detail}" + (f": {said}" if said else ""))
    code = REFUSAL_BASE + status if 100 <= status <= 999 else BAD_GATEWAY
    return Refusal(status, code, reason, detail)


def unreachable(error: BaseException) -> Refusal:
    """The refusal for an upstream that could not be reached (connection refused, DNS, TLS, time-out).

    >>> unreachable(ConnectionRefusedError(111, "Connection refused")).close_code
    1014
    """
    said = str(error) or type(error).__name__
    detail = f"unreachable: {type(error).__name__}: {said}"
    return Refusal(None, BAD_GATEWAY, reason_text(f"upstream {detail}"), detail)
