"""Built-in provider profiles: one TOML file per provider product, each with its sources, effective dates
and confidence. They are data, not code: the engine has no ``if provider == ...`` anywhere.

Owns: finding and loading profiles (built-in ids or TOML paths). Does not own: what a policy means
(``talktime.core.metering.policy``).
"""

from __future__ import annotations

import tomllib
from decimal import Decimal
from functools import cache
from importlib import resources
from pathlib import Path

from talktime.core.metering.policy import Policy, policy_from_dict
from talktime.errors import PolicyError


def builtin_ids() -> list[str]:
    """Ids of the built-in profiles, sorted."""
    folder = resources.files(__name__)
    return sorted(p.name.removesuffix(".toml") for p in folder.iterdir() if p.name.endswith(".toml"))


def parse_policy_text(text: str, *, where: str) -> Policy:
    """A policy from TOML text. Floats are read as exact decimals."""
    try:
        data = tomllib.loads(text, parse_float=Decimal)
    except tomllib.TOMLDecodeError as error:
        raise PolicyError(f"{where}: not valid TOML: {error}") from None
    return policy_from_dict(data, where=where)


@cache
def builtin(policy_id: str) -> Policy:
    """A built-in profile by id."""
    resource = resources.files(__name__) / f"{policy_id}.toml"
    if not resource.is_file():
        raise PolicyError(
            f"{policy_id!r} is neither a built-in profile nor a .toml file; "
            f"built-ins: {', '.join(builtin_ids())}"
        )
    policy = parse_policy_text(resource.read_text(encoding="utf-8"), where=f"{policy_id}.toml")
    if policy.id != policy_id:
        raise PolicyError(f"{policy_id}.toml: id {policy.id!r} does not match its file name")
    return policy


def load_policy(id_or_path: str) -> Policy:
    """A built-in id (``twilio-voice``) or the path of a TOML policy file."""
    path = Path(id_or_path)
    if id_or_path.endswith(".toml") or path.is_file():
        if not path.is_file():
            raise PolicyError(f"{id_or_path}: no such policy file")
        return parse_policy_text(path.read_text(encoding="utf-8"), where=str(path))
    return builtin(id_or_path)
