"""Reading a plausibility guards file (TOML; the format is in ``talktime.core.plausibility``)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from talktime.core.plausibility import Guards, GuardsError, guards_from_dict


def load_guards(path: Path) -> Guards:
    """The guards of a TOML file; a syntax error or a bad key names the file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as error:
        raise GuardsError(f"{path}: not valid TOML: {error}") from None
    return guards_from_dict(data, source=str(path))
