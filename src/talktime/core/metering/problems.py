"""Validation errors in the words of the file a user wrote: each key once, as written, with what is allowed.

Owns: turning Pydantic's ``ValidationError`` into ``(key, why)`` problems. Pydantic names a value that fits
none of a union's members once per member (``when.kind.str``, ``when.kind.bool``, ...), counts list items
with dots (``rules.0``) and speaks of its own types ("Input should be a valid tuple"); a policy file has
keys, lists and tables. Does not own: which problems there are (the models' validators) or joining them
into one message (``policy_from_dict``).

>>> from typing import Literal
>>> from pydantic import BaseModel
>>> class Example(BaseModel):
...     rounding: Literal["up", "down"]
...     when: dict[str, str | int]
>>> try:
...     Example.model_validate({"rounding": "upp", "when": {"kind": 1.5}})
... except ValidationError as error:
...     for key, why in describe(error, "versions[0]"):
...         print(f"{key}: {why}")
versions[0].rounding: 'upp' is not one of 'up' or 'down'
versions[0].when.kind: must be text or a whole number (got 1.5)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final

from pydantic import ValidationError

from talktime.core.decimals import text

#: What Pydantic's type names are in a file's terms, for a value that fits none of a union's members.
_TYPE_WORDS: Final = {
    "str": "text",
    "bool": "true/false",
    "int": "a whole number",
    "decimal": "a number",
    "float": "a number",
    "tuple": "a list",
    "list": "a list",
    "dict": "a table",
}
#: The patterns our models use, in words.
_PATTERN_WORDS: Final = {
    r"^[a-z0-9][a-z0-9-]*$": "lowercase letters, digits and '-', starting with a letter or digit",
    r"^[a-z0-9][a-z0-9_-]*$": "lowercase letters, digits, '_' and '-', starting with a letter or digit",
}
#: A loc element that names a union member or a validator, not a key (``literal['up','down']``, ``str``).
_MEMBER: Final = re.compile(r"^(str|bool|int|float|decimal|none|dict|list|tuple)$|\[")


class KeyedProblems(ValueError):
    """Several problems a model's validator found at once, each under its own key (``parts[1].basis``)."""

    def __init__(self, items: list[tuple[str, str]]) -> None:
        self.items = items
        super().__init__("; ".join(f"{key}: {why}" if key else why for key, why in items))


def describe(error: ValidationError, prefix: str = "") -> list[tuple[str, str]]:
    """Each invalid key of ``error`` once, under ``prefix``, with why in the file's terms."""
    found: dict[str, list[Any]] = {}
    keyed: list[tuple[str, str]] = []
    for item in error.errors():
        inner = (item.get("ctx") or {}).get("error")
        if isinstance(inner, KeyedProblems):
            base = key_path(prefix, item["loc"])
            keyed.extend(
                (".".join(p for p in (base, key) if p).replace(".[", "["), why) for key, why in inner.items
            )
            continue
        found.setdefault(key_path(prefix, item["loc"]), []).append(item)
    return [(key, _why(items)) for key, items in found.items()] + keyed


def key_path(prefix: str, loc: tuple[int | str, ...]) -> str:
    """``versions[0]`` and ``("rules", 0, "when", "kind", "str")`` -> ``versions[0].rules[0].when.kind``."""
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif not _MEMBER.search(part):
            path += f".{part}" if path else part
    return path


def shown(value: object) -> str:
    """A value as it is written in a file: ``1.5``, ``'upp'``, ``["a"]``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return text(value)
    return repr(value)


def _why(items: list[Any]) -> str:
    own = [i for i in items if i["type"] in ("value_error", "assertion_error")]
    if own:  # a validator of ours already said it in a policy's terms
        return str(own[0]["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if len(items) > 1:  # a value that fits none of a union's members
        kinds = [_TYPE_WORDS.get(_member(i), "") for i in items]
        words = list(dict.fromkeys(k for k in kinds if k))
        allowed = " or ".join(filter(None, (", ".join(words[:-1]), words[-1]))) if words else "another value"
        return f"must be {allowed} (got {shown(items[0]['input'])})"
    return _one(items[0])


def _member(item: Any) -> str:
    last = str(item["loc"][-1]) if item["loc"] else ""
    return last if _MEMBER.search(last) else str(item["type"]).split("_")[0]


def _one(item: Any) -> str:
    kind, ctx = str(item["type"]), item.get("ctx") or {}
    for start, say in _SAYINGS:
        if kind.startswith(start):
            return say(shown(item.get("input")), ctx)
    return str(item["msg"])


def _pattern(value: str, ctx: dict[str, Any]) -> str:
    pattern = str(ctx.get("pattern", ""))
    return f"{value}: use {_PATTERN_WORDS.get(pattern, 'the pattern ' + pattern)}"


#: Pydantic's error types (the start of each) and what to say instead, from the value as written and the
#: error's context.
_SAYINGS: Final[tuple[tuple[str, Callable[[str, dict[str, Any]], str]], ...]] = (
    ("extra_forbidden", lambda v, c: "unknown key"),
    ("missing", lambda v, c: "is required"),
    ("literal_error", lambda v, c: f"{v} is not one of {c['expected']}"),
    ("greater_than_equal", lambda v, c: f"must be {c['ge']} or more (got {v})"),
    ("greater_than", lambda v, c: f"must be more than {c['gt']} (got {v})"),
    ("too_short", lambda v, c: "needs at least one"),
    ("string_pattern_mismatch", _pattern),
    (
        "date",
        lambda v, c: f"{v} is not a date (2024-01-01) or a date-time with an offset (2024-01-01T00:00:00Z)",
    ),
    ("decimal", lambda v, c: f'{v} is not a number: write it as a decimal, e.g. "0.5"'),
    ("tuple", lambda v, c: f'must be a list, e.g. ["a", "b"] (got {v})'),
    ("list", lambda v, c: f'must be a list, e.g. ["a", "b"] (got {v})'),
    ("dict", lambda v, c: f"must be a table (got {v})"),
    ("model", lambda v, c: f"must be a table (got {v})"),
    ("string", lambda v, c: f"must be text (got {v})"),
    ("bool", lambda v, c: f"must be true or false (got {v})"),
    ("int", lambda v, c: f"must be a whole number (got {v})"),
)
